"""Per (task, student, teacher, protocol): the paired gain over the baseline, its CI, test and verdict.

The verdict answers "does distilling from this teacher help this student on this task": the seed-aware
model of `capgap.analysis.seedaware` (random items x random training seeds) gives the gain's CI and p, so
they account for test-set sampling and training-run variation and never disagree. With one seed the
verdict speaks for that training run only. Tests are Holm-corrected across the teachers of each
(task, student, protocol) family; the MDE is the smallest gain detected with 80% power at Holm's
strictest level alpha/m under the same model.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from capgap.analysis import power, seedaware, stats
from capgap.analysis.failures import NO_VERDICT, answer_failures, baseline_cut, baseline_note
from capgap.analysis.pairing import baseline_accuracy, paired_arrays
from capgap.config.schema import MAX_BASELINE_CUT, budget_over
from capgap.errors import CapgapError
from capgap.store import Store

VERDICTS = ("improves", "degrades", "no detectable change", NO_VERDICT, "not trained")


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
        "teacher_notes": json.loads(teacher.get("notes_json") or "[]"),  # coverage, hedged rationales, ...
    }


def _by_seed_mcnemar(pres: np.ndarray, post: np.ndarray) -> list[float]:
    """Each seed's exact McNemar p against its own baseline (that run alone; not the verdict's test)."""
    return [stats.mcnemar_exact(int(((q == 1) & (p == 0)).sum()), int(((q == 0) & (p == 1)).sum()))
            for p, q in zip(pres, post, strict=True)]


def _trained_group(store: Store, cells: list[dict]) -> dict:
    """A cell's measured facts; its test, CI and p come with its family (`_add_verdicts`), which may pool
    the seed variance."""
    cells = sorted(cells, key=lambda c: c["seed"])
    ids, pres, post = paired_arrays(store, cells)
    d = post - pres
    ms = seedaware.mean_squares(d)
    gains = d.mean(axis=1)
    item_change = d.mean(axis=0)
    return {
        "seeds": [c["seed"] for c in cells],
        "n_items": len(ids),
        "pre_accuracy": float(pres.mean()),
        "post_accuracy": float(post.mean()),
        "post_by_seed": [float(x) for x in post.mean(axis=1)],
        "gain": float(d.mean()),
        "gain_by_seed": [float(g) for g in gains],
        "gain_sd": float(gains.std(ddof=1)) if len(gains) > 1 else None,
        "improved_items": int((item_change > 0).sum()),
        "regressed_items": int((item_change < 0).sum()),
        "discordance": float((d != 0).mean()),
        "p_mcnemar_by_seed": _by_seed_mcnemar(pres, post),
        "mean_squares": {"item": ms.item, "seed": ms.seed, "residual": ms.residual},
        "variance_components": ms.components,
        "steps": cells[0]["steps"],
        "effective_batch": cells[0]["effective_batch"],
        "tokens": [c["tokens"] for c in cells],
        "train_seconds": [c["train_seconds"] for c in cells],
        "loss_curves": [json.loads(c["loss_curve_json"] or "[]") for c in cells],
        "answer_failures": answer_failures(store, cells, ids, float(d.mean())),
        "_items": {"ids": ids, "d": d, "pre": pres[0], "post": post},  # private: per-item arrays (comparisons)
    }


def _untrained_group(store: Store, cells: list[dict]) -> dict:
    n_items, pre_acc = baseline_accuracy(store, cells[0])
    return {"seeds": sorted(c["seed"] for c in cells), "n_items": n_items, "pre_accuracy": pre_acc,
            "post_accuracy": None, "gain": None, "ci95": None, "p_value": None, "p_holm": None, "mde": None,
            "test": None, "scope": None, "verdict": "not trained"}


def current_cells(cells: list[dict], config: dict, planned: set[str] | None = None) -> list[dict]:
    """Finished or skipped cells of the study's latest config: a cell from an earlier budget, or of a teacher,
    protocol or seed since dropped, is superseded; of duplicates the one written last counts. With the
    latest run's plan (`planned` cell keys), only planned cells count: a cell evaluated under other settings
    (test items, decoding, precision, extraction) is superseded too."""
    allowed = {"teacher": {t["name"] for t in config.get("teachers", [])}, "protocol": set(config.get("protocols", [])),
               "seed": set(config.get("seeds", [])), "student": set(config.get("students", [])),
               "task": {t["name"] for t in config.get("tasks", [])}}
    budgets = {t["name"]: t.get("budget") for t in config.get("teachers", [])}
    latest = {}
    for cell in cells:  # oldest first
        if cell["status"] not in ("done", "skipped") or (planned is not None and cell["cell_key"] not in planned):
            continue
        if any(values and cell[field] not in values for field, values in allowed.items()):
            continue
        if "training" in config and json.loads(cell["training_json"]) != budget_over(config["training"],
                                                                                      budgets.get(cell["teacher"])):
            continue  # another budget than the study's (or than the teacher's own) now says
        latest[(cell["task"], cell["student"], cell["teacher"], cell["protocol"], cell["seed"])] = cell
    return list(latest.values())


def study_current_cells(store: Store, study: dict) -> list[dict]:
    """The cells of a study (a row of `store.study.studies()`) that its report's verdicts use."""
    name = study["study"]
    return current_cells(store.study.cells(name), study["config"], store.study.planned(name))


