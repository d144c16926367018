"""Choose a teacher on a compute budget: `capgap select CONFIG --budget 30%`.

    capgap select examples/svamp-six-teachers-cpu.yaml --budget 30% [--prune rsr --keep 4]

Successive halving (`selection.halving`) over the study's teachers (teacher/protocol pairs when the config
has several protocols), for its one task and one student. Each round is a real, smaller study run by the
same runner as `capgap run` (so it resumes, shares the store and reuses checkpoints): the surviving
teachers, the first k seeds, a share of the training steps and a prefix of the test items, recorded as
study NAME.select-rR[.PROTOCOL]. With --prune, the cheap predictors (`capgap predict`) first keep the
--keep best teachers by that predictor. The choice, each round's gains and evidence, and the compute used
against the full grid's are printed and stored (the report's "choosing a teacher" section).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from capgap.analysis.cells import group_cells
from capgap.config import StudyConfig
from capgap.config.schema import effective_batch
from capgap.errors import CapgapError
from capgap.evaluation.predictors import predictor, ranked
from capgap.selection.halving import Grid, select
from capgap.store import Store
from capgap.study.data import prepare_task
from capgap.study.workplan import generation_flops, trained_tokens, training_flops


def parse_budget(text: str) -> float:
    """'30%', '30' (percent) or '0.3' (a share) as a share of the full grid's compute, in (0, 1]."""
    raw = text.strip().rstrip("%")
    try:
        value = float(raw)
    except ValueError:
        raise CapgapError(f"--budget {text!r} is not a number; give a share of the full grid, e.g. 30% or 0.3") \
            from None
    share = value / 100 if text.strip().endswith("%") or value > 1 else value
    if not 0 < share <= 1:
        raise CapgapError(f"--budget {text!r} must be above 0 and at most 100% of the full grid")
    return share


def _check(config: StudyConfig) -> None:
    if len(config.tasks) != 1 or len(config.students) != 1:
        raise CapgapError(f"capgap select chooses a teacher for one task and one student; {config.name} has "
                          f"{len(config.tasks)} task(s) and {len(config.students)} student(s): give it a config "
                          "with one of each")
    if config.training.epochs is not None:
        raise CapgapError("capgap select shortens training by steps: set training.steps instead of epochs")
    if "intersection" in config.protocols:
        raise CapgapError("capgap select cannot pilot the intersection protocol: its training questions depend on "
                          "which teachers are in the study, and rounds drop teachers; select under own-correct or "
                          "unfiltered")
    if any(t.kind == "mixture" for t in config.teachers):
        raise CapgapError("capgap select cannot pilot mixture teachers: rounds drop teachers, and a mixture needs "
                          "its parts; compare mixtures with capgap run")
    if any(t.budget is not None for t in config.teachers):
        raise CapgapError("capgap select pilots every teacher at the study's budget; drop the teachers' own budget "
                          "(compare budgets with capgap run)")
    if len(config.teachers) * len(config.protocols) < 2:
        raise CapgapError("capgap select needs at least two teachers (or teacher/protocol pairs) to choose from")


def train_weight(config: StudyConfig, n_items: int) -> float:
    """Training's share of one full cell's FLOPs: 6N per trained token, 2N per generated one (upper bounds as
    `capgap plan` counts them)."""
    return cell_weight(asdict(config.training), n_items, config.evaluation.max_new_tokens)


def cell_weight(training: dict, n_items: int, max_new_tokens: int) -> float:
    """`train_weight` from a training config as the store records it."""
    batch = effective_batch(training["batch_size"], training.get("grad_accum"))
    train = training_flops(1.0, trained_tokens(training["steps"], batch, training["max_length"]))
    return train / (train + generation_flops(1.0, n_items * max_new_tokens))


def _arms(config: StudyConfig) -> list[tuple[str, str]]:
    return [(t.name, p) for p in config.protocols for t in config.teachers]


def _label(arm: tuple[str, str], several: bool) -> str:
    return f"{arm[0]}/{arm[1]}" if several else arm[0]


