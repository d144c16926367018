"""Reading inside an answer statement: its decoration, its first sentence, its values and option letters.

These are the pieces `extraction` (the pipelines) and `hedges` (is a statement a commitment?) both read
a statement with. Negated values ("not 3 + 4 = 7", "not B", "50 is not the answer") are blanked out
before values are looked for, keeping every other character at its position.
"""

from __future__ import annotations

import re
import string
from fractions import Fraction

from capgap.tasks.expressions import braced_end
from capgap.tasks.notation import plain_numbers
from capgap.tasks.numbers import (
    FLEX_NUMBER,
    NUMBER_WORDS,
    Number,
    expression_tokens,
    latex_value,
    to_fraction,
    word_value,
)

APOSTROPHE = "['’]"
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")  # ". " / "! " / "? " or the end: "12.5" has none
_WRAPPER = re.compile(r"\\(?:boxed|fbox|text|textbf|mathrm|mathbf)\s*\{")
_DECORATION = re.compile(r"(?:\s|\*|_|:|=|\\?\$|\\[(\[]|≈|~|(?:approximately|about|around|roughly|exactly|"
                         r"equal\s+to|a\s+total\s+of)\b)+", re.IGNORECASE)
_MARKUP = re.compile(r"(?:\s|\*|_|:|=|\\?\$|\\[(\[])+")
BOLD = re.compile(r"(?<![\d)\s])\*\*|\*\*(?![\d(\s])")  # markdown bold, not a power "2**3"
_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "jr", "sr", "prof", "mt", "vs", "etc", "no", "inc", "ltd",
                  "co", "gen", "col", "lt", "sgt", "capt", "rev", "ft", "ave", "fig", "approx", "rs"}
_NEGATION = rf"(?:\bnot|n{APOSTROPHE}t|\bnever)\s+(?:(?:equal\s+to|be|exactly|just|only|option|choice)\s+)?"
_NOT_THE_ANSWER = re.compile(rf"(?:{FLEX_NUMBER.pattern})(?=\s+is\s*(?:not|n{APOSTROPHE}t)\s+(?:the\s+)?"
                             r"(?:(?:correct|right|final)\s+)?answer)", re.IGNORECASE)
LETTER = r"[A-H]"
_FLEX_LETTER = re.compile(rf"\(\s*([A-Ha-h])\s*\)|\b({LETTER})\)|(?:option|choice)\s+([A-Ha-h])\b"
                          rf"|\b(?!A\s+(?!is\b|and\b|or\b|because\b|since\b|as\b|was\b)[a-z])({LETTER})\b"
                          rf"(?!{APOSTROPHE}\w|\.\w)")


def undecorate(span: str, hedges: bool = True) -> str:
    """The span without what surrounds an answer: "**", ":", "$", "\\(", "\\boxed{...}", "{...}", and with
    `hedges` "approximately", "about" (not for string answers, where such a word may be the answer)."""
    span = BOLD.sub("", span)
    decoration = _DECORATION if hedges else _MARKUP
    for _ in range(4):
        span = span[decoration.match(span).end() :] if decoration.match(span) else span
        wrapper = _WRAPPER.match(span) or (re.match(r"\{", span) if hedges else None)  # "\boxed{{12}}"
        end = braced_end(span, wrapper.end() - 1) if wrapper else None
        if end is None:
            break
        span = span[wrapper.end() : end - 1] + " " + span[end:]
    return span


def mask(text: str) -> str:
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


def sentence(text: str) -> str:
    """The first sentence of `text`: cut at ". " / "! " / "? ", but not after "Dr." or an initial ("J.")."""
    for m in SENTENCE_END.finditer(text):
        before = text[max(text.rfind(c, 0, m.start()) for c in " \t\n") + 1 : m.start()]
        if m.group(0) == "." and (before.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]|\w(?:\.\w)+", before)):
            continue
        return text[: m.start()].strip()
    return text.strip()


def number_candidates(text: str) -> list[tuple[int, Number]]:
    """Every value in prose with its position: LaTeX fractions and roots, numbers, else number words."""
    text = mask(plain_numbers(text))
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


def letters(text: str) -> list[tuple[int, str]]:
    """Option letters in prose with their positions (not the article "A", not negated ones)."""
    return [(m.start(), next(g for g in m.groups() if g).upper()) for m in _FLEX_LETTER.finditer(mask(text))]


_ARTICLE = re.compile(r"^(?:the|a|an) (?=\S)")


def normalize_string(text: str) -> str:
    """Case, punctuation and spacing folded: "Dr. Smith" → "dr smith", "Paris, France" → "paris france"."""
    text = text.casefold().strip()
    text = text.translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())


def without_article(folded: str) -> str:
    """A normalised string without its leading article: "the pacific ocean" → "pacific ocean" (how string
    answers and option texts compare, on both sides; stored golds keep theirs)."""
    return _ARTICLE.sub("", folded)
