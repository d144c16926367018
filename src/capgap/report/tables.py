"""The report's tables as (header, rows) of strings, shared by the Markdown and HTML renderers."""

from __future__ import annotations

from capgap.config import describe_budget

Table = tuple[list[str], list[list[str]]]


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def pp(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def _ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def _params(n: float | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


def verdict_text(g: dict) -> str:
    """The verdict with its scope when it speaks for one training run only."""
    one_seed = g["gain"] is not None and len(g["seeds"]) == 1
    return f"{g['verdict']} ({g['scope']})" if one_seed else g["verdict"]


def train_count(g: dict) -> str:
    """#training examples the optimizer saw, of how many it could draw from, and how many were left out for
    exceeding max_length: "64 of 513 (3 too long)"."""
    text = str(g["n_train"])
    if g.get("n_available") and g["n_available"] != g["n_train"]:
        text += f" of {g['n_available']}"
    return text + (f" ({g['n_too_long']} too long)" if g.get("n_too_long") else "")


def cells_table(study: dict) -> Table:
    header = ["student", "teacher", "protocol", "teacher acc", "teacher size", "#train", "steps x batch", "seeds",
              "pre", "post", "gain (pp)", "95% CI (pp)", "p", "p Holm", "MDE (pp)", "verdict",
              "cut at limit (pre → post)", "no answer (pre → post)"]
    rows = []
    for g in study["cells"]:
        trained = g["gain"] is not None
        budget = f"{g.get('steps')} x {g.get('effective_batch')}" if trained else "-"
        budget += "" if g.get("budget_matched", True) or not trained else " (not matched)"
        rows.append([g["student"], g["teacher"], g["protocol"], pct(g["teacher_accuracy"]),
                     _params(g["teacher_params"]), train_count(g), budget, str(len(g["seeds"])),
                     pct(g["pre_accuracy"]), pct(g["post_accuracy"]), pp(g["gain"]), _ci(g["ci95"]),
                     _p(g["p_value"]), _p(g.get("p_holm")), f"{100 * g['mde']:.1f}" if trained else "-",
                     verdict_text(g), *_failures(g)])
    return header, rows


def _failures(g: dict) -> list[str]:
    """Truncation and (strict) no-answer rates before → after, beside the gain they may explain."""
    f = g.get("answer_failures")
    if not f:
        return ["-", "-"]
    return [f"{pct(f['pre'][k])} → {pct(f['post'][k])}" for k in ("truncated", "no_answer_strict")]


def failure_lines(study: dict) -> list[str]:
    """The cells whose baseline is unfair (cut at the token limit: no verdict) or at the floor or ceiling, and
    those whose gain may come from cut or unanswered outputs rather than from answers."""
    baseline = {}
    for g in study["cells"]:
        if g.get("baseline_note"):  # one line per student and task: the baseline is theirs
            baseline.setdefault((g["task"], g["student"], g["baseline_note"]), g)
    return ([f"{student} on {task}: {note}" for task, student, note in baseline] +
            [f"{g['student']} <- {g['teacher']} ({g['protocol']}): {g['answer_failures']['sentence']}"
             for g in study["cells"] if (g.get("answer_failures") or {}).get("sentence")])


def teacher_lines(study: dict) -> list[str]:
    """What was read or generated per teacher: coverage of the pool, hedged rationales kept out, samples."""
    seen: dict[tuple, list[str]] = {}
    for g in study["cells"]:
        seen.setdefault((g["task"], g["teacher"]), g.get("teacher_notes") or [])
    return [f"{teacher} on {task}: {'; '.join(notes)}" for (task, teacher), notes in seen.items() if notes]


def detection_lines(study: dict) -> list[str]:
    """Per (task, student, protocol): what this study can detect (80% power, Holm alpha/m)."""
    return [d["sentence"] + "." for d in study.get("detection_limits", [])]


def seeds_table(study: dict) -> Table | None:
    """Per-seed gains, only when some cell has more than one seed."""
    multi = [g for g in study["cells"] if g["gain"] is not None and len(g["seeds"]) > 1]
    if not multi:
        return None
    header = ["student", "teacher", "protocol", "gain by seed (pp)", "mean", "SD across seeds",
              "seed SD, model (pp)", "seed variance in the test", "df"]
    rows = [[g["student"], g["teacher"], g["protocol"],
             ", ".join(f"s{s}: {pp(x)}" for s, x in zip(g["seeds"], g["gain_by_seed"], strict=True)),
             pp(g["gain"]), f"{100 * g['gain_sd']:.1f}", f"{100 * g['variance_components']['seed'] ** 0.5:.1f}",
             _pooling(g), f"{g['df']:.1f}"] for g in multi]
    return header, rows


def _pooling(g: dict) -> str:
    """Where the test's seed variance came from: "pooled (5 cells)" or "own" (its own seeds: its spread exceeds
    its family's, or no other cell shares its seeds and items)."""
    cells = g.get("seed_pool_cells") or 0
    return f"pooled ({cells} cells)" if cells > 1 else "own"


def spearman_table(capacity: dict) -> Table:
    header = ["factor", "n", "Spearman rho", "p"]
    rows = [[c["label"], str(c["n"]), "-" if c["rho"] is None else f"{c['rho']:+.2f}", _p(c["p"])]
            for c in capacity["spearman"].values()]
    return header, rows


def regression_lines(capacity: dict) -> list[str]:
    lines = []
    for r in capacity["regressions"]:
        terms = " + ".join(r["regressors"])
        if "skipped" in r:
            lines.append(f"gain ~ {terms}: not fitted ({r['skipped']})")
            continue
        coefs = ", ".join(f"{k} {v:+.2f}" for k, v in r["coef_pp_per_sd"].items())
        r2 = "n/a" if r["r2"] is None else f"{r['r2']:.2f}"
        lines.append(f"gain ~ {terms} (n={r['n']}, {r['dof']} residual dof): pp per SD {coefs}; R² {r2}")
    return lines


def flips_lines(study: dict) -> list[str]:
    lines = []
    for c in study["rank_flips"]["post_vs_gain"]:
        tau = "n/a" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
        flips = "; ".join(f"{a} / {b}" for a, b in c["flips"]) or "none"
        lines.append(f"{c['task']} · {c['protocol']}: post-only vs gain ranking: Kendall tau {tau}; flipped pairs: "
                     f"{flips}. A post-only leaderboard's upper half ({', '.join(c['post_only_helpful'])}) "
                     f"includes {len(c['post_only_helpful_but_worse'])} teacher(s) whose student got worse "
                     f"({len(c['post_only_helpful_but_detectably_worse'])} detectably); "
                     f"{c['n_worse_than_baseline']} of {c['n']} cells are below the baseline.")
    for c in study["rank_flips"]["between_protocols"]:
        tau = "n/a" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
        flips = "; ".join(f"{a} / {b}" for a, b in c["flips"]) or "none"
        lines.append(f"{c['task']} · {c['student']}: ranking by gain under {c['by'][0]} vs {c['by'][1]}: "
                     f"Kendall tau {tau}; flipped pairs: {flips}.")
    return lines


def budget_lines(study: dict) -> list[str]:
    """Cells trained at a teacher's own budget, and each one beside its twin at the matched budget."""
    own = sorted({(g["teacher"], g["steps"], g["effective_batch"]) for g in study["cells"]
                  if g["gain"] is not None and not g.get("budget_matched", True)})
    lines = [f"{teacher}: budget not matched ({steps} steps x {batch} examples/step, its own)"
             for teacher, steps, batch in own]
    return lines + [c["sentence"] for c in study.get("budget_comparisons", [])]


def screening_lines(study: dict) -> list[str]:
    """Each screened task: kept or dropped and why, with every teacher's accuracy and how it was measured."""
    lines = []
    for s in study.get("screening", []):
        accuracies = "; ".join(f"{t['teacher']} {pct(t['accuracy'])}" + (f" [{pct(t['ci95'][0])}, "
                               f"{pct(t['ci95'][1])}]" if t["ci95"] else "") + f" ({t['how']})" for t in s["scores"])
        lines.append(f"{s['task']}: {s['reason']}. Teachers: {accuracies}.")
    return lines


def nothing_yet(study: dict) -> str:
    """What the recommendation says before the latest plan has a finished cell."""
    earlier = sum(s["n_cells"] for s in study.get("superseded", []))
    if earlier:
        return (f"No finished cell of config version {study.get('config_version')} yet; {earlier} cell(s) finished "
                "under earlier versions are listed at the end of this study.")
    return "No finished cell yet."


def budget_line(study: dict) -> str:
    b = study["budget"]
    return describe_budget(b["steps"], b["epochs"], b["effective_batch"], b.get("own", []))


def method_line(analysis: dict) -> str:
    s = analysis["settings"]
    return (f"Store {analysis['store']}. Gains are post − pre on the same test items (strict extraction), the mean "
            "over training seeds. Each verdict asks whether distilling from the teacher helps the student on the "
            "task: test items and training seeds are both random (crossed random effects), and the 95% CI and p "
            f"come from one t with Satterthwaite df, so they never disagree; {s['correction']}, α={s['alpha']}. "
            "With 1 seed a verdict speaks for that training run only (paired t on items). MDE = the smallest "
            f"gain detected with {100 * s['power']:.0f}% power at Holm's α/m with these items and seeds.")
