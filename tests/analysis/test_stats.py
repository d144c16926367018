"""The statistics checked against scipy, statsmodels and simulation: tests that fail if the maths is wrong."""

from itertools import permutations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from capgap.analysis import power, seedaware, stats
from capgap.analysis.simulate import simulate_cell


@pytest.mark.parametrize("improved,regressed", [(0, 0), (1, 0), (7, 5), (14, 6), (16, 6), (30, 2), (0, 12), (50, 50)])
def test_mcnemar_matches_scipy_exact_binomial_test(improved, regressed):
    expected = 1.0 if improved + regressed == 0 else sps.binomtest(improved, improved + regressed, 0.5).pvalue
    assert stats.mcnemar_exact(improved, regressed) == pytest.approx(expected, rel=1e-9)


def test_mean_squares_match_statsmodels_two_way_anova():
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    cell = simulate_cell(12, 4, 0.05, 0.03, np.random.default_rng(0))
    d = cell.post - cell.pre
    frame = pd.DataFrame([{"d": d[s, i], "seed": s, "item": i} for s in range(4) for i in range(12)])
    table = anova_lm(ols("d ~ C(item) + C(seed)", data=frame).fit())
    ms = seedaware.mean_squares(d)
    assert ms.item == pytest.approx(table.loc["C(item)", "mean_sq"], rel=1e-9)
    assert ms.seed == pytest.approx(table.loc["C(seed)", "mean_sq"], rel=1e-9)
    assert ms.residual == pytest.approx(table.loc["Residual", "mean_sq"], rel=1e-9)
    assert table.loc["Residual", "df"] == 11 * 3


def test_the_variance_and_satterthwaite_df_follow_the_formulas():
    d = simulate_cell(300, 4, 0.0, 0.04, np.random.default_rng(3))
    test = seedaware.cell_test(d.pre, d.post)
    ms, n, k = test.ms, 300, 4
    assert ms.seed > ms.residual  # the seed term is in V here
    v = (ms.item + ms.seed - ms.residual) / (n * k)
    df = (ms.item + ms.seed - ms.residual) ** 2 / (ms.item ** 2 / (n - 1) + ms.seed ** 2 / (k - 1)
                                                    + ms.residual ** 2 / ((n - 1) * (k - 1)))
    assert test.t.variance == pytest.approx(v) and test.t.df == pytest.approx(df)
    half = sps.t.ppf(0.975, df) * np.sqrt(v)
    assert test.ci95 == pytest.approx([ms.mean - half, ms.mean + half])
    assert test.p_value == pytest.approx(2 * sps.t.sf(abs(ms.mean) / np.sqrt(v), df))


def test_truncation_keeps_the_item_part_and_few_seeds_take_k_minus_1_df():
    rng = np.random.default_rng(4)
    pre = (rng.random(400) < 0.3).astype(int)
    same = np.stack([pre, pre, pre])
    same[:, :40] = 1  # every seed fixes the same 40 items: no seed spread at all
    t = seedaware.cell_test(pre, same)
    assert t.ms.seed == 0 and t.t.variance == pytest.approx(t.ms.item / (400 * 3))
    spread = np.stack([pre.copy(), pre.copy(), pre.copy()])
    spread[0, :10], spread[1, :40], spread[2, :70] = 1, 1, 1  # same mean gain, seeds disagree
    s = seedaware.cell_test(pre, spread)
    assert s.ms.seed > s.ms.residual and s.t.df == 2  # k = 3: the seed mean square's own df
    assert s.ci95[1] - s.ci95[0] > 3 * (t.ci95[1] - t.ci95[0])


def test_one_seed_is_the_paired_t_test_and_says_so():
    rng = np.random.default_rng(1)
    pre, post = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    test = seedaware.cell_test(pre, post)
    expected = sps.ttest_rel(post, pre)
    assert test.p_value == pytest.approx(expected.pvalue) and test.t.df == 199
    assert test.ci95 == pytest.approx(list(expected.confidence_interval(0.95)))
    assert test.scope == "1 seed: speaks for this training run only"


