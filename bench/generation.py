"""Generation engines side by side: capgap through vLLM, capgap through `hf`, and lm-eval's `hf` model.

    python bench/generation.py --limit 128 --max-new-tokens 128            # SVAMP items from ../shared/data

(a) The same items, checkpoint, prompt, dtype and max new tokens through three engines, each as a whole
command from a fresh store (startup included): `capgap eval --backend vllm`, `capgap eval --backend hf`, and
lm-eval's `hf` model (when `pip install -e '.[bench]'` installed it). Reported: wall seconds, generated tokens
per second of the whole command, and how often each engine's extracted answer (and text) equals `hf`'s.
(b) Engine tokens per second without startup, both engines kept busy at one batch of `--limit` rows with every
row forced to `--max-new-tokens` (ignore end tokens): what bounds a large study. Prints a table and writes JSON
(default bench/results/generation.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
ENV.pop("CAPGAP_ENGINE", None)


def capgap_eval(folder: Path, backend: str, args) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from lm_eval_peer import run_capgap

    args.capgap_batch_size = args.limit  # one batch: what both engines do best
    seconds, rows = run_capgap(folder, args, backend)
    tokens = sum(r["n_new_tokens"] for r in rows.values())
    return {"seconds": seconds, "tokens": tokens, "tok_per_s": tokens / seconds,
            "rows": {k: r["generation"] for k, r in rows.items()}}


def lm_eval_hf(folder: Path, task, checkpoint: Path, chat: bool, eos: str, args) -> dict | None:
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        return None
    from lm_eval_peer import run_lm_eval, write_lm_eval_task

    write_lm_eval_task(folder, task, chat, eos, args.max_new_tokens)
    seconds, generations = run_lm_eval(folder, checkpoint, args.dtype, min(args.limit, 32), chat)
    return {"seconds": seconds, "tokens": None, "tok_per_s": None,
            "rows": {k: text.strip() for k, (text, _) in generations.items()}}


ENGINE_SPEED = r"""
import json, sys, time
from capgap.evaluation.prompts import PromptConfig, build_requests
from capgap.models import decide, resolve
from capgap.models.backends import ModelRef, open_generator
from capgap.models.generation import Decoding
from capgap.tasks import load_task

def main():
    model, task, data, limit, new, dtype, backend = sys.argv[1:8]
    task = load_task(task, data=data).limited(int(limit))
    start = time.perf_counter()
    generator = open_generator(ModelRef(model, backend), decide(dtype))
    started = time.perf_counter() - start
    requests = build_requests(task, task.items, PromptConfig(), generator.tokenizer, [0] * len(task.items))
    if backend == "vllm":  # every row runs to the limit, as hf's below
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        tok = generator.tokenizer
        prompts = [TokensPrompt(prompt_token_ids=tok(r.text, add_special_tokens=r.add_special_tokens)["input_ids"])
                   for r in requests]
        t = time.perf_counter()
        out = generator.engine.llm.generate(prompts, SamplingParams(max_tokens=int(new), temperature=0.0,
                                                                     ignore_eos=True), use_tqdm=False)
        seconds, tokens = time.perf_counter() - t, sum(len(o.outputs[0].token_ids) for o in out)
    else:
        import torch
        tok = generator.tokenizer
        batch = tok([r.text for r in requests], return_tensors="pt", padding=True,
                    add_special_tokens=requests[0].add_special_tokens)
        t = time.perf_counter()
        with torch.inference_mode():
            out = generator.loaded.model.generate(**batch, max_new_tokens=int(new), min_new_tokens=int(new),
                                                  do_sample=False)
        seconds, tokens = time.perf_counter() - t, (out.shape[1] - batch["input_ids"].shape[1]) * len(requests)
    print(json.dumps({"start_s": started, "seconds": seconds, "tokens": tokens, "tok_per_s": tokens / seconds}))

if __name__ == "__main__":
    main()
