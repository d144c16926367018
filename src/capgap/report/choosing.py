"""The report's "choosing a teacher" section, and the text of `capgap predict` and `capgap select`: the cheap
predictors ranked per family, how each fared against the realized gains of the grid (rank correlations with
CIs, top-1 hit, regret), the predicted-vs-realized rank plot, and each selection's rounds."""

from __future__ import annotations

from capgap.evaluation.predictors import PREDICTORS, ranked
from capgap.report.plots import _figure, _uri
from capgap.report.tables import Table

PLOTTED = ("rsr", "local_naturalness", "nll", "teacher_accuracy")


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _family(rows: list[dict]) -> list[tuple[tuple, list[dict]]]:
    keys = sorted({(r["task"], r["student"], r["protocol"]) for r in rows})
    return [(k, [{**r["scores"], "teacher": r["teacher"], "seconds": r["seconds"], "tokens": r["tokens"]}
                 for r in rows if (r["task"], r["student"], r["protocol"]) == k]) for k in keys]


def prediction_tables(rows: list[dict], by: str = "rsr") -> list[tuple[str, Table, str]]:
    """(title, table, the predicted best and the other predictors' picks) per (task, student, protocol)."""
    out = []
    header = ["rank", "teacher", "teacher acc", "usable", "scored", "mean tokens", "NLL", "perplexity", "RSR",
              "local nat.", "seconds", "tokens"]
    for (task, student, protocol), members in _family(rows):
        order = ranked(members, by)
        body = [[str(i), m["teacher"], f"{100 * m['teacher_accuracy']:.1f}%", str(m["usable"]), str(m["scored"]),
                 _num(m["mean_tokens"]), _num(m["nll"]), _num(m["perplexity"]), _num(m["rsr"]),
                 _num(m["local_naturalness"]), f"{m['seconds']:.1f}", str(m["tokens"])] for i, m in enumerate(order, 1)]
        picks = ", ".join(f"{n} → {ranked(members, n)[0]['teacher']}" for n in PREDICTORS if n != by)
        out.append((f"{task} · student {student} · {protocol} · ranked by {by}", (header, body),
                    f"predicted best: {order[0]['teacher']} (by {by}); by the others: {picks}"))
    return out


def validation_tables(validation: list[dict]) -> list[tuple[str, Table]]:
    """Per family: each predictor's rank correlations with the realized gains, top-1 and regret."""
    out = []
    header = ["predictor", "Spearman [95% CI]", "Kendall [95% CI]", "pick", "top-1", "top-1 share", "regret (pp)"]
    for v in validation:
        body = []
        for name, p in v["predictors"].items():
            s, k = p["spearman_ci95"], p["kendall_ci95"]
            body.append([name, f"{_num(p['spearman'], 2)} [{_num(s[0], 2)}, {_num(s[1], 2)}]",
                         f"{_num(p['kendall'], 2)} [{_num(k[0], 2)}, {_num(k[1], 2)}]", p["pick"] or "tie",
                         {True: "hit", False: "miss", None: "-"}[p["top1_hit"]],
                         "-" if p["top1_share"] is None else f"{100 * p['top1_share']:.0f}%",
                         f"{p['regret_pp']:.1f}"])
        title = (f"{v['task']} · student {v['student']} · {v['protocol']}: {len(v['teachers'])} teachers, "
                 f"{'/'.join(map(str, v['seeds']))} seed(s) each, realized best {v['realized_best']}")
        out.append((title, (header, body)))
    return out


def selection_table(result: dict) -> tuple[list[str], Table, list[str]]:
    """(lines before, the rounds, lines after) of one selection."""
    grid = result["grid"]
    before = [f"budget {100 * result['budget']:.0f}% of the full grid ({len(grid['arms'])} teachers x "
              f"{grid['seeds']} seed(s) x {grid['steps']} steps, {grid['items']} test items; training "
              f"{100 * grid['train_weight']:.0f}% of a cell's FLOPs)"]
    if result.get("pruned"):
        before.append(f"pruned by {result['pruned']['by']} before round 1: "
                      f"{', '.join(result['pruned']['dropped']) or 'none'}")
    header = ["round", "teachers", "seeds", "steps", "test items", "gains (pp), best first; p vs the leader", "kept",
              "dropped"]
    body = []
    for r in result["rounds"]:
        gains = ", ".join(f"{a} {100 * g:+.1f}" + (f" (p={r['p_vs_leader'][a]:.2g})" if a in r["p_vs_leader"] else "")
                          for a, g in sorted(r["gains"].items(), key=lambda x: -x[1]))
        body.append([str(r["round"]), str(len(r["arms"])), str(r["seeds"]), str(r["steps"]), str(r["items"]), gains,
                     ", ".join(r["kept"]), ", ".join(r["dropped"]) or "-"])
    confidence = ("ahead of every other teacher of its last round (seed-aware comparison, Holm)"
                  if result["separated"] else "ahead on the point estimate only: not separated at alpha 0.05")
    seconds = f" ({result['seconds']:.0f} s of pilot runs)" if result.get("seconds") else ""
    after = [f"choice: {result['choice']}, {confidence}",
             f"compute used: {100 * result['compute_share']:.0f}% of the full grid{seconds}"]
    return before, (header, body), after


def rank_plot(validation: list[dict]) -> str | None:
    """Predicted rank (x) against realized rank (y) per family and predictor: on the diagonal, a perfect call."""
    if not validation:
        return None
    fig = _figure(3.0 * len(PLOTTED), 2.8 * len(validation))
    axes = fig.subplots(len(validation), len(PLOTTED), squeeze=False)
    for row, v in zip(axes, validation, strict=True):
        realized = _ranks(v["realized_gain"], +1)
        for ax, name in zip(row, PLOTTED, strict=True):
            p = v["predictors"].get(name)
            if p is None:
                ax.set_axis_off()
                continue
            predicted = _ranks(p["values"], PREDICTORS[name].direction)
            ax.plot([1, len(realized)], [1, len(realized)], color="#d0d7de", lw=1)
            ax.scatter(predicted, realized, color="#0969da", zorder=2)
            for x, y, t in zip(predicted, realized, v["teachers"], strict=True):
                ax.annotate(t, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            ax.set_title(f"{v['protocol']} · {name}: rho={_num(p['spearman'], 2)}", fontsize=9)
            ax.set_xlabel("predicted rank")
            ax.set_ylabel("realized rank (gain)")
            ax.invert_xaxis()
            ax.invert_yaxis()
    return _uri(fig)


def _ranks(values: list[float], direction: int) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: -direction * values[i])
    ranks = [0] * len(values)
    for r, i in enumerate(order, 1):
        ranks[i] = r
    return ranks
