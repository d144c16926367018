"""Tasks: the registry of built-in task names and `load_task`."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capgap.errors import CapgapError, did_you_mean
from capgap.tasks.arith import ArithConfig, load_arith
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import PIPELINES, AnswerType, Extracted, extract
from capgap.tasks.files import (
    DUPLICATE_POLICIES,
    FieldMap,
    build_task,
    gsm8k_items,
    is_hub_id,
    kept_where,
    load_hub_records,
    mapped_items,
    read_records,
    svamp_items,
    unique_items,
)
from capgap.tasks.grading import is_correct

SVAMP_HUB, GSM8K_HUB = "ChilleD/SVAMP", "openai/gsm8k"  # read when a task names no data


@dataclass(frozen=True)
class TaskSpec:
    summary: str
    loader: Callable[..., Task]
    option_types: dict[str, Any]  # option name -> type: read from the loader's signature (arith: ArithConfig)
    check: Callable[[dict], list[tuple[str, str]]] | None = None  # (option, problem) found without reading data
    hub: str | None = None  # the Hub dataset read when the options name no data

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.option_types)

    @property
    def description(self) -> str:
        return f"{self.summary}; options: {', '.join(self.options)}"


def _keyword_options(loader: Callable) -> dict[str, Any]:
    """The keyword-only parameters of a loader and their types: the task's options, stated once."""
    hints = typing.get_type_hints(loader)
    params = inspect.signature(loader).parameters.values()
    return {p.name: hints.get(p.name, object) for p in params if p.kind is p.KEYWORD_ONLY}


def _records(name: str, data: str | None, split: str | None, hub: str | None, config: str | None = None,
             where: dict | None = None):
    """Records from a local file, or from a Hub dataset id, kept by `where`; returns (records, source)."""
    source = data or hub
    if source is None:
        raise CapgapError(f"task '{name}' reads its items from data: pass --data PATH (a JSON / JSONL file) "
                          "or a Hugging Face dataset id")
    if is_hub_id(source):
        split = split or "test"
        records, described = load_hub_records(source, config, split), {"hub": source, "split": split}
    else:
        if split is not None:
            raise CapgapError(f"split '{split}' names a Hub dataset split, but {source} is a local file; select its "
                              f"records with where: {{FIELD: {split}}} instead")
        path = Path(source).expanduser()
        records, described = read_records(path), {"file": path.name}
    if where:
        records, described = kept_where(records, where, source), {**described, "where": where}
    return records, described


def _deduplicated(records: list, items: list[Item], duplicates: str, source: dict) -> tuple[list[Item], dict]:
    """The items with unique ids under the duplicate policy, and the source noting how many were dropped."""
    kept = unique_items(items, [where for where, _ in records], duplicates)
    return kept, {**source, "duplicates_dropped": len(items) - len(kept)} if len(kept) < len(items) else source


def _svamp(*, data: str | None = None, split: str | None = None, where: dict | None = None,
           duplicates: str = "error") -> Task:
    records, source = _records("svamp", data, split, SVAMP_HUB, where=where)
    items, source = _deduplicated(records, svamp_items(records), duplicates, source)
    return build_task("svamp", items, AnswerType.NUMBER, source)


def _gsm8k(*, data: str | None = None, split: str | None = None, where: dict | None = None,
           duplicates: str = "error") -> Task:
    records, source = _records("gsm8k", data, split, GSM8K_HUB, "main" if not data else None, where)
    items, source = _deduplicated(records, gsm8k_items(records), duplicates, source)
    return build_task("gsm8k", items, AnswerType.NUMBER, source)


def _check_duplicates(options: dict) -> list[tuple[str, str]]:
    """Problems of the options every file task takes: the duplicate policy and the record filter."""
    problems = []
    value = options.get("duplicates", "error")
    if value not in DUPLICATE_POLICIES:
        problems.append(("duplicates", f"'{value}' is not one of: {', '.join(DUPLICATE_POLICIES)}"))
    where = options.get("where")
    if where is not None and (not where or not all(isinstance(k, str) for k in where)):
        problems.append(("where", "write it as {field: value} or {field: [values]}, e.g. {split: test}"))
    return problems


def _answer_type(value: str) -> AnswerType:
    try:
        return AnswerType(value)
    except ValueError:
        valid = ", ".join(t.value for t in AnswerType)
        raise CapgapError(f"unknown answer type '{value}'; valid: {valid}") from None


