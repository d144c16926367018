"""The report as Markdown: every table and sentence of the HTML report, without the figures."""

from __future__ import annotations

from capgap.report import choosing, lineage, tables


def table_lines(table: tables.Table) -> list[str]:
    header, rows = table
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def render_study(study: dict) -> list[str]:
    out = [f"## Study `{study['study']}`", "", f"Budget: {tables.budget_line(study)}.", ""]
    if tables.screening_lines(study):
        out += ["### Tasks screened by teacher gap", "", *(f"- {line}" for line in tables.screening_lines(study)), ""]
    out += ["### Recommendation", ""]
    if not study["recommendations"]:
        out += [tables.nothing_yet(study), ""]
    for r in study["recommendations"]:
        confidence = f" — {r['confidence']}" if r["confidence"] else ""
        out += [f"- **{r['task']} · {r['student']}: {r['decision']}**{confidence}. {r['evidence']}.", ""]
    out += ["### Gains over the pre-distillation baseline", ""]
    out += [f"- {line}" for line in tables.detection_lines(study)] + [""]
    out += table_lines(tables.cells_table(study))
    out += [f"- {line}" for line in tables.failure_lines(study)] + ([""] if tables.failure_lines(study) else [])
    if tables.budget_lines(study):
        out += ["Budgets:", "", *(f"- {line}" for line in tables.budget_lines(study)), ""]
    seeds = tables.seeds_table(study)
    if seeds:
        out += ["Per-seed gains:", "", *table_lines(seeds)]
    if tables.teacher_lines(study):
        out += ["Teachers' rationales:", "", *(f"- {line}" for line in tables.teacher_lines(study)), ""]
    out += ["### Capacity gap", ""]
    for c in study["capacity_gap"]:
        out += [f"**{c['task']} · {c['protocol']}.** {c['sentence']}", "", *table_lines(tables.spearman_table(c))]
        out += [f"- {line}" for line in tables.regression_lines(c)] + [""]
    out += ["### Rankings: post-only vs gain, and between protocols", ""]
    out += [f"- {line}" for line in tables.flips_lines(study)] + [""]
    if study.get("superseded"):
        out += ["### Finished cells an edit of the config superseded", ""]
        out += [f"- {s['sentence']}: {', '.join(s['cells'])}." for s in study["superseded"]] + [""]
    return out + lineage_lines(study.get("lineages") or []) + choosing_lines(study.get("choosing") or {})


def lineage_lines(views: list[dict]) -> list[str]:
    """The lineage section: accuracy across checkpoints, then what carried over at each step."""
    out = ["### Lineages: a baseline that moves", ""] if views else []
    for view in views:
        out += [f"**{lineage.title(view)}**", "", *table_lines(lineage.accuracy_table(view))]
        for step in view["steps"]:
            out += [f"What carried over from {step['old']} to {step['new']}:", "",
                    *table_lines(lineage.carried_table(step)), *(f"- {line}" for line in lineage.step_lines(step)), ""]
    return out


def choosing_lines(found: dict) -> list[str]:
    """The "choosing a teacher" section: predictions, their validation, selections (none: no section)."""
    if not found.get("predictions") and not found.get("selections"):
        return []
    out = ["### Choosing a teacher", ""]
    for title, table, line in choosing.prediction_tables(found.get("predictions", [])):
        out += [f"Cheap predictors (`capgap predict`), {title}:", "", *table_lines(table), line, ""]
    if found.get("validation"):
        out += ["Predicted against realized gains (95% CIs resample teachers and seeds):", ""]
        for title, table in choosing.validation_tables(found["validation"]):
            out += [f"**{title}**", "", *table_lines(table)]
    for result in found.get("selections", []):
        before, table, after = choosing.selection_table(result)
        out += ["Budgeted selection (`capgap select`):", "", *(f"- {b}" for b in before), "", *table_lines(table),
                *(f"- {a}" for a in after), ""]
    return out


def render(analysis: dict) -> str:
    out = ["# capgap report", "", tables.method_line(analysis), ""]
    for study in analysis["studies"]:
        out += render_study(study)
    return "\n".join(out).rstrip() + "\n"
