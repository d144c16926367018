"""float32 vs bf16-autocast training of a real SmolLM2-135M cell: does bf16 train as well on this CPU?

    HF_HUB_OFFLINE=1 python bench/train_precision.py --teacher gpt-4o --limit 150
    HF_HUB_OFFLINE=1 python bench/train_precision.py --speed-only 6   # training speed alone, modes alternated

Trains the same cell (SVAMP, one teacher's own-correct rationales, the CPU study's recipe: LoRA, 16 steps x
batch 4, same seed) once in float32 and once in bf16 autocast over float32 master weights (what `dtype: auto`
picks on bf16-capable CPUs), then evaluates both checkpoints the same way (auto generation precision) on the
same test items. Prints the loss curves side by side, training speed, post accuracy and the paired
difference; writes JSON (default bench/results/train_precision.json). Needs ../shared/data. Speeds are only
comparable on an otherwise idle machine: `--speed-only N` trains N steps per mode, twice, alternating.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from capgap import Store, evaluate, load_model
from capgap.config import load_config
from capgap.evaluation.prompts import render
from capgap.models import Precision, decide
from capgap.models.sources import ModelSource
from capgap.study.cells import Student
from capgap.study.data import prepare_task, training_examples
from capgap.study.teachers import gather
from capgap.tasks import Task
from capgap.training import tokenize_examples, train

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "svamp-six-teachers-cpu.yaml"
MODES = {"fp32": Precision("cpu", "float32", "fp32", "bench"),
         "bf16-autocast": Precision("cpu", "bfloat16", "bf16-autocast", "bench")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="gpt-4o")
    p.add_argument("--limit", type=int, default=150, help="test items evaluated per checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed-only", type=int, metavar="STEPS", help="only time STEPS training steps per mode")
    p.add_argument("--out", type=Path, default=Path("bench/results/train_precision.json"))
    args = p.parse_args()
    config = load_config(CONFIG)
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    (teacher_config,) = [t for t in config.teachers if t.name == args.teacher]
    teacher = gather(teacher_config, config, st, None, None)
    examples = training_examples("own-correct", teacher, [teacher])
    student = Student(config.students[0], config)
    by_id = {it.id: it for it in st.pool}
    prompts = [render(st.task, by_id[e.item_id], student.tokenizer, student.prompt) for e in examples]
    data = tokenize_examples(student.tokenizer, prompts, [e.rationale for e in examples], chat=student.chat,
                             max_length=config.training.max_length)
    if args.speed_only:
        _speed(student, data.rows, replace(config.training, steps=args.speed_only), args.seed)
        return
    test = Task(st.test.name, st.test.items[: args.limit], st.test.answer_type, st.test.exemplars,
                st.test.definition)
    results, correct = {}, {}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        for mode, precision in MODES.items():
            start = time.perf_counter()
            run = train(student.base_dir, student.tokenizer, data.rows, config.training, args.seed,
                        Path(tmp) / mode, precision)
            train_s = time.perf_counter() - start
            post = evaluate(load_model(ModelSource(mode, "dir", path=run.checkpoint), "auto"), test, store,
                            prompt=student.prompt, decoding=student.decoding, batch_size=64)
            correct[mode] = np.array([r["correct_strict"] for r in post.rows])
            last = [x for _, x in run.loss_curve[-4:]]
            results[mode] = {"train_seconds": train_s, "tokens_per_s": run.tokens / train_s,
                             "loss_curve": run.loss_curve, "final_loss": float(np.mean(last)),
                             "post_accuracy": post.accuracy, "eval_dtype": post.dtype}
    _print(results, correct, decide("auto"), args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"teacher": args.teacher, "n_examples": len(data.rows), "n_test": len(test.items),
                                    "results": results}, indent=1))
    print(f"wrote {args.out}")


def _speed(student: Student, rows: list[dict], cfg, seed: int) -> None:
    print("| mode | steps | tokens | seconds (load + train + save) | tok/s |\n|---|---:|---:|---:|---:|")
    for mode in [*MODES, *MODES]:
        with tempfile.TemporaryDirectory() as tmp:
            run = train(student.base_dir, student.tokenizer, rows, cfg, seed, Path(tmp) / "c", MODES[mode])
        print(f"| {mode} | {run.steps} | {run.tokens} | {run.seconds:.1f} | {run.tokens / run.seconds:.0f} |")


def _print(results: dict, correct: dict, auto: Precision, args: argparse.Namespace) -> None:
    a, b = results["fp32"], results["bf16-autocast"]
    print(f"teacher {args.teacher}, seed {args.seed}; auto picks: {auto.train} ({auto.reason})")
    print("| step | loss fp32 | loss bf16-autocast |\n|---:|---:|---:|")
    for (step, x), (_, y) in zip(a["loss_curve"], b["loss_curve"], strict=True):
        print(f"| {step} | {x:.4f} | {y:.4f} |")
    diff = np.abs(np.array([x for _, x in a["loss_curve"]]) - np.array([y for _, y in b["loss_curve"]]))
    print(f"\nmax |loss difference| {diff.max():.4f}, mean {diff.mean():.4f}")
    print("| mode | train s | train tok/s | mean loss last 4 steps | post accuracy |\n|---|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['train_seconds']:.1f} | {r['tokens_per_s']:.0f} | {r['final_loss']:.4f} | "
              f"{100 * r['post_accuracy']:.1f}% |")
    d = correct["bf16-autocast"] - correct["fp32"]
    print(f"post accuracy bf16 - fp32: {100 * d.mean():+.1f} pp on {d.size} items "
          f"({int((d > 0).sum())} items only bf16 got, {int((d < 0).sum())} only fp32 got)")


if __name__ == "__main__":
    main()
