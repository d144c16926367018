"""Statements that are no commitment: hedges between answers, hypotheses, and checks after the answer.

- A hedge ("either ...", "5 or 6", "(b) fairgrounds or (c) movie theatre", "probably B or C", "yes/no")
  states no answer under `strict`. Restatements are no hedges: "12, since 3 or 4", "(D) both A and B",
  "(E) none of A, B or C", "15 minutes, or 0.25 hours".
- A hypothetical statement ("Someone might think the answer is 15, but ...", "It is tempting to say the
  answer is 15", "the answer is 15, but that is wrong") is not the model's answer: both pipelines skip it.
- A check or a hypothesis after the answer ("Double-check: 9 - 4 = 5", "Someone might think 15") restates or
  doubts the work; the flexible pipeline reads the text before it.
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
# Someone else's (or a mistaken) answer: "someone might think", "it is tempting to say", "a common mistake
# is to say", "students wrongly conclude"; never the model's own "I would say" / "we could conclude", nor an
# impersonal "one would conclude" / "you could say".
_SAYING = r"(?:say|said|says|think|thinks|thought|guess|assume|assumed|believe|conclude|concluded|answer|claim)"
_SUPPOSED = re.compile(rf"(?<!\bi )(?<!\bwe )\b(?:might|may)\s+{_SAYING}\b"
                       rf"|(?<!\bi )(?<!\bwe )(?<!\bone )(?<!\byou )\b(?:could|would)\s+{_SAYING}\b"
                       rf"|\btempting\s+to\s+{_SAYING}\b"
                       rf"|\bcommon\s+(?:mistake|error)\b|\b(?:mistakenly|wrongly|incorrectly)\s+{_SAYING}\b",
                       re.IGNORECASE)
# where the clause of a statement starts: a sentence end ("12.5" is none), a line, ";", or a turn ("but")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
_CLAUSE = re.compile(r"[.!?](?=\s)|[\n;]|,?\s*\b(?:but|however|yet|actually|instead)\b", re.IGNORECASE)
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


def _clause_start(text: str, start: int, lookback: int = 300) -> int:
    """Where the clause holding position `start` begins (after a sentence end, ";", a line or a "but")."""
    ends = [m.end() for m in _CLAUSE.finditer(text, max(0, start - lookback), start)]
    return ends[-1] if ends else max(0, start - lookback)


def supposed(text: str, start: int, span: str) -> bool:
    """Whether the statement at `start` (its answer `span`) is a hypothesis, not the model's answer: its
    clause so far supposes ("someone might think", "it is tempting to say"), or it is disowned right after
    ("..., but that is wrong"). "I would say the answer is 12" is the model's own answer."""
    return bool(_SUPPOSED.search(text, _clause_start(text, start), start) or _DISOWNED.match(span))


def before_aside(text: str, after: int, checks_after: int) -> str:
    """`text` up to a hypothesis or a disowned statement that follows position `after` (the end of the final
    statement's value: "The answer is 12, but someone might say 15"), or a check that follows `checks_after`
    (the end of its sentence); else all of it."""
    ends = [m.start() for m in [_CHECK.search(text, checks_after)] if m]
    hypothesis, disowning = _SUPPOSED.search(text, after), _DISOWNING.search(text, after)
    if hypothesis:
        ends.append(max(_clause_start(text, hypothesis.start()), after))
    if disowning:  # "The answer is 15, but that is wrong.": the whole sentence goes
        starts = [m.end() for m in _SENTENCE_END.finditer(text, after, disowning.start())]
        ends.append(starts[-1] if starts else after)
    return text[: min(ends)] if ends else text
