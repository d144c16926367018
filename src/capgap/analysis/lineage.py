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
as the report gives them) and the change test: where the verdicts agree, "still helps", "still hurts" or "no
detectable change on either"; where they differ, "no longer helps", "now helps", "no longer hurts" or "now
hurts" only when the change itself is significant (p < alpha), else "helps on prod@1 only (the change is not
significant)" and the like: a difference in significance is not a significant difference. A cell without a
verdict (its baseline was cut) gives "no verdict on ...". "changed rank (i → j)" is added when the teacher's
rank among the matched-budget teachers measured on both checkpoints moved (ties share a rank). A teacher
measured on the old checkpoint only (a rebase within a budget) is "not re-run". The deployment answers are
Holm-corrected across the step's teachers.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from capgap.analysis import seedaware, stats
from capgap.analysis.failures import NO_VERDICT
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


NO_TEST = {"estimate": None, "ci95": None, "p_value": None}


def _test(t: seedaware.TTest, n: int) -> dict:
    """A test's numbers, or none with fewer than 2 items in common (nothing to test on)."""
    return {"estimate": t.estimate, "ci95": t.ci(0.95), "p_value": t.p_value} if n >= 2 else dict(NO_TEST)


def carried_verdict(old: str, new: str, changed: bool, labels: tuple[str, str] = ("the old", "the new")) -> str:
    """A teacher's verdicts on two checkpoints as one carried-over verdict; `changed`: whether the change
    of its gain is itself significant."""
    if NO_VERDICT in (old, new):
        cut = [label for label, v in zip(labels, (old, new), strict=True) if v == NO_VERDICT]
        return "no verdict on " + " and ".join(cut) + " (baseline cut)"
    if old == new:
        return {HELPS: "still helps", HURTS: "still hurts"}.get(old, "no detectable change on either")
    if {old, new} == {HELPS, HURTS}:
        turned = "no longer helps, now hurts" if old == HELPS else "no longer hurts, now helps"
        return turned if changed else f"helps on {labels[old != HELPS]}, hurts on {labels[old == HELPS]}"
    word = "helps" if HELPS in (old, new) else "hurts"
    where = 0 if old == (HELPS if word == "helps" else HURTS) else 1
    if not changed:
        return f"{word} on {labels[where]} only (the change is not significant)"
    return ("no longer " if where == 0 else "now ") + word


def _ranks(groups: list[dict]) -> dict[str, int]:
    """Rank by gain among matched-budget teachers (ties share a rank; own budgets are not ranked)."""
    ranked = [g for g in groups if g.get("budget_matched", True)]
    return {g["teacher"]: 1 + sum(h["gain"] > g["gain"] for h in ranked) for g in ranked}


def baseline_drift(old: dict, new: dict) -> dict:
    """pre_new - pre_old on the items both baselines share (paired t on items)."""
    ia, ib, common = _on_common(old, new)
    if not common:
        return {**NO_TEST, "n_items": 0, "pre_old": None, "pre_new": None}
    t = seedaware.difference_test(new["_items"]["pre"][ib][None, :], old["_items"]["pre"][ia][None, :])
    return {**_test(t, len(common)), "n_items": len(common), "pre_old": float(old["_items"]["pre"][ia].mean()),
            "pre_new": float(new["_items"]["pre"][ib].mean())}


def deployment(old: dict, new_pre: np.ndarray, new_ids: list[str]) -> dict:
    """The old checkpoint distilled from `old`'s teacher against the new checkpoint as it is, per item."""
    pos = {i: j for j, i in enumerate(new_ids)}
    common = [i for i in old["_items"]["ids"] if i in pos]
    if not common:
        return {**NO_TEST, "n_items": 0, "distilled_old": None}
    ia = np.array([old["_items"]["ids"].index(i) for i in common], dtype=int)
    post = old["_items"]["post"][:, ia]
    test = seedaware.cell_test(new_pre[[pos[i] for i in common]], post)
    return {**_test(test.t, len(common)), "n_items": len(common), "distilled_old": float(post.mean())}


