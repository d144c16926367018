"""A long-CoT teacher from gold rationales: every calculation restated and checked by its inverse, and one
wrong step caught and corrected, as long reasoners write (Li et al. 2025: long chains restate, verify and
backtrack). A reference teacher with `style: long` gives these, so a Mix-Long of long and short rationales of
the same questions runs offline (arith's gold, SVAMP's equations).

    lengthen("Ava starts with 33 pencils. After adding 12: 33 + 12 = 45. The answer is 45.", question, "id")

Only the steps written "a OP b = c" (integers; +, -, x, /) are lengthened; a rationale with none is kept as it
is. Which step is first written wrong is drawn from the item id, the same every time. The final statement
is the gold's, so the rationale states the same answer.
"""

from __future__ import annotations

import hashlib
import re

_STEP = re.compile(r"(?P<a>-?\d+) (?P<op>[-+x*/]) (?P<b>-?\d+) = (?P<c>-?\d+)")
_INVERSE = {"+": "-", "-": "+", "x": "/", "*": "/", "/": "x"}


def _check(a: int, op: str, b: int, c: int) -> str:
    """The inverse calculation that confirms a = (c INV b)."""
    return f"{c} {_INVERSE[op]} {b} = {a}"


def _inverse_value(op: str, b: int, c: int) -> float:
    return {"+": c - b, "-": c + b, "x": c / b, "*": c / b, "/": c * b}[op]


def lengthen(rationale: str, question: str, item_id: str) -> str:
    """The gold rationale restated step by step, each step checked, one wrong step caught and corrected."""
    steps = list(_STEP.finditer(rationale))
    if not steps:
        return rationale
    wrong = int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % len(steps)
    out, last = [f"Let me restate the problem: {question.strip()} I will work through it one step at a time "
                 "and check each calculation."], 0
    for i, m in enumerate(steps):
        a, op, b, c = int(m["a"]), m["op"], int(m["b"]), int(m["c"])
        out.append(rationale[last : m.start()].strip())
        if i == wrong and b != 0:
            slip = c + 1
            back = _inverse_value(op, b, slip)
            back_text = f"{back:g}" if isinstance(back, float) else str(back)
            out.append(f"{a} {op} {b} = {slip}. Wait, let me check: {slip} {_INVERSE[op]} {b} = {back_text}, not "
                       f"{a}, so that is wrong. Correcting it: {m.group(0)}.")
        else:
            out.append(f"{m.group(0)}. Check: {_check(a, op, b, c)}, which matches.")
        last = m.end()
        if rationale[last : last + 1] == ".":
            last += 1
    out.append(rationale[last:].strip())
    return " ".join(part for part in out if part)
