"""`capgap rebase`: a finished study moved onto a lineage's next checkpoint, reusing what still holds.

    capgap rebase study.yaml --to /models/prod-2026-12 [--from prod-2026-11] [--budget 30%]

Reading top to bottom: the study's lineage gains the new checkpoint (`config.lineages`: a plain student
becomes the lineage of its one checkpoint); the old checkpoint's cells must be finished in the store. The
cheap predictors (`capgap predict`) run on both checkpoints, so the report's "Choosing a teacher" section
says how well they foretold the new checkpoint's gains. With a budget, the teachers re-run on the new
checkpoint are the old checkpoint's leader first, then those whose rank by the predictor `rsr` moved most,
up to the budget's share of the teachers; without one, every teacher. The run itself is `capgap run` on
the extended lineage with only those new cells planned: the old checkpoint's finished cells, checkpoints,
baselines and the teachers' rationales are read from the store ("[stored]" in the log), the new checkpoint
gets its own baseline, and each of its post-distillation evaluations pairs with that baseline only. The
report's lineage view (`analysis.lineage`) then says what carried over.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from capgap.analysis.cells import current_cells, group_cells
from capgap.config import StudyConfig
from capgap.config.lineages import Lineage
from capgap.errors import CapgapError
from capgap.evaluation.predictors import ranked
from capgap.knobs import PLAIN_NAME
from capgap.models import resolve
from capgap.store import Store
from capgap.study.cells import CellSpec
from capgap.study.executors import Executor
from capgap.study.runner import run_study

PREDICTOR = "rsr"  # what `capgap select --prune` ranks by too: the cheapest predictor that tracked gains best


@dataclasses.dataclass
class Rebase:
    lineage: Lineage  # with the new checkpoint last
    old: str  # the checkpoint the study was finished on
    new: str
    teachers: list[str]  # re-run on the new checkpoint
    why: dict[str, str]  # teacher -> why it was re-run, or why not


def lineage_to_extend(config: StudyConfig, old: str | None) -> tuple[Lineage, str]:
    """The lineage a rebase extends and its checkpoint to start from (default: its newest)."""
    if not config.lineages and len(config.students) == 1:  # a plain student: the lineage of its one checkpoint
        spec = config.students[0]
        name = spec if re.fullmatch(PLAIN_NAME[0], spec) else "student"
        lineages = [Lineage(name, (spec,))]
    else:
        lineages = list(config.lineages)
    if old is not None:
        lineages = [lin for lin in lineages if old in lin.checkpoints]
        if not lineages:
            raise CapgapError(f"--from {old}: no lineage of the config holds it; its students: "
                              f"{', '.join(config.students)}")
    if len(lineages) != 1:
        raise CapgapError("the config has several students and no single lineage to rebase; write the student as "
                          "a lineage, students: [{name: prod, checkpoints: [OLD]}], and pass --from OLD")
    lineage = lineages[0]
    return lineage, old or lineage.checkpoints[-1]


def extended(config: StudyConfig, lineage: Lineage, new: str) -> StudyConfig:
    """The config with `new` as the lineage's newest checkpoint."""
    grown = lineage.extended(new)
    others = [lin for lin in config.lineages if lin.name != lineage.name]
    students = list(config.students) + ([new] if new not in config.students else [])
    return dataclasses.replace(config, students=students, lineages=[*others, grown])


def _study_row(store: Store, config: StudyConfig) -> dict | None:
    return next((s for s in store.study.studies() if s["study"] == config.name), None)


def finished_groups(store: Store, config: StudyConfig, old: str) -> list[dict]:
    """The old checkpoint's trained cells in the store (a rebase starts from a finished study)."""
    study = _study_row(store, config)
    groups = [g for g in group_cells(store, study) if g["student"] == old] if study else []
    trained = [g for g in groups if g.get("gain") is not None]
    if not trained:
        raise CapgapError(f"study '{config.name}' has no finished cell of {old} in {store.path}; run it first "
                          f"(capgap run CONFIG), then rebase")
    return trained


def _rank_moves(predictions: list[dict], old: str, new: str) -> dict[str, int]:
    """Per teacher, how far the predictor's rank moved between the checkpoints, summed over tasks x protocols."""
    ranks: dict[tuple, dict[str, int]] = {}
    by_family: dict[tuple, list[dict]] = defaultdict(list)
    for row in predictions:
        by_family[(row["student"], row["task"], row["protocol"])].append({"teacher": row["teacher"], **row["scores"]})
    for key, rows in by_family.items():
        ranks[key] = {r["teacher"]: i for i, r in enumerate(ranked(rows, PREDICTOR))}
    moves: dict[str, int] = defaultdict(int)
    for (student, task, protocol), before in ranks.items():
        after = ranks.get((new, task, protocol)) if student == old else None
        for teacher, rank in (before.items() if after else []):
            moves[teacher] += abs(after.get(teacher, rank) - rank)
    return dict(moves)


