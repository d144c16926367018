"""Statements that are no commitment: hedges between answers, hypotheses, and checks after the answer.

- A hedge ("either ...", "5 or 6", "(b) fairgrounds or (c) movie theatre", "probably B or C", "yes/no")
  states no answer under `strict`. Restatements are no hedges: "12, since 3 or 4", "(D) both A and B",
  "(E) none of A, B or C", "15 minutes, or 0.25 hours".
- A hypothetical statement ("Someone might think the answer is 15, but ...", "It is tempting to say the
  answer is 15", "the answer is 15, but that is wrong") is not the model's answer: both pipelines skip it.
- A check or a hypothesis after the answer ("Double-check: 9 - 4 = 5", "Someone might think 15") restates or
  doubts the work; the
  flexible pipeline reads the text before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from capgap.tasks.numbers import to_fraction
from capgap.tasks.spans import sentence, undecorate

Reader = Callable[[str, bool], "str | None"]

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
_SUPPOSED = re.compile(r"\b(?:(?:might|may|could|would)\s+(?:think|say|guess|assume|believe|conclude|expect)|"
                       r"tempting|mistakenly|wrongly|incorrectly|common\s+(?:mistake|error)|naive(?:ly)?)\b",
                       re.IGNORECASE)
_DISOWNING = re.compile(r",?\s*but\s+(?:that|this|it)(?:'s|\s+is|\s+would\s+be)\s+(?:wrong|incorrect|"
                        r"a\s+mistake|not\s+(?:right|correct))", re.IGNORECASE)
_DISOWNED = re.compile(rf"[^.\n]*?{_DISOWNING.pattern}", re.IGNORECASE)
_CHECK = re.compile(r"(?:^|(?<=[.!?\n]))\s*(?:\*\*)?(?:let(?:'|’)?s\s+)?(?:double[- ]?check|check(?:ing)?|"
                    r"verif(?:y|ication)|sanity\s+check)\b[^\n]*?(?:[:,]|\bthat\b)", re.IGNORECASE)


def alternatives(span: str, numeric: bool, open_ended: bool, read: Reader, joint_slash: bool) -> bool:
    """Whether a statement hedges between two different answers; `read` reads one side (leading only).

    `numeric`: numbers ("5 or 6"); `open_ended`: strings and expressions, where "or" belongs to the answer;
    `joint_slash`: "/" joins alternatives too (yes/no)."""
    text = _MAYBE.sub("", sentence(undecorate(span, hedges=not open_ended)))
    if _EITHER.match(text):
        return True
    if numeric:
        m = _NUMBER_OR.match(text)
        return bool(m) and to_fraction(m.group(1).replace(",", "")) != to_fraction(m.group(3).replace(",", ""))
    if open_ended:
        return False
    for m in (_OR_SLASH if joint_slash else _OR).finditer(text):
        left = text[: m.start()]
        if _REASON.search(left) or len(left.split()) > 8:
            return False
        first, second = read(left, True), read(_MAYBE.sub("", text[m.end() :]), True)
        if first is not None and second is not None and first != second:
            return True
    return False


def supposed(text: str, start: int, span: str) -> bool:
    """Whether the statement at `start` (its answer `span`) is a hypothesis, not the model's answer: its
    sentence so far supposes ("someone might think", "it is tempting to say"), or it is disowned right
    after ("..., but that is wrong")."""
    sentence_start = max(text.rfind(c, 0, start) for c in ".!?\n") + 1
    return bool(_SUPPOSED.search(text, sentence_start, start) or _DISOWNED.match(span))


def before_aside(text: str, after: int) -> str:
    """`text` up to a check, a hypothesis or a disowned statement that follows position `after` (the final
    statement), else all of it."""
    ends = [m.start() for m in [_CHECK.search(text, after)] if m]
    for pattern in (_SUPPOSED, _DISOWNING):
        m = pattern.search(text, after)
        if m:
            ends.append(max(text.rfind(c, after, m.start()) for c in ".!?\n") + 1 or m.start())
    return text[: min(ends)] if ends else text
