"""The lineage view: a student's checkpoints side by side, and what carried over from one to the next.

Tables (shared by Markdown and HTML) and one figure per lineage, task and protocol: the baseline and each
teacher's post-distillation accuracy across checkpoints, with 95% CIs (Wilson for the baseline; seed-aware
over items and seeds for a distilled model).
"""

from __future__ import annotations

from capgap.report.plots import _figure, _uri
from capgap.report.tables import Table, _ci, _p, pct, pp


def _acc(point: dict | None) -> str:
    if not point:
        return "-"
    lo, hi = point["ci95"]
    return f"{pct(point['accuracy'])} [{100 * lo:.1f}, {100 * hi:.1f}]"


def title(view: dict) -> str:
    return f"lineage {view['lineage']} · {view['task']} · {view['protocol']}"


def accuracy_table(view: dict) -> Table:
    """Checkpoint by checkpoint: the baseline and each teacher's distilled accuracy, with 95% CIs."""
    teachers = sorted({t for p in view["checkpoints"] for t in p["teachers"]})
    header = ["checkpoint", "student", "baseline", *teachers]
    rows = [[p["checkpoint"], p["student"], _acc(p.get("baseline")), *(_acc(p["teachers"].get(t)) for t in teachers)]
            for p in view["checkpoints"]]
    return header, rows


def _rank(t: dict) -> str:
    """"2 → 1", or "-" for a teacher not ranked (trained at its own budget)."""
    return "-" if t.get("rank_old") is None or t.get("rank_new") is None else f"{t['rank_old']} → {t['rank_new']}"


def carried_table(step: dict) -> Table:
    """One step's teachers: both gains, their change (the paired difference of differences) and the verdict."""
    header = ["teacher", f"gain on {step['old']}", f"gain on {step['new']}", "change [95% CI]", "p", "rank",
              "carried over"]
    rows = []
    for t in step["teachers"]:
        if "change" not in t:
            rows.append([t["teacher"], f"{pp(t['gain_old'])} {_ci(t['ci95_old'])}", "-", "-", "-", "-", t["carried"]])
            continue
        change = t["change"]
        rows.append([t["teacher"], f"{pp(t['gain_old'])} {_ci(t['ci95_old'])}",
                     f"{pp(t['gain_new'])} {_ci(t['ci95_new'])}", f"{pp(change['estimate'])} {_ci(change['ci95'])}",
                     _p(change["p_value"]), _rank(t), t["carried"]])
    return header, rows


def step_lines(step: dict) -> list[str]:
    """The baseline's drift and the deployment question of one step, as sentences."""
    lines = []
    drift = step.get("baseline_drift")
    if drift:
        lines.append(f"Baseline drift {step['old']} → {step['new']}: {pct(drift['pre_old'])} → "
                     f"{pct(drift['pre_new'])}, {pp(drift['estimate'])} points {_ci(drift['ci95'])}, "
                     f"p {_p(drift['p_value'])} (paired on {drift['n_items']} items).")
    for d in step.get("deployment", []):
        lines.append(f"Deploy {step['old']} distilled from {d['teacher']} instead of {step['new']}? It "
                     f"{d['answer']}: {pct(d['distilled_old'])} vs {pct(drift['pre_new']) if drift else '-'}, "
                     f"{pp(d['estimate'])} points {_ci(d['ci95'])}, p {_p(d['p_value'])} (Holm over the "
                     f"step's teachers: {_p(d.get('p_holm'))}).")
    return lines


def plot(view: dict) -> str | None:
    """Accuracy across checkpoints: the baseline in black, each teacher's distilled model in colour."""
    points = view["checkpoints"]
    if not points or not any(p.get("baseline") for p in points):
        return None
    fig = _figure(7, 3.6)
    ax = fig.subplots()
    x = list(range(len(points)))
    series = {"baseline (before distillation)": [p.get("baseline") for p in points]}
    for teacher in sorted({t for p in points for t in p["teachers"]}):
        series[teacher] = [p["teachers"].get(teacher) for p in points]
    for i, (name, values) in enumerate(series.items()):
        xs = [j + 0.06 * (i - len(series) / 2) for j, v in zip(x, values, strict=True) if v]
        ys = [100 * v["accuracy"] for v in values if v]
        errors = [[100 * (v["accuracy"] - v["ci95"][0]) for v in values if v],
                  [100 * (v["ci95"][1] - v["accuracy"]) for v in values if v]]
        style = {"color": "black", "lw": 2} if i == 0 else {}
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=name, **style)
    ax.set_xticks(x, [p["checkpoint"] for p in points])
    ax.set_ylabel("accuracy (%), 95% CI")
    ax.set_title(title(view))
    ax.legend(fontsize=8)
    return _uri(fig)