def check_own_baselines(store: Store, cells: list[dict], students: list[str]) -> None:
    """Refuse a cell paired with the baseline of another student of its study (another checkpoint of its
    lineage): a post-distillation evaluation compares only with the baseline of the model it was trained from."""
    models: dict[str, str | None] = {}
    for cell in cells:
        key = cell.get("pre_eval_key")
        if key and key not in models:
            record = store.evaluation(key)
            models[key] = record.model if record is not None else None
        model = models.get(key)
        if model is not None and model != cell["student"] and model in students:
            raise CapgapError(f"cell {cell['cell_key']} trains {cell['student']} but is paired with the baseline of "
                              f"{model} (evaluation {key}); the store was edited or mixed: run `capgap run` again to "
                              "evaluate it against its own baseline")


def group_cells(store: Store, study: dict, current: list[dict] | None = None) -> list[dict]:
    """One record per (task, student, teacher, protocol) of the study's current cells, verdicts included."""
    name = study["study"]
    teachers = {(t["task"], t["teacher"]): t for t in store.study.teachers(name)}
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    current = current if current is not None else study_current_cells(store, study)
    check_own_baselines(store, current, study["config"].get("students", []))
    for cell in current:
        grouped[(cell["task"], cell["student"], cell["teacher"], cell["protocol"])].append(cell)
    groups = []
    for (task, student, teacher, protocol), cells in sorted(grouped.items()):
        done = [c for c in cells if c["status"] == "done"]
        body = _trained_group(store, done) if done else _untrained_group(store, cells)
        record = {"task": task, "student": student, "teacher": teacher, "protocol": protocol,
                  "n_train": cells[0]["n_train"], "n_available": cells[0].get("n_available"),
                  "n_too_long": cells[0].get("n_too_long"), **body}
        trained_at = json.loads(cells[0].get("training_json") or "null")
        record["budget_matched"] = trained_at is None or trained_at == study["config"].get("training", trained_at)
        params = next((c["student_params"] for c in cells if c["student_params"]), None)
        record.update(_teacher_facts(teachers.get((task, teacher)), params, record["pre_accuracy"]))
        groups.append(record)
    evaluation = study["config"].get("evaluation") or {}
    _add_verdicts(groups, evaluation.get("max_baseline_cut", MAX_BASELINE_CUT))
    return groups


def _add_tests(family: list[dict]) -> None:
    """The seed-aware test of each cell of a family, its seed variance pooled where the design allows."""
    ms = [seedaware.mean_squares(g["_items"]["d"]) for g in family]
    for g, m, (term, how) in zip(family, ms, seedaware.pool_seed_terms(ms), strict=True):
        test = seedaware.seed_aware_test(m, term, how)
        g.update({"ci95": test.ci95, "se": test.t.se, "df": test.t.df, "test": test.name, "scope": test.scope,
                  "p_value": test.p_value, "seed_variance": how, "seed_pool_cells": term.cells if term else 0,
                  "_seed_term": term})


