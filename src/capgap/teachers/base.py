"""What a teacher gives: rationales for training questions, each checked with the task's answer checker."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from capgap.tasks.base import Item, Task
from capgap.tasks.expressions import first_turn
from capgap.tasks.extraction import AnswerType, final_statement, hedged, reader
from capgap.tasks.grading import canonical_gold


@dataclass(frozen=True)
class Rationale:
    item_id: str
    text: str  # normalised: ends with "The answer is X." as the student's prompt asks
    answer: str | None  # canonical answer the rationale states (strict, else flexible)
    correct: bool
    sample: int = 0  # index among the k rationales of one question
    hedged: bool = False  # its final statement hedges between answers: scored wrong, kept out of training


@dataclass
class TeacherRationales:
    """A teacher's rationales on the training pool, with what the analysis needs to know about it."""

    teacher: str
    rationales: list[Rationale]
    pool_size: int  # questions in the pool (a teacher may cover fewer)
    params: int | None = None  # parameter count when known
    notes: list[str] = field(default_factory=list)
    drawn: dict[str, str] = field(default_factory=dict)  # a mixture's part of each question (`teachers.mixture`)

    @property
    def n_correct(self) -> int:
        """Pool questions whose first rationale is correct."""
        return sum({r.item_id: r.correct for r in self.rationales if r.sample == 0}.values())

    @property
    def accuracy(self) -> float:
        """Share of pool questions whose first rationale is correct (missing questions count as wrong)."""
        return self.n_correct / self.pool_size if self.pool_size else 0.0

    def correct_items(self) -> set[str]:
        return {r.item_id for r in self.rationales if r.correct}


def normalize_question(text: str) -> str:
    """Join key for questions across files: whitespace, case, punctuation and the Body/Question split vanish."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


class Normalized(NamedTuple):
    text: str  # the training target, ending "The answer is X." with X in the task's canonical form
    answer: str | None  # the answer that text states (None: it states none, or hedges)
    hedged: bool  # the final statement hedges between answers: scored wrong, never trained on


def _canonical(stated: str, task: Task, options: list[str]) -> str:
    """X of "The answer is X" as every teacher's targets state it: 42 (not "(84 / 2)" or "$42.00"), yes / no
    (not "True"), the option letter B (not "(b) fairgrounds"); string answers as written. An X that no
    reader takes as an answer ("((29/2) and (30/2))") stays as written, and states no answer."""
    if task.answer_type is AnswerType.STRING:
        return stated
    if options:  # a choice stated by its option's text: its letter
        return reader(task.answer_type, options)(stated, False) or stated
    try:
        return canonical_gold(stated, task.answer_type)
    except ValueError:
        return stated


def normalize_rationale(text: str, task: Task, strip_prefix: str | None = None, item: Item | None = None) -> Normalized:
    """A teacher's text as a training target ending "The answer is X.", and the answer it states.

    Teachers phrase the end differently ("The answer is 145", "Answer: 42", "so ans is True", "The answer
    is (84 / 2)."). The closing phrase becomes the one the evaluation prompt asks for and X the task's
    canonical form of the stated answer, the same for every teacher and answer type. The last number of a
    text is used only when it states no answer at all. A hedged final statement ("either (b) ... or (c)
    ...") is kept as written and flagged: it states no answer. The answer returned is the one the returned
    text states, so what is scored is what the student trains on.
    """
    text = first_turn(text).strip()  # a rationale that runs on into a next chat turn ends with its own
    if strip_prefix and text.startswith(strip_prefix):
        text = text[len(strip_prefix) :].strip()
    options = task.options(item)
    if hedged(text, task.answer_type, options):
        return Normalized(text, None, True)
    statement = final_statement(text, task.answer_type, options) or final_statement(text)
    if statement:
        start, stated = statement
        body = text[:start].rstrip()
        body = re.sub(r"(?i)\b(so|therefore|thus|hence)?,?\s*(the|final)?\s*$", "", body).rstrip(" \t\n,;:-")
        body += "." if body and body[-1] not in ".!?" else ""
        text = f"{body} The answer is {_canonical(stated, task, options)}.".strip()
    else:
        extracted = task.extract(text, item)
        if extracted.flexible is not None:
            text = f"{text.rstrip('.')}. The answer is {extracted.flexible}."
    return Normalized(text, task.extract(text, item).strict, False)


def scored(item: Item, normalized: Normalized, task: Task, sample: int = 0) -> Rationale:
    """A normalised rationale of `item`, checked against its gold answer with the task's checker."""
    correct = task.check(normalized.answer, item.answer)
    return Rationale(item.id, normalized.text, normalized.answer, correct, sample, normalized.hedged)


def hedge_note(rationales: list[Rationale]) -> list[str]:
    """The teacher note on hedged rationales, when there are any."""
    n = sum(r.hedged for r in rationales)
    return [f"{n} rationale(s) hedge between answers (scored wrong, never trained on)"] if n else []
