"""Selection bench: successive halving (`capgap select`) replayed on stored grids and run on simulated ones.

    python bench/selection.py                                    # simulation only (~1 min)
    python bench/selection.py --store STORE --study NAME         # also replay a finished grid in STORE
    python bench/selection.py --out bench/results/selection.json

Simulation (`capgap.selection.simulate`): 7 teachers whose true gains are spread uniformly over `spread`
points, 3 seeds (seed SD `sigma`), 300 test items flipping as in the calibration bench, pilots of steps share
f showing f x gain + (1 - f) x an early-training effect of SD `tau`. For each budget: how often halving picks
the truly best teacher, its mean regret (points of true gain lost), and the compute it used, beside two
references: the full grid (100%) and one seed of every teacher at full length (about a third of the grid).

Replay: for each (task, student, protocol) of a stored grid, halving chooses from what the grid measured at
the granularity it has (its seeds and a random subset of its test items; a stored run cannot be shortened,
so every pilot costs a full training run and the compute shown counts it so). "Regret" is then against the
grid's own realized best. Target to report against (issue 12): <= 1 pp mean regret at <= 30% of the grid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from capgap.selection.halving import Grid, select  # noqa: E402
from capgap.selection.simulate import SimulatedGrid, teacher_means  # noqa: E402

BUDGETS = (0.1, 0.2, 0.3, 0.5)
SETTINGS = [  # (spread, sigma, tau) in shares
    (0.12, 0.02, 0.0),
    (0.06, 0.02, 0.0),
    (0.06, 0.02, 0.02),
    (0.03, 0.02, 0.01),
]
TEACHERS, SEEDS, ITEMS, STEPS, WEIGHT = 7, 3, 300, 16, 0.79  # WEIGHT: training's FLOP share of a SVAMP CPU cell


def _references(truth: SimulatedGrid) -> tuple[float, float]:
    """Regret of the full grid's choice and of one seed per teacher at full length."""
    full = truth.measure(list(truth.means), SEEDS, STEPS, ITEMS)
    one = truth.measure(list(truth.means), 1, STEPS, ITEMS)
    return (truth.regret(max(full, key=lambda a: full[a].mean())),
            truth.regret(max(one, key=lambda a: one[a].mean())))


def simulate(reps: int) -> list[dict]:
    rows = []
    for spread, sigma, tau in SETTINGS:
        refs = []
        for budget in BUDGETS:
            hits, regrets, shares = 0, [], []
            for rep in range(reps):
                rng = np.random.default_rng(rep)
                truth = SimulatedGrid(teacher_means(TEACHERS, spread, rng), sigma, tau, ITEMS, STEPS, rng)
                result = select(Grid(list(truth.means), SEEDS, STEPS, ITEMS, WEIGHT), budget, truth.measure)
                hits += result["choice"] == truth.best
                regrets.append(truth.regret(result["choice"]))
                shares.append(result["compute_share"])
                if budget == BUDGETS[0]:
                    refs.append(_references(truth))
            rows.append({"spread_pp": 100 * spread, "seed_sd_pp": 100 * sigma, "early_sd_pp": 100 * tau,
                         "budget": budget, "accuracy": hits / reps, "mean_regret_pp": float(np.mean(regrets)),
                         "compute_share": float(np.mean(shares)),
                         "full_grid_regret_pp": float(np.mean([r[0] for r in refs])),
                         "one_seed_regret_pp": float(np.mean([r[1] for r in refs])),
                         "one_seed_share": TEACHERS / (TEACHERS * SEEDS + 1 - WEIGHT)})
    return rows


def _families(store_path: str, study: str | None) -> list[tuple[str, dict[str, np.ndarray], float]]:
    """(label, d arrays by teacher, training's share of a cell) of every family of the stored grid."""
    from capgap.analysis import analyse_store
    from capgap.selection.select import cell_weight
    from capgap.store import Store

    with Store.for_reading(store_path) as store:
        analysis = analyse_store(store, study)
    out = []
    for s in analysis["studies"]:
        cells = [g for g in s["cells"] if g.get("_items") is not None]
        for key in sorted({(g["task"], g["student"], g["protocol"]) for g in cells}):
            d = {g["teacher"]: g["_items"]["d"] for g in cells if (g["task"], g["student"], g["protocol"]) == key}
            if len(d) >= 2 and s["config"]["training"].get("steps") is not None:  # a fixed budget per teacher
                n = next(iter(d.values())).shape[1]
                weight = cell_weight(s["config"]["training"], n, s["config"]["evaluation"]["max_new_tokens"])
                out.append((f"{s['study']}: {' · '.join(key)}", d, weight))
    return out


def replay(store_path: str, study: str | None, reps: int) -> list[dict]:
    rows = []
    for label, d, weight in _families(store_path, study):
        k, n = min(x.shape[0] for x in d.values()), next(iter(d.values())).shape[1]
        gains = {t: float(x[:k].mean()) for t, x in d.items()}
        best = max(gains, key=gains.get)
        full_cost = len(d) * k + 1 - weight
        for budget in BUDGETS:
            hits, regrets, shares = 0, [], []
            for rep in range(reps):
                order = np.random.default_rng(rep).permutation(n)
                used = []

                def measure(arms, seeds, steps, items, d=d, order=order, used=used):
                    used.append((len(arms), seeds, items))
                    return {a: d[a][:seeds, order[:items]] for a in arms}

                result = select(Grid(list(d), k, 1, n, 0.0), budget, measure)  # items and seeds only
                hits += result["choice"] == best
                regrets.append(100 * (gains[best] - gains[result["choice"]]))
                cost = sum(a * s * (weight + (1 - weight) * i / n) + (1 - weight) * i / n for a, s, i in used)
                shares.append(cost / full_cost)
            rows.append({"family": label, "teachers": len(d), "seeds": k, "items": n, "budget": budget,
                         "accuracy": hits / reps, "mean_regret_pp": float(np.mean(regrets)),
                         "compute_share": float(np.mean(shares)), "grid_best": best,
                         "grid_gains_pp": {t: round(100 * g, 2) for t, g in gains.items()}})
    return rows


def _print(rows: list[dict], keys: list[str], title: str) -> None:
    print(f"\n{title}")
    print("  ".join(f"{k:>18}" for k in keys))
    for r in rows:
        print("  ".join(f"{r[k]:>18.3g}" if isinstance(r[k], float) else f"{r[k]!s:>18}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a store holding a finished grid to replay")
    parser.add_argument("--study", help="the grid's study (default: every study in the store)")
    parser.add_argument("--reps", type=int, default=200, help="simulated grids (and replay item orders) per row")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "selection.json")
    args = parser.parse_args()
    sim = simulate(args.reps)
    _print(sim, ["spread_pp", "early_sd_pp", "budget", "accuracy", "mean_regret_pp", "compute_share",
                 "full_grid_regret_pp", "one_seed_regret_pp", "one_seed_share"],
           "simulated grids (7 teachers x 3 seeds)")
    result = {"simulation": sim, "settings": {"teachers": TEACHERS, "seeds": SEEDS, "items": ITEMS,
                                              "train_weight": WEIGHT, "reps": args.reps}}
    if args.store:
        rep = replay(args.store, args.study, args.reps)
        _print(rep, ["family", "budget", "accuracy", "mean_regret_pp", "compute_share", "grid_best"],
               "replay on the stored grid (pilots at full length: compute counts full training)")
        result["replay"] = rep
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