"""


def engine_speed(folder: Path, backend: str, args) -> dict:
    script = folder / "engine_speed.py"
    script.write_text(ENGINE_SPEED)
    proc = subprocess.run([sys.executable, str(script), args.model, args.task, args.data, str(args.limit),
                           str(args.max_new_tokens), args.dtype, backend], capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        sys.exit(f"engine speed ({backend}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def agreement(task, rows: dict, reference: dict) -> tuple[float, float]:
    answers = sum(task.extract(rows[i]).strict == task.extract(reference[i]).strict for i in reference)
    texts = sum(rows[i].strip() == reference[i].strip() for i in reference)
    return answers / len(reference), texts / len(reference)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--task", default="svamp")
    p.add_argument("--data", default="../shared/data/svamp/SVAMP.json")
    p.add_argument("--limit", type=int, default=128)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--dtype", default="auto", help="auto: what capgap picks here (float32 on AVX2 CPUs)")
    p.add_argument("--out", type=Path, default=Path("bench/results/generation.json"))
    args = p.parse_args()

    from transformers import AutoTokenizer

    from capgap.evaluation.prompts import PromptConfig
    from capgap.models import decide, resolve
    from capgap.models.loading import checkpoint_dir
    from capgap.tasks import load_task

    args.dtype = decide(args.dtype).dtype
    checkpoint = checkpoint_dir(resolve(args.model))
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    chat = bool(tokenizer.chat_template) and PromptConfig().chat == "auto"
    task = load_task(args.task, data=args.data).limited(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = {"capgap vllm": capgap_eval(folder, "vllm", args), "capgap hf": capgap_eval(folder, "hf", args)}
        peer = lm_eval_hf(folder, task, checkpoint, chat, tokenizer.eos_token, args)
        if peer is not None:
            runs["lm-eval hf"] = peer
        speed = {backend: engine_speed(folder, backend, args) for backend in ("vllm", "hf")}
    reference = runs["capgap hf"]["rows"]
    print(f"(a) {len(task.items)} {args.task} items, {args.model}, {args.dtype}, max {args.max_new_tokens} new tokens")
    print(f"| {'engine':<12} | {'wall s':>7} | {'tok/s (whole)':>13} | {'accuracy':>8} | {'same answer as hf':>17} | "
          f"{'same text':>9} |")
    print(f"|{'-' * 14}|{'-' * 9}|{'-' * 15}|{'-' * 10}|{'-' * 19}|{'-' * 11}|")
    for name, r in runs.items():
        r["same_answer_as_hf"], r["same_text_as_hf"] = agreement(task, r["rows"], reference)
        r["accuracy"] = sum(task.check(task.extract(r["rows"][it.id]).strict, it.answer)
                            for it in task.items) / len(task.items)
        rate = f"{r['tok_per_s']:.0f}" if r["tok_per_s"] else "-"
        print(f"| {name:<12} | {r['seconds']:7.1f} | {rate:>13} | {r['accuracy']:8.1%} | "
              f"{r['same_answer_as_hf']:17.1%} | {r['same_text_as_hf']:9.1%} |")
    ratio = runs["capgap hf"]["seconds"] / runs["capgap vllm"]["seconds"]
    print(f"capgap eval through vLLM: {ratio:.2f}x the speed of --backend hf (whole commands)")
    print(f"(b) engines alone, one batch of {len(task.items)} rows x {args.max_new_tokens} tokens")
    print(f"| {'engine':<6} | {'start s':>7} | {'tok/s':>7} |")
    for name, r in speed.items():
        print(f"| {name:<6} | {r['start_s']:7.1f} | {r['tok_per_s']:7.0f} |")
    result = {"model": args.model, "task": args.task, "items": len(task.items), "dtype": args.dtype,
              "max_new_tokens": args.max_new_tokens, "whole_commands": {k: {x: y for x, y in v.items() if x != "rows"}
                                                                      for k, v in runs.items()},
              "vllm_speedup_whole": ratio, "engines": speed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
