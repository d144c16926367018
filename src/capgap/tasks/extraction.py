"""Answer extraction as named pipelines, in the manner of lm-eval's strict / flexible filters.

- `strict`: only an explicit final-answer statement counts ("The answer is X", "Final answer: X",
  "#### X", "\\boxed{X}"); the last one that states a readable answer wins. X is read from its start:
  "The answer is 12, since 3 × 4 = 12" states 12, "(84 / 2)" 42, "5120 / 25 = 20" 20, "2 apples + 3 apples
  = 5 apples" 5, "twelve" 12, "\\frac{1}{2}" 1/2; a statement that starts with a malformed expression
  ("5 + 5 + …") states nothing. Only when X starts with no value at all ("The answer is that he has 5
  left") does the first number of its sentence (after its last "=") count. "#### X" and "\\boxed{X}" count
  only when X is an answer from its first character ("#### Step 2:" is a markdown heading).
- `flexible`: the last value of the right kind anywhere in the text (last number, with "3/4" one number
  and "\\frac{1}{2}" one value; last option letter...), as lm-eval's flexible filter, so "(84 / 2)" gives 2.

Negations are never answers: "The answer isn't 5" and "the answer is not 50" state nothing (a correction
right after, "... It's 6." / "... but 6", is the statement), and "not 7" / "not B" / "50 is not the
answer" are skipped by both pipelines. Extracted answers are returned in canonical form ("145.0", "$145",
"145 dollars" → "145"; "\\frac{1}{2}", "0.50" → "0.5"; 1/3 stays "1/3") so that stored answers compare
by string.

Numbers compare exactly (see `numbers.py`): two different integers are never equal, "0.5" = ".50". A value
with no finite decimal (1/3, 2/3) also matches a decimal of at least 2 places that it rounds to
(half-up): 0.33 and 0.333 = 1/3, 0.67 = 2/3; 0.3, 0.334 and 0.66 do not. String answers compare as
normalised whole strings ("Dr. Smith" → "dr smith": abbreviations do not end the answer).
"""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from capgap.tasks.expressions import boxed, braced_end, clean_text, read_expression
from capgap.tasks.numbers import (
    FLEX_NUMBER,
    NUMBER_WORDS,
    Number,
    expression_tokens,
    format_number,
    latex_value,
    leading_value,
    to_fraction,
    word_value,
)

PIPELINES = ("strict", "flexible")
EXTRACTION_VERSION = 3  # bump when extraction changes: stored rows of older versions are re-scored

__all__ = ["EXTRACTION_VERSION", "PIPELINES", "READERS", "AnswerType", "Extracted", "extract", "final_statement",
           "format_number", "hedged", "normalize_string", "read_number"]


class AnswerType(str, enum.Enum):
    NUMBER = "number"
    CHOICE = "choice"
    YESNO = "yesno"
    STRING = "string"
    MATH = "math"  # a LaTeX expression (MATH), compared by math-verify (`tasks.expressions`)


@dataclass(frozen=True)
class Extracted:
    strict: str | None
    flexible: str | None


@dataclass(frozen=True)
class _Statement:
    start: int
    span: str  # the text after the statement's phrase, to the end of its line
    leading_only: bool  # "#### X", "\boxed{X}", corrections: X must be an answer from its first character


_APOSTROPHE = "['’]"
_ANSWER = re.compile(r"\b(?:final\s+)?(?:answer|ans\b\.?)[\s*_]*(?:is|was|would\s+be|:|=)[\s*_]*:?", re.IGNORECASE)
_NEGATED = re.compile(rf"\s*(?:n{_APOSTROPHE}t\b|not\b|never\b)", re.IGNORECASE)
_CORRECTION = re.compile(rf"\b(?:but|rather|instead)\s+(?:(?:rather|instead)\s+)?(?:it{_APOSTROPHE}s\s+|it\s+is\s+)?"
                         rf"|(?:^|[.;,!]\s*)it(?:{_APOSTROPHE}s|\s+is)\s+", re.IGNORECASE)
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_WRAPPER = re.compile(r"\\(?:boxed|fbox|text|textbf|mathrm|mathbf)\s*\{")
_DECORATION = re.compile(r"(?:\s|\*|_|:|=|\\?\$|\\[(\[]|≈|~|(?:approximately|about|around|roughly|exactly|"
                         r"equal\s+to|a\s+total\s+of)\b)+", re.IGNORECASE)
