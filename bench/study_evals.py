"""A study's evaluations three ways: one vLLM engine with checkpoints swapped in place, a new vLLM engine per
checkpoint, and `hf` (each checkpoint loaded in this process).

    HF_HUB_OFFLINE=1 python bench/study_evals.py --checkpoints 3 --items 40 --max-new-tokens 96

The checkpoints are the student and copies of it with perturbed weights (what training writes: the same
architecture, other weights), each evaluated greedily on the same arith items with the quickstart's prompt,
as a study's baseline and post-distillation evaluations are. Each way runs as a whole process and is timed
end to end (engine starts, loads, swaps and generation). Prints a table and writes JSON (default
bench/results/study_evals.json).
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

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

WORKER = r"""
import json, sys, time
from capgap.evaluation import PromptConfig
from capgap.evaluation.prompts import build_requests
from capgap.models import decide
from capgap.models.backends import ModelRef, open_generator
from capgap.models.generation import Decoding
from capgap.tasks import load_task

def main():
    way, items, new, base, *checkpoints = sys.argv[1:]
    task = load_task("arith", n=int(items), seed=11, max_steps=3)
    precision, decoding, texts = decide("auto"), Decoding(max_new_tokens=int(new)), {}
    start = time.perf_counter()
    for path in checkpoints:
        if way == "swap":
            from capgap.models.vllm_engine import VLLMGenerator
            generator = VLLMGenerator.open(path, precision, base=base)
        elif way == "engine-per-checkpoint":
            from capgap.models.vllm_engine import VLLMGenerator, close_engines
            close_engines()
            generator = VLLMGenerator.open(path, precision)
        else:
            generator = open_generator(ModelRef(path, "hf"), precision)
        requests = build_requests(task, task.items, PromptConfig(), generator.tokenizer, [0] * len(task.items))
        texts[path] = [g.text for g in generator.generate(requests, decoding)]
    print(json.dumps({"seconds": time.perf_counter() - start, "texts": texts}))

if __name__ == "__main__":
    main()
"""


def perturbed_copies(base: Path, folder: Path, n: int) -> list[Path]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = [base]
    for k in range(1, n):
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        generator = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + 0.02 * torch.randn(p.shape, generator=generator))
        model.save_pretrained(folder / f"ckpt{k}")
        AutoTokenizer.from_pretrained(base).save_pretrained(folder / f"ckpt{k}")
        out.append(folder / f"ckpt{k}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--checkpoints", type=int, default=3)
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--out", type=Path, default=Path("bench/results/study_evals.json"))
    args = p.parse_args()

    from capgap.models import resolve
    from capgap.models.loading import checkpoint_dir

    base = checkpoint_dir(resolve(args.model))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = [str(c) for c in perturbed_copies(base, folder, args.checkpoints)]
        (folder / "worker.py").write_text(WORKER)
        for way in ("swap", "engine-per-checkpoint", "hf"):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(folder / "worker.py"), way, str(args.items),
                                   str(args.max_new_tokens), str(base), *paths], capture_output=True, text=True,
                                  env=ENV)
            if proc.returncode != 0:
                sys.exit(f"{way} failed:\n{proc.stderr[-3000:]}")
            reply = json.loads(proc.stdout.strip().splitlines()[-1])
            results[way] = {"seconds": time.perf_counter() - start, "texts": reply["texts"]}
    same = sum(results["swap"]["texts"][c] == results["engine-per-checkpoint"]["texts"][c] for c in paths)
    print(f"{args.checkpoints} checkpoints of {args.model} x {args.items} arith items x {args.max_new_tokens} tokens")
    print(f"| {'way':<22} | {'wall s':>7} |")
    print(f"|{'-' * 24}|{'-' * 9}|")
    for way, r in results.items():
        print(f"| {way:<22} | {r['seconds']:7.1f} |")
    print(f"swapped in place vs a new engine per checkpoint: identical generations for {same} of {len(paths)} "
          "checkpoints")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"checkpoints": args.checkpoints, "items": args.items,
                                    "max_new_tokens": args.max_new_tokens,
                                    "seconds": {w: r["seconds"] for w, r in results.items()},
                                    "swap_equals_fresh_engine": same}, indent=2))


if __name__ == "__main__":
    main()
