"""Training speed of one quickstart cell: capgap's recipe vs TRL's defaults vs the machine's FLOP ceiling.

    HF_HUB_OFFLINE=1 python bench/train_speed.py            # SmolLM2-135M-Instruct, the quickstart's cell

The cell: the quickstart recipe's student, training settings and gold (reference) rationales on its arith
pool, so no teacher has to be generated. Each variant trains the same rows with the same seed and steps:
- `capgap`: `capgap.training.train`, exactly what a study runs (precision from `models.precision`);
  `capgap padding-free`: the same with `training.padding_free: true` (no compute on pad tokens);
  `capgap full`: full fine-tuning; `capgap v3 recipe`: the recipe before its speed work (TRL's chunked loss
  over every position, LoRA's frozen weights cast by autocast on every forward, activations recomputed in the
  backward pass), for the speed-up.
- `trl-defaults`: TRL's SFTTrainer with its default SFTConfig but the same steps, batch and learning rate
  (padded batches, the model's own dtype, no capgap settings).
Reported: whole seconds (model build, training, merge and save), the optimizer loop's seconds and tokens/s,
and the ceiling: the FLOP rate of the training precision's matmul at a training shape divided by the FLOPs a
LoRA token costs (~4N: forward 2N, activation gradients 2N; full fine-tuning ~6N). Writes JSON (default
bench/results/train_speed.json). Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from dataclasses import replace
from importlib.resources import files
from pathlib import Path


def ceiling_tokens_per_s(n_params: int, dtype: str, method: str) -> tuple[float, float]:
    """(GFLOP/s of a [1024 x hidden] @ [hidden x 3 hidden] matmul in `dtype`, the tokens/s it bounds)."""
    import torch

    a = torch.randn(1024, 576, dtype=getattr(torch, dtype))
    b = torch.randn(576, 1536, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, (time.perf_counter() - start) / 10)
    gflops = 2 * 1024 * 576 * 1536 / best / 1e9
    per_token = (4 if method == "lora" else 6) * n_params
    return gflops, gflops * 1e9 / per_token


def trl_defaults(base_dir: Path, tokenizer, rows: list[dict], cfg, seed: int, out: Path) -> dict:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTConfig, SFTTrainer

    from capgap.training.sft import loop_seconds

    start = time.perf_counter()
    set_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear",
                                      task_type="CAUSAL_LM"))
    args = SFTConfig(output_dir=str(out), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
                     learning_rate=cfg.learning_rate, report_to="none", save_strategy="no", use_cpu=True,
                     dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
                     include_num_input_tokens_seen=True, disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    model.save_pretrained(out / "adapter")  # what TRL's save_model writes for a PEFT model, and capgap too
    loop = loop_seconds(trainer.state.log_history)
    return {"seconds": time.perf_counter() - start, "loop_seconds": loop,
            "tokens": int(trainer.state.num_input_tokens_seen)}


@contextlib.contextmanager
def previous_recipe(active: bool):
    """Training recipe v3 (before this bench's speed work), when `active`: TRL's own loss through its chunked
    LM head over every position, LoRA's frozen weights cast by autocast on every forward, and activations
    recomputed in the backward pass (gradient checkpointing, TRL's default)."""
    from trl import SFTTrainer

    from capgap.training import sft

    saved = sft._trainer_class, sft._frozen_weights_in_bf16, sft.keep_activations
    if active:
        sft._trainer_class, sft._frozen_weights_in_bf16 = (lambda precision: SFTTrainer), (lambda *a: {})
        sft.keep_activations = lambda *a: False
    try:
        yield
    finally:
        sft._trainer_class, sft._frozen_weights_in_bf16, sft.keep_activations = saved


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench/results/train_speed.json"))
    args = p.parse_args()

    from capgap.config import load_config
    from capgap.evaluation.prompts import render
    from capgap.models import decide
    from capgap.study.cells import Student
    from capgap.study.data import prepare_task, training_examples
    from capgap.study.teachers import gather
    from capgap.training import tokenize_examples, train

    config = load_config(Path(str(files("capgap") / "recipes" / "quickstart.yaml")))
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    reference = gather(next(t for t in config.teachers if t.kind == "reference"), config, st, None)
    examples = training_examples("own-correct", reference, [reference])
    precision = decide(config.evaluation.dtype)
    student = Student(config.students[0], config, precision, "hf")
    by_id = {it.id: it for it in st.pool}
    prompts = [render(st.task, by_id[e.item_id], student.tokenizer, student.prompt) for e in examples]
    rows = tokenize_examples(student.tokenizer, prompts, [e.rationale for e in examples], chat=student.chat,
                             max_length=config.training.max_length).rows
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = (("capgap v3 recipe", config.training, True), ("capgap", config.training, False),
                    ("capgap padding-free", replace(config.training, padding_free=True), False),
                    ("capgap full", replace(config.training, method="full", learning_rate=1e-5), False))
        for name, cfg, previous in variants:
            start = time.perf_counter()
            with previous_recipe(previous):
                run = train(student.base_dir, student.tokenizer, rows, cfg, args.seed, Path(tmp) / name, precision)
            runs[name] = {"seconds": time.perf_counter() - start, "loop_seconds": run.loop_seconds,
                          "tokens": run.tokens, "final_loss": run.loss_curve[-1][1], "method": cfg.method}
        runs["trl-defaults"] = trl_defaults(student.base_dir, student.tokenizer, rows, config.training, args.seed,
                                            Path(tmp) / "trl")
    train_dtype = "bfloat16" if precision.train == "bf16-autocast" else "float32"
    ceilings = {m: ceiling_tokens_per_s(student.params, train_dtype, m) for m in ("lora", "full")}
    gflops = ceilings["lora"][0]
    print(f"quickstart cell: {len(rows)} examples, {config.training.steps} steps x batch "
          f"{config.training.batch_size}, {config.training.method}, {precision.train} ({precision.reason})")
    print(f"| {'variant':<19} | {'whole s':>7} | {'loop s':>6} | {'tokens':>6} | {'loop tok/s':>10} | "
          f"{'of ceiling':>10} |")
    print(f"|{'-' * 21}|{'-' * 9}|{'-' * 8}|{'-' * 8}|{'-' * 12}|{'-' * 12}|")
    for name, r in runs.items():
        r["loop_tok_per_s"] = r["tokens"] / r["loop_seconds"]
        r["share_of_ceiling"] = r["loop_tok_per_s"] / ceilings[r.get("method", "lora")][1]
        print(f"| {name:<19} | {r['seconds']:7.1f} | {r['loop_seconds']:6.1f} | {r['tokens']:6d} | "
              f"{r['loop_tok_per_s']:10.0f} | {r['share_of_ceiling']:10.1%} |")
    for method, (_, ceiling) in ceilings.items():
        print(f"ceiling ({method}): {gflops:.0f} GFLOP/s ({train_dtype} matmul) / {4 if method == 'lora' else 6}N "
              f"FLOPs per token = {ceiling:.0f} tok/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"precision": precision.record(), "n_examples": len(rows), "runs": runs,
                                    "ceiling_gflops": gflops,
                                    "ceiling_tok_per_s": {m: c for m, (_, c) in ceilings.items()}}, indent=2))


if __name__ == "__main__":
    main()
