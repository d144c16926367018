"""Read a study config from YAML into typed sections, collecting every problem with its path in the file.

    problems = validate_file("examples/quickstart.yaml")   # [] when the config is sound
    config = load_config("examples/quickstart.yaml")        # raises CapgapError listing all problems
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import types
import typing
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path

import yaml

from capgap.config.lineages import split_lineages
from capgap.config.schema import (
    LIST_ITEM_TYPES,
    PROTOCOLS,
    SPLIT_SOURCE,
    SplitConfig,
    StudyConfig,
    TaskConfig,
    TeacherConfig,
    range_problem,
    split_source,
)
from capgap.errors import CapgapError, did_you_mean
from capgap.redact import HOW, scan
from capgap.tasks import TASKS, option_problems, task_options


class Problems(list):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")


def _unwrap_optional(hint):
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


def _convert(hint, value, path: str, problems: Problems, item_type=None):
    hint, optional = _unwrap_optional(hint)
    if value is None:
        if not optional:
            problems.add(path, "must not be empty")
        return None
    if is_dataclass(hint):
        return build(hint, value, path, problems)
    if hint is list:
        if not isinstance(value, list):
            problems.add(path, f"expected a list, got {type(value).__name__}")
            return []
        return [_convert(item_type, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if hint in (int, float) and isinstance(value, str):
        with contextlib.suppress(ValueError):  # YAML 1.1 reads "8.0e9" (no exponent sign) as a string
            value = float(value) if hint is float else int(value)
    expected = {bool: bool, int: int, float: (int, float), str: str, dict: dict}[hint]
    if (isinstance(value, bool) and hint is not bool) or not isinstance(value, expected):
        problems.add(path, f"expected {hint.__name__}, got {type(value).__name__} {value!r}")
        return None
    if hint is float and not math.isfinite(value):
        problems.add(path, f"{value} is not a finite number")
        return None
    if hint is str and not value:
        problems.add(path, "must not be an empty string")
        return None
    return float(value) if hint is float else value


def _check_value(value, meta: dict, where: str, problems: Problems) -> None:
    """The rules of one field's knob (choices, range, unique, pattern) applied to its converted value."""
    choices = meta.get("choices")
    if choices and value not in choices:
        problems.add(where, f"'{value}' is not one of: {', '.join(choices)}")
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    for i, item in items:
        at = where if i is None else f"{where}[{i}]"
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            message = range_problem(item, meta)
            if message:
                problems.add(at, message)
        if meta.get("unique") and i is not None and item is not None and item in value[:i]:
            problems.add(at, f"{item!r} repeats {where}[{value.index(item)}]; list each entry once")
    pattern = meta.get("pattern")
    if pattern and isinstance(value, str) and not re.fullmatch(pattern[0], value):
        problems.add(where, f"{value!r} is not {pattern[1]}")


def _check_applies(cls, data: dict, path: str, problems: Problems) -> None:
    """Fields given where they do nothing: for another kind of section, or without/with another field."""
    meta_of = {f.name: f.metadata for f in fields(cls)}
    for name, meta in meta_of.items():
        if data.get(name) is None:
            continue
        where = f"{path}.{name}" if path else name
        if meta.get("only"):
            key, allowed, who = meta["only"]
            actual = data.get(key, fields_default(cls, key))
            valid = meta_of[key].get("choices") or ()
            if actual in valid and actual not in allowed:
                problems.add(where, f"only {who} take {name} ({key} here is '{actual}')")
        if meta.get("requires") and data.get(meta["requires"]) is None:
            problems.add(where, f"applies only with {meta['requires']}; set {meta['requires']} or drop {name}")
        if meta.get("excludes") and data.get(meta["excludes"]) is not None:
            problems.add(where, f"is ignored when {meta['excludes']} is set; give only one of them")


def build(cls, data, path: str, problems: Problems):
    """An instance of dataclass `cls` from a YAML mapping; problems are collected, not raised."""
    if not isinstance(data, dict):
        problems.add(path or "config", f"expected a mapping, got {type(data).__name__}")
        return cls() if not any(f.metadata.get("required") for f in fields(cls)) else None
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls) if not f.metadata.get("internal")]
    for key in data:
        if key not in known:
            problems.add(f"{path}.{key}" if path else key, f"unknown key{did_you_mean(str(key), known)}")
    values = {}
    for f in fields(cls):
        if f.metadata.get("internal"):
            continue
        where = f"{path}.{f.name}" if path else f.name
        hint, optional = _unwrap_optional(hints[f.name])
        if f.name not in data:
            if f.metadata.get("required") and data.get(f.metadata.get("unless")) is None:
                problems.add(where, f"required: {f.metadata['help']}")
            if is_dataclass(hint) and not optional:  # a section typed `X | None` stays None when not given
                values[f.name] = build(hint, {}, where, problems)
            continue
        value = _convert(hints[f.name], data[f.name], where, problems, LIST_ITEM_TYPES.get((cls.__name__, f.name)))
        if value is not None:
            _check_value(value, dict(f.metadata), where, problems)
        values[f.name] = value
    _check_applies(cls, data, path, problems)
    values = {k: v for k, v in values.items() if v is not None or fields_default(cls, k) is None}
    try:
        return cls(**values)
    except TypeError:
        return None  # a required section was missing: already reported


