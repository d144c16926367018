"""Verdicts from the store alone: paired statistics, capacity-gap analysis, rankings, recommendations."""

from __future__ import annotations

import math
import time

from capgap.analysis.budgets import budget_comparisons
from capgap.analysis.capacity import capacity_gap
from capgap.analysis.cells import VERDICTS, detection_limits, group_cells, study_current_cells
from capgap.analysis.lineage import lineage_view
from capgap.analysis.predictive import validate_predictions
from capgap.analysis.ranking import between_protocols, post_vs_gain
from capgap.analysis.recommend import recommend
from capgap.analysis.stats import ALPHA, POWER
from capgap.analysis.versions import superseded
from capgap.config.lineages import lineages_of
from capgap.config.schema import effective_batch, own_budgets
from capgap.errors import CapgapError
from capgap.store import Store

ANALYSIS_VERSION = 5  # bump when a key of the JSON report changes meaning (2: seed-aware verdicts; 3: config
# versions and the finished cells an edit superseded; 4: choosing a teacher: predictions, validation, selections;
# 5: seed variance pooled across a family's teachers, "no verdict: baseline cut", baseline notes)
METHOD = ("seed-aware t: d = post - pre with crossed random items and training seeds; V = [MS_item + "
          "max(0, MS_seed - MS_res)] / (n k), MS_seed and MS_res averaged over the cells of a (task, student, "
          "protocol) family unless a cell's seed spread exceeds the family's (one-sided F test, p < 0.2); "
          "Satterthwaite df (the seed df when it is at most 2 and the seed term is in V; MS_seed floored at "
          "MS_res in the df when the seed df is 1); 1 seed: paired t on items, for that run only; no verdict "
          "when the baseline's answers were cut at the token limit for more than max_baseline_cut of items")

__all__ = ["ANALYSIS_VERSION", "VERDICTS", "analyse_store", "analyse_study", "public"]


def analyse_study(store: Store, study: dict) -> dict:
    """Everything the report shows about one study (a row of `store.study.studies()`)."""
    current = study_current_cells(store, study)
    groups = group_cells(store, study, current)
    training = study["config"].get("training", {})
    name = study["study"]
    # teachers of the latest config only: one dropped from it keeps its rows in the store, not in the report
    configured = {t.get("name") for t in study["config"].get("teachers", [])} or None
    return {
        "study": name,
        "config": study["config"],
        "config_version": study["config_version"],
        "superseded": superseded(store.study.cells(name), current, store.study.config_versions(name),
                                 study["config_version"]),
        "versions": study["versions"],
        "budget": {"steps": training.get("steps"), "epochs": training.get("epochs"),
                   "effective_batch": effective_batch(training.get("batch_size"), training.get("grad_accum")),
                   "matched": training.get("epochs") is None and not own_budgets(study["config"]),
                   "own": own_budgets(study["config"])},
        "teachers": [t for t in store.study.teachers(name) if configured is None or t["teacher"] in configured],
        "cells": groups,
        # a teacher at its own budget is compared with its twin (budget_comparisons), never ranked with the rest
        "recommendations": recommend([g for g in groups if g.get("budget_matched", True)]),
        "budget_comparisons": budget_comparisons(groups, study["config"].get("teachers", [])),
        "screening": screened(store, study),
        "detection_limits": detection_limits(groups),
        "capacity_gap": capacity_gap(groups),
        "rank_flips": {"post_vs_gain": post_vs_gain(groups), "between_protocols": between_protocols(groups)},
        "choosing": choosing(store, name, groups),
        "lineages": lineage_view(groups, lineages_of(study["config"])),  # checkpoints of one student, step by step
    }


def screened(store: Store, study: dict) -> list[dict]:
    """The screening a run of the study applied (its config's `screening`), for the tasks it configures."""
    tasks = {t.get("name") for t in study["config"].get("tasks", [])}
    if not study["config"].get("screening"):
        return []
    return [s for s in store.study.screenings(study["study"]) if s["task"] in tasks]


def choosing(store: Store, study: str, groups: list[dict]) -> dict:
    """What `capgap predict` and `capgap select` stored for the study, and how the predictions fared against
    the gains the grid realized."""
    predictions = store.selection.predictions(study)
    return {"predictions": predictions, "validation": validate_predictions(groups, predictions),
            "selections": store.selection.selections(study)}


def analyse_store(store: Store, study: str | None = None) -> dict:
    """The analysis of every study in the store, or of the one named."""
    studies = store.study.studies()
    names = [s["study"] for s in studies]
    if study is not None:
        if study not in names:
            raise CapgapError(f"study '{study}' is not in {store.path}; studies there: {', '.join(names) or 'none'}")
        studies = [s for s in studies if s["study"] == study]
    if not studies:
        raise CapgapError(f"{store.path} holds no study yet; run `capgap run CONFIG` first")
    return {"capgap_report": ANALYSIS_VERSION, "store": str(store.path), "created_at": time.time(),
            "settings": {"alpha": ALPHA, "power": POWER, "method": METHOD,
                         "correction": "Holm across the teachers of each (task, student, protocol)"},
            "studies": [analyse_study(store, s) for s in studies]}


def public(value):
    """What JSON carries: the analysis without its private per-item arrays (keys starting with '_'), and
    null for a number that is not one (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [public(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
