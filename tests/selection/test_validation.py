"""The validation of predictors against realized gains, checked on simulated grids with known truth (items and
seeds noisy as in the calibration bench): an unrelated predictor's CI covers 0, a faithful one's excludes it."""

import numpy as np
import pytest
from scipy import stats

from capgap.analysis.predictive import _rowwise, validate_family
from capgap.selection.simulate import SimulatedGrid, teacher_means


def _family(truth: SimulatedGrid, values: dict[str, float]):
    d = truth.measure(list(truth.means), 3, truth.steps, truth.n_items)
    groups = [{"teacher": t, "gain": float(x.mean()), "gain_by_seed": x.mean(axis=1).tolist()} for t, x in d.items()]
    # rsr: lower predicts a larger gain, so a faithful predictor is minus the true gain
    predictions = [{"teacher": t, "scores": {"rsr": v}} for t, v in values.items()]
    return validate_family(groups, predictions)


@pytest.mark.parametrize("n_teachers,power", [(6, 0.2), (12, 0.8)])
def test_unrelated_predictors_cover_zero_and_faithful_ones_exclude_it(n_teachers, power):
    """Resampling teachers makes the CI honest and wide: with 6 teachers a faithful predictor's CI excludes
    0 in about a third of grids (so a study with few teachers gets a wide interval, not a false claim)."""
    covered, excluded, regrets_faithful, regrets_unrelated = 0, 0, [], []
    reps = 60
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        truth = SimulatedGrid(teacher_means(n_teachers, 0.12, rng), 0.02, 0.0, 300, 16, rng)
        unrelated = _family(truth, {t: float(rng.random()) for t in truth.means})["predictors"]["rsr"]
        lo, hi = unrelated["spearman_ci95"]
        covered += lo <= 0 <= hi
        regrets_unrelated.append(unrelated["regret_pp"])
        family = _family(truth, {t: -m for t, m in truth.means.items()})
        faithful = family["predictors"]["rsr"]
        excluded += faithful["spearman_ci95"][0] > 0
        regrets_faithful.append(faithful["regret_pp"])
        realized = {t: 100 * g for t, g in zip(family["teachers"], family["realized_gain"], strict=True)}
        assert faithful["pick"] == truth.best  # the predictor's own pick: the truly best teacher
        assert faithful["regret_pp"] == pytest.approx(max(realized.values()) - realized[truth.best])
    assert covered / reps >= 0.85
    assert excluded / reps >= power
    assert np.mean(regrets_faithful) < np.mean(regrets_unrelated) / 3


def test_too_few_teachers_give_no_validation():
    rng = np.random.default_rng(0)
    truth = SimulatedGrid(teacher_means(2, 0.1, rng), 0.02, 0.0, 100, 16, rng)
    assert _family(truth, {t: 0.0 for t in truth.means}) is None


def test_the_vectorised_rank_correlations_equal_scipys_with_ties():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 4, (40, 6)).astype(float), rng.random((40, 6))
    y[3] = 1.0  # a constant row: no correlation
    rho, tau = _rowwise(x, y)
    for k in range(40):
        np.testing.assert_allclose([rho[k], tau[k]], [stats.spearmanr(x[k], y[k]).statistic,
                                                      stats.kendalltau(x[k], y[k]).statistic], atol=1e-12)


def test_a_tie_at_the_top_picks_no_teacher_and_costs_the_mean_regret_of_the_tied():
    groups = [{"teacher": t, "gain": g, "gain_by_seed": [g, g]} for t, g in (("a", 0.05), ("b", 0.01), ("c", 0.0))]
    predictions = [{"teacher": t, "scores": {"usable": u}} for t, u in (("a", 100), ("b", 100), ("c", 50))]
    usable = validate_family(groups, predictions)["predictors"]["usable"]
    assert usable["pick"] is None and usable["top1_hit"] is None
    assert usable["regret_pp"] == pytest.approx((0.0 + 4.0) / 2)
