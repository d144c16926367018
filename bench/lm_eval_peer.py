"""Peer check: capgap eval vs lm-evaluation-harness (`hf` backend) on the same checkpoint and items.

    python bench/lm_eval_peer.py --model smollm2-135m-instruct --data ../shared/data/svamp/SVAMP.json --limit 20

Both run greedy with the same prompt (capgap writes lm-eval's task YAML with capgap's user message and
runs lm-eval with --apply_chat_template), the same stop sequences and max new tokens, and both sets of raw
generations are scored by capgap's extraction. Both are timed as whole commands, startup included, each on a
fresh store / output folder; lm-eval is run at several batch sizes and its best is compared. Prints a table
and writes JSON (default bench/results/lm_eval_peer.json). Needs `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from capgap.evaluation.prompts import PLAIN_STOP, PromptConfig, user_message
from capgap.models import resolve
from capgap.models.loading import checkpoint_dir
from capgap.store import Store
from capgap.tasks import load_task

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def write_lm_eval_task(folder: Path, task, chat: bool, eos_text: str, max_new_tokens: int) -> None:
    """A local lm-eval task whose prompt is capgap's user message (zero-shot CoT)."""
    data = folder / "items.jsonl"
    with data.open("w") as f:
        for it in task.items:
            text = user_message(it.question, task.answer_type) + ("" if chat else "\nAnswer:")
            f.write(json.dumps({"id": it.id, "prompt": text, "answer": it.answer}) + "\n")
    until = [eos_text] if chat else list(PLAIN_STOP)
    yaml = (f"task: capgap_peer\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
            "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{prompt}}'\n"
            "doc_to_target: '{{answer}}'\ntarget_delimiter: ''\n"
            f"generation_kwargs:\n  until: {json.dumps(until)}\n  do_sample: false\n"
            f"  max_gen_toks: {max_new_tokens}\nmetric_list:\n  - metric: exact_match\n")
    (folder / "capgap_peer.yaml").write_text(yaml)


def run_lm_eval(folder: Path, checkpoint: Path, dtype: str, batch_size: int, chat: bool) -> tuple[float, dict]:
    out = folder / f"out-bs{batch_size}"
    cmd = ["lm_eval", "--model", "hf", "--model_args", f"pretrained={checkpoint},dtype={dtype}",
           "--tasks", "capgap_peer", "--include_path", str(folder), "--batch_size", str(batch_size),
           "--output_path", str(out), "--log_samples", "--device", "cpu"]
    if chat:
        cmd.append("--apply_chat_template")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"lm_eval failed:\n{proc.stderr[-3000:]}")
    samples = next(out.rglob("samples_capgap_peer*.jsonl"))
    generations = {}
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        generations[s["doc"]["id"]] = (s["resps"][0][0], s["arguments"]["gen_args_0"]["arg_0"])
    return seconds, generations


def run_capgap(folder: Path, args, backend: str = "hf") -> tuple[float, dict]:
    """(wall seconds of `capgap eval` as a whole command on a fresh store, its stored rows by item id)."""
    store = folder / f"capgap-{backend}.sqlite"
    cmd = [sys.executable, "-m", "capgap", "eval", "--model", args.model, "--task", args.task, "--data",
           args.data, "--limit", str(args.limit), "--store", str(store), "--dtype", args.dtype, "--backend", backend,
           "--batch-size", str(args.capgap_batch_size), "--max-new-tokens", str(args.max_new_tokens), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"capgap eval --backend {backend} failed:\n{proc.stderr[-3000:]}")
    key = json.loads(proc.stdout.strip().splitlines()[-1])["eval_key"]
    with Store(store) as s:
        return seconds, s.items(key)


def compare(task, ours: dict, theirs: dict) -> dict:
    same_answer = same_text = same_prompt = ours_ok = theirs_ok = 0
    for it in task.items:
        a, b = task.extract(ours[it.id][0]), task.extract(theirs[it.id][0].strip())
        same_answer += a.strict == b.strict
        same_text += ours[it.id][0].strip() == theirs[it.id][0].strip()
        same_prompt += ours[it.id][1] == theirs[it.id][1]
        ours_ok += task.check(a.strict, it.answer)
        theirs_ok += task.check(b.strict, it.answer)
    n = len(task.items)
    return {"n": n, "identical_answers": same_answer / n, "identical_generations": same_text / n,
            "identical_prompts": same_prompt / n, "accuracy_capgap": ours_ok / n, "accuracy_lm_eval": theirs_ok / n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--task", default="svamp")
    p.add_argument("--data", default="../shared/data/svamp/SVAMP.json")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--capgap-batch-size", type=int, default=32)
    p.add_argument("--lm-eval-batch-sizes", default="8,32")
    p.add_argument("--out", type=Path, default=Path("bench/results/lm_eval_peer.json"))
    args = p.parse_args()

    source = resolve(args.model)
    checkpoint = checkpoint_dir(source)  # lm-eval reads the same dequantized checkpoint capgap loads
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    chat = bool(tokenizer.chat_template) and PromptConfig().chat == "auto"
    task = load_task(args.task, data=args.data).limited(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_lm_eval_task(folder, task, chat, tokenizer.eos_token, args.max_new_tokens)
        ours_s, rows = run_capgap(folder, args)
        ours = {k: (r["generation"], r["prompt"]) for k, r in rows.items()}
        runs = {}
        for bs in (int(b) for b in args.lm_eval_batch_sizes.split(",")):
            seconds, theirs = run_lm_eval(folder, checkpoint, args.dtype, bs, chat)
            runs[bs] = {"seconds": seconds, **compare(task, ours, theirs)}
    best = min(runs, key=lambda b: runs[b]["seconds"])
    result = {"model": args.model, "task": args.task, "limit": args.limit, "dtype": args.dtype,
              "capgap_seconds": ours_s, "capgap_batch_size": args.capgap_batch_size, "lm_eval": runs,
              "lm_eval_best_batch_size": best, "speedup_vs_best": runs[best]["seconds"] / ours_s}
    print(f"| {'tool':<22} | {'wall s':>7} | {'accuracy':>8} | {'identical answers':>17} | {'identical text':>14} |")
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 10}|{'-' * 19}|{'-' * 16}|")
    print(f"| {'capgap bs=' + str(args.capgap_batch_size):<22} | {ours_s:7.1f} | "
          f"{runs[best]['accuracy_capgap']:8.3f} | {'-':>17} | {'-':>14} |")
    for bs, r in runs.items():
        print(f"| {'lm-eval hf bs=' + str(bs):<22} | {r['seconds']:7.1f} | {r['accuracy_lm_eval']:8.3f} | "
              f"{r['identical_answers']:17.1%} | {r['identical_generations']:14.1%} |")
    print(f"capgap is {result['speedup_vs_best']:.2f}x the speed of lm-eval at its best batch size ({best}); "
          f"identical prompts: {runs[best]['identical_prompts']:.0%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
