"""The results table of a study, built from the store alone: one Markdown table per task x student."""

from __future__ import annotations

from collections import defaultdict

from capgap.analysis.cells import current_cells
from capgap.store import Store


def _accuracy(store: Store, eval_key: str | None, item_ids: list[str] | None = None) -> float | None:
    if not eval_key:
        return None
    rows = store.items(eval_key, item_ids)
    return sum(r["correct_strict"] for r in rows.values()) / len(rows) if rows else None


def study_tables(store: Store, study: str) -> str:
    """Markdown: teacher, protocol, teacher accuracy, #training examples, pre, post (mean over seeds), gain."""
    teachers = {(t["task"], t["teacher"]): t for t in store.study.teachers(study)}
    config = next((s["config"] for s in store.study.studies() if s["study"] == study), {})
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for cell in current_cells(store.study.cells(study), config):
        if cell["status"] == "done":
            groups[(cell["task"], cell["student"], cell["teacher"], cell["protocol"])].append(cell)
    out = []
    for task, student in sorted({(k[0], k[1]) for k in groups}):
        out += [f"\n### {task} · student {student}\n",
                "| teacher | protocol | teacher acc | #train | steps x batch | pre acc | post acc | gain (pp)"
                " | seeds |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for (t, s, teacher, protocol), cells in sorted(groups.items()):
            if (t, s) != (task, student):
                continue
            post_ids = list(store.items(cells[0]["post_eval_key"]))
            pre = _accuracy(store, cells[0]["pre_eval_key"], post_ids)
            posts = [_accuracy(store, c["post_eval_key"]) for c in cells]
            post = sum(posts) / len(posts)
            acc = teachers.get((task, teacher), {}).get("accuracy")
            acc_text = f"{100 * acc:.1f}%" if acc is not None else "-"
            out.append(f"| {teacher} | {protocol} | {acc_text} | {cells[0]['n_train']} | "
                       f"{cells[0]['steps']} x {cells[0]['effective_batch']} | {100 * pre:.1f}% | {100 * post:.1f}% | "
                       f"{100 * (post - pre):+.1f} | {len(cells)} |")
    return "\n".join(out).strip() + "\n" if out else "(no finished cells yet)\n"
