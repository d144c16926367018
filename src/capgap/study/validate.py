"""`capgap validate`: the config's problems, then its data's (tasks load, splits are disjoint, teacher
files exist and match the pool, models resolve). Nothing is generated or trained."""

from __future__ import annotations

from pathlib import Path

from capgap.config import parse, read_yaml
from capgap.errors import CapgapError
from capgap.models import resolve
from capgap.study.data import prepare_task
from capgap.study.teachers import gather


def validate_file(path: Path, data_dir: str | None = None) -> list[str]:
    """Every problem of the config at `path`, one line each ("where: what is wrong; how to fix it")."""
    return [" ".join(problem.split()) for problem in _problems(path, data_dir)]


def _problems(path: Path, data_dir: str | None) -> list[str]:
    try:
        config, problems = parse(read_yaml(path), data_dir, path.parent)
    except CapgapError as e:  # the CLI prefixes every line with the file already
        return [str(e).removeprefix(str(path)).lstrip(": ")]
    if problems or config is None:  # the data checks below need a sound config
        return list(problems)
    for i, spec in enumerate(config.students):
        _check(problems, f"students[{i}]", lambda spec=spec: resolve(spec))
    for i, t in enumerate(config.teachers):
        if t.kind == "model":
            _check(problems, f"teachers[{i}].model", lambda t=t: resolve(t.model))
    for i, task_config in enumerate(config.tasks):
        try:
            st = prepare_task(task_config, i, config.data_dir)
        except CapgapError as e:
            where = f"tasks[{i}]"
            problems.append(str(e) if str(e).startswith(where) else f"{where}: {e}")
            continue
        for j, t in enumerate(config.teachers):
            if t.kind != "model":  # reference and imported teachers are cheap to read in full
                _check(problems, f"teachers[{j}] on tasks[{i}]", lambda t=t, st=st: gather(t, config, st, None, None))
    return list(problems)


def _check(problems: list, where: str, action) -> None:
    try:
        action()
    except CapgapError as e:
        problems.append(f"{where}: {e}")
