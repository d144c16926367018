"""Calibration by simulation on a few cells of bench/calibration.py's grid, bounded from both sides.

Each test simulates studies with a known truth (`capgap.analysis.simulate`: fresh items, per-seed true gains
g_s = mu + sigma z_s, independent flips) and checks the verdict's test and CI. Bounds use the Monte Carlo
SE at the nominal rate: false "improves/degrades" rate <= 5% + 2 SE, CI coverage within 93% - 2 SE and
97% + 2 SE, and the verdict agrees with its own CI in every run. The item-only tests that capgap used
before (sign-flip p with a bootstrap CI) fail the first three.
"""

import numpy as np
import pytest

from capgap.analysis.seedaware import cell_test
from capgap.analysis.simulate import simulate_cell

ALPHA = 0.05


def _se(p: float, reps: int) -> float:
    return float(np.sqrt(p * (1 - p) / reps))


def _verdict(cell) -> tuple[float, float, float]:
    """(p, CI low, CI high) of the verdict's test on one simulated cell."""
    test = cell_test(cell.pre, cell.post)
    lo, hi = test.ci95
    return test.p_value, lo, hi


def _run(n: int, k: int, sigma: float, reps: int, seed: int, mu: float = 0.0) -> dict:
    rng = np.random.default_rng(seed)
    rejected = covered = agree = 0
    width = 0.0
    for _ in range(reps):
        cell = simulate_cell(n, k, mu, sigma, rng)
        target = cell.gains[0] if k == 1 else mu  # 1 seed: the estimand is that run's own gain
        p, lo, hi = _verdict(cell)
        rejected += p < ALPHA
        covered += lo <= target <= hi
        agree += (p < ALPHA) == (not lo <= 0 <= hi)
        width += hi - lo
    return {"false": rejected / reps, "coverage": covered / reps, "agree": agree / reps, "width": width / reps}


def _assert_calibrated(r: dict, reps: int, *, upper_coverage: bool, min_false: float) -> None:
    se_false, se_cov = _se(ALPHA, reps), _se(1 - ALPHA, reps)
    assert min_false <= r["false"] <= ALPHA + 2 * se_false, r
    assert r["coverage"] >= 0.93 - 2 * se_cov, r
    if upper_coverage:
        assert r["coverage"] <= 0.97 + 2 * se_cov, r
    assert r["agree"] == 1.0, r  # a significant verdict always has a CI that excludes 0, and back


def test_three_seeds_with_large_seed_variance_keep_the_level():
    # sigma = 4 pp: training runs differ; an item-only test calls that noise a gain 18% of the time
    reps = 400
    r = _run(150, 3, 0.04, reps, seed=1)
    _assert_calibrated(r, reps, upper_coverage=True, min_false=0.01)


def test_three_seeds_without_seed_variance_are_not_overconservative_and_agree_with_the_ci():
    reps = 400
    r = _run(150, 3, 0.0, reps, seed=2)
    _assert_calibrated(r, reps, upper_coverage=True, min_false=0.005)


def test_two_seeds_on_many_items_keep_the_level():
    # n = 500, sigma = 2 pp: the seed variance dominates the item noise and has one degree of freedom
    reps = 300
    r = _run(500, 2, 0.02, reps, seed=3)
    _assert_calibrated(r, reps, upper_coverage=False, min_false=0.0)
    assert r["width"] < 0.5  # conservative, but the CI still says something


@pytest.mark.parametrize("sigma", [0.0, 0.04])
def test_one_seed_speaks_for_its_run(sigma):
    # Coverage of the run's own true gain, and false verdicts when that run's true gain is 0.
    reps = 400
    r = _run(150, 1, sigma, reps, seed=4)
    se_cov = _se(1 - ALPHA, reps)
    assert 0.93 - 2 * se_cov <= r["coverage"] <= 0.97 + 2 * se_cov, r
    assert r["agree"] == 1.0, r
    null = _run(150, 1, 0.0, reps, seed=5)
    assert 0.01 <= null["false"] <= ALPHA + 2 * _se(ALPHA, reps), null


def test_power_at_five_points_grows_with_seeds_when_seed_variance_is_real():
    reps = 200
    rng = np.random.default_rng(6)
    detected = {}
    for k in (3, 5):
        hits = 0
        for _ in range(reps):
            cell = simulate_cell(500, k, 0.05, 0.02, rng)
            p, lo, _ = _verdict(cell)
            hits += p < ALPHA and lo > 0
        detected[k] = hits / reps
    assert 0.25 <= detected[3] < detected[5] <= 0.99, detected
