"""Teacher rankings: post-distillation accuracy alone (common practice) vs gain over the baseline.

Within one student the two rankings agree (the baseline is shared), so post-only reporting errs in sign,
not order: it presents a distilled student as a result even when it got worse. The order does change
across students (a strong student's weak cell outranks a weak student's strong one) and across data
protocols; both are compared with Kendall's tau and the list of flipped pairs.
"""

from __future__ import annotations

from itertools import combinations
from statistics import median

from capgap.analysis import stats
from capgap.analysis.cells import trained_families


def _label(g: dict, with_student: bool) -> str:
    return f"{g['teacher']} -> {g['student']}" if with_student else g["teacher"]


def rank(entries: dict[str, float]) -> list[str]:
    """Names best first; ties broken by name so a ranking is reproducible."""
    return sorted(entries, key=lambda name: (-entries[name], name))


def compare(a: dict[str, float], b: dict[str, float], names: tuple[str, str]) -> dict:
    """Kendall's tau between two scorings of the same entries and every pair they order oppositely."""
    common = sorted(set(a) & set(b))
    flips = [[x, y] for x, y in combinations(common, 2) if (a[x] - a[y]) * (b[x] - b[y]) < 0]
    return {"by": list(names), "n": len(common), "ranking": {names[0]: rank({k: a[k] for k in common}),
                                                              names[1]: rank({k: b[k] for k in common})},
            "kendall_tau": stats.kendall([a[k] for k in common], [b[k] for k in common]), "flips": flips}


def post_vs_gain(groups: list[dict]) -> list[dict]:
    """Per (task, protocol): (student, teacher) points ranked by post accuracy vs by gain."""
    out = []
    for (task, protocol), points in trained_families(groups, "task", "protocol"):
        with_student = len({g["student"] for g in points}) > 1
        post = {_label(g, with_student): g["post_accuracy"] for g in points}
        gain = {_label(g, with_student): g["gain"] for g in points}
        out.append({"task": task, "protocol": protocol, **compare(post, gain, ("post", "gain")),
                    **_post_only_helpful(points, with_student)})
    return out


def _post_only_helpful(points: list[dict], with_student: bool) -> dict:
    """Teachers a post-only leaderboard would call helpful (upper half by post accuracy) whose student got worse."""
    cut = median(g["post_accuracy"] for g in points)
    upper = [g for g in points if g["post_accuracy"] >= cut]
    worse = [_label(g, with_student) for g in upper if g["gain"] < 0]
    detectably = [_label(g, with_student) for g in upper if g["verdict"] == "degrades"]
    return {"post_only_helpful": [_label(g, with_student) for g in upper],
            "post_only_helpful_but_worse": worse, "post_only_helpful_but_detectably_worse": detectably,
            "n_worse_than_baseline": sum(g["gain"] < 0 for g in points)}


def between_protocols(groups: list[dict]) -> list[dict]:
    """Per (task, student) and pair of protocols: teachers ranked by gain under each."""
    out = []
    for (task, student), mine in trained_families(groups, "task", "student"):
        protocols = sorted({g["protocol"] for g in mine})
        for p, q in combinations(protocols, 2):
            a = {g["teacher"]: g["gain"] for g in mine if g["protocol"] == p}
            b = {g["teacher"]: g["gain"] for g in mine if g["protocol"] == q}
            out.append({"task": task, "student": student, **compare(a, b, (p, q))})
    return out
