"""Fine-tune a student on rationales with TRL's SFTTrainer (LoRA through PEFT, or full fine-tuning).

The training sequence of an example is exactly what the student sees and produces at evaluation time: the
evaluation prompt, tokenized as the evaluator tokenizes it, then the rationale and the end-of-turn token.
Examples are tokenized here and passed to TRL pre-tokenized with the prompt masked out of `labels`, so the
loss is on the completion only and no template is applied twice.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from capgap.config import TrainingConfig
from capgap.errors import CapgapError
from capgap.models.loading import is_adapter, merged_adapter
from capgap.models.precision import Precision
from capgap.models.sources import ADAPTER_CONFIG
from capgap.training.checkpoints import METADATA, file_hashes, staging_folder

TRAINING_VERSION = 5  # part of every cell's training key: bump when the recipe changes what a key trains
# v2: every source of randomness seeded before the model is built; warmup as integer steps; over-long
#     examples dropped (never cut before their final answer); precision chosen by `models.precision`.
# v3: `epochs` become capgap's own max_steps (the same on every transformers); n_examples counts examples seen.
# v4: on a CPU the loss is the model's own (mean cross-entropy over the completion tokens, as before, but
#     computed by the model rather than by TRL's chunked head: other rounding), see `_trainer_class`. GPU
#     training is unchanged, but its keys change with the version too (a GPU cell trains once more).
# v5: on a CPU the LM head scores only the positions whose next token is a completion token in some row of the
#     batch (`_scored_positions`): the same mean cross-entropy, other rounding. Activations are kept for the
#     backward pass instead of recomputed wherever they fit in memory (`keep_activations`): the same values.


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    warmup_steps: int
    effective_batch: int
    n_examples: int  # distinct examples the optimizer saw: min(available, steps x effective batch)
    n_available: int  # examples it could draw from
    tokens: int  # tokens in the sequences the optimizer saw (prompt + completion)
    seconds: float
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    loop_seconds: float = 0.0  # the optimizer loop alone (Trainer's train_runtime): tokens / this is its pace


@dataclass
class TrainingSet:
    """Tokenized examples, and which of the given examples they are."""

    rows: list[dict]
    kept: list[int]  # indices into the examples given
    too_long: int  # examples dropped because prompt + rationale + end token exceed max_length


def tokenize_examples(tokenizer, prompts: list[str], completions: list[str], *, chat: bool,
                      max_length: int) -> TrainingSet:
    """input_ids = prompt + completion + end token; labels = -100 on the prompt (completion-only loss).

    An example longer than `max_length` is dropped and counted, never truncated: a cut rationale would teach
    the student to stop before its final "The answer is X." (and without the end token, to ramble on).
    """
    rows, kept = [], []
    for index, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        prompt_ids = tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
        text = completion if chat else " " + completion  # plain prompts end with "Answer:"
        completion_ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = prompt_ids + completion_ids
        if len(ids) > max_length:
            continue
        rows.append({"input_ids": ids, "labels": [-100] * len(prompt_ids) + completion_ids})
        kept.append(index)
    return TrainingSet(rows, kept, len(prompts) - len(rows))


def planned_steps(cfg: TrainingConfig, n_examples: int) -> int:
    """Optimizer steps of a run: `steps`, or `epochs` passes over n examples (a last partial batch and a last
    partial accumulation count as a step). capgap passes this as max_steps, so the count, and the warmup
    computed from it, do not depend on how a transformers version rounds epochs."""
    if cfg.epochs is None:
        return cfg.steps
    per_epoch = math.ceil(math.ceil(n_examples / cfg.batch_size) / cfg.grad_accum)
    return max(math.ceil(cfg.epochs * per_epoch), 1)


def _trainer_args(cfg: TrainingConfig, seed: int, output_dir: Path, precision: Precision, steps: int,
                  warmup_steps: int, keep: bool):
    from trl import SFTConfig

    # Under `accelerate launch` (training.launch) each of the WORLD_SIZE processes takes its share of every
    # batch, so the effective batch stays batch_size x grad_accum (load checks that processes divides it).
    world = _world_size()
    return SFTConfig(
        output_dir=str(output_dir), per_device_train_batch_size=cfg.batch_size // world,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        warmup_steps=warmup_steps, lr_scheduler_type="cosine", seed=seed, data_seed=seed,
        logging_steps=1, save_strategy="no", report_to="none",
        # padding-free batches are not cut by TRL; every row is already within max_length (tokenize_examples)
        max_length=None if cfg.padding_free else cfg.max_length,
        # Mixed precision over float32 master weights; on a CPU the Trainer needs use_cpu to accept bf16.
        bf16=precision.train == "bf16-autocast", fp16=precision.train == "fp16-autocast",
        use_cpu=precision.device == "cpu",
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        include_num_input_tokens_seen=True, disable_tqdm=not sys.stderr.isatty(), dataloader_num_workers=0,
        max_steps=steps, padding_free=cfg.padding_free, gradient_checkpointing=not keep)


def _world_size() -> int:
    """Processes of this training job: WORLD_SIZE under `accelerate launch` (training.launch), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _trainer_class(precision: Precision):
    """TRL's SFTTrainer; on a CPU, one whose loss is the model's own, on the scored positions alone.

    TRL 1.x computes the loss through its fused, chunked LM head, which off Triton devices scores every position
    (prompt ones too) tile by tile with entropy and top-1 metrics beside: on the quickstart's cell that was a
    third of the optimizer loop on this CPU. The model's own loss is the same quantity, the mean cross-entropy
    of the completion tokens (`num_items_in_batch` of them across accumulation steps); its LM head runs on the
    positions that predict a completion token only (`_scored_positions`: a prompt is most of an example, and
    the head's 49k-wide logits were a fifth of the loop). GPUs keep TRL's head, which never materialises the
    full logits of a long batch."""
    from trl import SFTTrainer

    if precision.device != "cpu":
        return SFTTrainer

    class ModelLossTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            from transformers import Trainer

            takes = _takes_logits_to_keep(self.accelerator.unwrap_model(model))  # DDP under accelerate launch
            scored = _scored_positions(inputs["labels"]) if takes else {}
            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False, **scored}, return_outputs,
                                        num_items_in_batch)

    return ModelLossTrainer


