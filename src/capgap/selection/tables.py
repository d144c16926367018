"""Text of `capgap predict` and `capgap select`: the ranked predictor table, the selection's rounds, and the
validation of predictors against realized gains (the same text the Markdown report carries)."""

from __future__ import annotations

from capgap.selection.predictors import PREDICTORS, ranked


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def prediction_table(rows: list[dict], by: str) -> str:
    """One Markdown table per (task, student, protocol), teachers best first by predictor `by`."""
    out = []
    for family in sorted({(r["task"], r["student"], r["protocol"]) for r in rows}):
        members = [{**r["scores"], "teacher": r["teacher"], "seconds": r["seconds"], "tokens": r["tokens"]}
                   for r in rows if (r["task"], r["student"], r["protocol"]) == family]
        order = ranked(members, by)
        out += [f"\n### {family[0]} · student {family[1]} · {family[2]} · ranked by {by}\n",
                "| rank | teacher | teacher acc | usable | scored | mean tokens | NLL | perplexity | RSR | local nat."
                " | seconds | tokens |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i, m in enumerate(order, 1):
            out.append(f"| {i} | {m['teacher']} | {100 * m['teacher_accuracy']:.1f}% | {m['usable']} | {m['scored']} | "
                       f"{_num(m['mean_tokens'])} | {_num(m['nll'])} | {_num(m['perplexity'])} | {_num(m['rsr'])} | "
                       f"{_num(m['local_naturalness'])} | {m['seconds']:.1f} | {m['tokens']} |")
        picks = {name: ranked(members, name)[0]["teacher"] for name in PREDICTORS}
        out.append(f"\npredicted best: **{order[0]['teacher']}** (by {by}); by the others: "
                   + ", ".join(f"{n} → {t}" for n, t in picks.items() if n != by))
    return "\n".join(out).strip() + "\n" if out else "(no predictions)\n"


def selection_text(result: dict) -> str:
    """The selection's rounds, choice and compute, as Markdown."""
    grid = result["grid"]
    out = [f"budget {100 * result['budget']:.0f}% of the full grid ({len(grid['arms'])} teachers x {grid['seeds']} "
           f"seed(s) x {grid['steps']} steps, {grid['items']} test items; training {100 * grid['train_weight']:.0f}% "
           "of a cell's FLOPs)"]
    if result.get("pruned"):
        out.append(f"pruned by {result['pruned']['by']} before round 1: {', '.join(result['pruned']['dropped'])}")
    out += ["", "| round | teachers | seeds | steps | test items | gains (pp), best first | kept | dropped |",
            "|---:|---:|---:|---:|---:|---|---|---|"]
    for r in result["rounds"]:
        gains = ", ".join(f"{a} {100 * g:+.1f}" + (f" (p={r['p_vs_leader'][a]:.2g})" if a in r["p_vs_leader"] else "")
                          for a, g in sorted(r["gains"].items(), key=lambda x: -x[1]))
        out.append(f"| {r['round']} | {len(r['arms'])} | {r['seeds']} | {r['steps']} | {r['items']} | {gains} | "
                   f"{', '.join(r['kept'])} | {', '.join(r['dropped']) or '-'} |")
    confidence = ("ahead of every other teacher of the last round (seed-aware comparison, Holm)"
                  if result["separated"] else "ahead on the point estimate only: not separated at alpha 0.05")
    out += ["", f"choice: **{result['choice']}**, {confidence}",
            f"compute used: {100 * result['compute_share']:.0f}% of the full grid"
            + (f" ({result['seconds']:.0f} s of pilot runs)" if result.get("seconds") else "")]
    return "\n".join(out) + "\n"


def validation_table(validation: list[dict]) -> str:
    """Per family: each predictor's rank correlations with realized gains (CI), top-1 hit and regret."""
    out = []
    for v in validation:
        out += [f"\n#### {v['task']} · student {v['student']} · {v['protocol']}: {len(v['teachers'])} teachers, "
                f"seeds per teacher {'/'.join(map(str, v['seeds']))}, realized best {v['realized_best']}\n",
                "| predictor | Spearman [95% CI] | Kendall [95% CI] | pick | top-1 | top-1 share | regret (pp) |",
                "|---|---|---|---|---|---:|---:|"]
        for name, p in v["predictors"].items():
            s, k = p["spearman_ci95"], p["kendall_ci95"]
            out.append(f"| {name} | {_num(p['spearman'], 2)} [{_num(s[0], 2)}, {_num(s[1], 2)}] | "
                       f"{_num(p['kendall'], 2)} [{_num(k[0], 2)}, {_num(k[1], 2)}] | {p['pick']} | "
                       f"{'hit' if p['top1_hit'] else 'miss'} | {100 * p['top1_share']:.0f}% | {p['regret_pp']:.1f} |")
    return "\n".join(out).strip() + "\n" if out else ""
