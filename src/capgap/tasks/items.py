"""Items from records, whatever the dataset: a field read with an error that names the record, a gold answer in
canonical form, stable ids, the duplicate policy, and the task built from the items (its definition, its
worked examples).
"""

from __future__ import annotations

import hashlib
import json

from capgap.errors import CapgapError
from capgap.tasks.arith import number_exemplars
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import AnswerType
from capgap.tasks.grading import canonical_gold, one_number


def field_value(where: str, record: dict, name: str, hint: str) -> object:
    if not isinstance(record, dict):
        raise CapgapError(f"{where}: expected a JSON object, got {type(record).__name__}; {hint}")
    if name not in record or record[name] is None:
        present = ", ".join(sorted(record)) or "none"
        raise CapgapError(f"{where}: missing field '{name}' (fields present: {present}); {hint}")
    return record[name]


def gold_value(where: str, raw: object, answer_type: AnswerType, field: str) -> str:
    if answer_type is AnswerType.NUMBER and not one_number(str(raw)):
        raise CapgapError(f"{where}: field '{field}' = {str(raw)[:60]!r} is not one number (a number task's gold is "
                          "a value such as 42, 3.5, 1/2 or $1,200); fix the value or choose another --answer-type")
    try:
        return canonical_gold(str(raw), answer_type)
    except ValueError:
        raise CapgapError(f"{where}: field '{field}' = {raw!r} is not a valid {answer_type.value} answer; "
                          "fix the value or choose another --answer-type") from None


def stable_id(prefix: str, question: str) -> str:
    """An id from the question text, for data without ids: stable across files and row order."""
    return f"{prefix}-{hashlib.sha1(question.encode()).hexdigest()[:10]}"


def items_fingerprint(items: list[Item]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(json.dumps([it.id, it.question, it.answer], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


DUPLICATE_POLICIES = ("error", "keep-first")


def unique_items(items: list[Item], wheres: list[str], duplicates: str) -> list[Item]:
    """Items with unique ids. A repeated id is an error naming both records (`duplicates: error`), or the
    later records are dropped and counted (`keep-first`; the count is in the task's definition)."""
    first: dict[str, str] = {}
    kept = []
    for item, where in zip(items, wheres, strict=True):
        if item.id in first:
            if duplicates == "error":
                raise CapgapError(f"{where}: item id '{item.id}' repeats {first[item.id]} (the same id, or the "
                                  "same question when there is no id field); remove it, or set the task option "
                                  "duplicates: keep-first to keep the first of each and count the rest")
            continue
        first[item.id] = where
        kept.append(item)
    return kept


def deduplicated(records: list, items: list[Item], duplicates: str, source: dict) -> tuple[list[Item], dict]:
    """The items with unique ids under the duplicate policy, and the source noting how many were dropped."""
    kept = unique_items(items, [where for where, _ in records], duplicates)
    return kept, {**source, "duplicates_dropped": len(items) - len(kept)} if len(kept) < len(items) else source


def check_file_options(options: dict) -> list[tuple[str, str]]:
    """Problems of the options every file task takes: the duplicate policy and the record filter."""
    problems = []
    value = options.get("duplicates", "error")
    if value not in DUPLICATE_POLICIES:
        problems.append(("duplicates", f"'{value}' is not one of: {', '.join(DUPLICATE_POLICIES)}"))
    where = options.get("where")
    if where is not None and (not where or not all(isinstance(k, str) for k in where)):
        problems.append(("where", "write it as {field: value} or {field: [values]}, e.g. {split: test}"))
    return problems


def build_task(name: str, items: list[Item], answer_type: AnswerType, source: dict, shots: int = 8) -> Task:
    """A file-backed task; numeric tasks take few-shot exemplars from the fixed arith stream, other tasks
    keep their first `shots` items with a rationale apart as worked examples (never test items)."""
    if not items:
        raise CapgapError(f"task '{name}': the data holds no items; check the file or split")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise CapgapError(f"task '{name}': item id '{dup}' appears twice; ids must be unique (fix the id field)")
    if answer_type is AnswerType.NUMBER:
        exemplars = number_exemplars(8, exclude={it.question for it in items})
    else:
        # Non-numeric data gives its own worked examples: items with a rationale, kept out of the test set.
        exemplars = [it for it in items if it.rationale][:shots]
        items = [it for it in items if it not in exemplars] if exemplars else items
    definition = {**source, "answer_type": answer_type.value, "items": items_fingerprint(items)}
    return Task(name, items, answer_type, exemplars, definition)
