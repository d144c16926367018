"""A study's data: each task's training pool and test split, and the training set of every protocol.

No test item may reach a teacher's training data: the pool and the test split are checked to share no
item id and no question text (SVAMP, for one, repeats some questions under different ids).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

from capgap.config import SplitConfig, TaskConfig
from capgap.config.schema import ShareSplit, split_source
from capgap.errors import CapgapError
from capgap.tasks import AnswerType, Item, Task, hub_source, load_task, task_options
from capgap.tasks.files import read_records
from capgap.teachers import TeacherRationales, normalize_question


@dataclass
class StudyTask:
    name: str
    task: Task  # the task as teachers see it: the pool's source (its definition keys every evaluation)
    pool: list[Item]  # training questions
    test: Task  # test items only

    @property
    def pool_task(self) -> Task:
        """The training pool as a task: what model teachers answer."""
        return Task(self.task.name, self.pool, self.task.answer_type, self.task.exemplars, self.task.definition)

    @property
    def duplicates_dropped(self) -> int:
        """Records the duplicate policy dropped, over the task's sources."""
        return sum(part.get("duplicates_dropped", 0) for part in self.task.sources())


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
    elif not split.rest:
        chosen = items  # a split with its own source and no selector: all of its items
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


def _source_options(config: TaskConfig, split: SplitConfig, data_dir: str | None) -> dict:
    """The loader options of one split: the task's, with the split's own source (data, split, where)."""
    options = {**config.options, **split_source(split)}
    if "data" in options:
        options["data"] = data_path(options["data"], data_dir)
    return options


def hub_datasets(config: TaskConfig, data_dir: str | None) -> list[str]:
    """The Hub datasets the task's splits read (none: local files, or generated items)."""
    kind = config.kind or config.name
    found = {hub_source(kind, _source_options(config, split, data_dir)) for split in (config.pool, config.test)}
    return sorted(f for f in found if f)


def prepare_task(config: TaskConfig, index: int, data_dir: str | None) -> StudyTask:
    """The task's pool and test split, each from the task's data or from the split's own source.

    With separate sources (a published train file and test file, or one file split by a field), the test
    source keeps every item (worked examples come from the pool's source only), and the task's definition
    names both sources, so a change to either keys new evaluations.
    """
    kind, where = config.kind or config.name, f"tasks[{index}]"
    if config.split is not None:
        return _shared_task(config, load_task(kind, **_source_options(config, SplitConfig(), data_dir)), where)
    pool_options = _source_options(config, config.pool, data_dir)
    test_options = _source_options(config, config.test, data_dir)
    pool_source = load_task(kind, **pool_options)
    separate = test_options != pool_options
    if separate and "exemplars" in task_options(kind):
        test_options["exemplars"] = 0
    test_source = load_task(kind, **test_options) if separate else pool_source
    pool = _select(pool_source.items, config.pool, f"{where}.pool", data_dir)
    test_items = _select(test_source.items, config.test, f"{where}.test", data_dir, exclude=pool)
    check_no_leak(pool, test_items, where)
    if separate and pool_source.answer_type is not AnswerType.NUMBER:
        check_no_leak(pool_source.exemplars, test_items, f"{where} (worked examples)")
    definition = ({"pool": pool_source.definition, "test": test_source.definition} if separate
                  else pool_source.definition)
    task = Task(config.name, pool_source.items, pool_source.answer_type, pool_source.exemplars, definition)
    test = Task(config.name, test_items, task.answer_type, task.exemplars, definition)
    return StudyTask(config.name, task, pool, test)


def share_split(items: list[Item], answer_type: AnswerType, shares: ShareSplit) -> tuple[list[Item], list[Item]]:
    """(pool, test) of one source in the proportion shares.train : shares.test, drawn with shares.seed. Items
    that share a question text stay on one side; choice and yes/no tasks split each answer in the proportion
    (stratified), so both sides keep the answers' balance. Each side keeps the source's order."""
    groups: dict[str, list[Item]] = {}
    for it in items:
        groups.setdefault(normalize_question(it.question), []).append(it)
    stratified = answer_type in (AnswerType.CHOICE, AnswerType.YESNO)
    strata: dict[str, list[str]] = {}
    for question, members in groups.items():
        strata.setdefault(members[0].answer if stratified else "", []).append(question)
    draw, share = random.Random(shares.seed), shares.train / (shares.train + shares.test)
    training: set[str] = set()
    for answer in sorted(strata):
        questions = strata[answer]
        draw.shuffle(questions)
        training.update(questions[: round(share * len(questions))])
    pool = [it for it in items if normalize_question(it.question) in training]
    return pool, [it for it in items if normalize_question(it.question) not in training]


def _shared_task(config: TaskConfig, source: Task, where: str) -> StudyTask:
    """A task whose pool and test split are drawn from its one source by `config.split`'s shares."""
    pool, test_items = share_split(source.items, source.answer_type, config.split)
    pool, test_items = pool[: config.pool.limit], test_items[: config.test.limit]
    if not pool or not test_items:
        raise CapgapError(f"{where}.split: {len(source.items)} items leave {len(pool)} for training and "
                          f"{len(test_items)} for testing; give the task more data or other shares")
    check_no_leak(pool, test_items, where)
    definition = {"source": source.definition, "split": asdict(config.split)}
    task = Task(config.name, source.items, source.answer_type, source.exemplars, definition)
    test = Task(config.name, test_items, task.answer_type, task.exemplars, definition)
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
    Rationales that hedge between answers ("either (b) ... or (c) ...") are never trained on.
    """
    first, first_correct = {}, {}
    for r in teacher.rationales:
        if r.hedged:
            continue  # a hedge between answers teaches no answer, under every protocol
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
