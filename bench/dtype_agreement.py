"""float32 vs bfloat16: generation speed and answer agreement on the same items (greedy).

    python bench/dtype_agreement.py --model smollm2-135m-instruct --task arith --limit 8 --max-new-tokens 64

`--dtype auto` picks bf16 only where it measures faster (GPUs; CPUs with AVX512-BF16 / AMX); this script
shows what that choice costs or saves in speed, and whether the extracted answers stay the same.
Prints a table and writes JSON (default bench/results/dtype_agreement.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from capgap import PromptConfig, load_model, load_task, resolve
from capgap.evaluation.prompts import render, stop_strings, uses_chat
from capgap.models import resolve_dtype
from capgap.models.generation import Decoding, generate


def run(model: str, task, dtype: str, max_new_tokens: int, batch_size: int) -> dict:
    loaded = load_model(resolve(model), dtype=dtype)
    prompt = PromptConfig()
    texts = [render(task, it, loaded.tokenizer, prompt) for it in task.items]
    start = time.perf_counter()
    gens = generate(loaded.model, loaded.tokenizer, texts, Decoding(max_new_tokens=max_new_tokens),
                    stop=stop_strings(prompt, loaded.tokenizer),
                    add_special_tokens=not uses_chat(prompt, loaded.tokenizer), batch_size=batch_size)
    seconds = time.perf_counter() - start
    tokens = sum(g.n_new_tokens for g in gens)
    answers = [task.extract(g.text).strict for g in gens]
    correct = sum(task.check(a, it.answer) for a, it in zip(answers, task.items, strict=True))
    return {"dtype": dtype, "seconds": seconds, "tokens": tokens, "tok_per_s": tokens / seconds,
            "accuracy": correct / len(gens), "answers": answers, "texts": [g.text for g in gens]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--task", default="arith")
    p.add_argument("--data")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, default=Path("bench/results/dtype_agreement.json"))
    args = p.parse_args()
    task = load_task(args.task, data=args.data).limited(args.limit)
    runs = [run(args.model, task, d, args.max_new_tokens, args.batch_size) for d in ("float32", "bfloat16")]
    fp32, bf16 = runs
    same_answers = sum(a == b for a, b in zip(fp32["answers"], bf16["answers"], strict=True)) / len(task.items)
    same_texts = sum(a == b for a, b in zip(fp32["texts"], bf16["texts"], strict=True)) / len(task.items)
    print(f"| dtype    | tok/s  | seconds | accuracy |   (n={len(task.items)}, max_new_tokens={args.max_new_tokens})")
    print("|----------|--------|---------|----------|")
    for r in runs:
        print(f"| {r['dtype']:<8} | {r['tok_per_s']:6.1f} | {r['seconds']:7.1f} | {r['accuracy']:8.3f} |")
    print(f"identical answers {same_answers:.0%}, identical generations {same_texts:.0%}; "
          f"bf16 speed = {bf16['tok_per_s'] / fp32['tok_per_s']:.2f}x fp32; auto picks {resolve_dtype('auto')}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "task": args.task, "n": len(task.items),
                                    "auto": resolve_dtype("auto"), "identical_answers": same_answers,
                                    "identical_generations": same_texts,
                                    "runs": [{k: v for k, v in r.items() if k != "texts"} for r in runs]}, indent=2))


if __name__ == "__main__":
    main()
