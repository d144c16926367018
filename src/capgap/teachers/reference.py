"""The reference teacher: the dataset's own gold rationales (arith generator, GSM8K solutions, SVAMP equations)."""

from __future__ import annotations

from capgap.errors import CapgapError
from capgap.tasks.base import Item, Task
from capgap.teachers.base import TeacherRationales, hedge_note, normalize_rationale, scored


def reference_rationales(name: str, task: Task, pool: list[Item]) -> TeacherRationales:
    rationales = []
    for item in pool:
        if not item.rationale:
            continue
        rationales.append(scored(item, normalize_rationale(item.rationale, task), task))
    if not rationales:
        raise CapgapError(f"teacher '{name}' (kind reference): task '{task.name}' has no gold rationales in its "
                          "training pool; use a model or imported teacher")
    return TeacherRationales(name, rationales, len(pool), notes=hedge_note(rationales))
