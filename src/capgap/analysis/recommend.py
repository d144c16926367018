"""The recommendation per task x student: the teacher (and data protocol) to use, or not to distil at all.

Only a teacher whose gain survives Holm's correction ("improves") can be recommended. The winner is the
improving cell with the largest gain; its confidence is the paired bootstrap of its post-distillation
accuracy against the runner-up's on the same items (how often, and by how much, it stays ahead).
"""

from __future__ import annotations

from capgap.analysis import stats
from capgap.analysis.cells import trained_families


def _pp(x: float) -> str:
    return f"{100 * x:+.1f} pp"


def _ci(ci: list[float]) -> str:
    return f"[{_pp(ci[0])}, {_pp(ci[1])}]"


def _versus(best: dict, other: dict, resamples: int) -> dict:
    a, b = best["_items"], other["_items"]
    common = sorted(set(a["ids"]) & set(b["ids"]))
    ia, ib = [a["ids"].index(i) for i in common], [b["ids"].index(i) for i in common]
    draws = stats.bootstrap_difference(a["post"][:, ia], b["post"][:, ib], resamples=resamples, seed=1)
    return {"runner_up": other["teacher"], "runner_up_protocol": other["protocol"],
            "difference": float(best["post_accuracy"] - other["post_accuracy"]),
            "difference_ci95": list(stats.percentile_ci(draws)), "p_better": float((draws > 0).mean())}


def _recommend_one(task: str, student: str, cells: list[dict], resamples: int) -> dict:
    ranked = sorted(cells, key=lambda g: (-g["gain"], g["teacher"], g["protocol"]))
    improving = [g for g in ranked if g["verdict"] == "improves"]
    base = {"task": task, "student": student, "pre_accuracy": ranked[0]["pre_accuracy"],
            "n_items": ranked[0]["n_items"], "n_cells": len(ranked)}
    if not improving:
        top = ranked[0]
        return {**base, "teacher": None, "protocol": None, "confidence": None, "versus_runner_up": None,
                "versus_other_teacher": None,
                "decision": "do not distil: no teacher beats the baseline detectably",
                "evidence": (f"best point estimate {top['teacher']} ({top['protocol']}) {_pp(top['gain'])}, 95% CI "
                             f"{_ci(top['ci95'])}, Holm p={top['p_holm']:.3f}; this test set detects gains of "
                             f"about {100 * top['mde']:.1f} pp or more (80% power)")}
    best = improving[0]
    others = [g for g in ranked if g is not best]
    versus = _versus(best, others[0], resamples) if others else None
    # When the runner-up is the same teacher under another protocol, the teacher choice is also tested
    # against the best other teacher.
    other_teachers = [g for g in others if g["teacher"] != best["teacher"]]
    versus_teacher = (_versus(best, other_teachers[0], resamples)
                      if other_teachers and other_teachers[0] is not others[0] else None)
    if versus is None:
        confidence = "the only cell"
    elif versus["difference_ci95"][0] > 0:
        confidence = f"clearly ahead of {versus['runner_up']} ({versus['runner_up_protocol']})"
    else:
        confidence = (f"not separable from {versus['runner_up']} ({versus['runner_up_protocol']}): ahead in "
                      f"{100 * versus['p_better']:.0f}% of bootstrap resamples")
    evidence = (f"gain {_pp(best['gain'])} over the baseline's {100 * best['pre_accuracy']:.1f}% "
                f"(95% CI {_ci(best['ci95'])}, Holm p={best['p_holm']:.3g}, {len(best['seeds'])} seed(s), "
                f"{best['n_items']} items)")
    for label, v in (("runner-up", versus), ("best other teacher", versus_teacher)):
        if v:
            evidence += (f"; vs {label} {v['runner_up']} ({v['runner_up_protocol']}): {_pp(v['difference'])} "
                         f"(95% CI {_ci(v['difference_ci95'])}, ahead in {100 * v['p_better']:.0f}% of resamples)")
    return {**base, "teacher": best["teacher"], "protocol": best["protocol"], "confidence": confidence,
            "versus_runner_up": versus, "versus_other_teacher": versus_teacher,
            "decision": f"distil from {best['teacher']} ({best['protocol']} data)",
            "evidence": evidence}


def recommend(groups: list[dict], resamples: int = stats.RESAMPLES) -> list[dict]:
    return [_recommend_one(task, student, cells, resamples)
            for (task, student), cells in trained_families(groups, "task", "student")]
