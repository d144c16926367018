"""The seed-aware verdict: does distilling from this teacher help this student on this task?

Model (balanced k seeds x n test items). For seed s and item i, d_si = post_si - pre_si in {-1, 0, 1} and

    d_si = mu + a_i + b_s + e_si,

with crossed random item effects a_i (variance sigma_a^2: the test items are a sample of the task), random
seed effects b_s (sigma_b^2: each training run is a draw from the recipe's runs) and residuals e_si
(sigma_e^2: item x seed). mu, the estimand, is the gain of the recipe over the population of items and
training seeds. The two-way ANOVA mean squares have expectations
E[MS_item] = sigma_e^2 + k sigma_a^2 (df n-1), E[MS_seed] = sigma_e^2 + n sigma_b^2 (df k-1) and
E[MS_res] = sigma_e^2 (df (n-1)(k-1)), so Var(mean d) = (E[MS_item] + E[MS_seed] - E[MS_res]) / (nk) is
estimated by

    V = [MS_item + max(0, MS_seed - MS_res)] / (n k).

The truncation keeps V at least the item-only part (the untruncated unbiased form under-covers when the
seed mean square is small by chance: see README and bench/calibration.py). The reference is Student's t
with Satterthwaite (1946) degrees of freedom over the three mean squares, with two small-seed rules that the
calibration bench selected:

- seed df <= 2 (k <= 3) and the seed term is in V (MS_seed > MS_res): df = the seed df. A mean square
  with 1 or 2 df has its density highest at 0, so a seed mean square that is small by chance is common,
  and Satterthwaite's df, which grows as it shrinks, is then too large (false verdicts at 6-11% instead of 5%).
- seed df = 1 (k = 2): the df is computed with MS_seed at least MS_res (the model's own floor, sigma_b^2 >= 0): a
  chi-square with one df falls below a tenth of its mean 25% of the time, so a near-zero seed spread says
  little about the seed variance.

The seed variance is one quantity for the cells of a family (one student, task, protocol and recipe;
teachers differ): `pool_seed_terms` averages their seed and residual mean squares, so each rule above reads
the pool's seed df, m (k - 1), for k - 1, and a cell whose own seed spread is larger keeps its own.

CI = mean d +- t * sqrt(V), p from the same t, so the verdict and the CI never disagree. With ONE seed the
seed variance is not identifiable and the estimand is that run's own gain: V = MS_item / n with n - 1 df
(the paired t test on d_i). References: Miller 2024 (arXiv 2411.00640), Bouthillier et al. 2021 (MLSys),
Satterthwaite 1946.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from capgap.analysis.stats import ALPHA

ONE_SEED_SCOPE = "1 seed: speaks for this training run only"
POOL_LEVEL = 0.20  # a cell whose seed spread exceeds its family's at this level keeps its own (bench/calibration.py)


@dataclass(frozen=True)
class MeanSquares:
    """Two-way ANOVA of a (k seeds, n items) array without replication."""

    k: int
    n: int
    mean: float
    item: float  # df n - 1
    seed: float | None  # df k - 1 (None with one seed)
    residual: float | None  # df (n - 1)(k - 1)

    @property
    def components(self) -> dict:
        """Moment estimates of the variance components, each truncated at 0 (shares^2 per item and seed)."""
        if self.k == 1:
            return {"item": None, "seed": None, "residual": None, "item_plus_residual": self.item}
        item = max(0.0, (self.item - self.residual) / self.k)
        return {"item": item, "seed": max(0.0, (self.seed - self.residual) / self.n), "residual": self.residual,
                "item_plus_residual": item + self.residual}


def mean_squares(d: np.ndarray) -> MeanSquares:
    """MS_item, MS_seed, MS_res of d (k, n); with one seed only MS_item (the item variance of d)."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    k, n = d.shape
    grand = float(d.mean())
    items, seeds = d.mean(axis=0), d.mean(axis=1)
    ms_item = float(k * ((items - grand) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    if k == 1:
        return MeanSquares(1, n, grand, ms_item, None, None)
    ms_seed = float(n * ((seeds - grand) ** 2).sum() / (k - 1))
    residual = d - items[None, :] - seeds[:, None] + grand
    ms_res = float((residual ** 2).sum() / ((n - 1) * (k - 1))) if n > 1 else 0.0
    return MeanSquares(k, n, grand, ms_item, ms_seed, ms_res)


@dataclass(frozen=True)
class SeedTerm:
    """A seed contribution to a variance: MS_seed and MS_res on n items and k seeds, averaged over `cells`
    cells that share the seed variance (1: the cell's own), entering V `copies` times (2: the difference of
    two cells that share one pooled estimate). MS_seed may be an array (the power calculation evaluates the
    rules at many values at once)."""

    k: int
    n: int
    ms_seed: float | np.ndarray
    ms_res: float
    cells: int = 1
    copies: int = 1

    @property
    def df(self) -> int:
        """Degrees of freedom of MS_seed: (k - 1) per cell pooled."""
        return self.cells * (self.k - 1)

    @property
    def variance(self) -> float | np.ndarray:
        return self.copies * np.maximum(0.0, self.ms_seed - self.ms_res) / (self.n * self.k)

    def satterthwaite_denominator(self) -> float | np.ndarray:
        """This term's share of sum(piece^2 / df) in Satterthwaite's formula: MS_seed (floored at MS_res
        when it has one df) and MS_res with cells (n - 1)(k - 1) df, both scaled by copies / (nk)."""
        seed = np.maximum(self.ms_seed, self.ms_res) if self.df == 1 else self.ms_seed
        scale = self.n * self.k / self.copies
        return (seed / scale) ** 2 / self.df + (self.ms_res / scale) ** 2 / (self.cells * (self.n - 1) * (self.k - 1))


def combined(item_variance: float, n: int, seed_terms: list[SeedTerm]) -> tuple:
    """(V, df) for an item part (variance of a per-item mean / n, df n - 1) plus seed terms, by the rules in
    the module docstring: Satterthwaite's df, and the seed df for a term with at most 2 whose variance is in V."""
    v = item_variance + sum(t.variance for t in seed_terms)
    denominator = item_variance ** 2 / max(n - 1, 1) + sum(t.satterthwaite_denominator() for t in seed_terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denominator > 0, v * v / np.where(denominator > 0, denominator, 1.0), max(n - 1, 1))
    for t in seed_terms:
        if t.df <= 2:
            df = np.where(t.ms_seed > t.ms_res, np.minimum(df, t.df), df)
    df = np.maximum(df, 1.0)
    return (v, float(df)) if np.ndim(df) == 0 else (v, df)


@dataclass(frozen=True)
class TTest:
    """An estimate with its variance and t reference: p-value and CI from the same distribution."""

    estimate: float
    variance: float
    df: float

    @property
    def se(self) -> float:
        return float(np.sqrt(self.variance))

    @property
    def p_value(self) -> float:
        if self.variance <= 0:
            return 1.0 if self.estimate == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.estimate) / self.se, self.df))

    def ci(self, level: float = 0.95) -> list[float]:
        half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se if self.variance > 0 else 0.0
        return [self.estimate - half, self.estimate + half]


