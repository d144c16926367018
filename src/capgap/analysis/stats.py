"""Paired statistics for `post - pre` on the same test items: bootstrap CIs, exact tests, Holm, power.

Every number here is about *paired* per-item correctness: the student before distillation (one greedy
run) against the same student after distillation (one run per training seed), on the same items.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
RESAMPLES = 10_000
_CHUNK = 1_000  # bootstrap resamples drawn at once: bounds memory at ~_CHUNK x n_items indices


def bootstrap_difference(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of mean(a) - mean(b), where a and b are (seeds, items) 0/1 on the same items.

    Each resample draws the items with replacement once, shared by a and b (the pairing), and, for each
    side independently, its seeds with replacement, so the spread carries test-set and training-run noise.
    """
    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    n = a.shape[1]
    if n == 0 or b.shape[1] != n:
        raise ValueError("both sides need the same, non-empty list of items")
    rng = np.random.default_rng(seed)
    estimates = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        m = min(_CHUNK, resamples - start)
        items = rng.integers(0, n, size=(m, n))
        estimates[start:start + m] = _seed_resampled_mean(a, items, rng) - _seed_resampled_mean(b, items, rng)
    return estimates


def _seed_resampled_mean(x: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    per_seed = np.stack([row[items].mean(axis=1) for row in x], axis=1)  # (resamples, seeds)
    n_seeds = x.shape[0]
    if n_seeds == 1:
        return per_seed[:, 0]
    drawn = rng.integers(0, n_seeds, size=(items.shape[0], n_seeds))
    weights = np.stack([(drawn == k).sum(axis=1) for k in range(n_seeds)], axis=1) / n_seeds
    return (per_seed * weights).sum(axis=1)


def percentile_ci(estimates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2
    lo, hi = np.quantile(estimates, [tail, 1 - tail])
    return float(lo), float(hi)


def paired_bootstrap_ci(pre: np.ndarray, post: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of mean(post) - mean(pre): pre (items,) is one greedy run, post (seeds, items)."""
    return percentile_ci(bootstrap_difference(post, pre, resamples=resamples, seed=seed), level)


def mcnemar_exact(improved: int, regressed: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (items only post got right / only pre)."""
    d = improved + regressed
    if d == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(improved, regressed), d, 0.5)))


@dataclass(frozen=True)
class PairedTest:
    improved: int  # items where post (mean over seeds) beats pre
    regressed: int  # items where pre beats post
    p: float
    name: str


FLIPS = 20_000  # Monte Carlo sign flips for several seeds: p resolution ~5e-5


def sign_flip_p(change: np.ndarray, *, flips: int = FLIPS, seed: int = 0) -> float:
    """Two-sided paired randomization test of sum(change) = 0: each item's change may flip its sign under H0.

    With changes in {-1, 0, +1} (one seed) this is McNemar's exact test, computed exactly; otherwise Monte
    Carlo with the (1 + hits) / (1 + flips) correction, so p is never 0.
    """
    nonzero = change[change != 0]
    if np.all(np.abs(nonzero) == 1):
        return mcnemar_exact(int((nonzero > 0).sum()), int((nonzero < 0).sum()))
    observed = abs(nonzero.sum())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, flips, _CHUNK):
        m = min(_CHUNK, flips - start)
        signs = rng.integers(0, 2, size=(m, nonzero.size)) * 2 - 1
        hits += int((np.abs(signs @ nonzero) >= observed - 1e-9).sum())
    return (1 + hits) / (1 + flips)


def paired_test(pre: np.ndarray, post: np.ndarray) -> PairedTest:
    """Exact McNemar with one seed; with several, the sign-flip test on each item's mean-over-seeds change.

    A sign test on those changes would be wrong with several seeds: items the baseline missed count as
    improved when *any* seed gets them, so noise alone would look like a gain. The sign-flip test weighs
    each change by its size.
    """
    post = np.atleast_2d(post).astype(float)
    change = post.mean(axis=0) - np.asarray(pre, dtype=float)
    improved, regressed = int((change > 0).sum()), int((change < 0).sum())
    seeds = post.shape[0]
    name = "exact McNemar" if seeds == 1 else f"paired sign-flip test on per-item mean of {seeds} seeds"
    return PairedTest(improved, regressed, sign_flip_p(change), name)  # exactly McNemar with one seed


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given), monotone and capped at 1."""
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return [float(a) for a in adjusted]


def _critical_counts(d: np.ndarray, alpha: float) -> np.ndarray:
    """Per discordant count d: the largest k with 2 * P(Bin(d, 1/2) <= k) <= alpha (-1 when none)."""
    k = stats.binom.ppf(alpha / 2, d, 0.5).astype(int)
    over = 2 * stats.binom.cdf(k, d, 0.5) > alpha
    return np.where(over, k - 1, k)


def mcnemar_power(n: int, discordance: float, effect: float, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided exact McNemar test on n items.

    discordance: the share of items whose correctness changes; effect: improved share - regressed share
    (the true gain). Sums over the binomial number of discordant items, each with its exact critical region.
    """
    psi = min(1.0, max(discordance, abs(effect)))
    if psi == 0:
        return 0.0
    d = np.arange(n + 1)
    k = _critical_counts(d, alpha)
    q = (psi + effect) / (2 * psi)  # chance a discordant item is an improvement
    reject = stats.binom.cdf(k, d, q) + stats.binom.sf(d - k - 1, d, q)
    reject = np.where(k >= 0, reject, 0.0)
    return float((stats.binom.pmf(d, n, psi) * reject).sum())


def minimal_detectable_effect(n: int, discordance: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest gain (a share of items, step 1/n) the exact McNemar test detects with `power`.

    discordance is taken from the measured cell and raised to the effect when smaller (an effect needs at
    least that many changed items). Returns 1.0 when even a sweep of every item would not reach `power`.
    """
    for count in range(1, n + 1):
        if mcnemar_power(n, discordance, count / n, alpha) >= power:
            return count / n
    return 1.0


EXACT_SPEARMAN_MAX_N = 8  # up to 8! = 40,320 orderings: enumerate them rather than trust an asymptotic p


def spearman(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """Spearman's rho and its two-sided p-value; (None, None) with fewer than 3 points or a constant variable.

    With few points (a study's teachers) the p-value is exact, by enumerating every ordering of y: scipy's
    t approximation calls rho = 1 on 3 points p = 0, where the exact answer is 1/3.
    """
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None, None
    rho = float(stats.spearmanr(x, y).statistic)
    if len(x) > EXACT_SPEARMAN_MAX_N:
        return rho, float(stats.spearmanr(x, y).pvalue)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    orderings = np.array(list(permutations(ry)))
    rx_c, ry_c = rx - rx.mean(), orderings - orderings.mean(axis=1, keepdims=True)
    rhos = ry_c @ rx_c / np.sqrt((ry_c ** 2).sum(axis=1) * (rx_c ** 2).sum())
    return rho, float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def kendall(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.kendalltau(x, y).statistic)