def _jsonl(*, data: str | None = None, split: str | None = None, subset: str | None = None,
           where: dict | None = None, fields: dict | str | None = None, answer_type: str = "number",
           duplicates: str = "error", shuffle_options: bool = False, exemplars: int = 8) -> Task:
    field_map = fields if isinstance(fields, FieldMap) else FieldMap.parse(fields)
    kind = _answer_type(answer_type)  # option mistakes first: before any data is read
    if subset is not None and not (data and is_hub_id(data)):
        raise CapgapError(f"subset '{subset}' names a configuration of a Hub dataset, but the data is not a Hub "
                          "dataset id; leave subset out for a local file")
    records, source = _records("jsonl", data, split, None, subset, where)
    source = {**source, "subset": subset} if subset else source
    items = mapped_items(records, field_map, kind, shuffle_options)
    items, source = _deduplicated(records, items, duplicates, source)
    shuffle = {"shuffle_options": True} if shuffle_options else {}
    return build_task("jsonl", items, kind, {**source, "fields": field_map.__dict__, **shuffle}, exemplars)


def _check_jsonl(options: dict) -> list[tuple[str, str]]:
    problems = [] if options.get("data") else [("data", "required: the JSON / JSONL file of the items")]
    problems += _check_duplicates(options)
    if not 0 <= options.get("exemplars", 8) <= 8:
        problems.append(("exemplars", f"{options['exemplars']} is out of range; must be between 0 and 8"))
    for key, parse in (("fields", FieldMap.parse), ("answer_type", _answer_type)):
        try:
            if key in options:
                parse(options[key])
        except CapgapError as e:
            problems.append((key, str(e)))
    return problems


def _arith(**knobs: int) -> Task:
    return load_arith(ArithConfig(**knobs))


def _check_arith(options: dict) -> list[tuple[str, str]]:
    return ArithConfig(**options).problems()


TASKS: dict[str, TaskSpec] = {
    "arith": TaskSpec("generated multi-step arithmetic word problems with gold rationales (no data file)",
                      _arith, typing.get_type_hints(ArithConfig), _check_arith),
    "svamp": TaskSpec(f"SVAMP math word problems (SVAMP.json format, or Hub id {SVAMP_HUB})", _svamp,
                      _keyword_options(_svamp), _check_duplicates, SVAMP_HUB),
    "gsm8k": TaskSpec(f"GSM8K grade-school math (JSONL with '#### N' answers, or Hub id {GSM8K_HUB})", _gsm8k,
                      _keyword_options(_gsm8k), _check_duplicates, GSM8K_HUB),
    "jsonl": TaskSpec("any JSON / JSONL file with a field mapping and an answer type", _jsonl,
                      _keyword_options(_jsonl), _check_jsonl),
}


def _spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise CapgapError(f"unknown task '{name}'{did_you_mean(name, list(TASKS))}")
    return TASKS[name]


def _accepts(hint: Any, value: object) -> bool:
    allowed = [a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)]
    return any(isinstance(value, a) and not (isinstance(value, bool) and a is not bool) for a in allowed)


def _shape_problems(spec: TaskSpec, options: dict) -> list[tuple[str, str]]:
    """Unknown option names (with the closest valid one) and values of the wrong type."""
    problems = []
    for key, value in options.items():
        if key not in spec.option_types:
            problems.append((str(key), f"unknown option{did_you_mean(str(key), list(spec.options))}"))
        elif value is None:
            problems.append((key, "must not be empty; leave the option out for its default"))
        elif not _accepts(spec.option_types[key], value):
            kinds = " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(spec.option_types[key])
                                if a is not type(None)) or spec.option_types[key].__name__
            problems.append((key, f"expected {kinds}, got {type(value).__name__} {value!r}"))
    return problems


def option_problems(name: str, options: dict) -> list[tuple[str, str]]:
    """(option, problem) for every option of task `name` that loading would reject; reads no data."""
    spec = _spec(name)
    problems = _shape_problems(spec, options)
    if not problems and spec.check is not None:
        problems = spec.check(options)
    return problems


def hub_source(name: str, options: dict) -> str | None:
    """The Hub dataset task `name` reads with these options (None: a local file, or generated items)."""
    spec = _spec(name)
    if "data" not in spec.option_types:
        return None
    source = options.get("data") or spec.hub
    return source if source and is_hub_id(source) else None


def task_options(name: str) -> tuple[str, ...]:
    """The option names task `name` takes (its loader's keyword arguments)."""
    return _spec(name).options


def load_task(name: str, **options) -> Task:
    """Load a built-in task by name with its options (`task_options(name)`); None means the default."""
    spec = _spec(name)
    options = {k: v for k, v in options.items() if v is not None}
    problems = _shape_problems(spec, options)
    if problems:
        raise CapgapError(f"task '{name}': " + "; ".join(f"option '{k}': {m}" for k, m in problems))
    return spec.loader(**options)


__all__ = ["PIPELINES", "TASKS", "AnswerType", "ArithConfig", "Extracted", "FieldMap", "Item", "Task",
           "extract", "hub_source", "is_correct", "load_task", "option_problems", "task_options"]
