"""Teachers trained at their own budget (a published setting: `budget: {batch_size: 5, grad_accum: 4}`) beside
their twins at the study's matched budget.

Mix-Distillation's released configs train the mixture at 5 x 4 examples per update and plain distillation at
2 x 1; compared at those budgets, a mixture's advantage mixes the data with ten times the examples per
update. A teacher whose config differs from another's only in its name and its `budget` is that teacher's
twin; when both ran, the report gives both gains and their difference on the same items, with the seed-aware
CI of the recommendation's teacher-vs-teacher comparison (`recommend.compare_cells`).
"""

from __future__ import annotations

from capgap.analysis.recommend import compare_cells


def _core(teacher: dict) -> dict:
    return {k: v for k, v in teacher.items() if k not in ("name", "budget")}


def twins(teachers: list[dict]) -> dict[str, str]:
    """Each teacher with its own budget -> its twin at the matched budget (when the study has one)."""
    matched = [t for t in teachers if not t.get("budget")]
    out = {}
    for t in teachers:
        if t.get("budget"):
            twin = next((u["name"] for u in matched if _core(u) == _core(t)), None)
            if twin is not None:
                out[t["name"]] = twin
    return out


def _pp(x: float) -> str:
    return f"{100 * x:+.1f} pp"


def budget_comparisons(groups: list[dict], teachers: list[dict]) -> list[dict]:
    """Per (task, student, protocol) and teacher with its own budget and a trained twin: both gains, their
    difference (own budget - matched) with its 95% CI, and the sentence the report prints."""
    by_key = {(g["task"], g["student"], g["protocol"], g["teacher"]): g for g in groups if g["gain"] is not None}
    twin_of = twins(teachers)
    out = []
    for (task, student, protocol, teacher), g in sorted(by_key.items()):
        twin = by_key.get((task, student, protocol, twin_of.get(teacher)))
        if twin is None:
            continue
        diff = compare_cells(g, twin)
        lo, hi = diff["difference_ci95"]
        sentence = (f"{twin['teacher']} on {task} · {student} ({protocol}): {_pp(g['gain'])} at "
                    f"{g['effective_batch']} examples/step ({teacher}, budget not matched), {_pp(twin['gain'])} at "
                    f"matched {twin['effective_batch']}; difference {_pp(diff['difference'])} [{_pp(lo)}, {_pp(hi)}]"
                    f" (p={diff['p_value']:.2g})")
        out.append({"task": task, "student": student, "protocol": protocol, "teacher": teacher,
                    "twin": twin["teacher"], "gain": g["gain"], "twin_gain": twin["gain"],
                    "examples_per_step": g["effective_batch"], "twin_examples_per_step": twin["effective_batch"],
                    "difference": diff["difference"], "difference_ci95": diff["difference_ci95"],
                    "p_value": diff["p_value"], "sentence": sentence})
    return out
