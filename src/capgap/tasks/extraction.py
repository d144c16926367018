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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from capgap.tasks.choices import LETTERS
from capgap.tasks.expressions import boxed, clean_text, read_expression
from capgap.tasks.hedges import alternatives, before_aside, supposed
from capgap.tasks.notation import plain_numbers
from capgap.tasks.numbers import NUM, expression_tokens, format_number, leading_value
from capgap.tasks.spans import (
    APOSTROPHE,
    BOLD,
    SENTENCE_END,
    letters,
    mask,
    normalize_string,
    number_candidates,
    sentence,
    undecorate,
    without_article,
)

PIPELINES = ("strict", "flexible")
EXTRACTION_VERSION = 4  # bump when extraction changes: stored rows of older versions are re-scored

__all__ = ["EXTRACTION_VERSION", "PIPELINES", "READERS", "AnswerType", "Extracted", "extract", "final_statement",
           "format_number", "hedged", "normalize_string", "read_number", "reader"]


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
    span_at: int = -1  # where the span starts in the text

    def sentence_end(self) -> int:
        """Where the statement's first sentence ends ("12.5" is no end)."""
        m = SENTENCE_END.search(self.span)
        return self.span_at + (m.end() if m else len(self.span))

    def value_end(self) -> int:
        """Where the value the statement starts with ends (its first word: "12.5,", "$1,234.50.")."""
        m = re.match(r"\s*\S+", self.span)
        return self.span_at + (m.end() if m else 0)


Read = Callable[[str, bool], "str | None"]
_ANSWER = re.compile(r"\b(?:final\s+)?(?:answer|ans\b\.?)[\s*_]*(?:is|was|would\s+be|:|=)[\s*_]*:?", re.IGNORECASE)
# "### Final Answer" / "**Answer**" alone on its line: the answer is on the next line
_ANSWER_HEADING = re.compile(r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*(?:final[ \t]+)?answer[ \t]*(?:\*\*|__)?"
                             r"[ \t]*$", re.IGNORECASE | re.MULTILINE)
_MATH_FENCE = re.compile(r"\s*(?:\$\$|\$|\\\[|\\\]|\\\(|\\\))?\s*")  # a line that only opens display math
_NEGATED = re.compile(rf"\s*(?:n{APOSTROPHE}t\b|not\b|never\b)", re.IGNORECASE)
_CORRECTION = re.compile(rf"\b(?:but|rather|instead)\s+(?:(?:rather|instead)\s+)?(?:it{APOSTROPHE}s\s+|it\s+is\s+)?"
                         rf"|(?:^|[.;,!]\s*)it(?:{APOSTROPHE}s|\s+is)\s+", re.IGNORECASE)
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_NUMBERED = re.compile(r"\d+[.):]\s+[A-Za-z*]")  # "#### 1. Compute the total" is a numbered heading
_HEADING = re.compile(r"(?:step|part|solution|explanation|reasoning|approach|problem|question)\b|.*:\s*$",
                      re.IGNORECASE)
# Unit words inside an expression: "2 apples + 3 apples = 5" reads as "2 + 3 = 5" (but "12 since 3" stays).
_UNITS = re.compile(r"(?<=[\d)])(?:\s+(?!(?:and|or|but|since|because|so|then|is|are|was|were)\b)[A-Za-z]{2,})"
                    r"{1,3}(?=\s*(?:[+*×÷=]|/\s*[\d(]|-\s|x\s*\d))")
_PERCENT_OF = re.compile(rf"\s*({NUM})\s*%\s*of\s+\$?({NUM})")
_FRACTION_OF = re.compile(rf"\s*({NUM})\s*/\s*({NUM})\s+of\s+\$?({NUM})")
# what a computation is said to give: ", which is 40", "= 40" ("1/3 of 90 = 30")
_WHICH_IS = re.compile(r"\s*,?\s*(?:which|that|this)\s+(?:is|equals|gives|makes|comes\s+to)\s+(?:equal\s+to\s+)?"
                       r"|\s*,\s*i\.?e\.?,?\s+", re.IGNORECASE)
