"""One scorer for every stored answer: rows are (re-)scored by today's extraction from their stored generation.

A row records the extraction version that scored it. Whoever reads rows to compare them (an evaluation, the
analysis of a cell) goes through `current_rows`, so pre- and post-distillation answers are always scored by
the same extraction, however long ago they were generated. Re-scoring never regenerates anything.
"""

from __future__ import annotations

import contextlib
import sqlite3

from capgap.errors import CapgapError
from capgap.store import Store
from capgap.tasks.choices import shown_options
from capgap.tasks.extraction import EXTRACTION_VERSION, AnswerType, extract
from capgap.tasks.grading import is_correct


def scores(answer_type: AnswerType, generation: str, gold: str, shown: str = "") -> dict:
    """Both pipelines' answers and correctness for one generation, under the current extraction; `shown`:
    the question or prompt the model saw, whose options let a choice answer name an option by its text."""
    options = shown_options(shown) if answer_type is AnswerType.CHOICE else []
    extracted = extract(generation, answer_type, options)
    return {"answer_strict": extracted.strict, "answer_flexible": extracted.flexible,
            "correct_strict": int(is_correct(extracted.strict, gold, answer_type)),
            "correct_flexible": int(is_correct(extracted.flexible, gold, answer_type)),
            "extraction_version": EXTRACTION_VERSION}


def answer_type_of(spec: dict) -> AnswerType:
    """The answer type an evaluation was scored with (stores before it was keyed: from the task definition)."""
    value = spec.get("answer_type") or (spec.get("task_definition") or {}).get("answer_type") or "number"
    return AnswerType(value)


def rescore_stale(rows: dict[str, dict], answer_type: AnswerType, store: Store, eval_key: str) -> int:
    """Give rows scored by an older extraction today's answers; persist them when the store is writable."""
    stale = [r for r in rows.values() if r["extraction_version"] != EXTRACTION_VERSION]
    for row in stale:
        row.update(scores(answer_type, row["generation"], row["gold"], row["prompt"]))
    if stale and not store.readonly:  # a read-only store (`capgap report`) keeps its rows: right in memory
        with contextlib.suppress(CapgapError, sqlite3.OperationalError):  # the disk refused: still right in memory
            store.rescore_items(eval_key, stale)
    return len(stale)


def current_rows(store: Store, eval_key: str, item_ids: list[str] | None = None) -> dict[str, dict]:
    """Stored rows of an evaluation (all, or those among `item_ids`), scored by the current extraction."""
    record = store.evaluation(eval_key)
    rows = store.items(eval_key, item_ids)
    if record is not None:
        rescore_stale(rows, answer_type_of(record.spec), store, eval_key)
    return rows
