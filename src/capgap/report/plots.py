"""The report's figures, drawn from one study's analysis and returned as PNG data URIs (self-contained HTML).

Figures use matplotlib's object API on the Agg canvas: no display, no pyplot global state.
"""

from __future__ import annotations

import base64
import io
import math

from capgap.analysis.failures import NO_VERDICT

VERDICT_COLOURS = {"improves": "#1a7f37", "degrades": "#cf222e", "no detectable change": "#57606a",
                   NO_VERDICT: "#bf8700"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _trained(study: dict) -> list[dict]:
    return [g for g in study["cells"] if g["gain"] is not None]


def _row_label(g: dict, many_students: bool, scope: bool = True) -> str:
    label = f"{g['teacher']} · {g['protocol']}"
    if scope and len(g["seeds"]) == 1:
        label += " (1 seed: this run)"
    return f"{g['student']} ← {label}" if many_students else label


def forest(study: dict) -> str | None:
    """Gain with its 95% CI per cell (seed-aware: items and seeds random); the grey bar spans +-MDE (what these
    items and seeds can detect at Holm's alpha/m)."""
    cells = sorted(_trained(study), key=lambda g: (g["student"], g["protocol"], g["gain"]))
    if not cells:
        return None
    many = len({g["student"] for g in cells}) > 1
    fig = _figure(8, 1.2 + 0.38 * len(cells))
    ax = fig.subplots()
    for y, g in enumerate(cells):
        ax.barh(y, 200 * g["mde"], left=-100 * g["mde"], height=0.6, color="#eaeef2", zorder=1)
        lo, hi = (100 * v for v in g["ci95"])
        colour = VERDICT_COLOURS[g["verdict"]]
        ax.plot([lo, hi], [y, y], color=colour, lw=2, zorder=2)
        ax.plot(100 * g["gain"], y, "o", color=colour, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(*forest_limits(cells))  # fitted to the CIs; a wider MDE band is cut at the edge
    ax.set_yticks(range(len(cells)), [_row_label(g, many) for g in cells])
    ax.set_xlabel("gain over the pre-distillation baseline (percentage points), 95% CI over items and seeds")
    ax.set_title("green improves · red degrades · grey no detectable change · amber no verdict (baseline cut) "
                 "· shaded: ±MDE", fontsize=9)
    return _uri(fig)


def forest_limits(cells: list[dict]) -> tuple[float, float]:
    """The forest plot's x range in pp: symmetric about 0, 15% beyond the farthest CI end (MDE bands of 100 pp
    would otherwise shrink every CI to a speck)."""
    reach = max(max(abs(100 * v) for v in g["ci95"]) for g in cells)
    return -1.15 * reach - 0.5, 1.15 * reach + 0.5


def heatmap(study: dict) -> str | None:
    """Teacher x student gain, one panel per protocol."""
    cells = _trained(study)
    if not cells:
        return None
    protocols = sorted({g["protocol"] for g in cells})
    teachers = sorted({g["teacher"] for g in cells})
    students = sorted({g["student"] for g in cells})
    limit = max(1.0, max(abs(100 * g["gain"]) for g in cells))
    fig = _figure(1.5 + 2.2 * len(students) * len(protocols), 1.4 + 0.45 * len(teachers))
    axes = fig.subplots(1, len(protocols), squeeze=False)[0]
    for ax, protocol in zip(axes, protocols, strict=True):
        grid = [[math.nan] * len(students) for _ in teachers]
        for g in cells:
            if g["protocol"] == protocol:
                grid[teachers.index(g["teacher"])][students.index(g["student"])] = 100 * g["gain"]
        image = ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                if not math.isnan(value):
                    ink = "white" if abs(value) > 0.6 * limit else "black"  # legible on dark cells
                    ax.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=9, color=ink)
        ax.set_xticks(range(len(students)), students, rotation=15)
        ax.set_yticks(range(len(teachers)), teachers)
        ax.set_title(f"gain (pp), {protocol}")
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    return _uri(fig)


def gain_vs_size(study: dict) -> str | None:
    """Gain against teacher/student size ratio (known sizes) and against teacher accuracy (all teachers)."""
    cells = _trained(study)
    if not cells:
        return None
    fig = _figure(11, 4.2)
    left, right = fig.subplots(1, 2)
    sized = [g for g in cells if g["size_ratio"]]
    for ax, points, x_of, xlabel in (
        (left, sized, lambda g: g["size_ratio"], "teacher / student parameters (log scale)"),
        (right, [g for g in cells if g["teacher_accuracy"] is not None], lambda g: 100 * g["teacher_accuracy"],
         "teacher accuracy on the training pool (%)"),
    ):
        for g in points:
            lo, hi = (100 * v for v in g["ci95"])
            y = 100 * g["gain"]
            ax.errorbar(x_of(g), y, yerr=[[y - lo], [hi - y]], fmt="o", capsize=3,
                        color=VERDICT_COLOURS[g["verdict"]])
            ax.annotate(f"{g['teacher']} ({g['protocol']})", (x_of(g), y), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("gain (pp), 95% CI")
    if sized:
        left.set_xscale("log")
    unknown = sorted({g["teacher"] for g in cells if not g["size_ratio"]})
    left.set_title("size unknown: " + ", ".join(unknown) if unknown else "all sizes known", fontsize=9)
    right.set_title("teacher quality", fontsize=9)
    return _uri(fig)


def rank_flips(study: dict) -> str | None:
    """Slope charts: each comparison's two rankings side by side; red lines are entries that change rank."""
    comparisons = study["rank_flips"]["post_vs_gain"] + study["rank_flips"]["between_protocols"]
    comparisons = [c for c in comparisons if c["n"] >= 2]
    if not comparisons:
        return None
    n_max = max(c["n"] for c in comparisons)
    fig = _figure(4.2 * len(comparisons), 1.5 + 0.42 * n_max)
    axes = fig.subplots(1, len(comparisons), squeeze=False)[0]
    for ax, c in zip(axes, comparisons, strict=True):
        first, second = (c["ranking"][name] for name in c["by"])
        for name in first:
            a, b = first.index(name), second.index(name)
            ax.plot([0, 1], [a, b], color="#cf222e" if a != b else "#8c959f", lw=2 if a != b else 1)
            ax.text(-0.04, a, name, ha="right", va="center", fontsize=8)
            ax.text(1.04, b, name, ha="left", va="center", fontsize=8)
        ax.set_xlim(-1.1, 2.1)
        ax.set_ylim(len(first) - 0.5, -0.5)
        ax.set_xticks([0, 1], [f"by {c['by'][0]}", f"by {c['by'][1]}"])
        ax.set_yticks([])
        tau = "n/a" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
        scope = c.get("protocol") or c.get("student")
        ax.set_title(f"{c['task']} · {scope}: tau={tau}, {len(c['flips'])} flipped pair(s)", fontsize=9)
    return _uri(fig)


def loss_curves(study: dict) -> str | None:
    """Training loss per cell and seed."""
    cells = [g for g in _trained(study) if any(g["loss_curves"])]
    if not cells:
        return None
    fig = _figure(9, 4.5)
    ax = fig.subplots()
    many = len({g["student"] for g in cells}) > 1
    for g in sorted(cells, key=lambda g: (g["teacher"], g["protocol"])):
        for seed, curve in zip(g["seeds"], g["loss_curves"], strict=True):
            if curve:
                steps, losses = zip(*curve, strict=True)
                ax.plot(steps, losses, lw=1.2, label=f"{_row_label(g, many, scope=False)} · seed {seed}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (completion tokens)")
    ax.legend(fontsize=7, ncols=2)
    return _uri(fig)


FIGURES = {  # anchor -> (title, drawer)
    "forest": ("Gain forest plot", forest),
    "heatmap": ("Teacher × student gains", heatmap),
    "size": ("Gain against the capacity gap and teacher quality", gain_vs_size),
    "flips": ("Rank flips", rank_flips),
    "loss": ("Training loss curves", loss_curves),
}


def figures(study: dict) -> dict[str, tuple[str, str | None]]:
    """anchor -> (title, data URI or None when there is nothing to draw)."""
    return {anchor: (title, draw(study)) for anchor, (title, draw) in FIGURES.items()}

