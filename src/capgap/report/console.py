"""The results table `capgap run` prints: one Markdown table per task x student, from a study's analysis
(`capgap.analysis.analyse_study`), so the table and the report come from one reading of the store."""

from __future__ import annotations

from capgap.report.tables import train_count


def study_tables(study: dict) -> str:
    """Markdown: teacher, protocol, teacher accuracy, #training examples, pre, post (mean over seeds), gain."""
    cells = [g for g in study["cells"] if g["gain"] is not None]
    out = []
    for task, student in sorted({(g["task"], g["student"]) for g in cells}):
        out += [f"\n### {task} · student {student}\n",
                "| teacher | protocol | teacher acc | #train | steps x batch | pre acc | post acc | gain (pp)"
                " | seeds |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for g in cells:
            if (g["task"], g["student"]) != (task, student):
                continue
            acc = g["teacher_accuracy"]
            acc_text = f"{100 * acc:.1f}%" if acc is not None else "-"
            out.append(f"| {g['teacher']} | {g['protocol']} | {acc_text} | {train_count(g)} | "
                       f"{g['steps']} x {g['effective_batch']}{'' if g.get('budget_matched', True) else ' (own)'} | "
                       f"{100 * g['pre_accuracy']:.1f}% | "
                       f"{100 * g['post_accuracy']:.1f}% | {100 * g['gain']:+.1f} | {len(g['seeds'])} |")
    return "\n".join(out).strip() + "\n" if out else "(no finished cells yet)\n"


def lineage_tables(study: dict) -> str:
    """Markdown: each lineage's accuracies across checkpoints and what carried over (`capgap rebase`)."""
    from capgap.report.markdown import lineage_lines

    lines = lineage_lines(study.get("lineages") or [])
    return "\n".join(lines).strip() + "\n" if lines else "(no lineage in this study)\n"