def _add_verdicts(groups: list[dict], max_cut: float = MAX_BASELINE_CUT) -> None:
    """Tests, Holm across the teachers of each (task, student, protocol), the verdict and detectable effect.

    A cell whose baseline was cut at the token limit for more than `max_cut` of its items gets no verdict
    (its baseline is not the student as it was). A verdict is "improves"/"degrades" only when Holm's p <
    alpha; as Holm's p is at least the raw p, which comes from the same t as the 95% CI, such a verdict always
    has a CI that excludes 0.
    """
    for _, family in trained_families(groups, "task", "student", "protocol"):
        _add_tests(family)
        m = len(family)
        for g, adjusted in zip(family, stats.holm([g["p_value"] for g in family]), strict=True):
            g["p_holm"] = adjusted
            g["holm_family_size"] = m
            g["mde"] = cell_mde(g, m)
            g["baseline_note"] = baseline_note(g, max_cut)
            if baseline_cut(g, max_cut) is not None:
                g["verdict"] = NO_VERDICT
            elif adjusted < stats.ALPHA and g["gain"] != 0:
                g["verdict"] = "improves" if g["gain"] > 0 else "degrades"
            else:
                g["verdict"] = "no detectable change"


def cell_components(g: dict) -> tuple[power.Components | None, int]:
    """The variance components and seed-pool size that this cell's own test used: its item and residual
    variance, and the seed variance of its seed term (pooled or its own)."""
    comps, _ = power.pooled([g])
    term = g.get("_seed_term")
    if comps is None or term is None:
        return comps, 1
    seed = max(0.0, float(term.ms_seed - term.ms_res)) / term.n
    return power.Components(comps.item, seed, comps.residual), term.cells


def cell_mde(g: dict, m: int) -> float:
    """The smallest gain this cell's design (its items, seeds, measured variance components, seed pool)
    detects with 80% power at Holm's strictest level alpha/m, under the model of its own test."""
    comps, cells = cell_components(g)
    if comps is None:
        return 1.0
    return power.minimal_detectable_effect(comps, g["n_items"], len(g["seeds"]), seedaware.holm_alpha(m),
                                           cells=cells)


def detection_limits(groups: list[dict]) -> list[dict]:
    """Per (task, student, protocol): the smallest gain the study detects with 80% power at Holm's alpha/m,
    from the family's variance components (seed variance pooled over its cells), seeds and test items."""
    out = []
    for (task, student, protocol), family in trained_families(groups, "task", "student", "protocol"):
        m, k = len(family), max(len(g["seeds"]) for g in family)
        n = min(g["n_items"] for g in family)
        comps, how = power.pooled(family)
        cells = max((g.get("seed_pool_cells") or 1) for g in family)
        mde = power.minimal_detectable_effect(comps, n, k, seedaware.holm_alpha(m), cells=cells) if comps else 1.0
        scope = f"; {seedaware.ONE_SEED_SCOPE}" if k == 1 else ""
        size = f"gains ≥ {100 * mde:.1f} pp" if mde < 1 else "no gain of 100 pp or less"
        own = [g for g in family if len(g["seeds"]) > 1 and g.get("seed_pool_cells") == 1 and cells > 1]
        if own:  # cells tested on their own seeds (their spread exceeds the family's): their own limits
            scope += "; " + ", ".join(f"{g['teacher']} alone (its own seed variance) detects " +
                                      (f"gains ≥ {100 * g['mde']:.1f} pp" if g["mde"] < 1 else
                                       "no gain of 100 pp or less") for g in own)
        if all(g.get("verdict") == NO_VERDICT for g in family):
            scope += "; no verdict: every baseline of this family was cut at its token limit"
        out.append({"task": task, "student": student, "protocol": protocol, "mde": mde, "seeds": k, "n_items": n,
                    "holm_family_size": m, "alpha": seedaware.holm_alpha(m), "pooled_over_cells": how["cells"],
                    "sentence": (f"{task} · {student} · {protocol}: this study detects {size} "
                                 f"(80% power, Holm α/m = {stats.ALPHA}/{m}, {k} seed(s), {n} items){scope}")})
    return out


def trained_families(groups: list[dict], *fields: str) -> list[tuple[tuple, list[dict]]]:
    """Trained groups (a gain was measured) split by `fields`, e.g. ("task", "protocol"), in sorted order."""
    families: dict[tuple, list[dict]] = defaultdict(list)
    for g in groups:
        if g["gain"] is not None:
            families[tuple(g[f] for f in fields)].append(g)
    return sorted(families.items())
