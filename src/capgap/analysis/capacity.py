"""Capacity-gap analysis: does the teacher/student size ratio decide the gain, or teacher quality / data?

Per (task, protocol), every trained (student, teacher) pair is one point. Spearman's rho of the gain with
each factor, a small least-squares regression on standardised factors, and one sentence that answers the
question with those numbers. Teachers of unknown size drop out of size-based statistics only.
"""

from __future__ import annotations

import math

import numpy as np

from capgap.analysis import stats
from capgap.analysis.cells import trained_families


def _log10(value: float | None) -> float | None:
    return math.log10(value) if value else None


FACTORS = {  # name -> (label, how a point's value is read)
    "log_size_ratio": ("log10 teacher/student size", lambda g: _log10(g["size_ratio"])),
    "teacher_accuracy": ("teacher accuracy", lambda g: g["teacher_accuracy"]),
    "accuracy_gap": ("teacher - student accuracy", lambda g: g["accuracy_gap"]),
    "log_n_train": ("log10 #training examples", lambda g: _log10(g["n_train"])),
    "mean_words": ("mean rationale words", lambda g: g["mean_words"]),
}
_TIE = 0.05  # |rho| differences below this are not called an ordering
REGRESSORS = ("log_size_ratio", "teacher_accuracy", "log_n_train")


def _correlations(points: list[dict]) -> dict:
    out = {}
    for name, (label, read) in FACTORS.items():
        pairs = [(read(g), g["gain"]) for g in points if read(g) is not None]
        rho, p = stats.spearman([x for x, _ in pairs], [y for _, y in pairs])
        out[name] = {"label": label, "n": len(pairs), "rho": rho, "p": p}
    return out


def _regression(points: list[dict], regressors: tuple[str, ...]) -> dict:
    """gain ~ standardised regressors; coefficients are percentage points of gain per SD of the factor."""
    rows = [[FACTORS[r][1](g) for r in regressors] + [g["gain"]] for g in points]
    rows = [r for r in rows if None not in r]
    k = len(regressors)
    if len(rows) < k + 2:
        return {"regressors": list(regressors), "n": len(rows),
                "skipped": f"needs at least {k + 2} points with every factor known, has {len(rows)}"}
    data = np.array(rows, dtype=float)
    x, y = data[:, :k], data[:, k]
    sd = x.std(axis=0)
    if (sd == 0).any():
        constant = [r for r, s in zip(regressors, sd, strict=True) if s == 0]
        return {"regressors": list(regressors), "n": len(rows), "skipped": f"constant factor: {', '.join(constant)}"}
    design = np.column_stack([np.ones(len(y)), (x - x.mean(axis=0)) / sd])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1 - (residual ** 2).sum() / total) if total > 0 else None
    return {"regressors": list(regressors), "n": len(rows), "dof": len(rows) - k - 1, "r2": r2,
            "intercept_pp": float(100 * coef[0]),
            "coef_pp_per_sd": {r: float(100 * c) for r, c in zip(regressors, coef[1:], strict=True)}}


def _fmt(c: dict) -> str:
    return f"rho={c['rho']:+.2f} (p={c['p']:.2f}, n={c['n']})" if c["rho"] is not None else f"n/a (n={c['n']})"


def _sentence(corr: dict, n_points: int) -> str:
    size = corr["log_size_ratio"]
    others = {k: corr[k] for k in ("teacher_accuracy", "log_n_train")}
    evidence = (f"gain vs log size ratio {_fmt(size)}, vs teacher accuracy {_fmt(others['teacher_accuracy'])}, "
                f"vs #training examples {_fmt(others['log_n_train'])}")
    if size["rho"] is None:
        return (f"The capacity gap cannot be judged here: only {size['n']} of {n_points} cells have a teacher of "
                f"known size ({evidence}).")
    known = {k: abs(c["rho"]) for k, c in others.items() if c["rho"] is not None}
    top = max(known.values(), default=0.0)
    strongest = " and ".join(FACTORS[k][0] for k, r in known.items() if top - r <= _TIE)
    notes = []
    if size["n"] < n_points:
        notes.append(f"size is known for {size['n']} of {n_points} cells only")
    if not any(c["p"] is not None and c["p"] < stats.ALPHA for c in corr.values()):
        notes.append(f"none of these is significant at {stats.ALPHA} with so few teachers")
    margin = abs(size["rho"]) - top
    orders = f"{strongest} {'order' if ' and ' in strongest else 'orders'} the gains"
    if margin > _TIE:
        verdict = "The capacity gap is the strongest ordering factor here"
    elif margin >= -_TIE:
        verdict = f"The capacity gap does not stand out here: {orders} as strongly as the size ratio"
    else:
        verdict = f"The capacity gap does not dominate here: {orders} more strongly than the size ratio"
    return f"{verdict} ({'; '.join([evidence, *notes])})."


def capacity_gap(groups: list[dict]) -> list[dict]:
    """One analysis per (task, protocol) over its trained (student, teacher) points."""
    out = []
    for (task, protocol), points in trained_families(groups, "task", "protocol"):
        corr = _correlations(points)
        regressions = [_regression(points, REGRESSORS), _regression(points, REGRESSORS[1:])]
        out.append({"task": task, "protocol": protocol, "n_points": len(points), "spearman": corr,
                    "regressions": regressions, "sentence": _sentence(corr, len(points))})
    return out
