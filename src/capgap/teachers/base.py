"""What a teacher gives: rationales for training questions, each checked with the task's answer checker."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from capgap.tasks.base import Task
from capgap.tasks.extraction import final_statement


@dataclass(frozen=True)
class Rationale:
    item_id: str
    text: str  # normalised: ends with "The answer is X." as the student's prompt asks
    answer: str | None  # canonical answer the rationale states (strict, else flexible)
    correct: bool
    sample: int = 0  # index among the k rationales of one question


@dataclass
class TeacherRationales:
    """A teacher's rationales on the training pool, with what the analysis needs to know about it."""

    teacher: str
    rationales: list[Rationale]
    pool_size: int  # questions in the pool (a teacher may cover fewer)
    params: int | None = None  # parameter count when known
    notes: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Share of pool questions whose first rationale is correct (missing questions count as wrong)."""
        first = {r.item_id: r.correct for r in self.rationales if r.sample == 0}
        return sum(first.values()) / self.pool_size if self.pool_size else 0.0

    def correct_items(self) -> set[str]:
        return {r.item_id for r in self.rationales if r.correct}


def normalize_question(text: str) -> str:
    """Join key for questions across files: whitespace, case, punctuation and the Body/Question split vanish."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def normalize_rationale(text: str, task: Task, strip_prefix: str | None = None) -> tuple[str, str | None]:
    """A teacher's text as a training target ending "The answer is X.", and the answer it states.

    Teachers phrase the end differently ("The answer is 145", "Answer: 42", "The answer is (84 / 2)."). The
    stated answer is kept as written; only the closing phrase is made the one the evaluation prompt asks for.
    A rationale that states an answer no reader can take as one ("The answer is ((29/2) and (30/2))") has no
    answer (it is scored wrong): the last number of its text is used only when it states none at all. The
    answer returned is the one the returned text states, so what is scored is what the student trains on.
    """
    text = text.strip()
    if strip_prefix and text.startswith(strip_prefix):
        text = text[len(strip_prefix) :].strip()
    extracted = task.extract(text)
    statement = final_statement(text, task.answer_type) or final_statement(text)
    if statement:
        start, stated = statement
        body = text[:start].rstrip()
        body = re.sub(r"(?i)\b(so|therefore|thus|hence)?,?\s*(the|final)?\s*$", "", body).rstrip()
        text = f"{body} The answer is {stated}.".strip()
    elif extracted.flexible is not None:
        text = f"{text.rstrip('.')}. The answer is {extracted.flexible}."
    return text, task.extract(text).strict
