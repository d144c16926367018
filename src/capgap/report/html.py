"""The report as one self-contained HTML file: inline CSS, figures embedded as PNG data URIs."""

from __future__ import annotations

from html import escape

from capgap.report import choosing, lineage, tables
from capgap.report.plots import figures

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th{background:#f6f8fa} td:nth-child(-n+3){text-align:left}
.rec{border-left:4px solid #0969da;background:#f6f8fa;padding:.6em 1em;margin:1em 0}
.improves{color:#1a7f37;font-weight:600} .degrades{color:#cf222e;font-weight:600}
img{max-width:100%;border:1px solid #d0d7de;margin:.5em 0}
.note{color:#57606a;font-size:13px}
"""


def _table(table: tables.Table) -> str:
    header, rows = table
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(text: str) -> str:
    """A table cell; verdicts that say improves / degrades are coloured."""
    word = text.split(" ", 1)[0]
    if word in ("improves", "degrades"):
        return f'<td class="{word}">{escape(text)}</td>'
    return f"<td>{escape(text)}</td>"


def _figures(study: dict) -> str:
    out = []
    for anchor, (title, uri) in figures(study).items():
        body = (f'<img id="fig-{anchor}" alt="{escape(title)}" src="{uri}">' if uri
                else '<p class="note">nothing to draw yet</p>')
        out.append(f"<h3>{escape(title)}</h3>{body}")
    return "".join(out)


def render_study(study: dict) -> str:
    out = [f"<h2>Study <code>{escape(study['study'])}</code></h2>",
           f"<p>Budget: {escape(tables.budget_line(study))}.</p>"]
    if tables.screening_lines(study):
        out += ["<h3>Tasks screened by teacher gap</h3><ul>",
                *(f"<li>{escape(line)}</li>" for line in tables.screening_lines(study)), "</ul>"]
    out.append("<h3>Recommendation</h3>")
    if not study["recommendations"]:
        out.append(f"<p>{escape(tables.nothing_yet(study))}</p>")
    for r in study["recommendations"]:
        confidence = f" — {escape(r['confidence'])}" if r["confidence"] else ""
        out.append(f'<div class="rec"><b>{escape(r["task"])} · {escape(r["student"])}: {escape(r["decision"])}</b>'
                   f"{confidence}.<br>{escape(r['evidence'])}.</div>")
    out += ["<h3>Gains over the pre-distillation baseline</h3>",
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in tables.detection_lines(study)) + "</ul>",
            _table(tables.cells_table(study)),
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in tables.failure_lines(study)) + "</ul>"]
    if tables.budget_lines(study):
        out += ["<p>Budgets:</p><ul>", *(f"<li>{escape(line)}</li>" for line in tables.budget_lines(study)), "</ul>"]
    seeds = tables.seeds_table(study)
    if seeds:
        out += ["<p>Per-seed gains:</p>", _table(seeds)]
    if tables.teacher_lines(study):
        out += ["<p>Teachers' rationales:</p><ul>",
                *(f"<li>{escape(line)}</li>" for line in tables.teacher_lines(study)), "</ul>"]
    out.append("<h3>Capacity gap</h3>")
    for c in study["capacity_gap"]:
        out += [f"<p><b>{escape(c['task'])} · {escape(c['protocol'])}.</b> {escape(c['sentence'])}</p>",
                _table(tables.spearman_table(c)),
                "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in tables.regression_lines(c)) + "</ul>"]
    out += ["<h3>Rankings: post-only vs gain, and between protocols</h3>",
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in tables.flips_lines(study)) + "</ul>"]
    if study.get("superseded"):
        out += ["<h3>Finished cells an edit of the config superseded</h3><ul>",
                *(f"<li>{escape(s['sentence'])}: {escape(', '.join(s['cells']))}.</li>" for s in study["superseded"]),
                "</ul>"]
    out.append(_figures(study))
    out.append(_lineages(study.get("lineages") or []))
    out.append(_choosing(study.get("choosing") or {}))
    return "".join(out)


def _lineages(views: list[dict]) -> str:
    """The lineage section: accuracy across checkpoints (table and figure), what carried over at each step."""
    out = ["<h3>Lineages: a baseline that moves</h3>"] if views else []
    for i, view in enumerate(views):
        out += [f"<p><b>{escape(lineage.title(view))}</b></p>", _table(lineage.accuracy_table(view))]
        uri = lineage.plot(view)
        if uri:
            out.append(f'<img id="fig-lineage-{i}" alt="{escape(lineage.title(view))}" src="{uri}">')
        for step in view["steps"]:
            out += [f"<p>What carried over from {escape(step['old'])} to {escape(step['new'])}:</p>",
                    _table(lineage.carried_table(step)), "<ul>",
                    *(f"<li>{escape(line)}</li>" for line in lineage.step_lines(step)), "</ul>"]
    return "".join(out)


def _choosing(found: dict) -> str:
    """The "choosing a teacher" section (none without predictions or selections)."""
    if not found.get("predictions") and not found.get("selections"):
        return ""
    out = ["<h3>Choosing a teacher</h3>"]
    for title, table, line in choosing.prediction_tables(found.get("predictions", [])):
        out += [f"<p>Cheap predictors (<code>capgap predict</code>), {escape(title)}:</p>", _table(table),
                f"<p>{escape(line)}</p>"]
    if found.get("validation"):
        out.append("<p>Predicted against realized gains (95% CIs resample teachers and seeds):</p>")
        for title, table in choosing.validation_tables(found["validation"]):
            out += [f"<p><b>{escape(title)}</b></p>", _table(table)]
        uri = choosing.rank_plot(found["validation"])
        out.append(f'<img id="fig-choosing" alt="predicted against realized rank" src="{uri}">')
    for result in found.get("selections", []):
        before, table, after = choosing.selection_table(result)
        out += ["<p>Budgeted selection (<code>capgap select</code>):</p><ul>",
                *(f"<li>{escape(b)}</li>" for b in before), "</ul>", _table(table), "<ul>",
                *(f"<li>{escape(a)}</li>" for a in after), "</ul>"]
    return "".join(out)


def render(analysis: dict) -> str:
    body = "".join(render_study(study) for study in analysis["studies"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>capgap report</title><style>{_CSS}</style>"
            f"</head><body><h1>capgap report</h1><p class='note'>{escape(tables.method_line(analysis))}</p>"
            f"{body}</body></html>\n")
