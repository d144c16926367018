"""`capgap validate`: the config's problems, then its data's (tasks load, splits are disjoint, teacher
files exist and match the pool, models resolve). Nothing is generated or trained. A sound config ends with
the plan a user checks before paying for a run: per task the pool and test sizes, per teacher its coverage
and accuracy on the pool, the cells, and the work they take.

    capgap validate examples/svamp-six-teachers.yaml
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from capgap.config import StudyConfig, TaskConfig, parse, read_yaml
from capgap.config.lineages import student_where
from capgap.config.schema import READ_KINDS, config_record, own_budgets
from capgap.errors import CapgapError
from capgap.models import resolve
from capgap.study.data import StudyTask, hub_datasets, prepare_task
from capgap.study.teachers import gather
from capgap.study.workplan import (
    TaskSize,
    budget_text,
    cells_text,
    estimate,
    runs_per_student,
    token_totals,
    tokens_text,
)
from capgap.tasks import AnswerType
from capgap.tasks.choices import option_count
from capgap.teachers import TeacherRationales


@dataclass
class Validation:
    problems: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # filled only when there is no problem


def validate_file(path: Path, data_dir: str | None = None) -> list[str]:
    """Every problem of the config at `path`, one line each ("where: what is wrong; how to fix it")."""
    return check_file(path, data_dir).problems


def check_file(path: Path, data_dir: str | None = None) -> Validation:
    """The config's problems, one line each, and, when there are none, its plan."""
    result = _check(path, data_dir)
    result.problems = [" ".join(problem.split()) for problem in result.problems]
    return result


def _check(path: Path, data_dir: str | None) -> Validation:
    try:
        config, problems = parse(read_yaml(path), data_dir, path.parent)
    except CapgapError as e:  # the CLI prefixes every line with the file already
        return Validation([str(e).removeprefix(str(path)).lstrip(": ")])
    if problems or config is None:  # the data checks below need a sound config
        return Validation(list(problems))
    problems = list(problems)
    for i, spec in enumerate(config.students):
        _guard(problems, student_where(config.lineages, spec, i), lambda spec=spec: resolve(spec))
    for i, t in enumerate(config.teachers):
        if t.kind == "model" and t.backend != "openai":  # a served model's name is the server's to know
            _guard(problems, f"teachers[{i}].model", lambda t=t: resolve(t.model))
    tasks, remote = [], []
    for i, task_config in enumerate(config.tasks):
        hub = hub_datasets(task_config, config.data_dir)
        if hub:  # validation downloads nothing: the run checks these items when it reads them
            remote.append(task_config)
            continue
        try:
            st = prepare_task(task_config, i, config.data_dir)
        except CapgapError as e:
            where = f"tasks[{i}]"
            problems.append(str(e) if str(e).startswith(where) else f"{where}: {e}")
            continue
        read = {}
        for j, t in enumerate(config.teachers):
            if t.kind in READ_KINDS:  # reference and imported teachers are cheap to read in full
                read[t.name] = _guard(problems, f"teachers[{j}] on tasks[{i}]",
                                      lambda t=t, st=st: gather(t, config, st, None))
        tasks.append((st, read))
    return Validation(problems, [] if problems else plan_lines(config, tasks, remote))


def _guard(problems: list, where: str, action):
    try:
        return action()
    except CapgapError as e:
        problems.append(f"{where}: {e}")
        return None


