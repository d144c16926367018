"""How well each cheap predictor (`capgap predict`) foretold the realized gains of a finished grid.

Per task x student x protocol with at least MIN_TEACHERS trained teachers and a prediction for each: for
every predictor, oriented by its direction (so +1 is always "ranks teachers as the gains do"),

- Spearman's rho and Kendall's tau (scipy) between the predictor and the realized mean gain (post - pre,
  over items and seeds);
- a 95% percentile CI for each from a two-level bootstrap (B = 2000): teachers resampled with replacement,
  and within each drawn teacher its training seeds resampled, so the interval carries both the choice of
  teachers and the training-run noise (with one seed per teacher, only the teachers');
- top-1 hit: whether the predictor's best teacher is the realized best, and how often it is across the
  bootstrap replicates of the realized gains (seeds resampled, teachers fixed);
- regret: realized gain of the realized best minus that of the predictor's pick, in points. A predictor
  that ties at the top (usable rationales under intersection are equal by construction) picks no teacher:
  its regret is the mean over the tied ones, and it has no top-1.

With fewer than MIN_CI_TEACHERS = 5 teachers a resample is mostly ties and the percentile interval means
little: no CI is given. With 6 teachers the CI is honest but wide (tests/selection/test_validation.py: a
faithful predictor's excludes 0 in about a third of simulated grids; with 12, in nearly all).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from capgap.evaluation.predictors import PREDICTORS

MIN_TEACHERS = 3
MIN_CI_TEACHERS = 5  # below this, teachers resampled with replacement are mostly ties: no CI is given
BOOTSTRAP = 2000


def _oriented(rows: list[dict], name: str) -> np.ndarray | None:
    values = [r["scores"].get(name) for r in rows]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return PREDICTORS[name].direction * np.asarray(values, dtype=float)


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    rho, tau = _rowwise(x[None, :], y[None, :])
    return float(rho[0]), float(tau[0])


def _rowwise(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho (Pearson on average ranks) and Kendall's tau-b of each row pair of x, y (B, m); NaN
    where a row is constant (as scipy.stats.spearmanr and kendalltau, which the tests compare against)."""
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (rx * ry).sum(axis=1) / np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))
        i, j = np.triu_indices(x.shape[1], 1)
        sx, sy = np.sign(x[:, i] - x[:, j]), np.sign(y[:, i] - y[:, j])
        tau = (sx * sy).sum(axis=1) / np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
    return rho, tau


def _bootstrap(x: np.ndarray, seed_gains: list[np.ndarray], rng: np.random.Generator) -> dict:
    m = len(x)
    gains = np.stack([g[rng.integers(0, len(g), (BOOTSTRAP, len(g)))].mean(axis=1) for g in seed_gains], axis=1)
    hits = float((gains.argmax(axis=1) == np.argmax(x)).mean())
    if m < MIN_CI_TEACHERS:
        return {"spearman_ci95": [None, None], "kendall_ci95": [None, None], "top1_share": hits}
    pick = rng.integers(0, m, (BOOTSTRAP, m))
    rho, tau = _rowwise(x[pick], np.take_along_axis(gains, pick, axis=1))
    return {"spearman_ci95": _percentiles(rho), "kendall_ci95": _percentiles(tau), "top1_share": hits}


def _percentiles(values: np.ndarray) -> list[float | None]:
    """2.5th and 97.5th percentiles over the replicates where the statistic exists."""
    values = values[~np.isnan(values)]
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values.size else [None, None]


def validate_family(groups: list[dict], predictions: list[dict], seed: int = 0) -> dict | None:
    """One (task, student, protocol): groups are its teachers' trained cell groups, predictions theirs."""
    by_teacher = {p["teacher"]: p for p in predictions}
    pairs = [(g, by_teacher[g["teacher"]]) for g in groups if g["gain"] is not None and g["teacher"] in by_teacher]
    if len(pairs) < MIN_TEACHERS:
        return None
    gains = np.array([g["gain"] for g, _ in pairs])
    seed_gains = [np.asarray(g["gain_by_seed"], dtype=float) for g, _ in pairs]
    teachers = [g["teacher"] for g, _ in pairs]
    best = int(np.argmax(gains))
    out = {"teachers": teachers, "realized_gain": gains.tolist(), "realized_best": teachers[best],
           "seeds": sorted({len(s) for s in seed_gains}), "predictors": {}}
    for name in PREDICTORS:
        x = _oriented([p for _, p in pairs], name)
        if x is None:
            continue
        rho, tau = _correlations(x, gains)
        top = np.flatnonzero(x == x.max())
        found = {"values": [p["scores"][name] for _, p in pairs], "spearman": rho, "kendall": tau,
                 **_bootstrap(x, seed_gains, np.random.default_rng(seed))}
        if len(top) > 1:  # no pick: a tie at the top (e.g. usable under intersection); regret of a random one
            found.update(pick=None, top1_hit=None, top1_share=None,
                         regret_pp=float(100 * np.mean(gains[best] - gains[top])))
        else:
            found.update(pick=teachers[top[0]], top1_hit=bool(top[0] == best),
                         regret_pp=float(100 * (gains[best] - gains[top[0]])))
        out["predictors"][name] = found
    return out


def validate_predictions(cell_groups: list[dict], predictions: list[dict]) -> list[dict]:
    """Every family of the study that has both realized gains and predictions."""
    families = sorted({(g["task"], g["student"], g["protocol"]) for g in cell_groups})
    out = []
    for task, student, protocol in families:
        groups = [g for g in cell_groups if (g["task"], g["student"], g["protocol"]) == (task, student, protocol)]
        preds = [p for p in predictions if (p["task"], p["student"], p["protocol"]) == (task, student, protocol)]
        result = validate_family(groups, preds)
        if result is not None:
            out.append({"task": task, "student": student, "protocol": protocol, **result})
    return out