_MARKUP = re.compile(r"(?:\s|\*|_|:|=|\\?\$|\\[(\[])+")
_BOLD = re.compile(r"(?<![\d)\s])\*\*|\*\*(?![\d(\s])")  # markdown bold, not a power "2**3"
_HEADING = re.compile(r"(?:step|part|solution|explanation|reasoning|approach|problem|question)\b|.*:\s*$",
                      re.IGNORECASE)
_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "jr", "sr", "prof", "mt", "vs", "etc", "no", "inc", "ltd",
                  "co", "gen", "col", "lt", "sgt", "capt", "rev", "ft", "ave", "fig", "approx"}
_NEGATION = rf"(?:\bnot|n{_APOSTROPHE}t|\bnever)\s+(?:(?:equal\s+to|be|exactly|just|only|option|choice)\s+)?"
_NOT_THE_ANSWER = re.compile(rf"(?:{FLEX_NUMBER.pattern})(?=\s+is\s*(?:not|n{_APOSTROPHE}t)\s+(?:the\s+)?"
                             r"(?:(?:correct|right|final)\s+)?answer)", re.IGNORECASE)
# Unit words inside an expression: "2 apples + 3 apples = 5" reads as "2 + 3 = 5" (but "12 since 3" stays).
_UNITS = re.compile(r"(?<=[\d)])(?:\s+(?!(?:and|or|but|since|because|so|then|is|are|was|were)\b)[A-Za-z]{2,})"
                    r"{1,3}(?=\s*(?:[+*/×÷=]|-\s|x\s*\d))")
_LETTER = r"[A-H]"
_FLEX_LETTER = re.compile(rf"\(\s*([A-Ha-h])\s*\)|\b({_LETTER})\)|(?:option|choice)\s+([A-Ha-h])\b"
                          rf"|\b(?!A\s+(?!is\b|and\b|or\b|because\b|since\b|as\b|was\b)[a-z])({_LETTER})\b"
                          rf"(?!{_APOSTROPHE}\w|\.\w)")
_YESNO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_EITHER = re.compile(r"(?:either|one\s+of)\b", re.IGNORECASE)
_HEDGE_WORDS = r"(?:probably|likely|possibly|perhaps|maybe)\s+"
_MAYBE = re.compile(rf"^(?:\(?\s*)?{_HEDGE_WORDS}", re.IGNORECASE)
_OR = re.compile(r"\s*,?\s*\(?\b(?:or|and/or)\b\s*", re.IGNORECASE)
_OR_SLASH = re.compile(r"\s*,?\s*\b(?:or|and/or)\b\s*|\s*/\s*", re.IGNORECASE)
_REASON = re.compile(r"\b(?:because|since|as|so|which|that|given|when|if|but|none|all|both|neither|of)\b",
                     re.IGNORECASE)
_PLAIN = r"\$?-?\d[\d,]*(?:\.\d+)?"
_NUMBER_OR = re.compile(rf"({_PLAIN})\s*([A-Za-z]+)?\s*,?\s*or\s+(?:{_HEDGE_WORDS})?({_PLAIN})"
                        r"\s*(?:\2)?\s*[.!]?\s*$", re.IGNORECASE)


