"""The statistics checked against scipy and against simulation: tests that fail if the maths is wrong."""

import numpy as np
import pytest
from scipy import stats as sps

from capgap.analysis import stats


@pytest.mark.parametrize("improved,regressed", [(0, 0), (1, 0), (7, 5), (14, 6), (16, 6), (30, 2), (0, 12), (50, 50)])
def test_mcnemar_matches_scipy_exact_binomial_test(improved, regressed):
    expected = 1.0 if improved + regressed == 0 else sps.binomtest(improved, improved + regressed, 0.5).pvalue
    assert stats.mcnemar_exact(improved, regressed) == pytest.approx(expected, rel=1e-9)


def test_one_seed_paired_test_is_mcnemar_and_the_sign_flip_reduces_to_it():
    rng = np.random.default_rng(1)
    pre, post = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    b, c = int(((post == 1) & (pre == 0)).sum()), int(((post == 0) & (pre == 1)).sum())
    test = stats.paired_test(pre, post)
    assert (test.improved, test.regressed, test.name) == (b, c, "exact McNemar")
    assert test.p == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue)
    assert stats.sign_flip_p((post - pre).astype(float)) == pytest.approx(test.p)


def test_paired_bootstrap_ci_covers_the_true_gain_93_to_97_percent():
    # Items drawn from a population of (pre, post) pairs with a known gain: P(0->1) - P(1->0) = 0.12 - 0.05.
    rng = np.random.default_rng(7)
    probs = {(0, 0): 0.45, (0, 1): 0.12, (1, 0): 0.05, (1, 1): 0.38}
    outcomes, p = list(probs), list(probs.values())
    true_gain, covered, reps = 0.12 - 0.05, 0, 1000
    for rep in range(reps):
        draw = np.array(outcomes)[rng.choice(4, size=150, p=p)]
        lo, hi = stats.paired_bootstrap_ci(draw[:, 0], draw[:, 1], resamples=2000, seed=rep)
        covered += lo <= true_gain <= hi
    assert 0.93 <= covered / reps <= 0.97


def test_the_seed_aware_test_keeps_its_level_when_noise_differs_between_seeds():
    # Null: post has the same per-item accuracy as pre. With 2 seeds a sign test would count an item as
    # improved when either seed gets it; the sign-flip test must still reject about 5% of the time.
    rng = np.random.default_rng(3)
    rejections, reps = 0, 400
    for _ in range(reps):
        easy = rng.random(200)
        pre = (rng.random(200) < easy * 0.4).astype(float)
        post = (rng.random((2, 200)) < easy * 0.4).astype(float)
        change = post.mean(axis=0) - pre
        rejections += stats.sign_flip_p(change, flips=2000, seed=1) < 0.05
    assert rejections / reps <= 0.08


def test_bootstrap_with_seeds_widens_when_seeds_disagree():
    rng = np.random.default_rng(5)
    pre = (rng.random(300) < 0.3).astype(int)
    agree = np.stack([pre, pre])
    agree[:, :30] = 1  # both seeds fix the same 30 items
    disagree = np.stack([pre.copy(), pre.copy()])
    disagree[0, :60] = 1  # one seed fixes 60, the other none: same mean gain
    lo_a, hi_a = stats.paired_bootstrap_ci(pre, agree, resamples=4000)
    lo_d, hi_d = stats.paired_bootstrap_ci(pre, disagree, resamples=4000)
    assert hi_d - lo_d > 1.5 * (hi_a - lo_a)


def test_holm_matches_a_hand_computed_example():
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_power_matches_simulation_and_the_mde_is_the_smallest_effect_with_80_percent_power():
    n, discordance = 200, 0.12
    mde = stats.minimal_detectable_effect(n, discordance)
    assert stats.mcnemar_power(n, discordance, mde) >= 0.8 > stats.mcnemar_power(n, discordance, mde - 1 / n)
    rng = np.random.default_rng(11)
    up, down = (discordance + mde) / 2, (discordance - mde) / 2
    counts = rng.multinomial(n, [up, down, 1 - up - down], size=4000)
    simulated = np.mean([stats.mcnemar_exact(b, c) <= 0.05 for b, c, _ in counts])
    assert simulated == pytest.approx(stats.mcnemar_power(n, discordance, mde), abs=0.025)
    assert stats.minimal_detectable_effect(4 * n, discordance) < mde  # more items, smaller detectable gains


def test_spearman_p_is_exact_for_few_teachers():
    assert stats.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx((1.0, 2 / 6))  # 2 of 6 orderings as extreme
    rho, p = stats.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert rho == pytest.approx(sps.spearmanr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]).statistic)
    from itertools import permutations

    extreme = [abs(sps.spearmanr([1, 2, 3, 4, 5], y).statistic) >= abs(rho) - 1e-12
               for y in permutations([2, 1, 4, 3, 5])]
    assert p == pytest.approx(sum(extreme) / len(extreme))
    assert stats.spearman([1, 2], [1, 2]) == (None, None) and stats.spearman([1, 1, 1], [1, 2, 3]) == (None, None)
