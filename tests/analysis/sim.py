"""Simulated studies written into a real SQLite store: known per-item truth, so verdicts can be checked."""

from __future__ import annotations

import json

import numpy as np

from capgap.store import EvalRecord, Store

TRAINING = {"steps": 10, "epochs": None, "batch_size": 4, "grad_accum": 1}


def _evaluation(store: Store, key: str, correct: np.ndarray) -> None:
    store.register_evaluation(EvalRecord(key, "sim", key, "fp-" + key, "zero-shot-cot", {"key": key}, {}))
    store.add_items(key, [{"item_id": f"q{i:04d}", "item_hash": "h", "prompt": "p", "generation": "g",
                           "n_new_tokens": 1, "gold": "1", "answer_strict": "1" if c else "0",
                           "answer_flexible": None, "correct_strict": int(c), "correct_flexible": int(c),
                           "extraction_version": 1} for i, c in enumerate(correct)])


def shifted(pre: np.ndarray, gain: float, rng: np.random.Generator, churn: float = 0.05) -> np.ndarray:
    """A post-distillation run whose expected accuracy is pre's + gain: some items flip either way."""
    post = pre.copy()
    wrong, right = np.flatnonzero(pre == 0), np.flatnonzero(pre == 1)
    n = pre.size
    up = round(n * (churn + max(gain, 0)))
    down = round(n * (churn + max(-gain, 0)))
    post[rng.choice(wrong, min(up, wrong.size), replace=False)] = 1
    post[rng.choice(right, min(down, right.size), replace=False)] = 0
    return post


def write_study(store: Store, name: str, students: dict[str, dict], teachers: dict[str, dict],
                gains: dict[tuple[str, str, str], float], seeds: int = 1, n_items: int = 300, seed: int = 0) -> None:
    """students: {name: {"pre": accuracy, "params": n}}; teachers: {name: {"params", "accuracy", ...}};
    gains: {(student, teacher, protocol): true gain}."""
    rng = np.random.default_rng(seed)
    store.study.save_study(name, {"training": TRAINING}, {"capgap": "test"})
    for teacher, facts in teachers.items():
        row = {"study": name, "task": "sim", "teacher": teacher, "kind": "imported", "params": facts.get("params"),
               "pool_size": 100, "accuracy": facts.get("accuracy", 0.9), "mean_words": facts.get("words", 40.0),
               "notes_json": "{}"}
        store.study.save_teacher(row, [])
    pres = {}
    for student, facts in students.items():
        pre = (rng.random(n_items) < facts["pre"]).astype(int)
        pres[student] = pre
        _evaluation(store, f"{name}-pre-{student}", pre)
    for (student, teacher, protocol), gain in gains.items():
        for s in range(seeds):
            key = f"{name}-{student}-{teacher}-{protocol}-{s}"
            _evaluation(store, key, shifted(pres[student], gain, rng))
            store.study.save_cell({
                "cell_key": key, "study": name, "task": "sim", "student": student, "teacher": teacher,
                "protocol": protocol, "seed": s, "status": "done", "student_params": students[student]["params"],
                "n_train": teachers[teacher].get("n_train", 100), "steps": 10, "effective_batch": 4, "tokens": 1000,
                "train_seconds": 1.0, "loss_curve_json": json.dumps([[1, 2.0], [2, 1.5 - 0.1 * s]]),
                "pre_eval_key": f"{name}-pre-{student}", "post_eval_key": key, "training_json": json.dumps(TRAINING)})
