"""Power and minimal detectable effects of the seed-aware test, from variance components.

Given variance components (item sigma_a^2, seed sigma_b^2, residual sigma_e^2 of d = post - pre, in shares^2)
the power of the seed-aware test (`capgap.analysis.seedaware`) for a true gain delta on n items and k seeds
is computed in the model's normal approximation: the mean gain is N(delta, Var) with
Var = (E_item + E_seed - E_res) / (nk), MS_item and MS_res are taken at their expectations (they have many
degrees of freedom), and MS_seed = E_seed * X / (k - 1) with X ~ chi-square(k - 1). The test's V, df and
critical value depend on MS_seed exactly as in the test (truncation, Satterthwaite, small-seed rules), so
the power averages the rejection probability over X (200-point quadrature on X's quantiles). With the seed
variance pooled over m cells of a family, X ~ chi-square(m (k - 1)), as the test reads it; as a cell keeps
its own estimate when its seed spread exceeds its family's (about POOL_LEVEL of the time when the family's
cells are alike), the power is that mixture: (1 - POOL_LEVEL) pooled + POOL_LEVEL own. With one seed
the estimand is the run's gain and the power is the noncentral t's (df n - 1, Var = (sigma_a^2 +
sigma_e^2) / n). This is the variance-components power analysis of Miller 2024 (arXiv 2411.00640, "power
analysis"), with the test's own df.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from capgap.analysis.seedaware import POOL_LEVEL, SeedTerm, combined
from capgap.analysis.stats import ALPHA, POWER

_NODES = 200
MAX_ITEMS = 1_000_000


@dataclass(frozen=True)
class Components:
    """Variance components of d = post - pre (shares^2): item, seed (training run) and residual."""

    item: float
    seed: float
    residual: float

    @property
    def per_item(self) -> float:
        """Variance of d for one item and one seed around the mean gain, seed effect aside."""
        return self.item + self.residual


def power(delta: float, c: Components, n: int, k: int, alpha: float = ALPHA, cells: int = 1) -> float:
    """Probability that the seed-aware test on n items and k seeds rejects at level alpha for true gain delta,
    its seed variance pooled over `cells` cells of a family (1: the cell's own)."""
    if n < 2:
        return 0.0
    if k == 1:
        v = c.per_item / n
        if v <= 0:
            return 1.0 if delta != 0 else alpha
        df = n - 1
        crit = stats.t.ppf(1 - alpha / 2, df)
        ncp = abs(delta) / np.sqrt(v)
        exact = stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp)
        if np.isfinite(exact):
            return float(exact)
        return float(stats.norm.sf(crit - ncp) + stats.norm.cdf(-crit - ncp))  # far tails: scipy's nct gives nan
    if cells > 1:  # the cell pools unless its seed spread exceeds its family's: about POOL_LEVEL of the time
        return ((1 - POOL_LEVEL) * _seed_aware_power(delta, c, n, k, alpha, cells)
                + POOL_LEVEL * _seed_aware_power(delta, c, n, k, alpha, 1))
    return _seed_aware_power(delta, c, n, k, alpha, 1)


def _seed_aware_power(delta: float, c: Components, n: int, k: int, alpha: float, cells: int) -> float:
    """The power of the k > 1 test with its seed mean square averaged over `cells` cells."""
    e_item, e_res = c.residual + k * c.item, c.residual
    e_seed = c.residual + n * c.seed
    truth = (e_item + e_seed - e_res) / (n * k)
    if truth <= 0:
        return 1.0 if delta != 0 else alpha
    seed_df = cells * (k - 1)
    v, df = combined(e_item / (n * k), n, [SeedTerm(k, n, e_seed * _chi2_nodes(seed_df), e_res, cells=cells)])
    half = stats.t.ppf(1 - alpha / 2, df) * np.sqrt(v)
    sd = np.sqrt(truth)
    return float(np.mean(stats.norm.cdf((delta - half) / sd) + stats.norm.cdf((-delta - half) / sd)))