@dataclass(frozen=True)
class CellTest:
    ms: MeanSquares
    t: TTest
    name: str
    scope: str
    seed_variance: str = ""  # where the seed variance comes from: the cell's own seeds, or a pool of cells

    @property
    def p_value(self) -> float:
        return self.t.p_value

    @property
    def ci95(self) -> list[float]:
        return self.t.ci(0.95)


def seed_term(ms: MeanSquares) -> list[SeedTerm]:
    return [SeedTerm(ms.k, ms.n, ms.seed, ms.residual)] if ms.k > 1 else []


def pool_seed_terms(family: list[MeanSquares], level: float = POOL_LEVEL) -> list[tuple[SeedTerm | None, str]]:
    """Each cell's seed term, pooled over the cells of a family (same student, task, protocol and recipe;
    teachers differ) that share k seeds and n items, with how it was decided.

    Every such cell trains the same student the same way, so their seed variances are one quantity: the pool
    averages their MS_seed and MS_res (m (k - 1) seed df instead of k - 1; with 3 seeds and four teachers
    t's critical value falls from 4.3 to 2.3). A cell whose own seed spread exceeds the rest of its family's
    (one-sided F test of its MS_seed - MS_res against theirs, both shifted by the mean residual, p < `level`)
    keeps its own estimate: a teacher whose training runs scatter more is not credited with the others'
    steadiness. The pool still includes it (dropping high cells would bias the pool low), so the other cells'
    variance errs large, never small. bench/calibration.py checks both, with teachers whose seed SDs differ 4x.
    """
    out: list[tuple[SeedTerm | None, str]] = [
        (None, "one seed: none") if ms.k == 1 else (seed_term(ms)[0], "own seeds") for ms in family]
    shapes: dict[tuple[int, int], list[int]] = {}
    for j, ms in enumerate(family):
        if ms.k > 1 and ms.n > 1:
            shapes.setdefault((ms.k, ms.n), []).append(j)
    for (k, n), members in shapes.items():
        if len(members) < 2:
            continue
        m = len(members)
        residual = float(np.mean([family[j].residual for j in members]))
        adjusted = np.maximum([family[j].seed - family[j].residual + residual for j in members], 1e-12)
        rest = (adjusted.sum() - adjusted) / (m - 1)
        ps = stats.f.sf(adjusted / rest, k - 1, (m - 1) * (k - 1))
        term = SeedTerm(k, n, float(np.mean([family[j].seed for j in members])), residual, cells=m)
        for j, p in zip(members, ps, strict=True):
            if p < level:
                out[j] = (out[j][0], f"own seeds: its seed spread exceeds its family's (F test p={p:.2g})")
            else:
                out[j] = (term, f"pooled over {m} cells of this student, task and protocol ({term.df} seed df)")
    return out


