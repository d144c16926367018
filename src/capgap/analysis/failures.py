"""How often answers were cut at the token limit or gave no answer, before and after distillation.

A student that learns long rationales can lose points because its answers no longer fit in
`max_new_tokens`, or because it stops stating an answer, not because it reasons worse. Per cell, over its
test items (post averaged over seeds, each seed with its own baseline): the share of generations that
reached the token limit, and the share with no answer (strict and flexible extraction). When a change in
either explains at least half of the gain, the report says so beside it.
"""

from __future__ import annotations

from capgap.evaluation.scoring import current_rows
from capgap.store import Store

RATES = ("truncated", "no_answer_strict", "no_answer_flexible")


def _rates(store: Store, eval_key: str, ids: list[str]) -> tuple[dict[str, float], int | None]:
    record = store.evaluation(eval_key)
    limit = (record.spec.get("decoding") or {}).get("max_new_tokens") if record else None
    rows = [r for r in current_rows(store, eval_key, ids).values()]
    n = max(len(rows), 1)
    return {"truncated": sum(limit is not None and r["n_new_tokens"] >= limit for r in rows) / n,
            "no_answer_strict": sum(not r["answer_strict"] for r in rows) / n,
            "no_answer_flexible": sum(not r["answer_flexible"] for r in rows) / n}, limit


def _mean(rates: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rates) / len(rates) for k in RATES}


def answer_failures(store: Store, cells: list[dict], ids: list[str], gain: float) -> dict:
    """Truncation and no-answer rates of a cell's baselines and post-distillation evaluations."""
    pre = [_rates(store, c["pre_eval_key"], ids) for c in cells]
    post = [_rates(store, c["post_eval_key"], ids) for c in cells]
    before, after = _mean([r for r, _ in pre]), _mean([r for r, _ in post])
    limit = post[0][1]
    return {"pre": before, "post": after, "max_new_tokens": limit,
            "sentence": _sentence(before, after, gain, limit)}


def _sentence(before: dict, after: dict, gain: float, limit: int | None) -> str | None:
    """Said when more (or fewer) cut or unanswered outputs account for at least half of the gain."""
    if gain == 0:
        return None
    for key, what in (("truncated", f"answers cut at the {limit}-token limit"),
                      ("no_answer_strict", "answers with no stated answer")):
        change = after[key] - before[key]
        if change * gain < 0 and abs(change) >= abs(gain) / 2:
            return (f"{what} went from {100 * before[key]:.0f}% to {100 * after[key]:.0f}% of test items: much of "
                    f"this {100 * gain:+.1f} pp gain may come from them, not from reasoning")
    return None
