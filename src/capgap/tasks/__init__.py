"""Tasks: the registry of built-in task names and `load_task`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from capgap.errors import CapgapError, did_you_mean
from capgap.tasks.arith import ArithConfig, load_arith
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import PIPELINES, AnswerType, Extracted, extract, is_correct
from capgap.tasks.files import (
    FieldMap,
    build_task,
    gsm8k_items,
    load_hub_records,
    mapped_items,
    read_records,
    svamp_items,
)


@dataclass(frozen=True)
class TaskSpec:
    description: str
    loader: Callable[..., Task]


def _records(name: str, data: str | None, split: str | None, hub: str | None, config: str | None = None):
    """Records from a local file, or from a Hub dataset id; returns (records, source description)."""
    source = data or hub
    if source is None:
        raise CapgapError(f"task '{name}' reads its items from data: pass --data PATH (a JSON / JSONL file) "
                          "or a Hugging Face dataset id")
    path = Path(source).expanduser()
    is_hub_id = not path.exists() and source.count("/") == 1 and path.suffix not in (".json", ".jsonl")
    if is_hub_id:
        split = split or "test"
        return load_hub_records(source, config, split), {"hub": source, "split": split}
    return read_records(path), {"file": path.name}


def _svamp(data=None, split=None, **_) -> Task:
    records, source = _records("svamp", data, split, "ChilleD/SVAMP")
    return build_task("svamp", svamp_items(records), AnswerType.NUMBER, source)


def _gsm8k(data=None, split=None, **_) -> Task:
    records, source = _records("gsm8k", data, split, "openai/gsm8k", config="main" if not data else None)
    return build_task("gsm8k", gsm8k_items(records), AnswerType.NUMBER, source)


def _jsonl(data=None, split=None, fields: FieldMap | str | None = None, answer_type="number", **_) -> Task:
    records, source = _records("jsonl", data, split, None)
    field_map = fields if isinstance(fields, FieldMap) else FieldMap.parse(fields)
    try:
        kind = AnswerType(answer_type)
    except ValueError:
        valid = ", ".join(t.value for t in AnswerType)
        raise CapgapError(f"unknown answer type '{answer_type}'; valid: {valid}") from None
    items = mapped_items(records, field_map, kind)
    return build_task("jsonl", items, kind, {**source, "fields": field_map.__dict__})


def _arith(n: int | None = None, seed: int = 0, **knobs) -> Task:
    valid = {f.name for f in fields(ArithConfig)}
    chosen = {k: v for k, v in knobs.items() if k in valid and v is not None}
    if n is not None:
        chosen["n"] = n
    return load_arith(ArithConfig(seed=seed, **chosen))


TASKS: dict[str, TaskSpec] = {
    "arith": TaskSpec("generated multi-step arithmetic word problems with gold rationales (no data file)",
                      _arith),
    "svamp": TaskSpec("SVAMP math word problems (SVAMP.json format, or Hub id ChilleD/SVAMP)", _svamp),
    "gsm8k": TaskSpec("GSM8K grade-school math (JSONL with '#### N' answers, or Hub id openai/gsm8k)", _gsm8k),
    "jsonl": TaskSpec("any JSON / JSONL file with a field mapping and an answer type", _jsonl),
}


def load_task(name: str, **options) -> Task:
    """Load a built-in task by name; options: data, split, fields, answer_type, and arith knobs."""
    if name not in TASKS:
        raise CapgapError(f"unknown task '{name}'{did_you_mean(name, list(TASKS))}")
    return TASKS[name].loader(**options)


__all__ = ["PIPELINES", "TASKS", "AnswerType", "ArithConfig", "Extracted", "FieldMap", "Item", "Task",
           "extract", "is_correct", "load_task"]
