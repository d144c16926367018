"""Small exact statistics shared by the analyses: McNemar's exact test, Holm's correction, rank correlations.

The verdict's own test, CI and power live in `capgap.analysis.seedaware` and `capgap.analysis.power`.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8


def mcnemar_exact(improved: int, regressed: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (items only post got right / only pre)."""
    d = improved + regressed
    if d == 0:
        return 1.0
    return float(min(1.0, 2 * stats.binom.cdf(min(improved, regressed), d, 0.5)))


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