# what may follow the value a "which is" clause states: a unit word, then the clause's end ("which is 40
# apples."), not a comparison or another quantity ("which is 2 more than 10", "which is 1 dozen")
_CLAUSE_END = re.compile(r"\s*(?!(?:dozen|times|more|less|fewer|percent|of|out|per|than|half|twice)\b)"
                         r"(?:[A-Za-z$€£]+)?\s*(?:[.,;!?]|$)", re.IGNORECASE)
_YESNO = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)
_APPOSITIVE = re.compile(r",\s+(?:the|a|an|which|who|whose|where|known\s+as|also\s+called|i\.e\.)\s", re.IGNORECASE)


def _computed(text: str) -> tuple[Fraction | None, str] | None:
    """A statement that starts with a computation: its value and the text after it ("50% of 80, which is
    40" → 40 and ", which is 40"), or None when it starts with a plain value."""
    percent, part = _PERCENT_OF.match(text), _FRACTION_OF.match(text)
    if percent:
        a, b = (Fraction(g.replace(",", "")) for g in percent.groups())
        return a * b / 100, text[percent.end() :]
    if part:  # "1/3 of 90"
        a, b, c = (Fraction(g.replace(",", "")) for g in part.groups())
        return (a / b * c if b else None), text[part.end() :]
    tokens, rest = expression_tokens(text)
    kinds = {kind for kind, _ in tokens}
    return (leading_value(text)[1], rest) if "op" in kinds and "eq" not in kinds else None


def read_number(span: str, leading_only: bool) -> str | None:
    """The number a statement states: the value at its start ("2 apples + 3 apples = 5 apples" is 5; "50%
    of 80, which is 40" is the value the computation is said to give), else (unless `leading_only`) the
    first number of its first sentence after its last "=" ("The answer is that he has 5 left")."""
    span = plain_numbers(span)
    text = _UNITS.sub("", undecorate(span))
    started, value = leading_value(text)
    computed = _computed(text) if started else None
    if computed is not None:
        value, rest = computed
        said = _WHICH_IS.match(rest) or re.match(r"\s*=\s*", rest)
        clause = rest[said.end() :] if said else ""
        stated = leading_value(clause) if said else (False, None)
        ends = _CLAUSE_END.match(expression_tokens(clause)[1]) if said else None
        value = stated[1] if stated[0] and stated[1] is not None and ends else value
    if not started and not leading_only:
        first = mask(sentence(span))
        candidates = number_candidates(first.rsplit("=", 1)[-1]) or number_candidates(first)
        value = candidates[0][1] if candidates else None
    return None if value is None else format_number(value)


def _option_named(text: str, options: Sequence[str]) -> str | None:
    """The letter of the option whose text (or value) the statement starts with: "blue whale, because"
    names the option "Blue whale"; the longest such option wins ("10" is no prefix of "100")."""
    folded = without_article(normalize_string(sentence(text)))
    named = [(len(o), LETTERS[i]) for i, option in enumerate(options[: len(LETTERS)])
             if (o := without_article(normalize_string(option))) and (folded == o or folded.startswith(o + " "))]
    return max(named)[1] if named else None


def _read_choice(span: str, leading_only: bool, options: Sequence[str] = ()) -> str | None:
    """An option letter: "B", "(B)", "B)", "B.", "B: text", "option B", "B because ...", or with the
    question's `options` the option's text ("blue whale")."""
    text = undecorate(span)
    named = re.match(r"(?:option|choice)\s+", text, re.IGNORECASE)
    text = text[named.end() :] if named else text
    m = re.match(r"[(\[]\s*([A-Ha-h])\s*[)\]]|([A-H])(?![A-Za-z'’])|([a-h])(?=\)|\s*\.?\s*$)", text)
    if m is None and named:
        m = re.match(r"([A-Ha-h])\b", text)
    if m:
        return next(g for g in m.groups() if g).upper()
    by_text = _option_named(text, options) if options else None
    if by_text:
        return by_text
    found = [] if leading_only else letters(sentence(span))
    return found[0][1] if found else None


