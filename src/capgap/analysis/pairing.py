"""The per-item arrays a cell's statistics are computed from: each seed's post-distillation answers paired
with *its own* baseline, on exactly the cell's test items, all scored by the current extraction."""

from __future__ import annotations

import json

import numpy as np

from capgap.errors import CapgapError
from capgap.evaluation.scoring import current_rows
from capgap.store import Store


def _test_items(store: Store, cell: dict) -> list[str]:
    """The cell's test item ids as recorded when it was evaluated (older stores: the baseline's rows)."""
    if cell.get("test_items_json"):
        return json.loads(cell["test_items_json"])
    return sorted(set(store.items(cell["pre_eval_key"])) & set(store.items(cell["post_eval_key"])))


def baseline_accuracy(store: Store, cell: dict) -> tuple[int, float | None]:
    """(items, strict accuracy) of a cell's baseline on its test items, scored by the current extraction."""
    if not cell.get("pre_eval_key"):
        return 0, None
    ids = json.loads(cell["test_items_json"]) if cell.get("test_items_json") else None
    rows = current_rows(store, cell["pre_eval_key"], ids)
    return len(rows), (sum(r["correct_strict"] for r in rows.values()) / len(rows) if rows else None)


def paired_arrays(store: Store, cells: list[dict]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(item ids, pre (seeds, items), post (seeds, items)) of finished cells that share a test set, 0/1 strict.

    Row s of `pre` is the baseline that seed s's cell names, so a seed evaluated in another precision or on
    another machine is paired with the baseline evaluated the same way. Every id must be stored for every
    evaluation: a missing row is an error, never a silently smaller test set.
    """
    sets = [set(_test_items(store, c)) for c in cells]
    if all(c.get("test_items_json") for c in cells) and any(s != sets[0] for s in sets):
        raise CapgapError(f"cells {', '.join(c['cell_key'] for c in cells)} of one teacher and protocol were "
                          "evaluated on different test items; run `capgap run` again so every seed is evaluated "
                          "on the config's test split")
    ids = sorted(set.intersection(*sets))
    pre_rows, post_rows = [], []
    for cell in cells:
        for key, out in ((cell["pre_eval_key"], pre_rows), (cell["post_eval_key"], post_rows)):
            rows = current_rows(store, key, ids)
            if len(rows) != len(ids):
                missing = next(i for i in ids if i not in rows)
                raise CapgapError(f"evaluation {key} of cell {cell['cell_key']} has no stored row for test item "
                                  f"{missing!r}; run `capgap run` again to finish it")
            out.append([rows[i]["correct_strict"] for i in ids])
    return ids, np.array(pre_rows, dtype=float), np.array(post_rows, dtype=float)
