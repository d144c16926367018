"""Simulated studies written into a real SQLite store: known truth, so verdicts can be checked.

Each student's test items are drawn afresh (heterogeneous difficulty: item-sampling noise), and every seed
of a (student, teacher, protocol) cell has its own true gain, drawn around the cell's gain with SD
`seed_sd` (training-run variance); each seed then flips items independently given the baseline
(`capgap.analysis.simulate`), so the realised gain varies around the truth by items and by seeds.
"""

from __future__ import annotations

import numpy as np

from capgap.analysis.simulate import (
    TRAINING,
    SimulatedCell,
    draw_items,
    draw_post,
    seed_gains,
    write_cell,
    write_evaluation,
)
from capgap.store import Store

__all__ = ["TRAINING", "write_study"]


def write_study(store: Store, name: str, students: dict[str, dict], teachers: dict[str, dict],
                gains: dict[tuple[str, str, str], float], seeds: int = 1, n_items: int = 300, seed: int = 0,
                seed_sd: float = 0.01) -> dict[tuple[str, str, str], np.ndarray]:
    """students: {name: {"pre": accuracy, "params": n}}; teachers: {name: {"params", "accuracy", ...}};
    gains: {(student, teacher, protocol): true seed-population gain}. Returns each cell's true per-seed gains."""
    rng = np.random.default_rng(seed)
    store.study.save_study(name, {"training": TRAINING}, {"capgap": "test"})
    for teacher, facts in teachers.items():
        row = {"study": name, "task": "sim", "teacher": teacher, "kind": "imported", "params": facts.get("params"),
               "pool_size": 100, "accuracy": facts.get("accuracy", 0.9), "mean_words": facts.get("words", 40.0),
               "notes_json": "{}"}
        store.study.save_teacher(row, [])
    items = {}
    for student, facts in students.items():
        items[student] = draw_items(n_items, rng, baseline=facts["pre"])
        write_evaluation(store, f"{name}-pre-{student}", items[student][0])
    truth = {}
    for (student, teacher, protocol), gain in gains.items():
        pre, fragility = items[student]
        true_gains = seed_gains(seeds, gain, seed_sd, rng)
        post = np.stack([draw_post(pre, fragility, g, rng, baseline=students[student]["pre"]) for g in true_gains])
        write_cell(store, name, student, teacher, protocol, SimulatedCell(pre, post, true_gains),
                   f"{name}-pre-{student}", student_params=students[student]["params"],
                   n_train=teachers[teacher].get("n_train", 100))
        truth[(student, teacher, protocol)] = true_gains
    return truth
