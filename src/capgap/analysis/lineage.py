"""What carried over when a lineage's baseline moved: old checkpoint against new, teacher by teacher.

Checkpoints of one lineage are evaluated on the same test items, so every comparison is paired per item:
- a teacher's **change of gain**: (post_new - pre_new) - (post_old - pre_old), the per-item difference of
  its two cells' seed-mean gains, by the seed-aware model (`seedaware.difference_test`: both cells' item,
  residual and seed variance), with its CI and p;
- the **baseline's drift**: pre_new - pre_old per item (a paired t on items: a baseline is one greedy
  evaluation, no seeds);
- the **deployment question**: does the old checkpoint distilled from a teacher beat the new production
  checkpoint as it is? post_old - pre_new per item, seed-aware over the old cell's seeds.
Each teacher's carried-over verdict reads its two cells' own verdicts (Holm within each checkpoint's family,
as the report gives them): "still helps", "no longer helps", "now helps", "still hurts", "no longer hurts",
"now hurts", "no detectable change on either", with "changed rank (i → j)" when its rank among the teachers
measured on both checkpoints moved. A teacher measured on the old checkpoint only (a rebase within a
budget) is "not re-run".
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from capgap.analysis import seedaware, stats
from capgap.config.lineages import Lineage
from capgap.evaluation.metrics import wilson_interval

HELPS, HURTS = "improves", "degrades"


def _on_common(a: dict, b: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Positions of the items two groups share, in each group's arrays, and those ids."""
    common = sorted(set(a["_items"]["ids"]) & set(b["_items"]["ids"]))
    pos_a = {i: j for j, i in enumerate(a["_items"]["ids"])}
    pos_b = {i: j for j, i in enumerate(b["_items"]["ids"])}
    return (np.array([pos_a[i] for i in common], dtype=int), np.array([pos_b[i] for i in common], dtype=int),
            common)


def _test(t: seedaware.TTest) -> dict:
    return {"estimate": t.estimate, "ci95": t.ci(0.95), "p_value": t.p_value}


def carried_verdict(old: str, new: str) -> str:
    """A teacher's verdicts on two checkpoints as one carried-over verdict."""
    if old == HELPS:
        return "still helps" if new == HELPS else "no longer helps"
    if new == HELPS:
        return "now helps"
    if old == HURTS:
        return "still hurts" if new == HURTS else "no longer hurts"
    return "now hurts" if new == HURTS else "no detectable change on either"


def _ranks(groups: list[dict]) -> dict[str, int]:
    order = sorted(groups, key=lambda g: -g["gain"])
    return {g["teacher"]: i + 1 for i, g in enumerate(order)}


def baseline_drift(old: dict, new: dict) -> dict:
    """pre_new - pre_old on the items both baselines share (paired t on items)."""
    ia, ib, common = _on_common(old, new)
    t = seedaware.difference_test(new["_items"]["pre"][ib][None, :], old["_items"]["pre"][ia][None, :])
    return {**_test(t), "n_items": len(common), "pre_old": float(old["_items"]["pre"][ia].mean()),
            "pre_new": float(new["_items"]["pre"][ib].mean())}


def deployment(old: dict, new_pre: np.ndarray, new_ids: list[str]) -> dict:
    """The old checkpoint distilled from `old`'s teacher against the new checkpoint as it is, per item."""
    pos = {i: j for j, i in enumerate(new_ids)}
    common = [i for i in old["_items"]["ids"] if i in pos]
    ia = np.array([old["_items"]["ids"].index(i) for i in common], dtype=int)
    post = old["_items"]["post"][:, ia]
    test = seedaware.cell_test(new_pre[[pos[i] for i in common]], post)
    result = {**_test(test.t), "n_items": len(common), "distilled_old": float(post.mean())}
    significant = result["p_value"] < stats.ALPHA
    result["answer"] = ("beats the new checkpoint" if significant and result["estimate"] > 0 else
                        "loses to the new checkpoint" if significant and result["estimate"] < 0 else
                        "no detectable difference from the new checkpoint")
    return result