def _undecorate(span: str, hedges: bool = True) -> str:
    """The span without what surrounds an answer: "**", ":", "$", "\\(", "\\boxed{...}", and with `hedges`
    "approximately", "about" (not for string answers, where such a word may be the answer)."""
    span = _BOLD.sub("", span)
    decoration = _DECORATION if hedges else _MARKUP
    for _ in range(4):
        span = span[decoration.match(span).end() :] if decoration.match(span) else span
        wrapper = _WRAPPER.match(span)
        end = braced_end(span, wrapper.end() - 1) if wrapper else None
        if end is None:
            break
        span = span[wrapper.end() : end - 1] + " " + span[end:]
    return span


def _mask(text: str) -> str:
    """The text with negated values blanked out ("not 3 + 4 = 7", "not B", "50 is not the answer").

    Blanking keeps every other character at its position, so candidates keep their order.
    """
    chars = list(text)
    for m in re.finditer(_NEGATION, text, re.IGNORECASE):
        rest = text[m.end() :]
        tokens, after = expression_tokens(rest)
        width = len(rest) - len(after) if tokens else 0
        letter = re.match(r"\(?[A-Ha-h]\)?(?![A-Za-z])|(?:yes|no|true|false)\b", rest, re.IGNORECASE)
        width = max(width, letter.end() if letter else 0)
        chars[m.end() : m.end() + width] = " " * width
    for m in _NOT_THE_ANSWER.finditer(text):
        chars[m.start() : m.end()] = " " * (m.end() - m.start())
    return "".join(chars)


def _sentence(text: str) -> str:
    """The first sentence of `text`: cut at ". " / "! " / "? ", but not after "Dr." or an initial ("J.")."""
    for m in re.finditer(r"[.!?](?=\s|$)", text):
        before = text[max(text.rfind(c, 0, m.start()) for c in " \t\n") + 1 : m.start()]
        if m.group(0) == "." and (before.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]|\w(?:\.\w)+", before)):
            continue
        return text[: m.start()].strip()
    return text.strip()


def _number_candidates(text: str) -> list[tuple[int, Number]]:
    """Every value in prose with its position: LaTeX fractions and roots, numbers, else number words."""
    text = _mask(text)
    found: list[tuple[int, Number]] = []
    for m in re.finditer(r"\\(?:[dt]?frac|sqrt)\b", text):
        end = m.end()
        for _ in range(2 if "frac" in m.group(0) else 1):
            close = braced_end(text, end) if text.startswith("{", end) else None
            end = close if close is not None else end
        whole = re.search(r"(?<![\d.])\d+$", text[: m.start()])  # a mixed number: "2\frac{1}{2}"
        start = whole.start() if whole else m.start()
        value = latex_value(text[start:end]) if end > m.end() else None
        if value is not None:
            found.append((start, value))
            text = text[:start] + " " * (end - start) + text[end:]
    for m in FLEX_NUMBER.finditer(text):
        value = to_fraction(m.group(0))
        if value is not None:
            found.append((m.start(), value))
    if not found:
        found = [(m.start(), Fraction(word_value(m.group(0)))) for m in NUMBER_WORDS.finditer(text)]
    return sorted(found, key=lambda c: c[0])


def read_number(span: str, leading_only: bool) -> str | None:
    """The number a statement states: the value at its start ("2 apples + 3 apples = 5 apples" is 5),
    else (unless `leading_only`) the first number of its first sentence after its last "=" ("The answer
    is that he has 5 left", "that 3 + 4 = 7 remain")."""
    started, value = leading_value(_UNITS.sub("", _undecorate(span)))
    if not started and not leading_only:
        sentence = _mask(_sentence(span))
        candidates = _number_candidates(sentence.rsplit("=", 1)[-1]) or _number_candidates(sentence)
        value = candidates[0][1] if candidates else None
    return None if value is None else format_number(value)


def _letters(text: str) -> list[tuple[int, str]]:
    """Option letters in prose with their positions (not the article "A", not negated ones)."""
    return [(m.start(), next(g for g in m.groups() if g).upper()) for m in _FLEX_LETTER.finditer(_mask(text))]


