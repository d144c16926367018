"""Kill drill: a real tiny study is killed with SIGKILL at several moments and resumed; the resumed store and
checkpoints must equal those of an uninterrupted run bit for bit.

    python bench/kill_drill.py                                   # all five moments (~6 min on 2 CPU cores)
    python bench/kill_drill.py --moments training post-eval --out bench/results/kill_drill.json
    python bench/kill_drill.py --engine vllm        # every generation through one vLLM engine per model
    python bench/kill_drill.py --rebase             # the kills land in `capgap rebase` onto a new checkpoint

The study: arith, one tiny student and two teachers (gold rationales; a tiny model sampling 2 rationales per
question), two protocols, real LoRA training, float32. Moments: `teacher` (teacher generation half done),
`baseline` (the baseline's first batch stored), `training` (the second cell training), `trained` (a
checkpoint saved, its evaluation not begun), `post-eval` (a post-distillation evaluation half done). For
each: run until the moment, kill -9, run again to the end, then compare `capgap.store.snapshot` (every row
of every table but time stamps, durations and paths: generations, rationales, cells, checkpoint
fingerprints, gains) and each checkpoint's file hashes with the uninterrupted run's, and check that no
staging folder or claim is left. With `--rebase` the student is a lineage: the study is first run whole, then
`capgap rebase --to NEW` (a second tiny checkpoint) is killed at the moments it has (its new baseline, its
training and evaluations; the teachers' rationales are stored already) and resumed, and the result compared
with an uninterrupted rebase. Prints a table, writes JSON, exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import build_tiny_model  # noqa: E402

from capgap.models.engines import ENGINES  # noqa: E402
from capgap.store import differences, snapshot  # noqa: E402
from capgap.training.checkpoints import file_hashes  # noqa: E402

BATCH, N_TEST, POOL, SAMPLES = 4, 8, 16, 2
TEACHER_ROWS, BASELINE_ROWS = POOL * SAMPLES, N_TEST


def study_config(folder: Path, student: Path, teacher: Path, engine: str = "hf", lineage: bool = False) -> Path:
    config = {
        "name": "drill",
        "tasks": [{"name": "arith", "options": {"n": 40, "seed": 3, "max_steps": 2},
                   "pool": {"first": POOL}, "test": {"rest": True, "limit": N_TEST}}],
        "students": [str(student)],
        "teachers": [{"name": "gold", "kind": "reference"},
                     {"name": "tutor", "kind": "model", "model": str(teacher), "max_new_tokens": 24, "backend": engine,
                      "samples": SAMPLES, "prompt": {"style": "few-shot-cot", "shots": 2}}],
        "protocols": ["unfiltered", "own-correct"],
        "training": {"method": "lora", "steps": 3, "batch_size": 4, "max_length": 400},
        "evaluation": {"max_new_tokens": 24, "batch_size": BATCH, "dtype": "float32", "backend": engine},
    }
    if lineage:
        config["students"] = [{"name": "prod", "checkpoints": [str(student)]}]
    path = folder / "drill.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rows_stored(store: Path) -> int:
    try:
        with sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM eval_items").fetchone()[0]
    except sqlite3.Error:
        return 0


# When to kill: (a log line that must have appeared, how often, a predicate on rows stored since it did; `base`:
# the rows stored before the command, `teacher`: the teacher's rows it generates, none in a rebase).
# IN_WINDOW checks afterwards that the kill landed inside the moment (rows stored, the command's cells then).
MOMENTS = {
    "teacher": ("[generate] teacher tutor", 1, lambda rows, at, base, teacher: rows >= base + teacher // 2),
    "baseline": ("[generate] baseline of", 1, lambda rows, at, base, teacher: rows >= base + teacher + BATCH),
    "training": ("[train]", 2, lambda rows, at, base, teacher: True),
    "trained": ("[eval]", 1, lambda rows, at, base, teacher: True),
    "post-eval": ("[eval]", 2, lambda rows, at, base, teacher: rows >= at + BATCH),
}
REBASE_MOMENTS = ("baseline", "training", "trained", "post-eval")  # a rebase generates no teacher rationales


IN_WINDOW = {
    "teacher": lambda k, base, teacher: base < k["rows_when_killed"] < base + teacher,
    "baseline": lambda k, base, teacher: base + teacher < k["rows_when_killed"] < base + teacher + BASELINE_ROWS,
    "training": lambda k, base, teacher: "done" in k["cells_when_killed"],
    "trained": lambda k, base, teacher: k["cells_when_killed"][-1:] == ["trained"],
    "post-eval": lambda k, base, teacher: k["cells_when_killed"][-1:] == ["trained"],
}


def command(config: Path, store: Path, run_dir: Path, rebase_to: Path | None = None) -> list[str]:
    verb = ["run"] if rebase_to is None else ["rebase", "--to", str(rebase_to)]
    return [sys.executable, "-m", "capgap", *verb[:1], str(config), *verb[1:], "--store", str(store),
            "--run-dir", str(run_dir)]


def run_and_kill(config: Path, store: Path, run_dir: Path, moment: str, rebase_to: Path | None = None,
                 timeout: float = 600) -> dict:
    """Run the study (or its rebase) and kill -9 it at `moment`; what the store held then."""
    line, times, ready = MOMENTS[moment]
    base, teacher = rows_stored(store) if store.exists() else 0, 0 if rebase_to else TEACHER_ROWS
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log = run_dir.parent / f"{moment}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(command(config, store, run_dir, rebase_to), stdout=subprocess.DEVNULL, stderr=sink,
                                env=env)
    seen, rows_at, deadline = 0, None, time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        text = log.read_text()
        seen = text.count(line)
        if seen >= times:
            rows_at = rows_at if rows_at is not None else rows_stored(store)
            if ready(rows_stored(store), rows_at, base, teacher):
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(60)
    killed = proc.returncode == -signal.SIGKILL
    with sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True) as conn:  # the command's own cells
        only = ("WHERE student=?", (str(rebase_to),)) if rebase_to else ("", ())
        statuses = [r[0] for r in conn.execute(f"SELECT status FROM cells {only[0]} ORDER BY updated_at", only[1])] \
            if killed else []
    return {"killed": killed, "rows_when_killed": rows_stored(store), "cells_when_killed": statuses, "base": base,
            "teacher": teacher}


def finish(config: Path, store: Path, run_dir: Path, rebase_to: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command(config, store, run_dir, rebase_to), capture_output=True, text=True, env=env,
                          timeout=900)


def checkpoints(run_dir: Path) -> dict[str, dict[str, str]]:
    folder = run_dir / "checkpoints"
    return {p.name: file_hashes(p) for p in sorted(folder.iterdir()) if p.is_dir()} if folder.is_dir() else {}


def leftovers(store: Path, run_dir: Path) -> list[str]:
    with sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True) as conn:
        claims = conn.execute("SELECT COUNT(*) FROM leases").fetchone()[0]
    staging = [p.name for p in (run_dir / "checkpoints").glob("*.tmp")]
    return ([f"{claims} claim(s) left in leases"] if claims else []) + [f"staging folder {s}" for s in staging]


def _prepared(config: Path, store: Path, run_dir: Path, rebase_to: Path | None) -> None:
    """A rebase starts from the finished study: run it whole first (a plain drill starts from nothing)."""
    if rebase_to is not None and (done := finish(config, store, run_dir)).returncode != 0:
        raise SystemExit(f"the study before the rebase failed:\n{done.stderr[-3000:]}")


def drill(moments: list[str], folder: Path, engine: str = "hf", rebase: bool = False) -> list[dict]:
    models = folder / "models"
    heads = 32 if engine == "vllm" else None  # a head size vLLM's CPU attention takes
    student = build_tiny_model(models / "student", head_dim=heads)
    teacher = build_tiny_model(models / "teacher", seed=1, chat=False, head_dim=heads)
    new = build_tiny_model(models / "student-v2", seed=7, head_dim=heads) if rebase else None
    config = study_config(folder, student, teacher, engine, lineage=rebase)
    reference_store, reference_dir = folder / "reference" / "store.sqlite", folder / "reference" / "drill"
    start = time.perf_counter()
    _prepared(config, reference_store, reference_dir, new)
    done = finish(config, reference_store, reference_dir, new)
    if done.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{done.stderr[-3000:]}")
    reference = {"seconds": round(time.perf_counter() - start, 1)}
    expected, expected_checkpoints = snapshot(reference_store), checkpoints(reference_dir)
    results = []
    for moment in moments:
        store, run_dir = folder / moment / "store.sqlite", folder / moment / "drill"
        run_dir.parent.mkdir(parents=True)
        _prepared(config, store, run_dir, new)
        kill = run_and_kill(config, store, run_dir, moment, new)
        resumed = finish(config, store, run_dir, new)
        problems = [] if resumed.returncode == 0 else [f"resume failed: {resumed.stderr[-500:]}"]
        problems += differences(snapshot(store), expected) if resumed.returncode == 0 else []
        if checkpoints(run_dir) != expected_checkpoints:
            problems.append("checkpoint files differ from the uninterrupted run's")
        problems += leftovers(store, run_dir)
        if not kill["killed"]:
            problems.append("the run ended before the moment was reached: nothing was tested")
        elif not IN_WINDOW[moment](kill, kill["base"], kill["teacher"]):
            problems.append(f"the kill missed the moment (rows {kill['rows_when_killed']}, cells "
                            f"{kill['cells_when_killed']}): that moment was not tested")
        results.append({"moment": moment, **kill, "resume_log_tags": _tags(resumed.stderr),
                        "problems": problems, "status": "FAIL" if problems else "PASS"})
    return [{"moment": "uninterrupted", **reference, "status": "reference",
             "checkpoints": len(expected_checkpoints)}, *results]


def _tags(log: str) -> dict[str, int]:
    return {tag: log.count(f"[{tag}]") for tag in ("stored", "train", "reuse", "eval", "skip", "damaged")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", nargs="+", default=list(MOMENTS), choices=list(MOMENTS))
    parser.add_argument("--engine", default="hf", choices=list(ENGINES), help="the engine of every generation")
    parser.add_argument("--rebase", action="store_true", help="kill `capgap rebase` instead of `capgap run`")
    parser.add_argument("--out", type=Path, default=None,
                        help="default bench/results/kill_drill[-ENGINE][-rebase].json")
    args = parser.parse_args()
    if args.rebase:
        args.moments = [m for m in args.moments if m in REBASE_MOMENTS]
    suffix = ("" if args.engine == "hf" else f"-{args.engine}") + ("-rebase" if args.rebase else "")
    args.out = args.out or ROOT / "bench" / "results" / f"kill_drill{suffix}.json"
    with tempfile.TemporaryDirectory(prefix="capgap-kill-drill-") as tmp:
        results = drill(args.moments, Path(tmp), args.engine, args.rebase)
    print(f"{'moment':<14} {'status':<9} {'rows at kill':>12}  cells at kill            resume log")
    for r in results:
        cells = ",".join(r.get("cells_when_killed", [])) or "-"
        print(f"{r['moment']:<14} {r['status']:<9} {r.get('rows_when_killed', ''):>12}  {cells:<24} "
              f"{r.get('resume_log_tags', '')}")
        for problem in r.get("problems", []):
            print(f"    {problem}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results}, indent=1))
    print(f"wrote {args.out}")
    return 1 if any(r["status"] == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