def seed_aware_test(ms: MeanSquares, term: SeedTerm | None, how: str = "own seeds") -> CellTest:
    """The seed-aware test of a cell's mean gain, with its seed term (its own, a pooled one, or None)."""
    k, n = ms.k, ms.n
    if n < 2:
        return CellTest(ms, TTest(ms.mean, 1.0, 1.0), "too few items for a test", _scope(k), how)
    v, df = combined(ms.item / (n * k), n, [term] if term is not None else [])
    name = ("paired t on items (1 seed)" if k == 1 else
            f"seed-aware t: items x {k} seeds random effects, Satterthwaite df")
    return CellTest(ms, TTest(ms.mean, v, df), name, _scope(k), how)


def cell_test(pre: np.ndarray, post: np.ndarray) -> CellTest:
    """The seed-aware test of post - pre on one cell alone: pre and post are (k, n) 0/1 (pre may be (n,),
    shared by seeds)."""
    post = np.atleast_2d(np.asarray(post, dtype=float))
    pre = np.broadcast_to(np.asarray(pre, dtype=float), post.shape)
    ms = mean_squares(post - pre)
    return seed_aware_test(ms, (seed_term(ms) or [None])[0])


def family_tests(ds: list[np.ndarray], level: float = POOL_LEVEL) -> list[CellTest]:
    """The seed-aware tests of a family's cells (d = post - pre, each (k, n)), seed variance pooled where
    `pool_seed_terms` allows."""
    family = [mean_squares(d) for d in ds]
    terms = pool_seed_terms(family, level)
    return [seed_aware_test(ms, term, how) for ms, (term, how) in zip(family, terms, strict=True)]


def _scope(k: int) -> str:
    return ONE_SEED_SCOPE if k == 1 else f"{k} seeds: speaks for this recipe's training runs (seed population)"


def difference_test(a: np.ndarray, b: np.ndarray, terms: tuple | None = None) -> TTest:
    """gain(a) - gain(b) on the same items: a and b are d = post - pre arrays (k_a, n) and (k_b, n).

    The per-item difference of seed means carries both cells' item and residual noise (its variance over
    items / n); each cell's seed term is added (`terms`: the cells' terms from `pool_seed_terms`, else each
    cell's own; one pooled term shared by both enters twice, as one estimate), and the df follows the same
    rules as `cell_test`.
    """
    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    n = a.shape[1]
    x = a.mean(axis=0) - b.mean(axis=0)
    if n < 2:
        return TTest(float(x.mean()), 1.0, 1.0)
    own = [seed_term(mean_squares(a)), seed_term(mean_squares(b))]
    usable = [terms is not None and t is not None and t.n == n and t.k == side.shape[0]
              for t, side in zip(terms or (None, None), (a, b), strict=True)]
    if all(usable) and terms[0] == terms[1]:
        pieces = [replace(terms[0], copies=2)]  # one pooled estimate serves both cells
    else:  # per side: its family term where it describes these items and seeds, else its own
        pieces = [piece for j in (0, 1) for piece in ([terms[j]] if usable[j] else own[j])]
    v, df = combined(float(x.var(ddof=1)) / n, n, pieces)
    return TTest(float(x.mean()), v, df)


def holm_alpha(m: int, alpha: float = ALPHA) -> float:
    """Holm's strictest level in a family of m tests: what the best-supported teacher must pass."""
    return alpha / max(m, 1)