def _read_choice(span: str, leading_only: bool) -> str | None:
    """An option letter: "B", "(B)", "B)", "B.", "B: text", "option B", "B because ..."."""
    text = _undecorate(span)
    named = re.match(r"(?:option|choice)\s+", text, re.IGNORECASE)
    text = text[named.end() :] if named else text
    m = re.match(r"[(\[]\s*([A-Ha-h])\s*[)\]]|([A-H])(?![A-Za-z'’])|([a-h])(?=\)|\s*\.?\s*$)", text)
    if m is None and named:
        m = re.match(r"([A-Ha-h])\b", text)
    if m:
        return next(g for g in m.groups() if g).upper()
    found = [] if leading_only else _letters(_sentence(span))
    return found[0][1] if found else None


def _yesno(word: str) -> str:
    return "yes" if word.lower() in ("yes", "true") else "no"


def _read_yesno(span: str, leading_only: bool) -> str | None:
    """yes / no (true / false) at the span's start, else (unless `leading_only`) the first of its sentence."""
    m = _YESNO.match(_undecorate(span))
    if m:
        return _yesno(m.group(1))
    found = [] if leading_only else _YESNO.findall(_mask(_sentence(span)))
    return _yesno(found[0]) if found else None


def _read_string(span: str, leading_only: bool) -> str | None:
    """The span's first sentence, normalised (abbreviations such as "Dr." do not end it)."""
    return normalize_string(_sentence(_undecorate(span, hedges=False)).rstrip(".")) or None


def _read_math(span: str, leading_only: bool) -> str | None:
    """A LaTeX expression at the span's start ("$\\frac{1}{2}$", "\\boxed{x^2+1}")."""
    return read_expression(_undecorate(span, hedges=False))


READERS: dict[AnswerType, Callable[[str, bool], str | None]] = {
    AnswerType.NUMBER: read_number, AnswerType.CHOICE: _read_choice,
    AnswerType.YESNO: _read_yesno, AnswerType.STRING: _read_string, AnswerType.MATH: _read_math}


def _statements(text: str, answer_type: AnswerType) -> list[_Statement]:
    """Every final-answer statement, in order of position; negated ones replaced by their correction."""
    found = []
    matches = list(_ANSWER.finditer(text))
    for i, m in enumerate(matches):
        line_end = text.find("\n", m.end())
        end = len(text) if line_end < 0 else line_end
        end = min(end, matches[i + 1].start()) if i + 1 < len(matches) else end
        negated = _NEGATED.match(text, m.end())
        if negated:
            window = text[negated.end() : negated.end() + 80].split("\n")[0]  # this or the next sentence
            fix = _CORRECTION.search(window)
            if fix:
                start = negated.end() + fix.end()
                found.append(_Statement(start, text[start:].split("\n")[0], True))
            continue
        span = text[m.end() : end]
        if not span.strip():  # "Final Answer:\n42": the answer is on the next line
            span = text[m.end() :].lstrip().split("\n")[0]
        found.append(_Statement(m.start(), span, False))
    for m in _HASHES.finditer(text):
        if answer_type is not AnswerType.STRING or not _HEADING.match(m.group(1)):
            found.append(_Statement(m.start(), m.group(1), True))
    found += [_Statement(start, inner, True) for start, inner in boxed(text)]
    return sorted(found, key=lambda s: s.start)


def _alternatives(span: str, answer_type: AnswerType) -> bool:
    """Whether a statement hedges: "either ...", or two different answers joined by "or" ("5 or 6", "(b)
    fairgrounds or (c) movie theatre", "probably B or C", "yes or no", "yes/no"). Restatements are not
    hedges: "12, since 3 or 4", "(D) both A and B", "(E) none of A, B or C", "15 minutes, or 0.25 hours"."""
    text = _sentence(_undecorate(span, hedges=answer_type is not AnswerType.STRING))
    text = _MAYBE.sub("", text)
    if _EITHER.match(text):
        return True
    if answer_type is AnswerType.NUMBER:
        m = _NUMBER_OR.match(text)
        return bool(m) and to_fraction(m.group(1).replace(",", "")) != to_fraction(m.group(3).replace(",", ""))
    if answer_type in (AnswerType.STRING, AnswerType.MATH):  # "or" and "," belong to such answers
        return False
    read = READERS[answer_type]
    joint = _OR_SLASH if answer_type is AnswerType.YESNO else _OR
    for m in joint.finditer(text):
        left = text[: m.start()]
        if _REASON.search(left) or len(left.split()) > 8:
            return False
        first, second = read(left, True), read(_MAYBE.sub("", text[m.end() :]), True)
        if first is not None and second is not None and first != second:
            return True
    return False


