"""`capgap plan`: how many test items and training seeds a study needs to detect a gain of a given size.

From a pilot (the store's finished cells of the study, or of every study in the store) it estimates the
variance components of d = post - pre (item, seed, residual; the seed variance pooled over the cells with
several seeds), then, for k = 1..8 seeds, the fewest test items whose seed-aware test detects the gain with
80% power at Holm's strictest level alpha/m, m = the config's number of teachers (the size of each
(task, student, protocol) family), the seed variance pooled over those m cells as the verdict's test pools
it. Power is that of the verdict's own test (`capgap.analysis.power`: the
variance-components power analysis of Miller 2024, arXiv 2411.00640, with the test's df). Without pilot
data it says so and uses stated default assumptions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from capgap.analysis import power, seedaware
from capgap.analysis.cells import group_cells
from capgap.analysis.stats import ALPHA, POWER
from capgap.errors import CapgapError
from capgap.store import Store

MAX_SEEDS = 8
DEFAULT_DISCORDANCE = 0.10  # share of items whose correctness changes (Var(d) at zero gain)
DEFAULT_SEED_SD = 0.02  # SD of the gain across training seeds
DEFAULT_ITEM_SHARE = 0.5  # share of the per-item variance that is item-level (the rest: item x seed)


def parse_detect(text: str) -> float:
    """A gain as a share: "3pp", "3 pp", "3%" and "3" are 3 percentage points, "0.03" is a share. A bare
    number from 0.1 to 1 is refused as ambiguous ("0.5": half a point, or 50 points?)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(pp|%)?\s*", text or "")
    if not match:
        raise CapgapError(f"--detect must be a gain such as 3pp, 3 or 0.03, got {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    if not unit and 0.1 <= value < 1:
        raise CapgapError(f"--detect {text!r} is ambiguous: write {value:g}pp for {value:g} points or "
                          f"{100 * value:g}pp for a share of {value:g}")
    share = value / 100 if unit or value >= 1 else value
    if not 0 < share < 1:
        raise CapgapError(f"--detect must be between 0 and 100 percentage points, got {text!r}")
    return share


@dataclass
class Pilot:
    """Variance components for planning, and where they come from."""

    components: power.Components
    source: str  # one sentence: the pilot, or the assumptions
    assumed: bool
    n_items: int | None = None  # the pilot's test-set size (most common over its cells)
    notes: list[str] = field(default_factory=list)


def default_pilot(reason: str) -> Pilot:
    per_item = DEFAULT_DISCORDANCE
    c = power.Components(item=DEFAULT_ITEM_SHARE * per_item, seed=DEFAULT_SEED_SD ** 2,
                         residual=(1 - DEFAULT_ITEM_SHARE) * per_item)
    return Pilot(c, f"{reason}; ASSUMED: {100 * DEFAULT_DISCORDANCE:.0f}% of items change (discordance), "
                    f"σ_seed = {100 * DEFAULT_SEED_SD:.0f} pp, {100 * DEFAULT_ITEM_SHARE:.0f}% of the per-item "
                    "variance item-level (the rest item × seed)", assumed=True)


def _pilot_cells(store: Store, study: str | None) -> tuple[list[dict], str]:
    studies = store.study.studies()
    if study is not None:
        chosen = [s for s in studies if s["study"] == study]
        if not chosen:
            names = ", ".join(s["study"] for s in studies) or "none"
            raise CapgapError(f"study '{study}' is not in {store.path}; studies there: {names}")
    else:
        chosen = studies
    cells = [g for s in chosen for g in group_cells(store, s) if g["gain"] is not None]
    label = f"study '{chosen[0]['study']}'" if len(chosen) == 1 else f"{len(chosen)} studies"
    return cells, label


def load_pilot(store_path: Path, study: str | None) -> Pilot:
    """The pilot's pooled variance components (seed variance pooled over its multi-seed cells)."""
    if not store_path.is_file():
        return default_pilot(f"no pilot data: {store_path} does not exist")
    with Store(store_path) as store:
        cells, label = _pilot_cells(store, study)
    comps, how = power.pooled(cells)
    if comps is None:
        return default_pilot(f"no pilot data: {store_path} holds no finished cell ({label})")
    n_items = Counter(g["n_items"] for g in cells).most_common(1)[0][0]
    notes = []
    if how["seed"] is None:
        comps = power.Components(comps.item, DEFAULT_SEED_SD ** 2, comps.residual)
        notes.append(f"no cell has two seeds: σ_seed ASSUMED {100 * DEFAULT_SEED_SD:.0f} pp, and the per-item "
                     "variance is all counted as item-level (conservative: more seeds do not shrink it)")
    source = (f"pilot: {label} in {store_path}, {how['cells']} finished cell(s): item variance {comps.item:.4f}, "
              f"residual (item × seed) {comps.residual:.4f}, seed variance {comps.seed:.6f} (σ_seed "
              f"{100 * comps.seed ** 0.5:.1f} pp, pooled over {how['cells_with_seeds']} cell(s) with several seeds)")
    return Pilot(comps, source, assumed=False, n_items=n_items, notes=notes)


def config_items(config) -> int | None:
    """The config's test-set size (the smallest over its tasks), read from its data; None when the data
    cannot be read here."""
    from capgap.study.data import prepare_task

    try:
        return min(len(prepare_task(task, i, config.data_dir).test.items) for i, task in enumerate(config.tasks))
    except CapgapError:
        return None


def plan_rows(delta: float, c: power.Components, alpha: float, cells: int = 1) -> list[dict]:
    """For k = 1..MAX_SEEDS: the fewest items that detect `delta` with 80% power at `alpha`, the seed variance
    pooled over `cells` cells (a family's teachers), as the verdict's test pools it."""
    return [{"seeds": k, "items": power.items_needed(delta, c, k, alpha, POWER, cells)}
            for k in range(1, MAX_SEEDS + 1)]


def render(config, delta: float, pilot: Pilot, rows: list[dict], n_current: int | None) -> str:
    m = len(config.teachers)
    alpha = seedaware.holm_alpha(m)
    k_current = len(config.seeds)
    out = [f"capgap plan {config.name}: detect a gain of {100 * delta:.1f} pp with {100 * POWER:.0f}% power at "
           f"Holm's α/m = {ALPHA}/{m} = {alpha:.4g} (m = {m} teachers per task × student × protocol)",
           pilot.source + ".", *[f"note: {n}." for n in pilot.notes], "",
           "seeds  test items needed"]
    for r in rows:
        items = f"{r['items']:,}" if r["items"] is not None else "not reachable (the seed variance alone prevents it)"
        mark = f"   <- config: {k_current} seed(s)" if r["seeds"] == k_current else ""
        scope = "   (1 seed: speaks for that training run only)" if r["seeds"] == 1 else ""
        out.append(f"{r['seeds']:5d}  {items}{scope}{mark}")
    out.append("")
    if n_current is None:
        out.append(f"The config's test-set size is not known here: run the study once (its cells are the pilot) "
                   f"or set test.limit; it uses {k_current} seed(s).")
    else:
        mde = power.minimal_detectable_effect(pilot.components, n_current, k_current, alpha, POWER, cells=m)
        now = power.power(delta, pilot.components, n_current, k_current, alpha, cells=m)
        size = f"gains ≥ {100 * mde:.1f} pp" if mde < 1 else "no gain of 100 pp or less"
        out.append(f"The config's design ({k_current} seed(s), {n_current:,} test items) detects {size} with "
                   f"{100 * POWER:.0f}% power; a {100 * delta:.1f} pp gain with {100 * now:.0f}% power.")
    if pilot.assumed:
        out.append("These numbers rest on the ASSUMPTIONS above; run a pilot (a few cells) and plan again.")
    return "\n".join(out) + "\n"


def plan(config, detect: str, store_path: Path, study: str | None = None) -> str:
    """The `capgap plan` text for a loaded config."""
    delta = parse_detect(detect)
    if not config.teachers:
        raise CapgapError(f"config {config.name} names no teacher: nothing to plan")
    chosen = study if study is not None else _own_study(store_path, config.name)
    pilot = load_pilot(store_path, chosen)
    m = len(config.teachers)
    rows = plan_rows(delta, pilot.components, seedaware.holm_alpha(m), cells=m)
    n_current = config_items(config) or (pilot.n_items if chosen == config.name else None)
    return render(config, delta, pilot, rows, n_current)


def _own_study(store_path: Path, name: str) -> str | None:
    """The config's own study when the store has it (else None: every study in the store is the pilot)."""
    if not store_path.is_file():
        return None
    with Store(store_path) as store:
        return name if any(s["study"] == name for s in store.study.studies()) else None
