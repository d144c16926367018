"""Tasks: the registry of built-in task names and `load_task`. Each dataset format has its module beside it
(`arith` generated, `svamp`, `gsm8k`, `jsonl` any JSON / JSONL); `files` reads records from a file or the Hub,
`items` turns records into a task, `extraction` and `grading` read and grade answers."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capgap.errors import CapgapError, did_you_mean
from capgap.tasks.arith import ArithConfig, load_arith
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import PIPELINES, AnswerType, Extracted, extract
from capgap.tasks.files import is_hub_id
from capgap.tasks.grading import is_correct
from capgap.tasks.gsm8k import GSM8K_HUB, load_gsm8k
from capgap.tasks.items import check_file_options
from capgap.tasks.jsonl import FieldMap, check_jsonl, load_jsonl
from capgap.tasks.svamp import SVAMP_HUB, load_svamp


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


def _arith(**knobs: int) -> Task:
    return load_arith(ArithConfig(**knobs))


def _check_arith(options: dict) -> list[tuple[str, str]]:
    return ArithConfig(**options).problems()


TASKS: dict[str, TaskSpec] = {
    "arith": TaskSpec("generated multi-step arithmetic word problems with gold rationales (no data file)",
                      _arith, typing.get_type_hints(ArithConfig), _check_arith),
    "svamp": TaskSpec(f"SVAMP math word problems (SVAMP.json format, or Hub id {SVAMP_HUB})", load_svamp,
                      _keyword_options(load_svamp), check_file_options, SVAMP_HUB),
    "gsm8k": TaskSpec(f"GSM8K grade-school math (JSONL with '#### N' answers, or Hub id {GSM8K_HUB})", load_gsm8k,
                      _keyword_options(load_gsm8k), check_file_options, GSM8K_HUB),
    "jsonl": TaskSpec("any JSON / JSONL file with a field mapping and an answer type", load_jsonl,
                      _keyword_options(load_jsonl), check_jsonl),
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