def _last_answer(text: str, answer_type: AnswerType) -> tuple[str | None, bool]:
    """The answer of the last statement that states a readable one ("the answer is unclear" states none),
    and whether that statement hedges (then it states no answer: a hedge is not a commitment)."""
    read = READERS[answer_type]
    for statement in reversed(_statements(text, answer_type)):
        answer = read(statement.span, statement.leading_only)
        if answer is not None:
            hedged = _alternatives(statement.span, answer_type)
            return (None, True) if hedged else (answer, False)
    return None, False


def _strict(text: str, answer_type: AnswerType) -> str | None:
    return _last_answer(text, answer_type)[0]


def hedged(text: str, answer_type: AnswerType) -> bool:
    """Whether the final answer statement of `text` hedges between answers (it is then scored wrong)."""
    return _last_answer(clean_text(text), answer_type)[1]


def _flexible(text: str, answer_type: AnswerType) -> str | None:
    """The last value of the type in the text, negated ones left out; for strings, the last line's answer."""
    if answer_type is AnswerType.NUMBER:
        candidates = _number_candidates(text)
        return format_number(candidates[-1][1]) if candidates else None
    if answer_type is AnswerType.CHOICE:
        stated = [(s.start, _read_choice(s.span, True)) for s in _statements(text, answer_type)]
        found = sorted(_letters(text) + [(p, a) for p, a in stated if a])
        return found[-1][1] if found else None
    if answer_type is AnswerType.YESNO:
        words = _YESNO.findall(_mask(text))
        return _yesno(words[-1]) if words else None
    if answer_type is AnswerType.MATH:  # the last box, else the last line's statement, else the last number
        boxes = boxed(text)
        candidates = _number_candidates(text)
        return ((read_expression(boxes[-1][1]) if boxes else None)
                or _strict(text.strip().splitlines()[-1] if text.strip() else "", answer_type)
                or (format_number(candidates[-1][1]) if candidates else None))
    lines = [line for line in text.splitlines() if line.strip()]
    return (_strict(lines[-1], answer_type) or normalize_string(lines[-1]) or None) if lines else None


def extract(text: str, answer_type: AnswerType) -> Extracted:
    """Both pipelines' canonical answers for one generation."""
    text = clean_text(text)
    return Extracted(strict=_strict(text, answer_type), flexible=_flexible(text, answer_type))


def final_statement(text: str, answer_type: AnswerType | None = None) -> tuple[int, str] | None:
    """Where the last "The answer is X" statement starts, and X as written (its first sentence).

    Negated statements ("the answer is not 50") are no statements. With `answer_type`, only statements
    whose X is a readable answer of that type count.
    """
    text = clean_text(text)
    for statement in reversed(_statements(text, answer_type or AnswerType.STRING)):
        if statement.leading_only or not _ANSWER.match(text, statement.start):
            continue
        if answer_type is None or READERS[answer_type](statement.span, False) is not None:
            stated = _sentence(_BOLD.sub("", statement.span).strip(" \t*_:")).rstrip(".")
            return statement.start, stated
    return None


def normalize_string(text: str) -> str:
    """Case, punctuation and spacing folded: "Dr. Smith" → "dr smith", "Paris, France" → "paris france"."""
    text = text.casefold().strip()
    text = text.translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())