def fields_default(cls, name: str):
    f = next(f for f in fields(cls) if f.name == name)
    return None if f.default is MISSING else f.default


def _check_split(split: SplitConfig | None, path: str, problems: Problems, *, is_test: bool) -> None:
    if split is None:
        return
    chosen = [k for k in ("first", "match_file") if getattr(split, k) is not None] + (["rest"] if split.rest else [])
    own_source = any(getattr(split, k) is not None for k in SPLIT_SOURCE)
    if len(chosen) > 1 or not (chosen or own_source):
        options = "first, match_file or rest" if is_test else "first or match_file"
        problems.add(path, f"choose exactly one of {options} (got {', '.join(chosen) or 'none'}), or give the "
                           f"split its own source ({', '.join(SPLIT_SOURCE)}) to take all of its items")
    if split.rest and not is_test:
        problems.add(f"{path}.rest", "only a test split can be the rest of the items")


def _check_task(task: TaskConfig, path: str, problems: Problems) -> None:
    for side, split in (("pool", task.pool), ("test", task.test)):
        if task.split is None:
            _check_split(split, f"{path}.{side}", problems, is_test=side == "test")
            continue
        given = {f.name for f in fields(SplitConfig) if getattr(split, f.name) != fields_default(SplitConfig, f.name)}
        if given - {"limit"}:  # the shares draw pool and test: each may only cap its size
            problems.add(f"{path}.{side}", f"{', '.join(sorted(given - {'limit'}))}: not with split, which draws "
                                           "the pool and test items itself; keep only limit, or drop split")
    kind = task.kind or task.name
    if kind not in TASKS:
        field = "kind" if task.kind else "name"
        problems.add(f"{path}.{field}", f"unknown task{' kind' if task.kind else ''} '{kind}'"
                                        f"{did_you_mean(kind, list(TASKS))}")
        return
    seen: set[str] = set()
    for side, split in (("pool", task.pool), ("test", task.test)):  # each split reads the task's options + its own
        given = split_source(split) if split is not None else {}
        for key in given:
            if key not in task_options(kind):
                problems.add(f"{path}.{side}.{key}", f"task kind '{kind}' takes no '{key}' option, so a split "
                                                     "cannot have its own; leave it out")
        own = {k: v for k, v in given.items() if k in task_options(kind)}
        for key, message in option_problems(kind, {**task.options, **own}):
            line = f"{path}.{side}.{key}: {message}" if key in own else f"{path}.options.{key}: {message}"
            if line not in seen:
                seen.add(line)
                problems.append(line)


def _check_teacher(t: TeacherConfig, path: str, problems: Problems) -> None:
    if t.kind == "model" and not t.model:
        problems.add(f"{path}.model", "required for a model teacher: the model to generate rationales with")
    if t.kind == "model" and t.backend == "openai" and t.endpoint is None:
        problems.add(f"{path}.endpoint", "required with backend openai: the server's base_url (and api_key_env)")
    if t.kind == "imported" and not t.files:
        problems.add(f"{path}.files", "required for an imported teacher: its rationale files")
    if t.kind == "model" and t.temperature == 0 and t.samples > 1:
        problems.add(f"{path}.samples", f"{t.samples} samples at temperature 0 repeat one greedy rationale; "
                                        "set samples: 1 or a temperature above 0")


def _check_mixtures(teachers: list, problems: Problems) -> None:
    """A mixture's parts are other, non-mixture teachers of the study, named once, with shares that sum to 1."""
    kinds = {t.name: t.kind for t in teachers if t is not None}
    for i, t in enumerate(teachers):
        if t is None or t.kind != "mixture":
            continue
        parts = [p for p in t.parts if p is not None and p.teacher is not None]
        if len(parts) < 2:
            problems.add(f"teachers[{i}].parts", "a mixture needs at least two parts, e.g. [{teacher: long, share: "
                                                 "0.2}, {teacher: short, share: 0.8}]")
            continue
        for j, part in enumerate(parts):
            where = f"teachers[{i}].parts[{j}].teacher"
            if part.teacher not in kinds or part.teacher == t.name:
                others = [n for n, k in kinds.items() if k != "mixture"]
                problems.add(where, f"'{part.teacher}' is no other teacher of the study"
                                    f"{did_you_mean(part.teacher, others)}")
            elif kinds[part.teacher] == "mixture":
                problems.add(where, f"'{part.teacher}' is a mixture itself; mix its parts directly")
        if len({p.teacher for p in parts}) < len(parts):
            problems.add(f"teachers[{i}].parts", "names a teacher twice; give each part once with its whole share")
        total = sum(p.share for p in parts if isinstance(p.share, (int, float)))
        if abs(total - 1) > 1e-6:
            problems.add(f"teachers[{i}].parts", f"shares sum to {total:g}; make them sum to 1")


