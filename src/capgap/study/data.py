"""A study's data: each task's training pool and test split, and the training set of every protocol.

No test item may reach a teacher's training data: the pool and the test split are checked to share no
item id and no question text (SVAMP, for one, repeats some questions under different ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from capgap.config import SplitConfig, TaskConfig
from capgap.errors import CapgapError
from capgap.tasks import Item, Task, load_task
from capgap.tasks.files import read_records
from capgap.teachers import TeacherRationales, normalize_question


@dataclass
class StudyTask:
    name: str
    task: Task  # the whole task (its definition keys every evaluation)
    pool: list[Item]  # training questions
    test: Task  # test items only


def data_path(path: str, data_dir: str | None) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or not data_dir else Path(data_dir) / p)


def _select(items: list[Item], split: SplitConfig, where: str, data_dir: str | None,
            exclude: list[Item] | None = None) -> list[Item]:
    if split.first is not None:
        chosen = items[: split.first]
    elif split.match_file:
        records = read_records(Path(data_path(split.match_file, data_dir)))
        wanted = set()
        for at, record in records:
            if not isinstance(record, dict) or split.match_field not in record:
                raise CapgapError(f"{at}: missing field '{split.match_field}'; set {where}.match_field")
            wanted.add(normalize_question(str(record[split.match_field])))
        chosen = [it for it in items if normalize_question(it.question) in wanted]
    else:
        taken_ids = {it.id for it in exclude or []}
        taken_text = {normalize_question(it.question) for it in exclude or []}
        chosen = [it for it in items if it.id not in taken_ids and normalize_question(it.question) not in taken_text]
    chosen = chosen[: split.limit] if split.limit is not None else chosen
    if not chosen:
        raise CapgapError(f"{where}: selects no items; check the split and the task's data")
    return chosen


def check_no_leak(pool: list[Item], test: list[Item], where: str) -> None:
    ids = {it.id for it in pool} & {it.id for it in test}
    texts = {normalize_question(it.question) for it in pool} & {normalize_question(it.question) for it in test}
    if ids or texts:
        example = next(iter(ids or texts))
        raise CapgapError(f"{where}: {max(len(ids), len(texts))} test items also appear in the training pool "
                          f"(e.g. {example!r}); make the test split disjoint, e.g. test: {{rest: true}}")


def prepare_task(config: TaskConfig, index: int, data_dir: str | None) -> StudyTask:
    options = dict(config.options)
    if "data" in options:
        options["data"] = data_path(options["data"], data_dir)
    task = load_task(config.name, **options)
    where = f"tasks[{index}]"
    pool = _select(task.items, config.pool, f"{where}.pool", data_dir)
    test_items = _select(task.items, config.test, f"{where}.test", data_dir, exclude=pool)
    check_no_leak(pool, test_items, where)
    test = Task(task.name, test_items, task.answer_type, task.exemplars, task.definition)
    return StudyTask(config.name, task, pool, test)


@dataclass(frozen=True)
class Example:
    item_id: str
    rationale: str


def training_examples(protocol: str, teacher: TeacherRationales,
                      everyone: list[TeacherRationales]) -> list[Example]:
    """The (question, rationale) pairs a student is trained on for one teacher under one protocol.

    own-correct: the teacher's first correct rationale of every question it got right.
    intersection: the same, restricted to questions that every teacher of the study got right, so
      teachers differ only in how they reason, not in which or how many questions they cover.
    unfiltered: the teacher's first rationale of every question, right or wrong.
    """
    first, first_correct = {}, {}
    for r in teacher.rationales:
        first.setdefault(r.item_id, r)
        if r.correct:
            first_correct.setdefault(r.item_id, r)
    if protocol == "unfiltered":
        chosen = first
    elif protocol == "own-correct":
        chosen = first_correct
    elif protocol == "intersection":
        shared = set.intersection(*(t.correct_items() for t in everyone))
        chosen = {k: v for k, v in first_correct.items() if k in shared}
    else:
        raise CapgapError(f"unknown protocol '{protocol}'; valid: intersection, own-correct, unfiltered")
    return [Example(r.item_id, r.text) for r in chosen.values()]
