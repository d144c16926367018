"""The reference teacher: the dataset's own gold rationales (arith generator, GSM8K solutions, SVAMP equations)."""

from __future__ import annotations

from capgap.errors import CapgapError
from capgap.tasks.base import Item, Task
from capgap.teachers.base import TeacherRationales, hedge_note, normalize_rationale, scored
from capgap.teachers.longcot import lengthen


def reference_rationales(name: str, task: Task, pool: list[Item], style: str = "gold") -> TeacherRationales:
    """The task's own rationales of the pool questions; `style: long` lengthens each (`teachers.longcot`)."""
    rationales, lengthened = [], 0
    for item in pool:
        if not item.rationale:
            continue
        text = lengthen(item.rationale, item.question, item.id) if style == "long" else item.rationale
        lengthened += text != item.rationale
        rationales.append(scored(item, normalize_rationale(text, task, item=item), task))
    if not rationales:
        raise CapgapError(f"teacher '{name}' (kind reference): task '{task.name}' has no gold rationales in its "
                          "training pool; use a model or imported teacher")
    notes = [f"long style: {lengthened} of {len(rationales)} rationales lengthened (steps restated and checked, "
             "one wrong step corrected)"] if style == "long" else []
    return TeacherRationales(name, rationales, len(pool), notes=notes + hedge_note(rationales))
