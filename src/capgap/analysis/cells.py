"""Per (task, student, teacher, protocol): the paired gain over the baseline, its CI, test and verdict.

Seeds of one group are pooled: the gain is the mean over seeds, the CI resamples items and seeds together,
and the test is a paired sign-flip test on each item's mean change (McNemar's exact test with one seed).
Tests are Holm-corrected across the teachers of each (task, student, protocol) family.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from capgap.analysis import stats
from capgap.analysis.pairing import paired_arrays
from capgap.store import Store

VERDICTS = ("improves", "degrades", "no detectable change", "not trained")


def _teacher_facts(teacher: dict | None, student_params: int | None, pre_accuracy: float | None) -> dict:
    teacher = teacher or {}
    params = teacher.get("params")
    ratio = params / student_params if params and student_params else None
    accuracy = teacher.get("accuracy")
    return {
        "teacher_kind": teacher.get("kind"),
        "teacher_params": params,
        "student_params": student_params,
        "size_ratio": ratio,
        "teacher_accuracy": accuracy,
        # teacher accuracy on the training pool minus the student's on the test set: both by capgap's checker
        "accuracy_gap": accuracy - pre_accuracy if accuracy is not None and pre_accuracy is not None else None,
        "mean_words": teacher.get("mean_words"),
    }


def _trained_group(store: Store, cells: list[dict], resamples: int) -> dict:
    cells = sorted(cells, key=lambda c: c["seed"])
    ids, pres, post = paired_arrays(store, cells)
    pre = pres[0]  # TODO(stats): per-seed baselines (pres[s]) for the seed-aware model
    gains = post.mean(axis=1) - pres.mean(axis=1)
    test = stats.paired_test(pre, post)
    lo, hi = stats.paired_bootstrap_ci(pre, post, resamples=resamples, seed=0)
    discordance = float(np.mean([(row != p).mean() for row, p in zip(post, pres, strict=True)]))
    return {
        "seeds": [c["seed"] for c in cells],
        "n_items": len(ids),
        "pre_accuracy": float(pre.mean()),
        "post_accuracy": float(post.mean()),
        "post_by_seed": [float(x) for x in post.mean(axis=1)],
        "gain": float(gains.mean()),
        "gain_by_seed": [float(g) for g in gains],
        "gain_sd": float(gains.std(ddof=1)) if len(gains) > 1 else None,
        "ci95": [lo, hi],
        "test": test.name,
        "improved_items": test.improved,
        "regressed_items": test.regressed,
        "discordance": discordance,
        "p_mcnemar": test.p,
        "p_mcnemar_by_seed": [stats.paired_test(pre, row).p for row in post],
        "steps": cells[0]["steps"],
        "effective_batch": cells[0]["effective_batch"],
        "tokens": [c["tokens"] for c in cells],
        "train_seconds": [c["train_seconds"] for c in cells],
        "loss_curves": [json.loads(c["loss_curve_json"] or "[]") for c in cells],
        "_items": {"ids": ids, "pre": pre, "post": post},  # private: per-item arrays for later comparisons
    }


def _untrained_group(store: Store, cells: list[dict]) -> dict:
    pre = store.items(cells[0]["pre_eval_key"]) if cells[0]["pre_eval_key"] else {}
    pre_acc = sum(r["correct_strict"] for r in pre.values()) / len(pre) if pre else None
    return {"seeds": sorted(c["seed"] for c in cells), "n_items": len(pre), "pre_accuracy": pre_acc,
            "post_accuracy": None, "gain": None, "ci95": None, "p_mcnemar": None, "p_holm": None, "mde": None,
            "test": None, "verdict": "not trained"}


def current_cells(cells: list[dict], config: dict) -> list[dict]:
    """Finished or skipped cells of the study's latest config: a cell from an earlier budget, or of a teacher,
    protocol or seed since dropped, is superseded; of duplicates the one written last counts."""
    allowed = {"teacher": {t["name"] for t in config.get("teachers", [])}, "protocol": set(config.get("protocols", [])),
               "seed": set(config.get("seeds", [])), "student": set(config.get("students", [])),
               "task": {t["name"] for t in config.get("tasks", [])}}
    latest = {}
    for cell in cells:  # oldest first
        if cell["status"] not in ("done", "skipped"):
            continue
        if any(values and cell[field] not in values for field, values in allowed.items()):
            continue
        if "training" in config and json.loads(cell["training_json"]) != config["training"]:
            continue
        latest[(cell["task"], cell["student"], cell["teacher"], cell["protocol"], cell["seed"])] = cell
    return list(latest.values())


def group_cells(store: Store, study: dict, resamples: int = stats.RESAMPLES) -> list[dict]:
    """One record per (task, student, teacher, protocol) of the study's current cells, verdicts included."""
    name = study["study"]
    teachers = {(t["task"], t["teacher"]): t for t in store.study.teachers(name)}
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for cell in current_cells(store.study.cells(name), study["config"]):
        grouped[(cell["task"], cell["student"], cell["teacher"], cell["protocol"])].append(cell)
    groups = []
    for (task, student, teacher, protocol), cells in sorted(grouped.items()):
        done = [c for c in cells if c["status"] == "done"]
        body = _trained_group(store, done, resamples) if done else _untrained_group(store, cells)
        record = {"task": task, "student": student, "teacher": teacher, "protocol": protocol,
                  "n_train": cells[0]["n_train"], **body}
        params = next((c["student_params"] for c in cells if c["student_params"]), None)
        record.update(_teacher_facts(teachers.get((task, teacher)), params, record["pre_accuracy"]))
        groups.append(record)
    _add_verdicts(groups)
    return groups


def _add_verdicts(groups: list[dict]) -> None:
    """Holm across the teachers of each (task, student, protocol); the verdict and detectable effect."""
    for _, family in trained_families(groups, "task", "student", "protocol"):
        m = len(family)
        for g, adjusted in zip(family, stats.holm([g["p_mcnemar"] for g in family]), strict=True):
            g["p_holm"] = adjusted
            g["holm_family_size"] = m
            g["mde"] = stats.minimal_detectable_effect(g["n_items"], g["discordance"], alpha=stats.ALPHA / m)
            if adjusted < stats.ALPHA and g["gain"] != 0:
                g["verdict"] = "improves" if g["gain"] > 0 else "degrades"
            else:
                g["verdict"] = "no detectable change"


def trained_families(groups: list[dict], *fields: str) -> list[tuple[tuple, list[dict]]]:
    """Trained groups (a gain was measured) split by `fields`, e.g. ("task", "protocol"), in sorted order."""
    families: dict[tuple, list[dict]] = defaultdict(list)
    for g in groups:
        if g["gain"] is not None:
            families[tuple(g[f] for f in fields)].append(g)
    return sorted(families.items())
