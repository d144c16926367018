"""The recommendation per task x student: the teacher (and data protocol) to use, or not to distil at all.

Only a teacher whose gain survives Holm's correction ("improves") can be recommended. The winner is the
improving cell with the largest gain; its confidence is the seed-aware comparison of its gain with the
runner-up's on the same items: the per-item difference of the two cells' seed means, with both cells' seed
variance terms added (`capgap.analysis.seedaware.difference_test`), its 95% CI and p.
"""

from __future__ import annotations

import numpy as np

from capgap.analysis import seedaware
from capgap.analysis.cells import trained_families
from capgap.analysis.failures import NO_VERDICT


def _pp(x: float) -> str:
    return f"{100 * x:+.1f} pp"


def _ci(ci: list[float]) -> str:
    return f"[{_pp(ci[0])}, {_pp(ci[1])}]"


def compare_cells(best: dict, other: dict) -> dict:
    """best's gain minus other's on their common items, by the seed-aware model."""
    a, b = best["_items"], other["_items"]
    common = sorted(set(a["ids"]) & set(b["ids"]))
    pos_a, pos_b = {i: j for j, i in enumerate(a["ids"])}, {i: j for j, i in enumerate(b["ids"])}
    ia, ib = np.array([pos_a[i] for i in common], dtype=int), np.array([pos_b[i] for i in common], dtype=int)
    t = seedaware.difference_test(a["d"][:, ia], b["d"][:, ib], (best.get("_seed_term"), other.get("_seed_term")))
    return {"runner_up": other["teacher"], "runner_up_protocol": other["protocol"], "difference": t.estimate,
            "difference_ci95": t.ci(0.95), "p_value": t.p_value, "n_items": len(common),
            "test": "seed-aware t on the per-item difference of seed means (both cells' seed variance added)"}


def _recommend_one(task: str, student: str, cells: list[dict]) -> dict:
    # cells with no verdict (their baseline was cut) are compared with nothing: the others are ranked
    judged = [g for g in cells if g["verdict"] != NO_VERDICT] or cells
    ranked = sorted(judged, key=lambda g: (-g["gain"], g["teacher"], g["protocol"]))
    improving = [g for g in ranked if g["verdict"] == "improves"]
    base = {"task": task, "student": student, "pre_accuracy": ranked[0]["pre_accuracy"],
            "n_items": ranked[0]["n_items"], "n_cells": len(cells)}
    if not improving:
        return {**base, "teacher": None, "protocol": None, "confidence": None, "versus_runner_up": None,
                "versus_other_teacher": None, **_no_teacher(ranked)}
    best = improving[0]
    others = [g for g in ranked if g is not best]
    versus = compare_cells(best, others[0]) if others else None
    # When the runner-up is the same teacher under another protocol, the teacher choice is also tested
    # against the best other teacher.
    other_teachers = [g for g in others if g["teacher"] != best["teacher"]]
    versus_teacher = (compare_cells(best, other_teachers[0])
                      if other_teachers and other_teachers[0] is not others[0] else None)
    if versus is None:
        confidence = "the only cell"
    elif others[0]["gain"] > best["gain"]:  # a cell with a larger point estimate but no detectable gain
        confidence = (f"{versus['runner_up']} ({versus['runner_up_protocol']}) has a larger point estimate "
                      f"({_pp(others[0]['gain'])}) but no detectable gain over the baseline; this is the largest "
                      "detectable one")
    elif versus["difference_ci95"][0] > 0:
        confidence = f"clearly ahead of {versus['runner_up']} ({versus['runner_up_protocol']})"
    else:
        confidence = (f"not separable from {versus['runner_up']} ({versus['runner_up_protocol']}): the 95% CI of "
                      f"the difference includes 0 (p={versus['p_value']:.2g})")
    evidence = (f"gain {_pp(best['gain'])} over the baseline's {100 * best['pre_accuracy']:.1f}% "
                f"(95% CI {_ci(best['ci95'])}, Holm p={best['p_holm']:.3g}, {len(best['seeds'])} seed(s), "
                f"{best['n_items']} items{'; ' + best['scope'] if len(best['seeds']) == 1 else ''})")
    for label, v in (("runner-up", versus), ("best other teacher", versus_teacher)):
        if v:
            evidence += (f"; vs {label} {v['runner_up']} ({v['runner_up_protocol']}): {_pp(v['difference'])} "
                         f"(95% CI {_ci(v['difference_ci95'])}, p={v['p_value']:.2g})")
    return {**base, "teacher": best["teacher"], "protocol": best["protocol"], "confidence": confidence,
            "versus_runner_up": versus, "versus_other_teacher": versus_teacher,
            "decision": f"distil from {best['teacher']} ({best['protocol']} data)",
            "evidence": evidence}


def _no_teacher(ranked: list[dict]) -> dict:
    """The decision when no teacher improves detectably: what was found leads (teachers that make the
    student worse), then what this design could have detected."""
    worse = [g for g in ranked if g["verdict"] == "degrades"]
    top = ranked[0]
    if all(g["verdict"] == NO_VERDICT for g in ranked):
        return {"decision": "no verdict: the baseline is not the student as it was", "evidence": top["baseline_note"]}
    design = (f"this design ({top['n_items']} items, {len(top['seeds'])} seed(s)) detects gains of about "
              f"{100 * top['mde']:.1f} pp or more (80% power)" if top["mde"] < 1 else
              f"this design ({top['n_items']} items, {len(top['seeds'])} seed(s)) cannot detect a gain of 100 pp")
    if worse:
        names = [f"{g['teacher']} ({g['protocol']})" for g in worse]
        every = len(worse) == len(ranked)
        who = ("every teacher makes" if every and len(worse) > 1 else
               f"{' and '.join(names)} {'make' if len(worse) > 1 else 'makes'}")
        found = "; ".join(f"{g['teacher']} ({g['protocol']}) {_pp(g['gain'])}, 95% CI {_ci(g['ci95'])}, "
                          f"Holm p={g['p_holm']:.3g}" for g in worse)
        return {"decision": f"do not distil: {who} the student worse",
                "evidence": f"{found}; no teacher beats the baseline detectably; {design}"}
    return {"decision": "do not distil: no teacher beats the baseline detectably",
            "evidence": (f"best point estimate {top['teacher']} ({top['protocol']}) {_pp(top['gain'])}, 95% CI "
                         f"{_ci(top['ci95'])}, Holm p={top['p_holm']:.3f}; {design}")}


def recommend(groups: list[dict]) -> list[dict]:
    """One recommendation per (task, student) over every trained (teacher, protocol) cell."""
    return [_recommend_one(task, student, cells)
            for (task, student), cells in trained_families(groups, "task", "student")]