def _answer_deployments(found: list[dict]) -> None:
    """Each deployment's answer, Holm-corrected across the step's teachers."""
    tested = [d for d in found if d["p_value"] is not None]
    for d, adjusted in zip(tested, stats.holm([d["p_value"] for d in tested]), strict=True):
        d["p_holm"] = adjusted
    for d in found:
        significant = d.get("p_holm") is not None and d["p_holm"] < stats.ALPHA
        d.setdefault("p_holm", None)
        d["answer"] = ("beats the new checkpoint" if significant and d["estimate"] > 0 else
                       "loses to the new checkpoint" if significant and d["estimate"] < 0 else
                       "shows no detectable difference from the new checkpoint")


def teacher_change(old: dict, new: dict, rank_old: int | None, rank_new: int | None,
                   labels: tuple[str, str] = ("the old", "the new")) -> dict:
    """One teacher on two checkpoints: both gains, their difference with its CI, and the carried verdict."""
    ia, ib, common = _on_common(old, new)
    t = seedaware.difference_test(new["_items"]["d"][:, ib], old["_items"]["d"][:, ia],
                                  (new.get("_seed_term"), old.get("_seed_term")))
    change = _test(t, len(common))
    changed = change["p_value"] is not None and change["p_value"] < stats.ALPHA
    verdict = carried_verdict(old["verdict"], new["verdict"], changed, labels)
    if rank_old is not None and rank_new is not None and rank_old != rank_new:
        verdict += f", changed rank ({rank_old} → {rank_new})"
    return {"teacher": old["teacher"], "gain_old": old["gain"], "ci95_old": old["ci95"], "verdict_old": old["verdict"],
            "gain_new": new["gain"], "ci95_new": new["ci95"], "verdict_new": new["verdict"],
            "change": change, "n_items": len(common), "rank_old": rank_old, "rank_new": rank_new,
            "carried": verdict}


def _trained(groups: list[dict]) -> list[dict]:
    return [g for g in groups if g.get("gain") is not None and "_items" in g]


def step(old: list[dict], new: list[dict], labels: tuple[str, str] = ("the old", "the new")) -> dict:
    """One step of a lineage (old checkpoint → new) for one task and protocol: every teacher's change, the
    baseline's drift and the deployment question."""
    old_t, new_t = _trained(old), _trained(new)
    by_new = {g["teacher"]: g for g in new_t}
    both = [g for g in old_t if g["teacher"] in by_new]
    ranks_old, ranks_new = _ranks(both), _ranks([by_new[g["teacher"]] for g in both])
    teachers = [teacher_change(g, by_new[g["teacher"]], ranks_old.get(g["teacher"]), ranks_new.get(g["teacher"]),
                               labels) for g in both]
    teachers += [{"teacher": g["teacher"], "gain_old": g["gain"], "ci95_old": g["ci95"], "verdict_old": g["verdict"],
                  "carried": "not re-run"} for g in old_t if g["teacher"] not in by_new]
    out: dict = {"teachers": teachers}
    if old_t and new_t:
        out["baseline_drift"] = baseline_drift(old_t[0], new_t[0])
        new_pre, new_ids = new_t[0]["_items"]["pre"], new_t[0]["_items"]["ids"]
        out["deployment"] = [{"teacher": g["teacher"], **deployment(g, new_pre, new_ids)} for g in old_t]
        _answer_deployments(out["deployment"])
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
                      **step(by_key[(a, task, protocol)], by_key[(b, task, protocol)],
                             (lineage.label(a), lineage.label(b)))}
                     for a, b in itertools.pairwise(present)]
            views.append({"lineage": lineage.name, "task": task, "protocol": protocol, "checkpoints": points,
                          "steps": steps})
    return views
