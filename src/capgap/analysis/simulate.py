"""Simulated distillation cells with a known truth, for the calibration bench and the tests.

The data-generating model (the one `bench/calibration.py` and `tests/analysis` check the verdicts against):

- **Items** are drawn afresh for every simulated study (item-sampling noise): each has a difficulty
  p_i ~ Beta(3b, 3(1 - b)) (mean b, the baseline accuracy: `BASELINE` = 30% unless given), and the
  student's baseline answer is correct with probability p_i. Each item also has a fragility h_i ~ U(0.4, 1.6)
  (mean 1): how easily training flips it, the same for every seed (item-level heterogeneity).
- **Seeds** are training runs. Seed s has a true gain g_s = mu + sigma * z_s, z_s standard normal truncated
  at +-3 (symmetric, so the seed-population mean gain is exactly mu; the truncation keeps every flip
  probability <= 1).
- **Flips.** Given the baseline, seed s flips each item independently: a wrong item becomes right with
  probability h_i (CHURN + max(g_s, 0)) / (1 - BASELINE), a right item becomes wrong with probability
  h_i (CHURN + max(-g_s, 0)) / BASELINE. Over the item population the expected post - pre of seed s is
  therefore exactly g_s, with ~CHURN of the items flipping each way on top of the gain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from capgap.store import CellRow, EvalRecord, Store
from capgap.tasks.extraction import EXTRACTION_VERSION

BASELINE = 0.30
CHURN = 0.05
Z_CLIP = 3.0
_CONCENTRATION = 3.0  # difficulty ~ Beta(3b, 3(1 - b)): mean b, heterogeneous items
_FRAGILITY = (0.4, 1.6)  # uniform range: mean 1
TRAINING = {"steps": 10, "epochs": None, "batch_size": 4, "grad_accum": 1}


@dataclass(frozen=True)
class SimulatedCell:
    pre: np.ndarray  # (n,) 0/1 baseline answers, shared by every seed
    post: np.ndarray  # (k, n) 0/1 answers after distillation, one row per seed
    gains: np.ndarray  # (k,) each seed's true gain g_s (expectation over the item population)


def draw_items(n: int, rng: np.random.Generator, baseline: float = BASELINE) -> tuple[np.ndarray, np.ndarray]:
    """(baseline answers (n,), fragilities (n,)) for n freshly sampled items; baseline accuracy `baseline`."""
    difficulty = rng.beta(_CONCENTRATION * baseline, _CONCENTRATION * (1 - baseline), n)
    pre = (rng.random(n) < difficulty).astype(int)
    return pre, rng.uniform(*_FRAGILITY, n)


def seed_gains(k: int, mu: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """k true per-seed gains mu + sigma * z, z ~ N(0, 1) truncated at +-Z_CLIP (mean exactly mu)."""
    return mu + sigma * np.clip(rng.standard_normal(k), -Z_CLIP, Z_CLIP)


def draw_post(pre: np.ndarray, fragility: np.ndarray, gain: float, rng: np.random.Generator,
              baseline: float = BASELINE, churn: float = CHURN) -> np.ndarray:
    """One seed's post-distillation answers: independent flips given the baseline, expected gain `gain`."""
    up = np.minimum(1.0, fragility * (churn + max(gain, 0.0)) / (1 - baseline))
    down = np.minimum(1.0, fragility * (churn + max(-gain, 0.0)) / baseline)
    u = rng.random(pre.size)
    return np.where(pre == 0, u < up, u >= down).astype(int)


def simulate_cell(n: int, k: int, mu: float, sigma: float, rng: np.random.Generator,
                  baseline: float = BASELINE) -> SimulatedCell:
    """One (teacher, protocol) cell: n fresh items, k seeds with gains drawn around mu with SD sigma."""
    pre, fragility = draw_items(n, rng, baseline)
    gains = seed_gains(k, mu, sigma, rng)
    post = np.stack([draw_post(pre, fragility, g, rng, baseline) for g in gains])
    return SimulatedCell(pre, post, gains)


def simulate_family(n: int, k: int, mus: list[float], sigmas: list[float], rng: np.random.Generator,
                    baseline: float = BASELINE) -> list[SimulatedCell]:
    """A family of cells (one per teacher: gain mu_j, seed SD sigma_j) that train one student on the same n
    fresh items: the baseline answers and the items' fragility are shared, as in a study."""
    pre, fragility = draw_items(n, rng, baseline)
    cells = []
    for mu, sigma in zip(mus, sigmas, strict=True):
        gains = seed_gains(k, mu, sigma, rng)
        cells.append(SimulatedCell(pre, np.stack([draw_post(pre, fragility, g, rng, baseline) for g in gains]), gains))
    return cells


def item_ids(n: int) -> list[str]:
    return [f"q{i:04d}" for i in range(n)]


def write_evaluation(store: Store, key: str, correct: np.ndarray, lengths: np.ndarray | None = None,
                     max_new_tokens: int | None = None) -> None:
    """An evaluation's per-item rows in the store, as the evaluator writes them: a generation that today's
    extraction scores as stored, so re-scoring on read changes nothing. `lengths`: each generation's new
    tokens (1 unless given); `max_new_tokens`: the decoding limit the evaluation records (a length at it
    counts as cut)."""
    spec = {"key": key, "answer_type": "number"}
    if max_new_tokens is not None:
        spec["decoding"] = {"max_new_tokens": max_new_tokens}
    lengths = np.ones(len(correct), dtype=int) if lengths is None else lengths
    store.register_evaluation(EvalRecord(key, "sim", key, "fp-" + key, "zero-shot-cot", spec, {}))
    store.add_items(key, [{"item_id": item, "item_hash": "h", "prompt": "p", "generation": f"The answer is {int(c)}.",
                           "n_new_tokens": int(length), "gold": "1", "answer_strict": str(int(c)),
                           "answer_flexible": str(int(c)), "correct_strict": int(c), "correct_flexible": int(c),
                           "extraction_version": EXTRACTION_VERSION}
                          for item, c, length in zip(item_ids(len(correct)), correct, lengths, strict=True)])


def cell_row(study: str, student: str, teacher: str, protocol: str, seed: int, *, pre_key: str, post_key: str,
             n_items: int, student_params: float | None = 1e8, n_train: int = 100) -> CellRow:
    """A finished cell as the runner records one (test items recorded, baseline named)."""
    return CellRow(post_key, study, "sim", student, teacher, protocol, seed, status="done",
                   student_params=student_params, n_train=n_train, steps=TRAINING["steps"],
                   effective_batch=TRAINING["batch_size"], tokens=1000, train_seconds=1.0,
                   loss_curve_json=json.dumps([[1, 2.0], [2, 1.5 - 0.1 * seed]]), pre_eval_key=pre_key,
                   post_eval_key=post_key, training_json=json.dumps(TRAINING),
                   test_items_json=json.dumps(item_ids(n_items)))


def write_cell(store: Store, study: str, student: str, teacher: str, protocol: str, cell: SimulatedCell,
               pre_key: str, **facts) -> None:
    """Every seed of a simulated cell into the store: post rows per seed and the cell rows (baseline rows are
    written by the caller once per student, under `pre_key`)."""
    for seed, post in enumerate(cell.post):
        key = f"{study}-{student}-{teacher}-{protocol}-{seed}"
        write_evaluation(store, key, post)
        store.study.save_cell(cell_row(study, student, teacher, protocol, seed, pre_key=pre_key, post_key=key,
                                       n_items=cell.pre.size, **facts))
