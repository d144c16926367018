"""How often answers were cut at the token limit or gave no answer, before and after distillation.

A student that learns long rationales can lose points because its answers no longer fit in
`max_new_tokens`, or because it stops stating an answer, not because it reasons worse. Per cell, over its
test items (post averaged over seeds, each seed with its own baseline): the share of generations that
reached the token limit, and the share with no answer (strict and flexible extraction). When a change in
either explains at least half of the gain, the report says so beside it.
"""

from __future__ import annotations

import numpy as np

from capgap.config.schema import MAX_BASELINE_CUT
from capgap.evaluation.metrics import looped
from capgap.evaluation.scoring import current_rows
from capgap.store import Store

RATES = ("truncated", "looped", "no_answer_strict", "no_answer_flexible")
FLOOR, CEILING = 0.05, 0.95  # a baseline below / above these cannot show a loss / a gain
NO_VERDICT = "no verdict: baseline cut"


def _rates(store: Store, eval_key: str, ids: list[str]) -> tuple[dict[str, float], int | None, list[int]]:
    record = store.evaluation(eval_key)
    limit = (record.spec.get("decoding") or {}).get("max_new_tokens") if record else None
    rows = [r for r in current_rows(store, eval_key, ids).values()]
    n = max(len(rows), 1)
    cut = [r for r in rows if limit is not None and r["n_new_tokens"] >= limit]
    return ({"truncated": len(cut) / n, "looped": sum(looped(r["generation"] or "") for r in cut) / n,
             "no_answer_strict": sum(not r["answer_strict"] for r in rows) / n,
             "no_answer_flexible": sum(not r["answer_flexible"] for r in rows) / n}, limit,
            [r["n_new_tokens"] for r in rows])


def _mean(rates: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rates) / len(rates) for k in RATES}


def answer_failures(store: Store, cells: list[dict], ids: list[str], gain: float) -> dict:
    """Truncation and no-answer rates of a cell's baselines and post-distillation evaluations."""
    pre = [_rates(store, c["pre_eval_key"], ids) for c in cells]
    post = [_rates(store, c["post_eval_key"], ids) for c in cells]
    before, after = _mean([r for r, _, _ in pre]), _mean([r for r, _, _ in post])
    limit = post[0][1]
    lengths = pre[0][2]
    p99 = int(np.ceil(np.percentile(lengths, 99))) if lengths else None
    return {"pre": before, "post": after, "max_new_tokens": limit, "pre_max_new_tokens": pre[0][1],
            "pre_length_p99": p99,
            "sentence": _sentence(before, after, gain, limit)}


def baseline_cut(g: dict, max_cut: float = MAX_BASELINE_CUT) -> float | None:
    """The share of the cell's baseline answers cut at the token limit when it exceeds `max_cut` (the cell
    then gets no verdict), else None. Answers that reached the limit in a loop (`evaluation.metrics.looped`)
    are not counted: no limit would end them, so they are the student as it was."""
    pre = (g.get("answer_failures") or {}).get("pre") or {}
    cut = pre.get("truncated", 0.0) - pre.get("looped", 0.0)
    return cut if cut > max_cut and (g.get("answer_failures") or {}).get("pre_max_new_tokens") else None


def baseline_note(g: dict, max_cut: float = MAX_BASELINE_CUT) -> str | None:
    """Why this cell's baseline is not the student as it was (cut at the token limit: no verdict), or what
    it cannot show (at the floor or the ceiling); None when it is fair and inside (5%, 95%)."""
    failures = g.get("answer_failures") or {}
    cut = baseline_cut(g, max_cut)
    if cut is not None:
        limit, loops = failures["pre_max_new_tokens"], failures["pre"].get("looped", 0.0)
        loop_note = f" ({100 * loops:.0f}% more ended in a loop)" if loops else ""
        # answers cut at the limit hide how long they would run: the 99th percentile is not known from them
        return (f"no verdict: the baseline's answers were cut at {limit} tokens for {100 * cut:.0f}% of items "
                f"(more than {100 * max_cut:.0f}%){loop_note}, so it is not the student as it was; set "
                f"evaluation.max_new_tokens to at least {2 * limit}, or to the 99th-percentile length that "
                "`capgap plan CONFIG --lengths 32` measures")
    accuracy = g.get("pre_accuracy")
    if accuracy is not None and accuracy < FLOOR:
        return (f"the baseline is at the floor ({100 * accuracy:.1f}% correct): this task cannot show a loss; "
                "choose an easier task or more new tokens")
    if accuracy is not None and accuracy > CEILING:
        return f"the baseline is at the ceiling ({100 * accuracy:.1f}% correct): this task cannot show a gain"
    return None


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
