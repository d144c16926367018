"""Numbers in model answers: exact values, iterative arithmetic, number words, LaTeX through math-verify.

Values are exact `Fraction`s wherever the text is exact ("0.5", "3/4", "3.2e5", "(84 / 2)"), so that two
different integers can never compare equal by a float tolerance. Only irrational LaTeX values (\\sqrt{2})
become floats, rounded to 6 decimals when written out.

Cost: the cheap regex paths read plain numbers, fractions, expressions and number words; math-verify (sympy)
is only called on LaTeX math (\\frac, \\sqrt, ...), on at most a few hundred characters, without its
signal-based timeout (so it also works outside the main thread), and cached.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

Number = Fraction | float

# "1,234.50", "12", ".5", "3.2e5": thousands groups only of exactly three digits ("12, since" is 12).
# Exponents have at most 3 digits: "1e5000" is no number anyone states as an answer, and its exact value
# would cost unbounded time and memory.
NUM = r"(?:\d{1,3}(?:,\d{3})+(?![\d])|\d+)(?:\.\d+)?(?:[eE][+-]?\d{1,3}(?!\d))?|\.\d+(?:[eE][+-]?\d{1,3}(?!\d))?"
# A number anywhere in prose: a minus sign only when it is no binary minus ("10 - 4", "10-4");
# "3/4" (no spaces) is one number, a fraction; "3/4/2020" is no fraction.
FLEX_NUMBER = re.compile(rf"(?<![\d)])-?(?:(?<![\d/])\d+/\d+(?![\d/])|{NUM})")
_TOKEN = re.compile(rf"\s*(?:(?P<num>{NUM})|(?P<op>\*\*|[-+*/×÷^·⋅])|(?P<x>x(?=\s*[\d(.]))"
                    r"|(?P<open>\()|(?P<close>\))|(?P<eq>=)|(?P<skip>[$€£%]))")
MAX_TOKENS = 400  # longer "expressions" are degenerate loops, not stated answers: no value, no raising
MAX_EXPONENT = 64
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}
_RIGHT_ASSOCIATIVE = {"^", "neg"}

_UNITS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                       "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                       "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {w: 10 * i for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                          "ninety"], 2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_WORD = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
NUMBER_WORDS = re.compile(rf"\b(?:{_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_WORD}))*\b", re.IGNORECASE)


def format_number(value: Number | int) -> str:
    """Canonical text of a number: "42", "0.5", "-3.25"; "1/3" for a fraction with no finite decimal.

    Floats (irrational values) are written with at most 6 decimals, as extraction version 1 did.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value - round(value)) < 1e-9:
            return str(round(value))
        return f"{value:.6f}".rstrip("0").rstrip(".")
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    places = decimal_places(value)
    if places is None:
        return f"{value.numerator}/{value.denominator}"
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.{places}f}"


def decimal_places(value: Fraction) -> int | None:
    """Decimals needed to write `value` exactly (0.25 → 2), or None when it has no finite decimal (1/3)."""
    d, twos, fives = value.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    return max(twos, fives) if d == 1 else None


def rounds_to(exact: Fraction, places: int) -> Fraction:
    """`exact` rounded half-up to `places` decimals."""
    q = Decimal(exact.numerator) / Decimal(exact.denominator)
    return Fraction(q.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


MAX_DIGITS = 400  # a number token longer than this is a degenerate generation, not an answer


def to_fraction(text: str) -> Fraction | None:
    """A number token ("1,234.50", "3/4", "-2", "3.2e5") as an exact value; None for anything unreadable or
    absurdly long (a model looping on digits)."""
    if len(text) > MAX_DIGITS:
        return None
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def word_value(phrase: str) -> int:
    """Value of a number-word phrase: "forty-two" → 42, "one hundred and five" → 105, "two thousand" → 2000."""
    total = current = 0
    for word in re.split(r"[\s-]+", phrase.lower()):
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, _TENS.get(word, 0))
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total, current = total + max(current, 1) * _SCALES[word], 0
    return total + current


def expression_tokens(text: str) -> tuple[list[tuple[str, str]], str]:
    """The arithmetic tokens at the start of `text`, and what follows them.

    Stops where the expression ends: at a word, a sentence end, a comma, or where a value follows a
    complete value ("12 (since 3 × 4)" is 12: the parenthesis is a remark, not a product).
    """
    tokens: list[tuple[str, str]] = []
    pos, expect_value = 0, True
    while len(tokens) <= MAX_TOKENS:
        m = _TOKEN.match(text, pos)
        if m is None:
            break
        kind = m.lastgroup or ""
        piece = m.group(kind).strip()
        if kind in ("num", "open") and not expect_value:
            break
        if kind == "x":
            if expect_value:
                break
            kind, piece = "op", "*"
        pos = m.end()
        if kind == "skip":
            continue
        tokens.append((kind, piece))
        expect_value = kind in ("op", "open", "eq")
    return tokens, text[pos:]


MAX_BITS = 2000  # ~600 digits: larger values are no answers, and cannot be written out (int → str limit)


def bounded(value: Fraction) -> Fraction:
    """`value`, or ValueError when its numerator or denominator is too large to be an answer."""
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise ValueError("value too large")
    return value


def _apply(op: str, stack: list[Fraction]) -> None:
    """Apply one operator to the value stack (ValueError / IndexError / ZeroDivisionError if it cannot)."""
    if op == "neg":
        stack.append(-stack.pop())
        return
    b, a = stack.pop(), stack.pop()
    if op == "+":
        stack.append(a + b)
    elif op == "-":
        stack.append(a - b)
    elif op == "*":
        stack.append(a * b)
    elif op == "/":
        stack.append(a / b)
    else:  # "^": small integer exponents only, so that "10^10^10" cannot exhaust memory
        if b.denominator != 1 or abs(b) > MAX_EXPONENT:
            raise ValueError("exponent too large")
        stack.append(a ** int(b))
    stack.append(bounded(stack.pop()))