def plan_lines(config: StudyConfig, tasks: list[tuple[StudyTask, dict[str, TeacherRationales]]],
               remote: list[TaskConfig] = ()) -> list[str]:
    """What a run of this config will do, as lines: data, teachers' coverage, cells and work. `remote`: tasks
    read from the Hub, sized by their splits' limits."""
    lines = []
    sizes = [TaskSize(st.name, len(st.pool), len(st.test.items), "local data") for st, _ in tasks]
    for t in remote:
        size = TaskSize(t.name, t.pool.first or t.pool.limit, t.test.limit, "")
        sizes.append(size)
        hub = ", ".join(hub_datasets(t, config.data_dir))
        lines.append(f"task {t.name}: Hub dataset(s) {hub}, read at run time (validate downloads nothing: the run "
                     f"checks its items, the splits' disjointness and teacher files on it); at most "
                     f"{size.pool or '?'} training questions, {size.test or '?'} test items")
    for st, read in tasks:
        lines.append(f"task {st.name}: {len(st.pool)} training questions, {len(st.test.items)} test items, "
                     "disjoint (no shared id or question text)")
        lines += _skew(st)
        for t in config.teachers:
            got = read.get(t.name)
            if t.kind == "mixture":
                parts = ", ".join(f"{p.teacher} {100 * p.share:.0f}%" for p in t.parts)
                lines.append(f"  teacher {t.name}: a mixture of {parts}, drawn per question (draw {t.draw})")
                continue
            if got is None:
                lines.append(f"  teacher {t.name}: {t.samples} rationale(s) per question generated with {t.model} "
                             f"({t.backend} backend) at run time ({t.samples * len(st.pool)} generations of up to "
                             f"{t.max_new_tokens} tokens)")
                continue
            covered = len({r.item_id for r in got.rationales})
            notes = got.notes[1:] if t.kind == "imported" else got.notes  # an import's first note: coverage
            lines.append(f"  teacher {t.name}: rationales for {covered} of {len(st.pool)} pool questions, "
                         f"{100 * got.accuracy:.1f}% correct by capgap's checker"
                         + (f"; {'; '.join(notes)}" if notes else ""))
    return lines + _work_lines(config, sizes)


def _skew(st: StudyTask) -> list[str]:
    """A warning when one option letter is the gold of most test items: always answering it would score."""
    if st.test.answer_type is not AnswerType.CHOICE:
        return []
    letter, n = Counter(it.answer for it in st.test.items).most_common(1)[0]
    share = n / len(st.test.items)
    k = max(option_count(it.question) for it in st.test.items[:50])
    if share < max(0.5, 2 / max(k, 1)) or any(s.get("shuffle_options") for s in st.task.sources()):
        return []
    return [f"  warning: the gold is ({letter}) for {n} of {len(st.test.items)} test items, so answering ({letter}) "
            f"every time scores {100 * share:.0f}%; set the task option shuffle_options: true"]


def _work_lines(config: StudyConfig, sizes: list[TaskSize]) -> list[str]:
    """The cells and an upper bound of the work they take, in runs and tokens (`study.workplan`)."""
    cells = len(sizes) * len(config.students) * runs_per_student(config)
    t, ev = config.training, config.evaluation
    n_test = sum(s.test or 0 for s in sizes)
    baselines = len(config.students) * len(sizes)
    totals = token_totals(estimate(config, sizes))
    lines = [f"cells: {cells_text(config, len(sizes))}",
             f"work: at most {cells} training runs of {budget_text(config)} (effective batch "
             f"{t.effective_batch}); "
             f"{baselines} baseline and up to {cells} post-distillation evaluation(s), each on its task's test items "
             f"({n_test} over all tasks) with up to {ev.max_new_tokens} new tokens per item; cells with the same "
             "training data share a checkpoint, and what the store holds is not redone"]
    own = own_budgets(config_record(config))
    if own:
        lines.append(f"budget not matched, by the teachers' own: {', '.join(own)}")
    if config.screening is not None:
        lines.append(f"screening: a task whose candidate teachers differ by {config.screening.min_teacher_gap:g} "
                     "points or less is dropped at the start of the run (`capgap screen` shows the gaps now)")
    cost = [f"{tokens_text(totals['teacher'])} teacher tokens generated"] if totals["teacher"] else []
    if t.epochs is None:
        cost.append(f"{tokens_text(totals['training'])} tokens trained on")
    cost.append(f"{tokens_text(totals['evaluation'])} tokens generated in evaluations")
    lines.append(f"cost (upper bounds): {', '.join(cost)}")
    return lines