@lru_cache(maxsize=64)
def _chi2_nodes(df: int) -> np.ndarray:
    """_NODES equal-probability quadrature points of chi-square(df) / df."""
    return stats.chi2.ppf((np.arange(_NODES) + 0.5) / _NODES, df) / df


def minimal_detectable_effect(c: Components, n: int, k: int, alpha: float = ALPHA,
                              target: float = POWER, cells: int = 1) -> float:
    """The smallest true gain (share) detected with `target` power; 1.0 when not even a gain of 100 pp is.
    With no measured variance at all, the resolution of the design, 1 / (n k)."""
    if power(1.0, c, n, k, alpha, cells) < target:
        return 1.0
    resolution = 1 / (max(n, 1) * max(k, 1))
    if power(resolution, c, n, k, alpha, cells) >= target:
        return resolution
    return float(optimize.brentq(lambda d: power(d, c, n, k, alpha, cells) - target, resolution, 1.0, xtol=1e-5))


def items_needed(delta: float, c: Components, k: int, alpha: float = ALPHA, target: float = POWER,
                 cells: int = 1) -> int | None:
    """The fewest test items that detect a true gain `delta` with `target` power on k seeds; None when no
    number of items up to MAX_ITEMS does.

    Power need not rise with n: as items grow, the seed term dominates the variance and the degrees of
    freedom fall towards k - 1, so power can peak at a moderate n and sink after it. The search therefore
    scans a doubling grid for the first n that reaches `target` and bisects below it, instead of assuming
    that power at MAX_ITEMS bounds every smaller n."""
    lo, hi = 2, 2
    while power(delta, c, hi, k, alpha, cells) < target:
        if hi >= MAX_ITEMS:
            return None
        lo, hi = hi, min(hi * 2, MAX_ITEMS)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power(delta, c, mid, k, alpha, cells) >= target else (mid, hi)
    return hi


def pooled(cells: list[dict]) -> tuple[Components | None, dict]:
    """Variance components pooled over cells (each with `mean_squares`, `seeds`, `n_items`), and how.

    Item and residual parts: weighted by each cell's item df. Seed variance: pooled over the cells with at
    least two seeds, weighted by their seed df (k - 1), i.e. assumed the same for every teacher and protocol
    of the study. One-seed cells cannot split item from residual variance: when no cell has two seeds, the
    whole per-item variance is counted as item variance (conservative: more seeds then do not shrink it).
    """
    trained = [g for g in cells if g.get("mean_squares") and g["n_items"] >= 2]
    if not trained:
        return None, {"cells": 0}
    multi = [g for g in trained if len(g["seeds"]) > 1]
    w_item = [g["n_items"] - 1 for g in trained]
    per_item = float(np.average([_per_item(g) for g in trained], weights=w_item))
    how = {"cells": len(trained), "cells_with_seeds": len(multi)}
    if not multi:
        return Components(item=per_item, seed=0.0, residual=0.0), {**how, "seed": None, "split": "all item"}
    wk = [len(g["seeds"]) - 1 for g in multi]
    seed = max(0.0, float(np.average([(g["mean_squares"]["seed"] - g["mean_squares"]["residual"]) / g["n_items"]
                                      for g in multi], weights=wk)))
    residual = float(np.average([g["mean_squares"]["residual"] for g in multi], weights=wk))
    item = max(0.0, per_item - residual)
    return Components(item=item, seed=seed, residual=min(residual, per_item)), {**how, "seed": seed, "split": "pilot"}


def _per_item(g: dict) -> float:
    """sigma_a^2 + sigma_e^2 of one cell: MS_item itself with one seed, else (MS_item - MS_res)/k + MS_res."""
    ms, k = g["mean_squares"], len(g["seeds"])
    if k == 1:
        return ms["item"]
    return max(0.0, (ms["item"] - ms["residual"]) / k) + ms["residual"]