def evaluate(tokens: list[tuple[str, str]]) -> Fraction | None:
    """Exact value of an arithmetic token list (shunting-yard: iterative, no recursion), or None."""
    values: list[Fraction] = []
    ops: list[str] = []
    expect_value = True
    try:
        for kind, piece in tokens:
            if kind == "num":
                values.append(Fraction(piece.replace(",", "")))
                expect_value = False
            elif kind == "open":
                ops.append("(")
            elif kind == "close":
                while ops and ops[-1] != "(":
                    _apply(ops.pop(), values)
                ops.pop()  # IndexError when unbalanced
                expect_value = False
            else:
                op = {"**": "^", "×": "*", "·": "*", "⋅": "*", "÷": "/"}.get(piece, piece)
                if expect_value:
                    if op != "-":
                        return None
                    op = "neg"
                while (ops and ops[-1] != "(" and op not in _RIGHT_ASSOCIATIVE
                       and _PRECEDENCE[ops[-1]] >= _PRECEDENCE[op]):
                    _apply(ops.pop(), values)
                ops.append(op)
                expect_value = True
        while ops:
            op = ops.pop()
            if op == "(":
                return None  # unbalanced: "((29/2) and (30/2))" is cut at "and"
            _apply(op, values)
    except (IndexError, KeyError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return values[0] if len(values) == 1 and not expect_value else None


def leading_value(text: str) -> tuple[bool, Number | None]:
    """The value written at the start of `text`: (whether it starts with a number, that value or None).

    "5120 / 25 = 20. So..." → 20 (the value after the last "="); "(84 / 2)." → 42; "12, since 3 × 4 = 12"
    → 12; "forty-two apples" → 42; "\\frac{1}{2}" → 1/2. A malformed expression ("5 + 5 + …") starts with
    a number but has no value.
    """
    tokens, rest = expression_tokens(text)
    # LaTeX in the first word or right after the plain part: "\frac{1}{2}", "2\tfrac{1}{2}", "3 \times 10^{5}"
    if re.match(r"\S*\\[a-zA-Z]", text) or re.match(r"\s*\\[a-zA-Z]", rest):
        region = _LATEX_REGION.match(text)
        value = latex_value(region.group(0)) if region else None
        if value is not None:
            return True, value
    if tokens and tokens[0][0] in ("eq", "close"):
        tokens = []
    if tokens:
        if len(tokens) > MAX_TOKENS:
            return True, None
        if tokens[-1] in (("op", "*"), ("op", "-")) and not re.match(r"\s*[\d(…]", rest):
            tokens = tokens[:-1]  # markdown "*42*" or a dash used as punctuation ("7 - that is")
        last = [t for t in _split_at_equals(tokens) if t][-1:] or [[]]
        return True, evaluate(last[0])
    words = NUMBER_WORDS.match(text)
    if words:
        return True, Fraction(word_value(words.group(0)))
    return False, None


def _split_at_equals(tokens: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
    part: list[tuple[str, str]] = []
    for token in tokens:
        if token[0] == "eq":
            yield part
            part = []
        else:
            part.append(token)
    yield part


class _QuietTimeoutWarning(logging.Filter):
    """math-verify warns once that its timeout is off: we bound the input instead, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop only math-verify's "Timeout is disabled" warning."""
        return "Timeout is disabled" not in record.getMessage()


QUIET_TIMEOUT = _QuietTimeoutWarning()
# LaTeX math up to the closing "$", a sentence end before a word, or the end of the line.
_LATEX_REGION = re.compile(r"[^\n;$]*?(?=[.,;]?\s+[A-Za-z]|[.,;]?\s*(?:\n|$)|\$)")
UNSAFE_LATEX = re.compile(r"\^\s*\{?\s*[-\d.]{4,}|\^\s*\{[^}]*\^|!")  # huge powers, towers, factorials


@functools.lru_cache(maxsize=4096)
def latex_value(tex: str) -> Number | None:
    """Numeric value of LaTeX math ("\\frac{1}{2}", "\\boxed{\\dfrac{10}{4}}", "\\sqrt{16}") via math-verify.

    Bounded instead of timed out: at most 300 characters, no huge powers or factorials, so parsing takes
    milliseconds and needs no signal handler (math-verify's timeout only works in the main thread).
    """
    tex = re.sub(r"\\[()\[\]]", "", tex).strip().strip("$").strip()
    if not tex or len(tex) > 300 or UNSAFE_LATEX.search(tex):
        return None
    import sympy
    from math_verify import LatexExtractionConfig, parse

    logging.getLogger("math_verify.parser").addFilter(QUIET_TIMEOUT)
    try:
        parsed = parse(f"${tex}$", [LatexExtractionConfig()], parsing_timeout=None)
    except Exception:  # math-verify and sympy raise many kinds of errors: unreadable means no value
        return None
    expr = next((p for p in parsed if isinstance(p, sympy.Basic)), None)
    if expr is None or not expr.is_number:
        return None
    if isinstance(expr, sympy.Rational):
        try:
            return bounded(Fraction(int(expr.p), int(expr.q)))
        except ValueError:
            return None
    try:
        approx = complex(expr.evalf(30))
    except (TypeError, ValueError, OverflowError):
        return None
    if approx.imag or not math.isfinite(approx.real):
        return None
    exact = Fraction(approx.real).limit_denominator(10**6)
    exact_enough = abs(float(exact) - approx.real) <= 4e-16 * max(1.0, abs(approx.real))
    return exact if exact_enough else approx.real

