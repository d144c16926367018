"""Accuracy with a confidence interval."""

from __future__ import annotations

import math
import zlib


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion: well-behaved near 0 and 1, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


LOOP_TAIL = 400  # characters of a generation's end that are checked for a loop
LOOP_RATIO = 0.25  # a tail that zlib shrinks below this share of its size repeats itself


def looped(text: str) -> bool:
    """Whether a generation ends in a loop: its last LOOP_TAIL characters compress below LOOP_RATIO (prose and
    arithmetic compress to about half; a phrase repeated until the token limit, to a tenth). An answer cut at
    the token limit in a loop would not end at any limit, so it is the student as it was, not a cut budget."""
    tail = text[-LOOP_TAIL:].encode()
    return len(tail) >= LOOP_TAIL // 2 and len(zlib.compress(tail, 9)) < LOOP_RATIO * len(tail)
