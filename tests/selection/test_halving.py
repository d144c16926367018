"""Successive halving on simulated grids with known truth: budget kept, choices right, confidence honest."""

import itertools

import numpy as np
import pytest

from capgap.selection.halving import Grid, schedule, select
from capgap.selection.simulate import SimulatedGrid, teacher_means


def _grid(arms, seeds=3, steps=16, items=300, weight=0.5):
    return Grid(arms, seeds, steps, items, weight)


@pytest.mark.parametrize("n_arms,budget", [(7, 0.3), (7, 0.1), (4, 0.5), (2, 0.3), (16, 0.2)])
def test_the_schedule_spends_no_more_than_the_budget(n_arms, budget):
    grid = _grid([f"t{i}" for i in range(n_arms)])
    rungs = schedule(grid, budget)
    assert rungs[0].arms == n_arms and rungs[-1].arms in (2, 3) and len(rungs) == max(1, int(np.ceil(
        np.log(n_arms) / np.log(3) - 1e-9)))
    # each round's arms are at most the previous round's survivors; shares grow as the field shrinks
    assert all(b.steps_share * b.seeds >= a.steps_share * a.seeds for a, b in itertools.pairwise(rungs))
    rng = np.random.default_rng(0)
    truth = SimulatedGrid(teacher_means(n_arms, 0.1, rng), 0.02, 0.0, 300, 16, rng)
    result = select(grid, budget, truth.measure)
    floor = 30 / 300  # MIN_ITEMS may lift a tiny pilot's item share above its budget
    assert result["compute_share"] <= budget + floor * len(rungs) / grid.full_cost * n_arms
    assert result["compute_share"] > budget / 4  # and it does spend it


def test_halving_nearly_finds_the_best_of_well_separated_teachers_within_30_percent():
    """Seven teachers 0-12 pp apart (seed SD 2 pp, 300 items): at 30% of the grid, mean regret within 1.5 pp
    (the issue's target is 1 pp: bench/selection.py reports where it is met) and under a third of a random
    pick's."""
    regrets, hits, shares, random_pick = [], 0, [], []
    for rep in range(40):
        rng = np.random.default_rng(rep)
        truth = SimulatedGrid(teacher_means(7, 0.12, rng), 0.02, 0.0, 300, 16, rng)
        result = select(_grid(list(truth.means)), 0.3, truth.measure)
        regrets.append(truth.regret(result["choice"]))
        hits += result["choice"] == truth.best
        shares.append(result["compute_share"])
        random_pick.append(np.mean([truth.regret(t) for t in truth.means]))
    assert np.mean(regrets) <= 1.5 and np.mean(regrets) < np.mean(random_pick) / 3
    assert hits >= 12 and max(shares) <= 0.33  # a random pick hits 40 / 7 ≈ 6 times


def test_a_confident_choice_among_equal_teachers_is_rare_and_among_distinct_ones_common():
    """'separated' is the seed-aware comparison's claim: under no difference it must hold about alpha of the
    time (Holm over the last round's comparisons), and with a real gap most of the time."""
    null, real = 0, 0
    for rep in range(200):
        rng = np.random.default_rng(1000 + rep)
        same = SimulatedGrid({"a": 0.02, "b": 0.02}, 0.01, 0.0, 400, 16, rng)
        null += select(_grid(["a", "b"], items=400), 0.6, same.measure)["separated"]
        apart = SimulatedGrid({"a": 0.0, "b": 0.12}, 0.01, 0.0, 400, 16, rng)
        real += select(_grid(["a", "b"], items=400), 0.6, apart.measure)["separated"]
    assert 0.0 <= null / 200 <= 0.09
    assert real / 200 >= 0.8