def _yesno(word: str) -> str:
    return "yes" if word.lower() in ("yes", "true") else "no"


def _read_yesno(span: str, leading_only: bool) -> str | None:
    """yes / no (true / false) at the span's start, else (unless `leading_only`) the first of its sentence."""
    m = _YESNO.match(undecorate(span))
    if m:
        return _yesno(m.group(1))
    found = [] if leading_only else _YESNO.findall(mask(sentence(span)))
    return _yesno(found[0]) if found else None


def _read_string(span: str, leading_only: bool) -> str | None:
    """The span's first sentence, normalised, up to an appositive ("photosynthesis, the process by which
    ..." is "photosynthesis"); abbreviations such as "Dr." do not end it."""
    first = sentence(undecorate(span, hedges=False))
    return normalize_string(_APPOSITIVE.split(first, maxsplit=1)[0].rstrip(".")) or None


def _read_math(span: str, leading_only: bool) -> str | None:
    """A LaTeX expression at the span's start ("$\\frac{1}{2}$", "\\boxed{x^2+1}")."""
    return read_expression(undecorate(span, hedges=False))


READERS: dict[AnswerType, Read] = {
    AnswerType.NUMBER: read_number, AnswerType.CHOICE: _read_choice,
    AnswerType.YESNO: _read_yesno, AnswerType.STRING: _read_string, AnswerType.MATH: _read_math}


def reader(answer_type: AnswerType, options: Sequence[str] = ()) -> Read:
    """The reader of one answer type; a choice reader also knows the question's option texts."""
    if answer_type is AnswerType.CHOICE and options:
        return lambda span, leading_only: _read_choice(span, leading_only, options)
    return READERS[answer_type]


def _next_content(text: str, pos: int) -> str:
    """The first line after `pos` that holds more than a display-math fence ("$$", "\\[")."""
    for line in text[pos:].split("\n")[1:]:
        if not _MATH_FENCE.fullmatch(line):
            return line
    return ""


def _statements(text: str, answer_type: AnswerType) -> list[_Statement]:
    """Every final-answer statement, in order of position; negated ones replaced by their correction,
    hypothetical ones ("someone might think the answer is 15") left out."""
    found = []
    matches = sorted([*_ANSWER.finditer(text), *_ANSWER_HEADING.finditer(text)], key=lambda m: m.start())
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
                found.append(_Statement(start, text[start:].split("\n")[0], True, start))
            continue
        span, span_at = text[m.end() : end], m.end()
        if _MATH_FENCE.fullmatch(span):  # "Final Answer:\n42", "The answer is\n$$\n12\n$$"
            span = _next_content(text, m.end())
            span_at = text.find(span, m.end()) if span else m.end()
        if not supposed(text, m.start(), span):
            found.append(_Statement(m.start(), span, False, span_at))
    for m in _HASHES.finditer(text):
        if _NUMBERED.match(m.group(1)) or (answer_type is AnswerType.STRING and _HEADING.match(m.group(1))):
            continue
        found.append(_Statement(m.start(), m.group(1), True, m.start(1)))
    found += [_Statement(start, inner, True, text.find(inner, start)) for start, inner in boxed(text)]
    return sorted(found, key=lambda s: s.start)


def _alternatives(span: str, answer_type: AnswerType, read: Read) -> bool:
    return alternatives(span, answer_type is AnswerType.NUMBER, answer_type in (AnswerType.STRING, AnswerType.MATH),
                        read, joint_slash=answer_type is AnswerType.YESNO)