def _check_budgets(config: StudyConfig, problems: Problems) -> None:
    """A teacher's own budget sets something, fits the study's training and is trained as it reads."""
    for i, t in enumerate(config.teachers or []):
        if t is None or t.budget is None or config.training is None:
            continue
        where, given = f"teachers[{i}].budget", {k: v for k, v in asdict(t.budget).items() if v is not None}
        if not given:
            problems.add(where, "sets nothing; give batch_size, grad_accum, steps or learning_rate, or leave it out")
        if "steps" in given and config.training.epochs is not None:
            problems.add(f"{where}.steps", "not with training.epochs (runs are then as long as their data); give "
                                           "the study training.steps, or leave steps out")
        batch, processes = given.get("batch_size", config.training.batch_size), config.training.processes
        if isinstance(batch, int) and isinstance(processes, int) and processes >= 1 and batch % processes:
            problems.add(f"{where}.batch_size", f"{processes} processes cannot share batches of {batch} equally; "
                                                "make it a multiple of training.processes")


def _check_unique_names(items: list, what: str, problems: Problems) -> None:
    first: dict[str, int] = {}
    for i, x in enumerate(items):
        if x is None:
            continue
        if x.name in first:
            problems.add(f"{what}[{i}].name", f"'{x.name}' names two {what} (also {what}[{first[x.name]}]); "
                                              "names must be unique")
        first.setdefault(x.name, i)


def check_semantics(config: StudyConfig, problems: Problems) -> None:
    """Cross-field rules that the knobs of single fields cannot state."""
    for i, task in enumerate(config.tasks or []):
        if task is not None:
            _check_task(task, f"tasks[{i}]", problems)
    for i, t in enumerate(config.teachers or []):
        if t is not None:
            _check_teacher(t, f"teachers[{i}]", problems)
    _check_unique_names(config.tasks or [], "tasks", problems)
    _check_unique_names(config.teachers or [], "teachers", problems)
    _check_mixtures(config.teachers or [], problems)
    _check_budgets(config, problems)
    for i, p in enumerate(config.protocols or []):
        if p is not None and p not in PROTOCOLS:
            problems.add(f"protocols[{i}]", f"unknown protocol '{p}'{did_you_mean(str(p), list(PROTOCOLS))}")
    t = config.training
    sizes = (t.batch_size, t.processes) if t is not None else ()
    if all(isinstance(n, int) and n >= 1 for n in sizes) and sizes and t.batch_size % t.processes:
        problems.add("training.processes", f"{t.processes} processes cannot share batches of {t.batch_size} "
                                           "equally; make batch_size a multiple of processes")
    for name in ("tasks", "students", "teachers", "protocols", "seeds"):
        if not getattr(config, name) and not any(p.startswith(f"{name}: required") for p in problems):
            problems.add(name, "must list at least one entry")


class _DuplicateKey(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # an unhashable key: SafeLoader reports it
                if key in seen:
                    raise _DuplicateKey(f"line {key_node.start_mark.line + 1}: key '{key}' repeats the one on line "
                                        f"{seen[key]}; YAML would silently keep the last, so give it once")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CapgapError(f"config file {path} not found; pass the path of a study YAML (see examples/)")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # a SafeLoader
    except UnicodeDecodeError as e:
        raise CapgapError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                          "save the config as UTF-8") from None
    except OSError as e:
        raise CapgapError(f"config file {path} cannot be read ({e.strerror}); check its permissions") from None
    except _DuplicateKey as e:
        raise CapgapError(f"{path} {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise CapgapError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    return data if data is not None else {}


def parse(data: dict, data_dir: str | None = None, base: Path | None = None) -> tuple[StudyConfig | None, Problems]:
    """Typed config and its problems. A relative data_dir in the file is relative to the file (`base`)."""
    problems = Problems()
    data, secrets = scan(data)  # masked before anything can echo them
    for where, kind in secrets:
        problems.add(where or "config", f"holds {kind}; {HOW}")
    data, lineages, lineage_problems = split_lineages(data)
    for where, what in lineage_problems:
        problems.add(where, what)
    config = build(StudyConfig, data, "", problems)
    if config is not None:
        config.lineages = lineages
        check_semantics(config, problems)
        in_file = config.data_dir
        if in_file and base is not None and not Path(in_file).expanduser().is_absolute():
            in_file = str(base / in_file)
        config.data_dir = data_dir or os.environ.get("CAPGAP_DATA_DIR") or in_file
    return config, problems


def load_config(path: str | Path, data_dir: str | None = None) -> StudyConfig:
    """The study config at `path`; raises one CapgapError naming every problem."""
    config, problems = parse(read_yaml(path), data_dir, Path(path).parent)
    if problems or config is None:
        raise CapgapError(f"{path}: {len(problems)} problem(s): " + "; ".join(" ".join(p.split()) for p in problems))
    return config