def choose(groups: list[dict], teachers: list[str], share: float | None, moves: dict[str, int],
           old: str) -> tuple[list[str], dict[str, str]]:
    """The teachers to re-run on the new checkpoint: all without a budget; else the leader on `old`, then the
    largest predicted rank moves (`moves`), `ceil(share x teachers)` in all (at least the leader)."""
    if share is None:
        return teachers, {t: f"every teacher (no --budget; {PREDICTOR} rank moved by {moves.get(t, 0)})"
                          for t in teachers}
    gains: dict[str, list[float]] = defaultdict(list)
    for g in groups:
        gains[g["teacher"]].append(g["gain"])
    mean = {t: sum(v) / len(v) for t, v in gains.items()}
    leader = max(mean, key=mean.get)
    rest = sorted((t for t in teachers if t != leader), key=lambda t: (-moves.get(t, 0), -mean.get(t, 0)))
    order = [leader, *rest]
    n = max(1, math.ceil(share * len(teachers) - 1e-9))
    chosen = order[:n]
    why = {leader: f"the leader on {old} ({100 * mean[leader]:+.1f} pp)"}
    for t in teachers:
        if t != leader:
            said = f"{PREDICTOR} rank moved by {moves.get(t, 0)} between the checkpoints"
            why[t] = said if t in chosen else f"not re-run: {said}, outside the budget"
    return chosen, why


def rebase_study(config: StudyConfig, store: Store, run_dir: Path, executor: Executor, new: str,
                 old: str | None, share: float | None, predictions: Callable[[StudyConfig], list[dict]],
                 log: Callable[[str], None]) -> Rebase:
    """Extend the lineage with `new`, choose the teachers to re-run, and run what the store lacks."""
    lineage, old = lineage_to_extend(config, old)
    if new == old:
        raise CapgapError(f"--to {new} is the checkpoint the study was run on; pass the new checkpoint")
    groups = finished_groups(store, config, old)
    if resolve(new).fingerprint() == resolve(old).fingerprint():  # a bad path fails here, as one line
        raise CapgapError(f"--to {new} holds the same weights as {old}: the baseline did not move; pass the new "
                          "checkpoint")
    grown = extended(config, lineage, new)
    teachers = [t.name for t in config.teachers]
    moves = _rank_moves(predictions(grown), old, new)  # the cheap predictors on both checkpoints, always
    chosen, why = choose(groups, teachers, share, moves, old)
    result = Rebase(grown.lineages[-1], old, new, chosen, why)
    labels = {c: result.lineage.label(c) for c in (old, new)}
    log(f"rebase {lineage.name}: {labels[old]} ({old}) -> {labels[new]} ({new}); re-running "
        f"{len(chosen)} of {len(teachers)} teacher(s) on {labels[new]}")
    for teacher in teachers:
        log(f"  {teacher}: {why[teacher]}")
    # The cells other checkpoints finished, found by what they are and how they were trained rather than by key
    # alone: one whose evaluation key changed since (an engine setting of a newer capgap) keeps its checkpoint and
    # is evaluated again, instead of leaving the lineage. All the study's stored cells count, not only its last
    # plan's, so a rebase interrupted after it planned finds them again.
    cells = store.study.cells(config.name)
    done = {c["cell_key"] for c in cells if c["status"] in ("done", "skipped")}
    trained = {_identity(c): c.get("train_key") for c in current_cells(cells, _study_row(store, config)["config"])}
    reused = sum(identity[1] == old for identity in trained)
    log(f"reused from the store: {reused} finished cell(s) of {labels[old]} with their checkpoints (evaluated "
        f"again where this run's evaluation settings changed), the teachers' rationales; new: the baseline of "
        f"{labels[new]} and its cells")
    retrained: list[str] = []

    def keep(cell: CellSpec) -> bool:  # the chosen teachers on the new checkpoint, and what others finished
        if cell.student == new and cell.teacher in chosen:
            return True
        if cell.key in done or trained.get(_identity(cell)) == cell.train_key:
            return True
        if _identity(cell) in trained:
            retrained.append(cell.label)
        return False

    run_study(grown, store, run_dir, executor, keep=keep)
    if retrained:  # nothing else is trained: their training settings changed since, a `capgap run` matter
        log(f"not carried over: {len(retrained)} finished cell(s) trained under settings that changed since (e.g. "
            f"{retrained[0]}); `capgap run` trains them again")
    return result


def _identity(cell: CellSpec | dict) -> tuple:
    """What a cell is, whatever its key: its task, student, teacher, protocol and seed."""
    fields = ("task", "student", "teacher", "protocol", "seed")
    return tuple(cell[f] if isinstance(cell, dict) else getattr(cell, f) for f in fields)


def config_edit(config: StudyConfig, result: Rebase) -> str | None:
    """What to write in the config so that `capgap run` keeps the new checkpoint (None: it is there)."""
    listed = next((lin for lin in config.lineages if lin.name == result.lineage.name), None)
    if listed is not None and result.new in listed.checkpoints:
        return None
    entry = f"{{name: {result.lineage.name}, checkpoints: [{', '.join(result.lineage.checkpoints)}]}}"
    return (f"in students, make the entry of {result.old} (or of lineage {result.lineage.name}) {entry}, so that "
            f"`capgap run` keeps {result.new}")