def _scored_positions(labels) -> dict:
    """The model's arguments that compute logits, and the loss, only where the next token is a label in some row:
    `logits_to_keep` (those positions) and `shift_labels` (the next tokens there, -100 where a row has none).
    The loss is the model's own cross-entropy over the same tokens as with every position scored."""
    import torch

    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]
    keep = (shifted != -100).any(dim=0).nonzero().squeeze(-1)
    return {"logits_to_keep": keep, "shift_labels": shifted[:, keep].contiguous()}


def _takes_logits_to_keep(model) -> bool:
    """Whether the causal LM under any PEFT wrapper takes `logits_to_keep` (most transformers LMs do)."""
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def keep_activations(config, cfg: TrainingConfig, precision: Precision) -> bool:
    """Whether every layer's activations can stay in memory for the backward pass, instead of being recomputed
    (gradient checkpointing: a third more compute; the same values either way, tested).

    The activations of a transformer layer take about s*b*h*(34 + 5*a*s/h) bytes in 16-bit (Korthikanti et al.
    2022, s tokens, b rows, h hidden, a heads); doubled for float32 parts. They are kept when all layers' fit in
    a quarter of the device's free memory: the quickstart's cell (3.4 GB) on a 24 GB CPU machine. On a CPU the
    processes of one job (training.launch) share the memory, so all of theirs count; a GPU holds its rank's."""
    world = _world_size()
    s, b = cfg.max_length, max(cfg.batch_size // world, 1)
    text = getattr(config, "text_config", None) or config
    h, a, layers = text.hidden_size, text.num_attention_heads, text.num_hidden_layers
    need = 2 * layers * s * b * h * (34 + 5 * a * s / h) * (world if precision.device == "cpu" else 1)
    return need < _free_memory(precision.device) / 4


def _free_memory(device: str) -> int:
    import torch

    if device == "cuda":  # this rank's GPU (training.launch sets LOCAL_RANK), before the Trainer picks it
        return torch.cuda.mem_get_info(int(os.environ.get("LOCAL_RANK", "0")))[0]
    import psutil

    return psutil.virtual_memory().available


def _frozen_weights_in_bf16(model, precision: Precision) -> dict:
    """On a CPU under bf16 autocast, hold LoRA's frozen base weights in bf16, and return their float32 originals
    to put back before a merge (`_restore_frozen`).

    Autocast casts a weight that needs no gradient anew on every forward; cast once, the matmuls see the very same
    bf16 values (round to nearest either way), so the losses are bit for bit those of autocast
    (tests/training/test_train_tiny.py), minus a cast of every weight per step. Norms, embeddings and the
    adapters stay float32; the checkpoint is the adapter, merged into the float32 base when loaded."""
    import torch

    if precision.device != "cpu" or precision.train != "bf16-autocast" or not hasattr(model, "peft_config"):
        return {}
    if _world_size() > 1:  # several processes (training.launch): autocast, as tested there
        return {}
    originals = {}
    for name, module in model.named_modules():
        base = getattr(module, "base_layer", None)
        if isinstance(base, torch.nn.Linear) and base.weight.dtype == torch.float32:
            originals[name] = base.weight.data
            base.weight.data = base.weight.data.to(torch.bfloat16)
    return originals


def _restore_frozen(model, originals: dict) -> None:
    modules = dict(model.named_modules())
    for name, weight in originals.items():
        modules[name].base_layer.weight.data = weight


def loop_seconds(log_history: list[dict]) -> float:
    """The optimizer loop's seconds: every step's log holds the runtime so far, so the last one is the loop's."""
    return next((float(h["train_runtime"]) for h in reversed(log_history) if "train_runtime" in h), 0.0)


def _model_for_training(directory: Path, cfg: TrainingConfig):
    import torch
    from transformers import AutoModelForCausalLM

    # Master weights are float32 in every precision mode: bf16 weights lose small updates. A LoRA checkpoint (the
    # next student of a lineage, say) trains on from its weights merged into its base.
    if is_adapter(directory):
        model = merged_adapter(directory)
    else:  # an absolute folder: what the adapter's config names as its base, read from any working directory
        model = AutoModelForCausalLM.from_pretrained(Path(directory).resolve(), dtype=torch.float32)
    if cfg.method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def train(base_dir: Path, tokenizer, rows: list[dict], cfg: TrainingConfig, seed: int, out_dir: Path,
          precision: Precision, metadata: dict | None = None) -> TrainResult | None:
    """Train from the base checkpoint in `base_dir`; the result (LoRA: its adapter) lands in `out_dir`, with a metadata
    JSON beside the weights. The same inputs give the same weights: every RNG is seeded before the model
    (and its LoRA adapters) is built. Under `accelerate launch` every process calls this, and only the main
    one writes the checkpoint and returns its result (the others return None)."""
    from datasets import Dataset
    from transformers import PrinterCallback, set_seed

    if not rows:
        raise CapgapError("no training examples: the teacher has no usable rationales under this protocol")
    start = time.perf_counter()
    staging = staging_folder(out_dir, os.getpid())
    set_seed(seed)
    model = _model_for_training(base_dir, cfg)
    originals = _frozen_weights_in_bf16(model, precision)
    steps = planned_steps(cfg, len(rows))
    warmup = math.ceil(cfg.warmup_ratio * steps)
    kept = keep_activations(model.config, cfg, precision)
    args = _trainer_args(cfg, seed, staging / "trainer", precision, steps, warmup, kept)
    trainer = _trainer_class(precision)(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                        processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # capgap reports progress itself; the loss curve goes to the store
    trainer.train()
    if not trainer.is_world_process_zero():  # one of several processes (training.launch): the main one writes
        shutil.rmtree(staging, ignore_errors=True)
        return None
    curve = [(h["step"], float(h["loss"])) for h in trainer.state.log_history if "loss" in h]
    loop = loop_seconds(trainer.state.log_history)
    shutil.rmtree(staging / "trainer", ignore_errors=True)
    _restore_frozen(trainer.model, originals)
    # LoRA: the adapter alone (models.loading merges it when loaded), but merged and whole when the student was
    # itself an adapter: an adapter names one base, and this one's base is that adapter merged into its own.
    _save(trainer.model.merge_and_unload() if is_adapter(base_dir) and cfg.method == "lora" else trainer.model,
          tokenizer, staging)
    effective = cfg.effective_batch
    seen = min(len(rows), trainer.state.global_step * effective)  # one shuffled pass draws without replacement
    result = TrainResult(out_dir, trainer.state.global_step, warmup, effective, seen, len(rows),
                         int(trainer.state.num_input_tokens_seen), time.perf_counter() - start, curve, loop)
    record = {"training_version": TRAINING_VERSION, "seed": seed, "training": asdict(cfg), "activations_kept": kept,
              "precision": precision.record(), **{k: v for k, v in asdict(result).items() if k != "checkpoint"},
              **(metadata or {}), "files": file_hashes(staging)}
    _write(staging, lambda: (staging / METADATA).write_text(json.dumps(record, indent=1, default=str)))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)  # a checkpoint directory exists only once it is complete
    return result


def _save(model, tokenizer, staging: Path) -> None:
    """The weights (a PEFT model saves its adapter: 23 MB with the tokenizer for the quickstart's student instead
    of 517 MB of merged float32 weights, 5-6 s of writing here) and the tokenizer."""
    _write(staging, lambda: (model.save_pretrained(staging), tokenizer.save_pretrained(staging),
                             _sorted_target_modules(staging / ADAPTER_CONFIG)))


def _sorted_target_modules(path: Path) -> None:
    """PEFT writes the adapted modules of `all-linear` from a set, in an order that changes from process to process;
    sorted, the same training writes the same bytes (the checkpoint's fingerprint names its weights)."""
    if not path.is_file():
        return
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _write(staging: Path, action) -> None:
    """Run a write into the staging folder; a full disk (or any I/O failure) removes it and ends as one clear
    error, the store keeping every finished cell."""
    from safetensors import SafetensorError

    try:
        action()
    except (OSError, SafetensorError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise CapgapError(f"checkpoint {staging.name} could not be written ({getattr(e, 'strerror', None) or e}); "
                          "free disk space and run again: finished cells are kept in the store") from None