def test_the_difference_of_a_cell_and_a_null_cell_is_the_cell_itself():
    cell = simulate_cell(250, 3, 0.04, 0.02, np.random.default_rng(8))
    d = cell.post - cell.pre
    alone = seedaware.cell_test(cell.pre, cell.post).t
    versus = seedaware.difference_test(d, np.zeros((2, 250)))
    assert (versus.estimate, versus.variance, versus.df) == pytest.approx((alone.estimate, alone.variance, alone.df))
    assert seedaware.difference_test(d, d).estimate == 0


def test_the_seed_aware_test_keeps_its_level_with_seed_variance_and_is_not_blind():
    # Null: mu = 0, but each of 5 seeds has its own true gain (SD 3 pp). Rejections must stay near 5%:
    # above 1% (the test can reject at all) and at most 5% + 2 Monte Carlo SE.
    rng = np.random.default_rng(3)
    reps = 500
    rejections = sum(seedaware.cell_test(c.pre, c.post).p_value < 0.05
                     for c in (simulate_cell(200, 5, 0.0, 0.03, rng) for _ in range(reps)))
    assert 0.01 <= rejections / reps <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / reps)


def test_holm_matches_a_hand_computed_example():
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@pytest.fixture(scope="module")
def components_at_five_points():
    """The simulation's variance components at a 5 pp gain, from one very large cell."""
    cell = simulate_cell(20000, 30, 0.05, 0.0, np.random.default_rng(10))
    return seedaware.mean_squares(cell.post - cell.pre).components


@pytest.mark.parametrize("n,k,sigma", [(500, 3, 0.0), (150, 3, 0.02), (300, 5, 0.02), (150, 1, 0.0)])
def test_power_matches_simulation(components_at_five_points, n, k, sigma):
    truth = components_at_five_points
    comps = power.Components(truth["item"], sigma ** 2, truth["residual"])
    rng = np.random.default_rng(11)
    reps, hits = 600, 0
    for _ in range(reps):
        c = simulate_cell(n, k, 0.05, sigma, rng)
        t = seedaware.cell_test(c.pre, c.post)
        hits += t.p_value < 0.05 and t.t.estimate > 0
    assert hits / reps == pytest.approx(power.power(0.05, comps, n, k), abs=0.05)


def test_the_mde_is_the_smallest_gain_with_80_percent_power_and_shrinks_with_items_and_seeds():
    comps = power.Components(item=0.02, seed=0.0004, residual=0.10)
    mde = power.minimal_detectable_effect(comps, 300, 3, alpha=0.05 / 4)
    assert power.power(mde, comps, 300, 3, 0.05 / 4) == pytest.approx(0.8, abs=1e-3)
    assert power.power(mde - 0.005, comps, 300, 3, 0.05 / 4) < 0.8
    assert power.minimal_detectable_effect(comps, 1200, 3, 0.05 / 4) < mde
    assert power.minimal_detectable_effect(comps, 300, 6, 0.05 / 4) < mde
    needed = power.items_needed(mde, comps, 3, 0.05 / 4)
    assert abs(needed - 300) <= 3
    assert power.items_needed(0.01, power.Components(0.02, 0.01, 0.1), 2) is None  # seed variance rules it out


def test_spearman_p_is_exact_for_few_teachers():
    assert stats.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx((1.0, 2 / 6))  # 2 of 6 orderings as extreme
    rho, p = stats.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert rho == pytest.approx(sps.spearmanr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]).statistic)
    extreme = [abs(sps.spearmanr([1, 2, 3, 4, 5], y).statistic) >= abs(rho) - 1e-12
               for y in permutations([2, 1, 4, 3, 5])]
    assert p == pytest.approx(sum(extreme) / len(extreme))
    assert stats.spearman([1, 2], [1, 2]) == (None, None) and stats.spearman([1, 1, 1], [1, 2, 3]) == (None, None)
