"""Grading: an extracted answer against the gold one, in the canonical forms `extraction` reads them into.

Numbers compare by exact value (a decimal of two or more places also matches a value with no finite decimal
it rounds, e.g. 0.33 for 1/3), LaTeX expressions by math-verify, other types by their canonical text.
"""

from __future__ import annotations

import re
from fractions import Fraction

from capgap.tasks.expressions import clean_text, expression_gold, same_expression
from capgap.tasks.extraction import READERS, AnswerType, normalize_string, read_number
from capgap.tasks.notation import plain_numbers
from capgap.tasks.numbers import decimal_places, expression_tokens, rounds_to, to_fraction
from capgap.tasks.spans import undecorate, without_article


def parse_number(text: str | None) -> float | None:
    """The number a short answer states: "145.0", "1,000", "$5", "5 dollars", "25%", "(84 / 2)", "3/4"."""
    if text is None:
        return None
    canonical = read_number(clean_text(text), leading_only=False)
    value = to_fraction(canonical) if canonical else None
    return None if value is None else float(value)


def one_number(text: str) -> bool:
    """Whether `text` is one number as a gold answer states it: a value from its first character ("42",
    "-7", "$1,200", "3/4", "3 1/2", "\\frac{1}{2}", "25%", "12 apples", "12 cm^2"), with no operation and no
    second number after it ("3:45", "5 or 6", "1-2", "2024-01-01", "[1, 2]" and "Paris 2024" are not)."""
    text = undecorate(plain_numbers(clean_text(text)))
    if read_number(text, leading_only=True) is None:
        return False
    if re.match(r"\S*\\[a-zA-Z]", text):  # LaTeX: math-verify read one value
        return True
    tokens, rest = expression_tokens(text)
    shapes = [kind if kind != "op" else piece for kind, piece in tokens]
    plain = shapes in (["num"], ["-", "num"], ["num", "/", "num"], ["-", "num", "/", "num"])
    return plain and not re.search(r"(?<![A-Za-z^])\d", rest)  # "cm^2", "m2" are units


def canonical_gold(gold: str, answer_type: AnswerType) -> str:
    """A gold answer in the same canonical form as extracted answers (raises ValueError if unreadable).

    String golds are normalised whole: "Dr. Smith" stays "dr smith" (no cut at the abbreviation's period).
    """
    gold = clean_text(gold)
    if answer_type is AnswerType.STRING:
        value = normalize_string(gold) or None
    elif answer_type is AnswerType.MATH:  # a whole solution's last box, or the expression
        value = expression_gold(gold)
    else:
        value = READERS[answer_type](gold, False)
    if value is None:
        raise ValueError(f"gold answer {gold!r} is not a valid {answer_type.value}")
    return value


def _decimal_match(approx: Fraction, approx_text: str, exact: Fraction) -> bool:
    """Whether a decimal of >= 2 written places states `exact`, a value with no finite decimal, rounded."""
    places = len(approx_text.partition(".")[2]) if "/" not in approx_text else 0
    return decimal_places(exact) is None and places >= 2 and rounds_to(exact, places) == approx


def is_correct(extracted: str | None, gold: str, answer_type: AnswerType) -> bool:
    """Compare a canonical extracted answer with a canonical gold answer (numbers by exact value)."""
    if extracted is None:
        return False
    if answer_type is AnswerType.NUMBER:
        texts = [read_number(clean_text(t), leading_only=False) or "" for t in (extracted, gold)]
        a, b = (to_fraction(t) for t in texts)
        if a is None or b is None:
            return False
        return a == b or _decimal_match(a, texts[0], b) or _decimal_match(b, texts[1], a)
    if answer_type is AnswerType.MATH:
        return same_expression(gold, extracted)
    if answer_type is AnswerType.STRING:  # "the Pacific Ocean" states "Pacific Ocean", and the other way round
        return without_article(normalize_string(extracted)) == without_article(normalize_string(gold))
    return extracted == gold
