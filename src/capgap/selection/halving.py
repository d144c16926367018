"""Successive halving over teachers: pilot fine-tunes that grow as the field shrinks (Karnin et al. 2013;
Jamieson & Talwalkar 2016). Pure logic: what to measure comes from a `measure` callback, so the same code
drives `capgap select` (real pilot fine-tunes), `bench/selection.py`'s replay of stored grids and its
simulations.

Compute is counted in full cells: one full cell = one training run of the config's steps + one evaluation
on all test items, and a pilot of steps share s and items share i costs w s + (1 - w) i, where w is
training's share of a full cell's FLOPs (6N per trained token against 2N per generated token; `train_weight`).
The full grid costs arms x seeds cells plus one baseline evaluation.

The schedule spends the budget evenly over R = ceil(log_eta arms) rounds (eta = 3: a third survives each
round; in simulation eta = 2 left the last round too little, see `bench/selection.py`). Round r measures
ceil(arms / eta^r) arms and gives each of them the round's budget over arms + (1 - w) (the baseline's
evaluation on the round's items is paid for too): whole seeds while it affords one, and below one seed a
steps share and an items share equal to that share (so a pilot costs what it was given), never below
MIN_ITEMS items and one step; a share of at least WHOLE runs the whole cell (the grid's own cell, which a
store that holds the grid reuses). Each round ranks its arms by mean gain over their seeds and items (post - pre,
paired), keeps the best ceil(arms / eta), and stops early when the leader is ahead of every other arm by the
seed-aware comparison (`analysis.seedaware.difference_test`), Holm-corrected across those comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from capgap.analysis.seedaware import difference_test
from capgap.analysis.stats import ALPHA

MIN_ITEMS = 30
ETA = 3
WHOLE = 0.95  # a pilot given this share of a cell runs the whole cell: it is then the grid's own cell


@dataclass(frozen=True)
class Rung:
    arms: int
    seeds: int
    steps_share: float
    items_share: float


@dataclass(frozen=True)
class Grid:
    """What the full grid is: arms (teacher, or teacher/protocol), seeds, steps, test items, training's share."""

    arms: list[str]
    seeds: int
    steps: int
    items: int
    train_weight: float

    @property
    def full_cost(self) -> float:
        return len(self.arms) * self.seeds + (1 - self.train_weight)  # + the baseline's evaluation

    def cell_cost(self, steps: int, items: int) -> float:
        return self.train_weight * steps / self.steps + (1 - self.train_weight) * items / self.items


def schedule(grid: Grid, budget: float, eta: int = ETA) -> list[Rung]:
    """The rounds for spending `budget` (a share of the full grid's compute)."""
    n = len(grid.arms)
    rounds = max(1, math.ceil(math.log(n, eta) - 1e-9)) if n > 1 else 1
    per_round = budget * grid.full_cost / rounds
    out = []
    for r in range(rounds):
        arms = math.ceil(n / eta ** r)
        share = per_round / (arms + 1 - grid.train_weight)  # the round's baseline evaluation is paid for too
        seeds = int(min(grid.seeds, max(1, math.floor(share))))
        part = min(1.0, share / seeds)
        out.append(Rung(arms, seeds, part, part))
    return out


Measure = Callable[[list[str], int, int, int], dict[str, np.ndarray]]  # (arms, seeds, steps, items) -> d (k, n)


def _evidence(d: dict[str, np.ndarray], leader: str) -> dict[str, float]:
    """p of leader vs each other arm (seed-aware difference of paired gains on the same items)."""
    return {arm: difference_test(d[leader], x).p_value for arm, x in d.items() if arm != leader}


def _separated(p_values: dict[str, float], alpha: float = ALPHA) -> bool:
    """Holm: the leader is ahead of every other arm when each ordered p passes alpha / (m - rank)."""
    ordered = sorted(p_values.values())
    return bool(ordered) and all(p <= alpha / (len(ordered) - i) for i, p in enumerate(ordered))


def _size(grid: Grid, rung: Rung) -> tuple[int, int]:
    """A rung's steps and items; a share of at least WHOLE is the whole (the grid's own cells, reused)."""
    if rung.steps_share >= WHOLE and rung.items_share >= WHOLE:
        return grid.steps, grid.items
    steps = max(1, round(grid.steps * rung.steps_share))
    items = min(grid.items, max(MIN_ITEMS, round(grid.items * rung.items_share)))
    return steps, items


def select(grid: Grid, budget: float, measure: Measure, eta: int = ETA) -> dict:
    """Run successive halving; the choice, the trace of rounds, and the compute used (share of the full grid)."""
    alive, trace, spent = list(grid.arms), [], 0.0
    rungs = schedule(grid, budget, eta)
    for r, rung in enumerate(rungs):
        steps, items = _size(grid, rung)
        d = measure(alive, rung.seeds, steps, items)
        spent += len(alive) * rung.seeds * grid.cell_cost(steps, items) + (1 - grid.train_weight) * items / grid.items
        gains = {arm: float(np.mean(d[arm])) for arm in alive}
        order = sorted(alive, key=lambda a: -gains[a])
        p_values = _evidence(d, order[0]) if len(order) > 1 else {}
        separated = _separated(p_values)
        last = r == len(rungs) - 1 or separated
        keep = order[:1] if last else order[:math.ceil(len(order) / eta)]
        trace.append({"round": r + 1, "arms": alive, "seeds": rung.seeds, "steps": steps, "items": items,
                      "gains": gains, "p_vs_leader": p_values, "kept": keep,
                      "dropped": [a for a in order if a not in keep], "separated": separated})
        alive = keep
        if last:
            break
    return {"choice": alive[0], "separated": trace[-1]["separated"], "rounds": trace,
            "compute_share": spent / grid.full_cost, "budget": budget, "grid": asdict(grid),
            "schedule": [asdict(r) for r in rungs]}
