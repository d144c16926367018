"""Fine-tune a student on rationales with TRL's SFTTrainer (LoRA through PEFT, or full fine-tuning).

The training sequence of an example is exactly what the student sees and produces at evaluation time: the
evaluation prompt, tokenized as the evaluator tokenizes it, then the rationale and the end-of-turn token.
Examples are tokenized here and passed to TRL pre-tokenized with the prompt masked out of `labels`, so the
loss is on the completion only and no template is applied twice.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from capgap.config import TrainingConfig
from capgap.errors import CapgapError


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    effective_batch: int
    n_examples: int
    tokens: int  # tokens in the sequences the optimizer saw (prompt + completion)
    seconds: float
    loss_curve: list[tuple[int, float]] = field(default_factory=list)


def tokenize_examples(tokenizer, prompts: list[str], completions: list[str], *, chat: bool,
                      max_length: int) -> list[dict]:
    """input_ids = prompt + completion + end token; labels = -100 on the prompt (completion-only loss)."""
    rows = []
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
        text = completion if chat else " " + completion  # plain prompts end with "Answer:"
        completion_ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt_ids + completion_ids)[:max_length]
        labels = ([-100] * len(prompt_ids) + completion_ids)[:max_length]
        if all(label == -100 for label in labels):
            continue  # the prompt alone fills max_length: nothing to learn from this example
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def _trainer_args(cfg: TrainingConfig, seed: int, output_dir: Path, use_bf16: bool):
    from trl import SFTConfig

    budget = {"max_steps": cfg.steps} if cfg.epochs is None else {"num_train_epochs": cfg.epochs}
    return SFTConfig(
        output_dir=str(output_dir), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio, lr_scheduler_type="cosine", seed=seed, data_seed=seed,
        logging_steps=1, save_strategy="no", report_to="none", bf16=use_bf16, max_length=cfg.max_length,
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        include_num_input_tokens_seen=True, disable_tqdm=True, dataloader_num_workers=0, **budget)


def _model_for_training(directory: Path, cfg: TrainingConfig, use_bf16: bool):
    import torch
    from transformers import AutoModelForCausalLM

    # Weights stay float32 on CPUs (bf16 mixed precision where supported): bf16 weights lose small updates.
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    if cfg.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def train(base_dir: Path, tokenizer, rows: list[dict], cfg: TrainingConfig, seed: int, out_dir: Path,
          use_bf16: bool = False) -> TrainResult:
    """Train from the base checkpoint in `base_dir`; the (merged) result lands in `out_dir`."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTTrainer

    if not rows:
        raise CapgapError("no training examples: the teacher has no usable rationales under this protocol")
    start = time.perf_counter()
    staging = out_dir.with_name(out_dir.name + f".{os.getpid()}.tmp")
    model = _model_for_training(base_dir, cfg, use_bf16)
    args = _trainer_args(cfg, seed, staging / "trainer", use_bf16)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # capgap reports progress itself; the loss curve goes to the store
    trainer.train()
    history = trainer.state.log_history
    curve = [(h["step"], float(h["loss"])) for h in history if "loss" in h]
    merged = trainer.model.merge_and_unload() if cfg.method == "lora" else trainer.model
    shutil.rmtree(staging / "trainer", ignore_errors=True)
    merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)  # a checkpoint directory exists only once it is complete
    return TrainResult(out_dir, trainer.state.global_step, cfg.batch_size * cfg.grad_accum, len(rows),
                       int(trainer.state.num_input_tokens_seen), time.perf_counter() - start, curve)

