"""Items and tasks: what a test question is, and what a task knows about checking its answers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from capgap.tasks.choices import shown_options
from capgap.tasks.extraction import AnswerType, Extracted, extract
from capgap.tasks.grading import is_correct


@dataclass(frozen=True)
class Item:
    """One question with its gold answer. `id` is stable across runs and files of the same data."""

    id: str
    question: str
    answer: str
    rationale: str | None = None

    def content_hash(self) -> str:
        """Hash of what the model is asked and checked against: a stored row is reused only if it matches."""
        blob = json.dumps([self.question, self.answer], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Task:
    """A named list of items with one answer type, plus few-shot exemplars kept apart from the items.

    `definition` holds what identifies the data (source fingerprint, generator knobs): it goes into the
    evaluation key, so two different data sets under one task name never share stored results.
    """

    name: str
    items: list[Item]
    answer_type: AnswerType
    exemplars: list[Item] = field(default_factory=list)
    definition: dict = field(default_factory=dict)

    def options(self, item: Item | None) -> list[str]:
        """The option texts a choice item shows (so an answer may name one by its text); [] otherwise."""
        return shown_options(item.question) if item and self.answer_type is AnswerType.CHOICE else []

    def extract(self, text: str, item: Item | None = None) -> Extracted:
        return extract(text, self.answer_type, self.options(item))

    def check(self, extracted: str | None, gold: str) -> bool:
        return is_correct(extracted, gold, self.answer_type)

    def sources(self) -> list[dict]:
        """The source definitions behind the task: one, or a study's separate pool and test sources."""
        d = self.definition
        return [d["pool"], d["test"]] if "pool" in d and "test" in d else [d]

    def limited(self, limit: int | None) -> Task:
        """The first `limit` items (the file's order, so `--limit 50` is a prefix of `--limit 100`)."""
        if limit is None:
            return self
        return Task(self.name, self.items[:limit], self.answer_type, self.exemplars, self.definition)
