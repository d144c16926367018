"""Student lineages: one production student as an ordered list of its checkpoints.

    students:
      - name: prod                          # the lineage, as tables and the report name it
        checkpoints: [smollm2-135m-instruct, /models/prod-2026-11]   # oldest first

Each checkpoint is a student of its own (fingerprinted, with its own baseline; a post-distillation
evaluation pairs only with the baseline of the checkpoint it was trained from), so a lineage is read into
the flat `students` list every other part of capgap knows, plus the lineage that orders them. Checkpoint k
(from 1) of lineage `prod` is labelled "prod@k". `capgap rebase` appends a checkpoint to a lineage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from capgap.knobs import PLAIN_NAME

FIELDS = ("name", "checkpoints")


@dataclass(frozen=True)
class Lineage:
    name: str
    checkpoints: tuple[str, ...]  # student specs, oldest first

    def label(self, spec: str) -> str:
        """"prod@2" for the second checkpoint of lineage prod."""
        return f"{self.name}@{self.checkpoints.index(spec) + 1}"

    def extended(self, spec: str) -> Lineage:
        """The lineage with `spec` as its newest checkpoint (unchanged when it holds it already)."""
        return self if spec in self.checkpoints else Lineage(self.name, (*self.checkpoints, spec))


def _entry_problems(entry: dict, where: str) -> list[tuple[str, str]]:
    problems = [(f"{where}.{key}", f"unknown key; a lineage takes {', '.join(FIELDS)}") for key in entry
                if key not in FIELDS]
    name, checkpoints = entry.get("name"), entry.get("checkpoints")
    if not isinstance(name, str) or not re.fullmatch(PLAIN_NAME[0], name):
        problems.append((f"{where}.name", f"{name!r} is not {PLAIN_NAME[1]}"))
    if not isinstance(checkpoints, list) or not checkpoints or not all(isinstance(c, str) and c for c in checkpoints):
        problems.append((f"{where}.checkpoints", "must list the lineage's checkpoints, oldest first (model names, "
                                                 "folders or Hub ids)"))
    elif len(set(checkpoints)) != len(checkpoints):
        problems.append((f"{where}.checkpoints", "lists a checkpoint twice; each checkpoint once, oldest first"))
    return problems


def split_lineages(data: dict) -> tuple[dict, list[Lineage], list[tuple[str, str]]]:
    """The config with every lineage of `students` read into its checkpoints (the flat list), the lineages,
    and the problems of lineage entries (as (where, what))."""
    students = data.get("students") if isinstance(data, dict) else None
    if not isinstance(students, list) or not any(isinstance(s, dict) for s in students):
        return data, [], []
    flat: list = []
    lineages: list[Lineage] = []
    problems: list[tuple[str, str]] = []
    for i, entry in enumerate(students):
        if not isinstance(entry, dict):
            flat.append(entry)
            continue
        found = _entry_problems(entry, f"students[{i}]")
        problems += found
        if not found:
            lineages.append(Lineage(entry["name"], tuple(entry["checkpoints"])))
            flat += entry["checkpoints"]
    names = [lin.name for lin in lineages]
    problems += [("students", f"lineage '{n}' is named twice; give each lineage its own name")
                 for n in sorted({n for n in names if names.count(n) > 1})]
    return {**data, "students": flat}, lineages, problems


def student_where(lineages: list[Lineage], spec: str, index: int) -> str:
    """Where a student of the flat list is written in the config: its lineage's checkpoint, or students[i]
    (the flat index is the file's when no lineage comes before it)."""
    for lineage in lineages:
        if spec in lineage.checkpoints:
            return f"students (lineage {lineage.name}, checkpoints[{lineage.checkpoints.index(spec)}])"
    return f"students[{index}]"


def lineages_of(config: dict) -> list[Lineage]:
    """The lineages of a stored config record (none before lineages existed)."""
    return [Lineage(r["name"], tuple(r["checkpoints"])) for r in config.get("lineages") or []]
