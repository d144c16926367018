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


def draw_lineage(n: int, drifts: list[float], rng: np.random.Generator, baseline: float = 0.3) -> list[tuple]:
    """Baselines of a lineage's checkpoints on the same n items: the first drawn fresh, each next one its
    predecessor's answers moved by an expected `drift`; each checkpoint gets its own fragilities (independent of
    its answers, so a seed's expected gain over it is exactly its true gain). [(pre, fragility, accuracy)]."""
    pre, fragility = draw_items(n, rng, baseline=baseline)
    out = [(pre, fragility, baseline)]
    for drift in drifts:
        previous, old_fragility, accuracy = out[-1]
        moved = draw_post(previous, old_fragility, drift, rng, baseline=accuracy)
        out.append((moved, rng.uniform(0.4, 1.6, n), accuracy + drift))
    return out


def write_lineage_study(store: Store, name: str, lineage: str, checkpoints: list[str], drifts: list[float],
                        gains: dict[tuple[str, str], float], seeds: int = 3, n_items: int = 300, seed: int = 0,
                        seed_sd: float = 0.01) -> None:
    """A simulated study of one lineage: every checkpoint on the same items, gains {(checkpoint, teacher): mu}."""
    rng = np.random.default_rng(seed)
    config = {"training": TRAINING, "students": checkpoints,
              "lineages": [{"name": lineage, "checkpoints": checkpoints}]}
    store.study.save_study(name, config, {"capgap": "test"})
    teachers = sorted({t for _, t in gains})
    for teacher in teachers:
        store.study.save_teacher({"study": name, "task": "sim", "teacher": teacher, "kind": "imported", "params": None,
                                  "pool_size": 100, "accuracy": 0.9, "mean_words": 40.0, "notes_json": "{}"}, [])
    for checkpoint, (pre, fragility, accuracy) in zip(checkpoints, draw_lineage(n_items, drifts, rng), strict=True):
        write_evaluation(store, f"{name}-pre-{checkpoint}", pre)
        for teacher in teachers:
            true_gains = seed_gains(seeds, gains[(checkpoint, teacher)], seed_sd, rng)
            post = np.stack([draw_post(pre, fragility, g, rng, baseline=accuracy) for g in true_gains])
            write_cell(store, name, checkpoint, teacher, "own-correct", SimulatedCell(pre, post, true_gains),
                       f"{name}-pre-{checkpoint}")
