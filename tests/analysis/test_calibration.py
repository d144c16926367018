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


# Families: one student trained from four teachers on the same items, seed variance pooled across them
# (`capgap.analysis.seedaware.family_tests`), Holm across the four as the report does.

def _family_run(n: int, k: int, mus: list[float], sigmas: list[float], reps: int, seed: int) -> dict:
    from capgap.analysis.seedaware import family_tests
    from capgap.analysis.simulate import simulate_family
    from capgap.analysis.stats import holm

    rng = np.random.default_rng(seed)
    m = len(mus)
    rejected, raw, covered, pooled = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    for _ in range(reps):
        cells = simulate_family(n, k, mus, sigmas, rng)
        tests = family_tests([c.post - c.pre for c in cells])
        for j, (t, p) in enumerate(zip(tests, holm([t.p_value for t in tests]), strict=True)):
            lo, hi = t.ci95
            rejected[j] += p < ALPHA
            raw[j] += t.p_value < ALPHA
            covered[j] += lo <= mus[j] <= hi
            pooled[j] += t.seed_variance.startswith("pooled")
            assert (t.p_value < ALPHA) == (not lo <= 0 <= hi)  # the CI and the test agree
    return {"rejected": rejected / reps, "raw": raw / reps, "coverage": covered / reps, "pooled": pooled / reps}


@pytest.mark.parametrize("k", [2, 3, 5])
def test_pooled_seed_variance_keeps_the_level_and_coverage(k):
    reps = 300
    r = _family_run(300, k, [0.0] * 4, [0.02] * 4, reps, seed=10 + k)
    se_false, se_cov = _se(ALPHA, reps), _se(1 - ALPHA, reps)
    assert r["raw"].mean() <= ALPHA + 2 * se_false, r  # each test at its own level, before Holm
    assert 0.93 - 2 * se_cov <= r["coverage"].mean() <= 0.97 + 2 * se_cov, r
    assert 0.6 <= r["pooled"].mean() < 1.0, r  # most cells pool; a few keep their own (the F test's level)


def test_pooling_lifts_power_where_the_per_cell_seed_df_cannot():
    # n = 500, k = 3, sigma_seed = 2 pp, two of four teachers at +5 pp, Holm across four: the per-cell test
    # (2 seed df, t = 4.3) finds them about a quarter of the time; pooled (up to 8 seed df) about half (the
    # calibration bench: 49% over 300 families); the bound leaves 2.5 Monte Carlo SE below that
    reps = 200
    r = _family_run(500, 3, [0.05, 0.05, 0.0, 0.0], [0.02] * 4, reps, seed=20)
    assert 0.40 <= r["rejected"][:2].mean() <= 0.80, r
    assert r["raw"][2:].mean() <= ALPHA + 2 * _se(ALPHA, reps), r  # the null teachers beside them, before Holm
    rng, hits = np.random.default_rng(21), 0
    for _ in range(reps):
        p, lo, _ = _verdict(simulate_cell(500, 3, 0.05, 0.02, rng))
        hits += p < ALPHA / 4 and lo > 0  # the same Holm level, per cell
    assert hits / reps < r["rejected"][:2].mean() - 0.1, (hits / reps, r)


def test_a_teacher_whose_seeds_scatter_four_times_more_mostly_keeps_its_own_estimate():
    reps = 300
    r = _family_run(300, 5, [0.0] * 4, [0.01, 0.01, 0.01, 0.04], reps, seed=30)
    assert r["pooled"][3] <= 0.35 and r["pooled"][:3].mean() >= 0.6, r
    assert r["raw"][3] <= ALPHA + 2 * _se(ALPHA, reps), r
    assert r["coverage"][3] >= 0.93 - 2 * _se(1 - ALPHA, reps), r
    assert r["coverage"][:3].mean() >= 0.95, r  # the pool includes the noisy teacher: the others err wide


def test_the_power_model_predicts_the_pooled_tests_power():
    # capgap plan and the MDE use `power.power(..., cells=m)`: it must match what the pooled test does
    from capgap.analysis import power

    reps = 300
    r = _family_run(500, 3, [0.05] * 4, [0.02] * 4, reps, seed=40)
    c = power.Components(item=0.023, seed=0.02 ** 2, residual=0.125)  # what simulate_family gives here (measured)
    predicted = power.power(0.05, c, 500, 3, ALPHA, cells=4)
    alone = power.power(0.05, c, 500, 3, ALPHA, cells=1)
    observed = float(r["raw"].mean())  # each test at ALPHA, as the power model computes it
    assert alone < predicted and abs(observed - predicted) < 0.10, (observed, predicted, alone)