class PilotRunner:
    """measure() for `halving.select`: each call runs one round as a study and reads its paired gains."""

    def __init__(self, config: StudyConfig, store: Store, run_dir: Path, executor, labels: dict):
        self.config, self.store, self.run_dir, self.executor = config, store, run_dir, executor
        self.labels, self.round, self.seconds = labels, 0, 0.0

    def _study(self, protocol: str, teachers: list[str], seeds: int, steps: int, items: int) -> StudyConfig:
        task = self.config.tasks[0]
        suffix = f".{protocol}" if len(self.config.protocols) > 1 else ""
        return replace(self.config, name=f"{self.config.name}.select-r{self.round}{suffix}",
                       teachers=[t for t in self.config.teachers if t.name in teachers], protocols=[protocol],
                       seeds=self.config.seeds[:seeds], training=replace(self.config.training, steps=steps),
                       tasks=[replace(task, test=replace(task.test, limit=items))])

    def __call__(self, arms: list[str], seeds: int, steps: int, items: int) -> dict[str, np.ndarray]:
        from capgap.logs import log
        from capgap.study.runner import run_study

        self.round += 1
        chosen = [self.labels[a] for a in arms]
        d = {}
        for protocol in dict.fromkeys(p for _, p in chosen):
            teachers = [t for t, p in chosen if p == protocol]
            study = self._study(protocol, teachers, seeds, steps, items)
            log(f"round {self.round}: {len(teachers)} teacher(s) ({protocol}), {seeds} seed(s), {steps} step(s), "
                f"{items} test items: study {study.name}")
            start = time.perf_counter()
            run_study(study, self.store, self.run_dir, self.executor)
            self.seconds += time.perf_counter() - start
            row = next(s for s in self.store.study.studies() if s["study"] == study.name)
            for g in group_cells(self.store, row):
                if g.get("_items") is not None:
                    d[next(a for a in arms if self.labels[a] == (g["teacher"], g["protocol"]))] = g["_items"]["d"]
        missing = [a for a in arms if a not in d]
        if missing:
            raise CapgapError(f"round {self.round}: no trained cell for {', '.join(missing)} (no usable rationales "
                              "under its protocol?); drop it from the config and select again")
        return d


def prune(arms: list[str], labels: dict, predictions: list[dict], by: str, keep: int) -> list[str]:
    """The `keep` arms the predictor `by` ranks best."""
    rows = [{**p["scores"], "arm": a} for a in arms for p in predictions
            if (p["teacher"], p["protocol"]) == labels[a]]
    return [r["arm"] for r in ranked(rows, by)[:keep]]


def select_study(config: StudyConfig, store: Store, run_dir: Path, budget: float, executor,
                 pruning: tuple[str, int] | None = None, predict: Callable[[], list[dict]] | None = None) -> dict:
    """Run the selection; its record (choice, rounds, compute) is stored and returned."""
    _check(config)
    n_items = len(prepare_task(config.tasks[0], 0, config.data_dir).test.items)
    several = len(config.protocols) > 1
    labels = {_label(a, several): a for a in _arms(config)}
    arms, pruned = list(labels), []
    if pruning is not None:
        by, keep = pruning
        predictor(by)  # an unknown name fails before the predictions are computed
        kept = prune(arms, labels, predict() if predict else [], by, keep)
        if len(kept) < 2:
            raise CapgapError(f"--prune {by} left {len(kept)} teacher(s) with a prediction; selection needs two: "
                              "raise --keep, or run capgap predict on this config first")
        pruned, arms = [a for a in arms if a not in kept], kept
    grid = Grid(list(labels), len(config.seeds), config.training.steps, n_items, train_weight(config, n_items))
    runner = PilotRunner(config, store, run_dir, executor, labels)
    field = replace(grid, arms=arms)  # the budget stays a share of the whole grid's compute
    result = select(field, budget * grid.full_cost / field.full_cost, runner)
    result.update({"study": config.name, "grid": asdict(grid), "budget": budget,
                   "compute_share": result["compute_share"] * field.full_cost / grid.full_cost,
                   "pruned": {"by": pruning[0], "dropped": pruned} if pruning else None,
                   "seconds": runner.seconds, "created_at": time.time()})
    store.selection.save_selection(config.name, result)
    return result
