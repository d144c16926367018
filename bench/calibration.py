"""Calibration of capgap's verdicts: simulated studies through the real store and the real analysis.

    python bench/calibration.py                  # 200 repetitions per grid cell, 2 processes (~5 min)
    python bench/calibration.py --reps 400 --workers 2 --out bench/results/calibration.json

Grid: n in {150, 500} test items x k in {1, 2, 3, 5} seeds x sigma_seed in {0, 1, 2, 4} pp. Every
repetition draws fresh items (baseline 30%, heterogeneous difficulty and fragility) and per-seed true gains
g_s = mu + sigma z_s; each seed flips items independently given the baseline, ~5% each way plus its gain
(`capgap.analysis.simulate`). The per-item rows are written to a real SQLite store (`capgap.store.Store`,
cells as `store.study.save_cell` takes them, test items and baseline recorded) and analysed by the real
`capgap.analysis.analyse_study`; each simulated cell is its own Holm family (one teacher per student).

Per grid cell it reports: the false "improves/degrades" rate when mu = 0; CI coverage of mu (k = 1: of
that run's own g_s, the estimand of a 1-seed verdict, and the false rate when that run's g_s = 0, which is
the bounded one); power at mu = +5 pp (verdict "improves"); mean CI width. Bounds, with the Monte Carlo
SE = sqrt(p (1 - p) / reps) at the nominal p: false rate <= 5% + 2 SE; coverage >= 93% - 2 SE, and
<= 97% + 2 SE for k >= 3. Prints PASS/FAIL per cell, writes JSON, and exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from capgap.analysis import analyse_study
from capgap.analysis.simulate import TRAINING, simulate_cell, write_cell, write_evaluation
from capgap.store import Store

N_ITEMS = (150, 500)
SEEDS = (1, 2, 3, 5)
SIGMAS_PP = (0, 1, 2, 4)
POWER_GAIN = 0.05
BATCH = 10  # repetitions per simulated study (each simulated cell is a separate student: its own family)
KINDS = ("null", "power", "zero")  # mu = 0 / mu = +5 pp / (k = 1) the run's own gain exactly 0


def _write_study(store: Store, name: str, n: int, k: int, sigma: float, reps: int,
                 rng: np.random.Generator) -> dict[str, dict]:
    """One study holding `reps` repetitions of each kind of cell; returns the truth per student."""
    store.study.save_study(name, {"training": TRAINING}, {"bench": "calibration"})
    truth = {}
    for rep in range(reps):
        for kind in KINDS if k == 1 else KINDS[:2]:
            mu, sd = {"null": (0.0, sigma), "power": (POWER_GAIN, sigma), "zero": (0.0, 0.0)}[kind]
            cell = simulate_cell(n, k, mu, sd, rng)
            student = f"{kind}-{rep}"
            pre_key = f"{name}-pre-{student}"
            write_evaluation(store, pre_key, cell.pre)
            write_cell(store, name, student, "teacher", "own-correct", cell, pre_key)
            truth[student] = {"kind": kind, "mu": mu, "gains": cell.gains}
    return truth


def _score(cells: list[dict], truth: dict[str, dict], k: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"false_mu": [], "coverage": [], "power": [], "width": [], "false_run": []}
    for g in cells:
        t = truth[g["student"]]
        lo, hi = g["ci95"]
        detected = g["verdict"] in ("improves", "degrades")
        if t["kind"] == "null":
            target = float(t["gains"][0]) if k == 1 else t["mu"]
            out["false_mu"].append(detected)
            out["coverage"].append(lo <= target <= hi)
            out["width"].append(hi - lo)
        elif t["kind"] == "power":
            out["power"].append(g["verdict"] == "improves")
        else:
            out["false_run"].append(detected)
    return out


def run_cell(args: tuple[int, int, int, int, int]) -> dict:
    """All repetitions of one grid cell, in its own temporary store."""
    n, k, sigma_pp, reps, seed = args
    rng = np.random.default_rng([seed, n, k, sigma_pp])
    scores: dict[str, list[float]] = {}
    start = time.perf_counter()
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None  # RAM-backed: SQLite commits cost no disk syncs
    with tempfile.TemporaryDirectory(dir=scratch) as tmp, Store(Path(tmp) / "calibration.sqlite") as store:
        for b in range(math.ceil(reps / BATCH)):
            name = f"n{n}-k{k}-s{sigma_pp}-{b}"
            truth = _write_study(store, name, n, k, sigma_pp / 100, min(BATCH, reps - b * BATCH), rng)
            study = next(s for s in store.study.studies() if s["study"] == name)
            for key, values in _score(analyse_study(store, study)["cells"], truth, k).items():
                scores.setdefault(key, []).extend(values)
    return _summary(n, k, sigma_pp, reps, scores, time.perf_counter() - start)


def _summary(n: int, k: int, sigma_pp: int, reps: int, s: dict, seconds: float) -> dict:
    se_false, se_cov = math.sqrt(0.05 * 0.95 / reps), math.sqrt(0.95 * 0.05 / reps)
    row = {"n": n, "k": k, "sigma_pp": sigma_pp, "reps": reps, "false_rate_mu0": float(np.mean(s["false_mu"])),
           "coverage": float(np.mean(s["coverage"])), "coverage_of": "g_s (the run)" if k == 1 else "mu",
           "power_5pp": float(np.mean(s["power"])), "mean_ci_width_pp": 100 * float(np.mean(s["width"])),
           "false_rate_run0": float(np.mean(s["false_run"])) if s["false_run"] else None, "seconds": seconds}
    bounded_false = row["false_rate_run0"] if k == 1 else row["false_rate_mu0"]
    checks = {"false <= 5% + 2SE": bounded_false <= 0.05 + 2 * se_false,
              "coverage >= 93% - 2SE": row["coverage"] >= 0.93 - 2 * se_cov}
    if k >= 3:
        checks["coverage <= 97% + 2SE"] = row["coverage"] <= 0.97 + 2 * se_cov
    row["checks"] = checks
    row["pass"] = all(checks.values())
    return row


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def table(rows: list[dict], reps: int) -> str:
    se = math.sqrt(0.05 * 0.95 / reps)
    lines = [f"reps per cell: {reps}; bounds: false <= {100 * (0.05 + 2 * se):.1f}%, coverage >= "
             f"{100 * (0.93 - 2 * se):.1f}% (and <= {100 * (0.97 + 2 * se):.1f}% for k >= 3); k = 1 bounds the "
             "false rate when the run's own gain is 0 and covers the run's own gain",
             "   n  k  σ_seed  false(μ=0)  false(g_s=0)  coverage  power@5pp  CI width  result",
             "  --- -- ------  ----------  ------------  --------  ---------  --------  ------"]
    for r in rows:
        lines.append(f"{r['n']:5d} {r['k']:2d}  {r['sigma_pp']:2d} pp     {_pct(r['false_rate_mu0'])}        "
                     f"{_pct(r['false_rate_run0'])}     {_pct(r['coverage'])}    {_pct(r['power_5pp'])}   "
                     f"{r['mean_ci_width_pp']:5.1f} pp  {'PASS' if r['pass'] else 'FAIL'}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=200, help="repetitions per grid cell (at least 200)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calibration.json")
    args = p.parse_args()
    if args.reps < 200:
        p.error("--reps must be at least 200")
    grid = [(n, k, s, args.reps, args.seed) for n in N_ITEMS for k in SEEDS for s in SIGMAS_PP]
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        rows = pool.map(run_cell, grid, chunksize=1)
    print(table(rows, args.reps))
    failed = [r for r in rows if not r["pass"]]
    print(f"{len(rows) - len(failed)}/{len(rows)} cells pass; {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"reps": args.reps, "seed": args.seed, "power_gain": POWER_GAIN, "rows": rows},
                                   indent=1) + "\n")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