def teacher_change(old: dict, new: dict, rank_old: int, rank_new: int) -> dict:
    """One teacher on two checkpoints: both gains, their difference with its CI, and the carried verdict."""
    ia, ib, common = _on_common(old, new)
    t = seedaware.difference_test(new["_items"]["d"][:, ib], old["_items"]["d"][:, ia],
                                  (new.get("_seed_term"), old.get("_seed_term")))
    verdict = carried_verdict(old["verdict"], new["verdict"])
    if rank_old != rank_new:
        verdict += f", changed rank ({rank_old} → {rank_new})"
    return {"teacher": old["teacher"], "gain_old": old["gain"], "ci95_old": old["ci95"], "verdict_old": old["verdict"],
            "gain_new": new["gain"], "ci95_new": new["ci95"], "verdict_new": new["verdict"],
            "change": _test(t), "n_items": len(common), "rank_old": rank_old, "rank_new": rank_new,
            "carried": verdict}


def _trained(groups: list[dict]) -> list[dict]:
    return [g for g in groups if g.get("gain") is not None and "_items" in g]


def step(old: list[dict], new: list[dict]) -> dict:
    """One step of a lineage (old checkpoint → new) for one task and protocol: every teacher's change, the
    baseline's drift and the deployment question."""
    old_t, new_t = _trained(old), _trained(new)
    by_new = {g["teacher"]: g for g in new_t}
    both = [g for g in old_t if g["teacher"] in by_new]
    ranks_old, ranks_new = _ranks(both), _ranks([by_new[g["teacher"]] for g in both])
    teachers = [teacher_change(g, by_new[g["teacher"]], ranks_old[g["teacher"]], ranks_new[g["teacher"]])
                for g in both]
    teachers += [{"teacher": g["teacher"], "gain_old": g["gain"], "ci95_old": g["ci95"], "verdict_old": g["verdict"],
                  "carried": "not re-run"} for g in old_t if g["teacher"] not in by_new]
    out: dict = {"teachers": teachers}
    if old_t and new_t:
        out["baseline_drift"] = baseline_drift(old_t[0], new_t[0])
        new_pre, new_ids = new_t[0]["_items"]["pre"], new_t[0]["_items"]["ids"]
        out["deployment"] = [{"teacher": g["teacher"], **deployment(g, new_pre, new_ids)} for g in old_t]
    return out


def _accuracy_points(groups: list[dict]) -> dict:
    """A checkpoint's baseline (Wilson CI) and each teacher's post-distillation accuracy (seed-aware CI)."""
    trained = _trained(groups)
    points: dict = {"teachers": {}}
    if trained:
        pre = trained[0]["_items"]["pre"]
        points["baseline"] = {"accuracy": float(pre.mean()), "ci95": list(wilson_interval(int(pre.sum()), len(pre)))}
    for g in trained:
        post = g["_items"]["post"]
        test = seedaware.cell_test(np.zeros(post.shape[1]), post)
        points["teachers"][g["teacher"]] = {"accuracy": float(post.mean()), "ci95": test.ci95,
                                            "seeds": len(g["seeds"])}
    return points


def lineage_view(groups: list[dict], lineages: list[Lineage]) -> list[dict]:
    """Per lineage, task and protocol: each checkpoint's accuracies and each step's carried-over record."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for g in groups:
        by_key[(g["student"], g["task"], g["protocol"])].append(g)
    views = []
    for lineage in lineages:
        for task, protocol in sorted({(t, p) for (s, t, p) in by_key if s in lineage.checkpoints}):
            present = [c for c in lineage.checkpoints if by_key.get((c, task, protocol))]
            if not present:
                continue
            points = [{"checkpoint": lineage.label(c), "student": c, **_accuracy_points(by_key[(c, task, protocol)])}
                      for c in present]
            steps = [{"old": lineage.label(a), "new": lineage.label(b),
                      **step(by_key[(a, task, protocol)], by_key[(b, task, protocol)])}
                     for a, b in itertools.pairwise(present)]
            views.append({"lineage": lineage.name, "task": task, "protocol": protocol, "checkpoints": points,
                          "steps": steps})
    return views