def _last_answer(text: str, answer_type: AnswerType, options: Sequence[str] = ()) -> tuple[str | None, bool]:
    """The answer of the last statement that states a readable one ("the answer is unclear" states none),
    and whether that statement hedges (then it states no answer: a hedge is not a commitment)."""
    read = reader(answer_type, options)
    for statement in reversed(_statements(text, answer_type)):
        answer = read(statement.span, statement.leading_only)
        if answer is not None:
            hedged = _alternatives(statement.span, answer_type, read)
            return (None, True) if hedged else (answer, False)
    return None, False


def _strict(text: str, answer_type: AnswerType, options: Sequence[str] = ()) -> str | None:
    return _last_answer(text, answer_type, options)[0]


def hedged(text: str, answer_type: AnswerType, options: Sequence[str] = ()) -> bool:
    """Whether the final answer statement of `text` hedges between answers (it is then scored wrong)."""
    return _last_answer(clean_text(text), answer_type, options)[1]


def _flexible(text: str, answer_type: AnswerType, options: Sequence[str] = ()) -> str | None:
    """The last value of the type in the text, negated ones left out, and a check or hypothesis after the
    final statement's sentence too when something readable comes before it; for strings, the last line's."""
    statements = _statements(text, answer_type)
    final = statements[-1] if statements else None
    cut = before_aside(text, final.value_end(), final.sentence_end()) if final else text
    found = _flexible_of(cut, answer_type, options, statements) if cut != text else None
    return found or _flexible_of(text, answer_type, options, statements)


def _flexible_of(text: str, answer_type: AnswerType, options: Sequence[str],
                 statements: list[_Statement]) -> str | None:
    if answer_type is AnswerType.NUMBER:
        candidates = number_candidates(text)
        return format_number(candidates[-1][1]) if candidates else None
    if answer_type is AnswerType.CHOICE:
        read = reader(answer_type, options)
        stated = [(s.start, read(s.span, True)) for s in statements if s.start < len(text)]
        found = sorted(letters(text) + [(p, a) for p, a in stated if a])
        return found[-1][1] if found else None
    if answer_type is AnswerType.YESNO:
        words = _YESNO.findall(mask(text))
        return _yesno(words[-1]) if words else None
    if answer_type is AnswerType.MATH:  # the last box, else the last line's statement, else the last number
        boxes = boxed(text)
        candidates = number_candidates(text)
        return ((read_expression(boxes[-1][1]) if boxes else None)
                or _strict(text.strip().splitlines()[-1] if text.strip() else "", answer_type)
                or (format_number(candidates[-1][1]) if candidates else None))
    lines = [line for line in text.splitlines() if line.strip()]
    return (_strict(lines[-1], answer_type) or normalize_string(lines[-1]) or None) if lines else None


def extract(text: str, answer_type: AnswerType, options: Sequence[str] = ()) -> Extracted:
    """Both pipelines' canonical answers for one generation; `options`: a choice question's option texts,
    so that an answer naming an option by its text reads as its letter."""
    text = clean_text(text)
    return Extracted(strict=_strict(text, answer_type, options), flexible=_flexible(text, answer_type, options))


def final_statement(text: str, answer_type: AnswerType | None = None,
                    options: Sequence[str] = ()) -> tuple[int, str] | None:
    """Where the last "The answer is X" statement starts, and X as written (its first sentence).

    Negated statements ("the answer is not 50") are no statements. With `answer_type`, only statements
    whose X is a readable answer of that type count.
    """
    text = clean_text(text)
    read = reader(answer_type, options) if answer_type else None
    for statement in reversed(_statements(text, answer_type or AnswerType.STRING)):
        if statement.leading_only or not (_ANSWER.match(text, statement.start)
                                          or _ANSWER_HEADING.match(text, statement.start)):
            continue
        if read is None or read(statement.span, False) is not None:
            stated = sentence(BOLD.sub("", statement.span).strip(" \t*_:")).rstrip(".")
            return statement.start, stated
    return None
