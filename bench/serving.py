"""Teacher generation through each backend, side by side: tok/s and identical greedy answers.

    python bench/serving.py                                   # SmolLM2-135M-Instruct, 32 arith questions, CPU
    python bench/serving.py --n 64 --device cuda --dtype bfloat16 --vllm   # on a GPU machine, vLLM too

The same greedy teacher generation (capgap's own path: `teachers.model.model_rationales`, a fresh store per
backend, chat template on) runs through:
- `hf`: the model in this process, batches of --batch-size;
- `openai` -> `transformers serve` with continuous batching on 127.0.0.1 (--concurrency requests in flight);
- `openai` -> `transformers serve` without it (one request at a time: the server is the bottleneck);
- `vllm`: vLLM's offline engine, with --vllm (GPU machines with vLLM installed).
For each: wall seconds (hf and vllm load the model inside the clock: under a second for hf's converted 135M
checkpoint, tens of seconds for vLLM; a server is started and sent one request before it), tokens generated,
tok/s, and how many rationales and answers equal the hf backend's. Prints a table and writes
JSON (default bench/results/serving.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import transformers_serve  # noqa: E402

from capgap.config.schema import PromptConfig, TeacherConfig  # noqa: E402
from capgap.models import resolve  # noqa: E402
from capgap.models.loading import checkpoint_dir  # noqa: E402
from capgap.models.serving import Endpoint  # noqa: E402
from capgap.store import Store  # noqa: E402
from capgap.tasks import load_task  # noqa: E402
from capgap.teachers.model import model_rationales  # noqa: E402


def teacher(model: str, args, backend: str = "hf", base_url: str | None = None) -> TeacherConfig:
    endpoint = Endpoint(base_url=base_url, concurrency=args.concurrency, timeout=600) if base_url else None
    return TeacherConfig(name="t", kind="model", model=model, backend=backend, endpoint=endpoint, params=1e8,
                         prompt=PromptConfig(chat="auto"), temperature=0.0, max_new_tokens=args.max_new_tokens)


def generate(config: TeacherConfig, pool, args, folder: Path) -> dict:
    """One timed generation into a fresh store; the rows' texts, answers and token counts."""
    with Store(folder / f"{config.backend}-{time.time_ns()}.sqlite") as store:
        start = time.perf_counter()
        got = model_rationales(config, pool, store, dtype=args.dtype, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        (evaluation,) = store.evaluations()
        rows = store.items(evaluation.eval_key)
    tokens = sum(r["n_new_tokens"] for r in rows.values())
    by_item = {r.item_id: r for r in got.rationales}
    return {"seconds": seconds, "tokens": tokens, "tok_per_s": tokens / seconds,
            "texts": {i: rows[i]["generation"] for i in sorted(rows)},
            "answers": {i: by_item[i].answer if i in by_item else None for i in sorted(rows)}}


def warm_up(config: TeacherConfig, pool, args, folder: Path) -> None:
    """Load the model (hf: into this process's cache; a server: its first request) before the clock."""
    generate(config, type(pool)(pool.name, pool.items[:1], pool.answer_type, pool.exemplars, pool.definition),
             args, folder)


def run_all(args, folder: Path) -> dict[str, dict]:
    pool = load_task("arith", n=args.n, seed=7)
    directory = checkpoint_dir(resolve(args.model))  # the same weights for every backend
    results = {}
    local = teacher(str(directory), args)
    warm_up(local, pool, args, folder)
    results["hf (in process)"] = generate(local, pool, args, folder)
    for continuous in (True, False):
        name = f"openai -> transformers serve ({'continuous batching' if continuous else 'one at a time'})"
        with transformers_serve(directory, folder / "serve.log", continuous, args.dtype, args.device) as url:
            served = teacher(str(directory), args, "openai", url)
            warm_up(served, pool, args, folder)
            results[name] = generate(served, pool, args, folder)
    if args.vllm:
        vllm = teacher(str(directory), args, "vllm")
        warm_up(vllm, pool, args, folder)
        results["vllm (offline engine)"] = generate(vllm, pool, args, folder)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--n", type=int, default=32, help="pool questions")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=32, help="hf backend batch")
    p.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight")
    p.add_argument("--dtype", default="float32", help="every backend's weights (identical answers need the same)")
    p.add_argument("--device", default="cpu", help="transformers serve's device")
    p.add_argument("--vllm", action="store_true", help="also time vLLM's offline engine (GPU, vllm installed)")
    p.add_argument("--out", type=Path, default=Path("bench/results/serving.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="capgap-serving-") as folder:
        results = run_all(args, Path(folder))
    base = results["hf (in process)"]
    print(f"| backend {' ' * 52}| seconds |  tokens |  tok/s | same text | same answer |   (n={args.n}, "
          f"max_new_tokens={args.max_new_tokens}, {args.dtype}, {args.device})")
    print(f"|{'-' * 61}|---------|---------|--------|-----------|-------------|")
    for name, r in results.items():
        same_text = sum(r["texts"][i] == t for i, t in base["texts"].items())
        same_answer = sum(r["answers"][i] == a for i, a in base["answers"].items())
        r.update(same_text=same_text, same_answer=same_answer)
        print(f"| {name:<59} | {r['seconds']:7.1f} | {r['tokens']:7d} | {r['tok_per_s']:6.1f} | "
              f"{same_text:>5}/{args.n:<3} | {same_answer:>7}/{args.n:<3} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "results": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
