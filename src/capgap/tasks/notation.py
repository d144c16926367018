"""Numbers as people write them, rewritten into the plain tokens the number reader takes.

    plain_numbers("The answer is 1.5 million dollars.")   # 'The answer is 1.5e6       dollars.'

Every rewrite keeps the text's length (the new token, then spaces), so positions found in the rewritten
text are positions in the original one. What is rewritten, and the decisions behind it:
- digit groups: Indian ("1,00,000", "12,34,567") and spaced ones ("1 234 567"). A single space between
  two groups ("3 250") is a group only at the end of a sentence ("The answer is 12 345."), since "3 250 ml
  bottles" is three bottles of 250 ml; thin and narrow no-break spaces always group.
- scale words after a number: "2 million", "1.5 billion", "3 thousand", "4 hundred" are the full value
  (2,000,000 ...), but not as part of a compound ("2 hundred-dollar bills" are 2 bills). Letter
  suffixes ("1.5M", "3k") are not read: "M" means a thousand in some trades.
- scientific notation with a times sign: "1.5 × 10^6", "3.84 x 10^5", "6.02 \\times 10^{23}",
  "2 \\cdot 10^{-3}" (exponents of at most 3 digits, as `numbers.NUM`).
- signs: "negative 7", an en or em dash right before a number ("–7", in a sign position only: "5–7" is a
  range), "minus 7" where no value precedes it ("10 minus 3" stays a subtraction), "-$20".
- currency: "Rs. 450", "₹450", "INR 450", "USD 5", "€5", "£5", "¥5" are the number; "5 dollars and 50
  cents" and "$5 and 50 cents" are 5.50.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PLAIN = r"\d+(?:\.\d+)?"
_THIN = "\u2009\u202f"
_SCALES = {"hundred": 2, "thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_SCALE = "|".join(_SCALES)
_CURRENCY = r"(?:\bRs\.?|\bINR\b|\bUSD\b|US\$|[₹€£¥])"
# (pattern, rewrite, whether the new token ends where the old text did: signs must touch their number)
_RULES: list[tuple[re.Pattern, Callable[[re.Match], str], bool]] = [
    # "5 dollars and 50 cents", "$5 and 50 cents": one amount
    (re.compile(r"(?:\$\s?(\d+)|\b(\d+)\s*dollars?)\s*(?:and\s+)?(\d{1,2})\s*cents?\b", re.IGNORECASE),
     lambda m: f"{m.group(1) or m.group(2)}.{int(m.group(3)):02d}", False),
    # a minus before a currency sign: "-$20" is -20
    (re.compile(rf"-\s?(?:\$|{_CURRENCY})\s?(?=\d)"), lambda m: "-", True),
    (re.compile(rf"{_CURRENCY}\s?(?=-?\d)"), lambda m: "", True),
    # Indian digit groups: "1,00,000", "12,34,567"
    (re.compile(r"(?<![\d,.])\d{1,2}(?:,\d{2})+,\d{3}(?![\d,]|\.\d)"), lambda m: m.group(0).replace(",", ""), False),
    # spaced digit groups: thin spaces always, a plain space at a sentence end or in two groups and more
    (re.compile(rf"(?<![\d.,])\d{{1,3}}(?:(?:[{_THIN}]\d{{3}})+|(?: \d{{3}}){{2,}}|(?: \d{{3}})(?=[.!?]?\s*$|"
                r"[.!?]\s|\s*\n))(?![\d]|[.,]\d)"), lambda m: re.sub(rf"[ {_THIN}]", "", m.group(0)), False),
    # a mixed number: "3 1/2" is 7/2 (kept as written when the fraction would be longer)
    (re.compile(r"(?<![\d/.,])(\d+) (\d+)/(\d+)(?![\d/-])"),
     lambda m: f"{int(m.group(1)) * int(m.group(3)) + int(m.group(2))}/{m.group(3)}"
     if int(m.group(2)) < int(m.group(3)) else m.group(0), False),
    # scientific notation: "1.5 × 10^6", "6.02 \times 10^{23}" (not a factor of a product or quotient:
    # "6 / 3 × 10^2" is 200, and stays as written)
    (re.compile(rf"(?<![\d.])(?<![/^*÷]\s)(?<![/^*÷])(?<!\\div\s)(?<!\\div)({_PLAIN})"
                r"\s*(?:×|[xX*·⋅]|\\times|\\cdot)\s*10\s*(?:\^|\*\*)\s*"
                r"(?:\{\s*([+-]?\d{1,3})\s*\}|([+-]?\d{1,3})(?!\d))"),
     lambda m: f"{m.group(1)}e{m.group(2) or m.group(3)}", False),
    # scale words: "2 million", "1.5 billion", "2 hundred thousand"
    (re.compile(rf"(?<![\d.,])({_PLAIN}|\d{{1,3}}(?:,\d{{3}})+)\s+((?:(?:{_SCALE})\s+){{0,2}}(?:{_SCALE}))\b(?![-‐])",
                re.IGNORECASE),
     lambda m: f"{m.group(1).replace(',', '')}e{sum(_SCALES[w.lower()] for w in m.group(2).split())}", False),
    # signs in words and dashes
    (re.compile(r"\bnegative\s+(?=\$?\d)", re.IGNORECASE), lambda m: "-", True),
    (re.compile(r"(?:(?<=^)|(?<=[\s(=:]))[–—](?=\$?\d)"), lambda m: "-", True),
]
_MINUS_WORD = re.compile(r"\bminus\s+(?=\$?\d)", re.IGNORECASE)


def _pad(replacement: str, width: int, right: bool = False) -> str:
    """`replacement` in `width` characters, spaces after it (before it when `right`); "" when it is longer."""
    if len(replacement) > width:
        return ""
    fill = " " * (width - len(replacement))
    return fill + replacement if right else replacement + fill


def _minus(text: str) -> str:
    """ "minus 7" as -7 where it is a sign: no value before it ("10 minus 3" stays a subtraction)."""
    def sign(m: re.Match) -> str:
        before = text[: m.start()].rstrip()
        operand = before and (before[-1].isdigit() or before[-1] == ")")
        return m.group(0) if operand else _pad("-", len(m.group(0)), right=True)
    return _MINUS_WORD.sub(sign, text)


def plain_numbers(text: str) -> str:
    """`text` with the number notations above rewritten as plain tokens, every position kept.

    A replacement that would be longer than what it replaces leaves that notation as written.
    """
    if not any(c.isdigit() for c in text):
        return text
    for pattern, rewrite, right in _RULES:
        text = pattern.sub(lambda m, f=rewrite, r=right: _pad(f(m), len(m.group(0)), r) or m.group(0), text)
    return _minus(text)
