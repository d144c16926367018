"""Answer extraction as named pipelines, in the manner of lm-eval's strict / flexible filters.

- `strict`: only an explicit final-answer statement counts ("The answer is X", "Final answer: X",
  "#### X", "\\boxed{X}"); the last one in the text wins. This is what the prompt asks the model to write.
- `flexible`: the last value of the right kind anywhere in the text (last number, last option letter...).

Both are computed and stored for every generation. Extracted answers are returned in canonical form
("145.0", "$145" and "145 dollars" all become "145") so that stored answers compare by string.
"""

from __future__ import annotations

import ast
import enum
import math
import operator
import re
import string
from dataclasses import dataclass

PIPELINES = ("strict", "flexible")
EXTRACTION_VERSION = 1  # bump when extraction changes: it is part of every evaluation key


class AnswerType(str, enum.Enum):
    NUMBER = "number"
    CHOICE = "choice"
    YESNO = "yesno"
    STRING = "string"


@dataclass(frozen=True)
class Extracted:
    strict: str | None
    flexible: str | None


# "The answer is X", "the final answer is: X", "Answer: X", "answer = X"; X runs to the end of the line.
_ANSWER_IS = r"(?:final\s+)?answer\s*(?:is|:|=)"
_STRICT = re.compile(rf"{_ANSWER_IS}\s*:?\s*([^\n]+?)(?={_ANSWER_IS}|\n|$)", re.IGNORECASE)
_HASHES = re.compile(r"####\s*([^\n]+)")
_BOXED = re.compile(r"\\boxed\{([^{}]+)\}")
# A number: "1,000", "-3.5", ".5"; a minus sign only when it is not a binary minus after a digit.
_NUMBER = re.compile(r"(?<![\d)])-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?![\d])")
_EXPRESSION = re.compile(r"[\d\s.,+\-*/()×÷x]+")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def format_number(value: float) -> str:
    """Canonical text of a number: integers without a decimal point, others with at most 6 decimals."""
    if math.isfinite(value) and abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _eval_arithmetic(text: str) -> float | None:
    """Value of a plain arithmetic expression such as "(84 / 2)", or None if it is anything else."""
    text = text.replace("×", "*").replace("÷", "/").replace(",", "")
    text = re.sub(r"(?<=\d)\s*x\s*(?=\d)", "*", text)
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("not arithmetic")

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _numbers(text: str) -> list[str]:
    return [m.group(0) for m in _NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]


def parse_number(text: str | None) -> float | None:
    """The number a short answer states: "145.0", "1,000", "$5", "5 dollars", "25%", "(84 / 2)"."""
    if text is None:
        return None
    cleaned = text.strip().rstrip(".!;:").replace("$", "").replace("%", "").strip()
    if _EXPRESSION.fullmatch(cleaned) and re.search(r"\d\s*[-+*/×÷x]\s*[\d(]", cleaned):
        value = _eval_arithmetic(cleaned)
        if value is not None:
            return value
    found = _numbers(cleaned)
    if not found:
        return None
    try:
        return float(found[0].replace(",", ""))
    except ValueError:
        return None


def _first_sentence(text: str) -> str:
    # Cut at a sentence end (a period followed by space or end), keeping decimals like "5.5" intact.
    return re.split(r"\.(?:\s|$)", text.strip(), maxsplit=1)[0].strip()


def _strict_span(text: str) -> str | None:
    spans = []
    for pattern in (_STRICT, _HASHES, _BOXED):
        spans += [(m.start(), m.group(1)) for m in pattern.finditer(text)]
    if not spans:
        return None
    return max(spans)[1]


def final_statement(text: str) -> tuple[int, str] | None:
    """Where the last "The answer is X" statement starts, and X as written (its first sentence)."""
    matches = list(_STRICT.finditer(text))
    if not matches:
        return None
    return matches[-1].start(), _first_sentence(matches[-1].group(1)).rstrip(".")


def _canonical(span: str | None, answer_type: AnswerType, *, last: bool) -> str | None:
    """Canonical answer from a text span; `last` takes the last candidate (flexible), else the first."""
    if span is None:
        return None
    if answer_type is AnswerType.NUMBER:
        if not last:
            # "The answer is 5120 / 25 = 20." states 20: the value after the last "=".
            value = parse_number(_first_sentence(span).rsplit("=", 1)[-1])
        else:
            found = _numbers(span)
            value = float(found[-1].replace(",", "")) if found else None
        return None if value is None else format_number(value)
    if answer_type is AnswerType.CHOICE:
        found = re.findall(r"\(([A-Ea-e])\)|\b([A-E])\)|\b([A-E])\b(?!\s+[a-z])", span)
        letters = [next(g for g in groups if g).upper() for groups in found]
        return (letters[-1] if last else letters[0]) if letters else None
    if answer_type is AnswerType.YESNO:
        found = re.findall(r"\b(yes|no|true|false)\b", span, re.IGNORECASE)
        words = ["yes" if w.lower() in ("yes", "true") else "no" for w in found]
        return (words[-1] if last else words[0]) if words else None
    text = _first_sentence(span) if not last else span.strip()
    return normalize_string(text) or None


def normalize_string(text: str) -> str:
    text = text.casefold().strip()
    text = text.translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())


def extract(text: str, answer_type: AnswerType) -> Extracted:
    """Both pipelines' canonical answers for one generation."""
    strict = _canonical(_strict_span(text), answer_type, last=False)
    if answer_type is AnswerType.STRING:
        lines = [line for line in text.splitlines() if line.strip()]
        flexible_span = _strict_span(lines[-1]) or lines[-1] if lines else None
        flexible = _canonical(flexible_span, answer_type, last=True)
    else:
        flexible = _canonical(text, answer_type, last=True)
    return Extracted(strict=strict, flexible=flexible)


def canonical_gold(gold: str, answer_type: AnswerType) -> str:
    """A gold answer in the same canonical form as extracted answers (raises ValueError if unreadable)."""
    value = _canonical(gold, answer_type, last=False)
    if value is None:
        raise ValueError(f"gold answer {gold!r} is not a valid {answer_type.value}")
    return value


def is_correct(extracted: str | None, gold: str, answer_type: AnswerType) -> bool:
    """Compare a canonical extracted answer with a canonical gold answer (numbers with a tolerance)."""
    if extracted is None:
        return False
    if answer_type is AnswerType.NUMBER:
        a, b = parse_number(extracted), parse_number(gold)
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return extracted == gold
