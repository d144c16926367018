"""Training on a tiny model built here: the precision modes this machine can run, determinism, long examples."""

import hashlib
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from capgap.config import TrainingConfig
from capgap.errors import CapgapError
from capgap.models.precision import Precision
from capgap.tasks.arith import ArithConfig, generate_items
from capgap.training import METADATA, read_metadata, tokenize_examples, train

CONFIG = TrainingConfig(method="lora", steps=4, batch_size=2, learning_rate=1e-3, warmup_ratio=0.5, max_length=256)


def _rows(tiny_model: Path, max_length: int = 256):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    items = generate_items(ArithConfig(n=6, seed=5))
    prompts = [f"Q: {it.question}\nA:" for it in items]
    return tokenizer, tokenize_examples(tokenizer, prompts, [it.rationale for it in items], chat=False,
                                        max_length=max_length)


def _weights_hash(checkpoint: Path) -> str:
    return hashlib.sha256((checkpoint / "adapter_model.safetensors").read_bytes()).hexdigest()


def _merged(checkpoint: Path) -> dict:
    """A LoRA checkpoint's adapter merged into its base, as every evaluation loads it."""
    from capgap.models.loading import merged_adapter

    return merged_adapter(checkpoint).state_dict()


def test_bf16_autocast_trains_on_a_cpu(tiny_model, tmp_path):
    # TRL refuses bf16=True on a CPU unless told use_cpu: the path `auto` takes on bf16-capable CPUs.
    tokenizer, data = _rows(tiny_model)
    precision = Precision("cpu", "bfloat16", "bf16-autocast", "test")
    result = train(tiny_model, tokenizer, data.rows, CONFIG, 0, tmp_path / "ckpt", precision)
    assert result.steps == 4 and result.warmup_steps == 2 and len(result.loss_curve) == 4
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in result.loss_curve)
    meta = read_metadata(result.checkpoint)
    assert meta["precision"]["train"] == "bf16-autocast" and meta["steps"] == 4 and meta["n_examples"] == 6


def test_lora_frozen_weights_held_in_bf16_train_exactly_what_autocast_trains(tiny_model, tmp_path, monkeypatch):
    # The speed-up casts LoRA's frozen base weights to bf16 once instead of autocast casting them on every forward:
    # the same bf16 values reach every matmul, so the losses and adapters must be bit for bit the same, and the
    # merged weights an evaluation loads must keep the float32 base (not a bf16-rounded one).
    from capgap.training import sft

    tokenizer, data = _rows(tiny_model)
    bf16 = Precision("cpu", "bfloat16", "bf16-autocast", "test")
    casts, frozen = [], sft._frozen_weights_in_bf16

    def counting(model, p):
        originals = frozen(model, p)
        held = [m.base_layer.weight.dtype for m in model.modules() if hasattr(m, "base_layer")]
        casts.append(held.count(torch.bfloat16))
        return originals

    monkeypatch.setattr(sft, "_frozen_weights_in_bf16", counting)
    cast = train(tiny_model, tokenizer, data.rows, CONFIG, 3, tmp_path / "cast", bf16)
    assert casts == [7 * 2]  # q, k, v, o, gate, up, down of both layers were held in bf16
    monkeypatch.setattr(sft, "_frozen_weights_in_bf16", lambda model, precision: {})
    autocast = train(tiny_model, tokenizer, data.rows, CONFIG, 3, tmp_path / "autocast", bf16)
    assert cast.loss_curve == autocast.loss_curve
    assert _weights_hash(cast.checkpoint) == _weights_hash(autocast.checkpoint)
    q = next(w for name, w in _merged(cast.checkpoint).items() if name.endswith("q_proj.weight"))
    assert q.dtype == torch.float32 and not torch.equal(q, q.to(torch.bfloat16).float())


def test_the_models_own_loss_trains_what_trls_chunked_head_trains(tiny_model, tmp_path, monkeypatch):
    # Recipe v4 computes the loss with the model itself on a CPU: the same mean over completion tokens as TRL's
    # head, across accumulation steps too (num_items_in_batch), up to rounding.
    from trl import SFTTrainer

    from capgap.training import sft

    tokenizer, data = _rows(tiny_model)
    fp32 = Precision("cpu", "float32", "fp32", "test")
    accumulated = TrainingConfig(method="lora", steps=3, batch_size=2, grad_accum=2, learning_rate=1e-3,
                                 max_length=256)
    own = train(tiny_model, tokenizer, data.rows, accumulated, 1, tmp_path / "own", fp32)
    monkeypatch.setattr(sft, "_trainer_class", lambda precision: SFTTrainer)
    trl = train(tiny_model, tokenizer, data.rows, accumulated, 1, tmp_path / "trl", fp32)
    assert len(own.loss_curve) == len(trl.loss_curve) == 3
    assert torch.allclose(torch.tensor(own.loss_curve), torch.tensor(trl.loss_curve), rtol=1e-4, atol=1e-5)
    assert own.loss_curve[0][1] > 0.5  # a real loss, not a constant


def test_the_loss_on_scored_positions_is_the_loss_on_every_position(tiny_model):
    # Recipe v5's LM head runs only where some row's next token is a completion token: the loss over a padded
    # batch with prompts of different lengths is the full-logits loss, and fewer positions reach the head.
    from transformers import AutoModelForCausalLM

    from capgap.training.sft import _scored_positions, _takes_logits_to_keep

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    labels = torch.tensor([[-100, -100, -100, 5, 6, 7, -100], [-100, -100, -100, -100, -100, 8, 9]])
    ids = torch.where(labels == -100, 3, labels)
    mask = torch.ones_like(ids)
    mask[0, -1] = 0  # a padded end: its label is -100
    full = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=5)
    scored = _scored_positions(labels)
    assert scored["logits_to_keep"].tolist() == [2, 3, 4, 5]
    part = model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=5, **scored)
    assert _takes_logits_to_keep(model) and part.logits.shape[1] == 4 < full.logits.shape[1]
    assert torch.allclose(part.loss, full.loss, rtol=1e-6) and full.loss > 0.5


def test_keeping_activations_trains_the_weights_recomputing_them_trains(tiny_model, tmp_path, monkeypatch):
    # Gradient checkpointing recomputes the same values: switching it by free memory never changes a checkpoint.
    # The LM head of a real LoRA run goes through the scored positions.
    from capgap.training import sft

    tokenizer, data = _rows(tiny_model)
    bf16 = Precision("cpu", "bfloat16", "bf16-autocast", "test")
    checkpointing, scored, trainer_args, positions = [], [], sft._trainer_args, sft._scored_positions
    monkeypatch.setattr(sft, "_trainer_args", lambda *a: checkpointing.append(trainer_args(*a).gradient_checkpointing)
                        or trainer_args(*a))
    monkeypatch.setattr(sft, "_scored_positions", lambda labels: scored.append(labels.shape) or positions(labels))
    monkeypatch.setattr(sft, "keep_activations", lambda *a: True)
    kept = train(tiny_model, tokenizer, data.rows, CONFIG, 2, tmp_path / "kept", bf16)
    monkeypatch.setattr(sft, "keep_activations", lambda *a: False)
    recomputed = train(tiny_model, tokenizer, data.rows, CONFIG, 2, tmp_path / "recomputed", bf16)
    assert checkpointing == [False, True] and len(scored) == 2 * CONFIG.steps
    assert kept.loss_curve == recomputed.loss_curve
    assert _weights_hash(kept.checkpoint) == _weights_hash(recomputed.checkpoint)
    assert read_metadata(kept.checkpoint)["activations_kept"] and not read_metadata(recomputed.checkpoint)[
        "activations_kept"]


def test_activations_are_kept_when_they_fit_a_quarter_of_free_memory(monkeypatch):
    from types import SimpleNamespace

    from capgap.training import sft

    smollm = SimpleNamespace(hidden_size=576, num_attention_heads=9, num_hidden_layers=30)
    cpu = Precision("cpu", "bfloat16", "bf16-autocast", "test")
    quickstart = TrainingConfig(batch_size=4, max_length=384)  # about 3.4 GB of activations
    monkeypatch.setattr(sft, "_free_memory", lambda device: 20 * 2**30)
    assert sft.keep_activations(smollm, quickstart, cpu)
    assert not sft.keep_activations(smollm, TrainingConfig(batch_size=32, max_length=2048), cpu)
    monkeypatch.setattr(sft, "_free_memory", lambda device: 8 * 2**30)
    assert not sft.keep_activations(smollm, quickstart, cpu)
    gemma = SimpleNamespace(text_config=SimpleNamespace(hidden_size=640, num_attention_heads=4, num_hidden_layers=18))
    assert sft.keep_activations(gemma, TrainingConfig(batch_size=1, max_length=384), cpu)


def test_the_loop_seconds_are_the_last_logged_runtime():
    from capgap.training.sft import loop_seconds

    history = [{"loss": 1.0, "train_runtime": 0.5}, {"loss": 0.9, "train_runtime": 1.25}, {"train_runtime": "2.5"}]
    assert loop_seconds(history) == 2.5 and loop_seconds([{"loss": 1.0}]) == 0.0


def test_the_same_seed_trains_the_same_weights_and_another_seed_does_not(tiny_model, tmp_path):
    tokenizer, data = _rows(tiny_model)
    fp32 = Precision("cpu", "float32", "fp32", "test")
    torch.manual_seed(123)  # whatever the process did before must not matter
    a = train(tiny_model, tokenizer, data.rows, CONFIG, 7, tmp_path / "a", fp32)
    torch.rand(1000)
    b = train(tiny_model, tokenizer, data.rows, CONFIG, 7, tmp_path / "b", fp32)
    c = train(tiny_model, tokenizer, data.rows, CONFIG, 8, tmp_path / "c", fp32)
    assert _weights_hash(a.checkpoint) == _weights_hash(b.checkpoint) != _weights_hash(c.checkpoint)
    assert a.loss_curve == b.loss_curve
    assert (a.checkpoint / METADATA).is_file()


def test_examples_longer_than_max_length_are_dropped_and_counted_never_cut(tiny_model):
    tokenizer, full = _rows(tiny_model)
    lengths = sorted(len(r["input_ids"]) for r in full.rows)
    _, short = _rows(tiny_model, max_length=lengths[2])
    assert short.too_long == sum(n > lengths[2] for n in lengths) > 0
    assert len(short.rows) == len(short.kept) == 6 - short.too_long
    assert all(r["input_ids"][-1] == tokenizer.eos_token_id for r in short.rows)  # every kept one is whole


FULL_DISK_SAVE = """
import resource, signal, sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
from capgap.errors import CapgapError
from capgap.training.sft import _save

model, tokenizer = AutoModelForCausalLM.from_pretrained(sys.argv[1]), AutoTokenizer.from_pretrained(sys.argv[1])
staging = Path(sys.argv[2])
staging.mkdir()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))  # the disk is full after 10 kB in one file
try:
    _save(model, tokenizer, staging)
except CapgapError as e:
    print(e)
"""


def test_a_checkpoint_the_disk_cannot_hold_is_one_error_and_leaves_no_staging_folder(tiny_model, tmp_path):
    import subprocess
    import sys

    staging = tmp_path / "key.host-1.tmp"
    out = subprocess.run([sys.executable, "-c", FULL_DISK_SAVE, str(tiny_model), str(staging)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("checkpoint key.host-1.tmp could not be written (") and "File too large" in out.stdout
    assert "free disk space and run again: finished cells are kept in the store" in out.stdout
    assert not staging.exists()


def test_one_job_over_two_processes_trains_what_one_process_does(tiny_model, tmp_path):
    """`accelerate launch` with two CPU processes (gloo): each takes half of every batch, the effective batch
    and the examples of each step stay the config's, and the main process alone writes the checkpoint."""
    from dataclasses import replace

    from capgap.training.launch import launch

    tokenizer, data = _rows(tiny_model)
    precision = Precision("cpu", "float32", "fp32", "test")
    one = train(tiny_model, tokenizer, data.rows, CONFIG, 0, tmp_path / "one", precision, metadata={"k": 1})
    launch(tiny_model, data.rows, replace(CONFIG, processes=2), 0, tmp_path / "two", precision, {"k": 1})
    meta = read_metadata(tmp_path / "two")
    assert meta["steps"] == one.steps == 4 and meta["effective_batch"] == one.effective_batch == 2
    assert meta["n_examples"] == one.n_examples and meta["tokens"] == one.tokens and meta["k"] == 1
    assert [s for s, _ in meta["loss_curve"]] == [s for s, _ in one.loss_curve]
    for (_, a), (_, b) in zip(meta["loss_curve"], one.loss_curve, strict=True):
        assert abs(a - b) < 1e-4  # the same examples per step: gradients averaged over the two halves
    from safetensors.torch import load_file

    weights = [load_file(tmp_path / name / "adapter_model.safetensors") for name in ("one", "two")]
    assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-5) for k in weights[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no staging folder left by any process
    with pytest.raises(CapgapError, match=r"training over 2 processes failed .*set training.processes: 1"):
        launch(tmp_path / "missing", data.rows, replace(CONFIG, processes=2), 0, tmp_path / "x", precision, {})


def test_training_from_a_lora_checkpoint_starts_from_its_merged_weights(tiny_model, tmp_path):
    """A lineage's next student may be a LoRA checkpoint capgap wrote: training starts from its adapter merged into
    its base (float32), not from the base alone."""
    from capgap.models.loading import merged_adapter
    from capgap.training.sft import _model_for_training
    from tests.conftest import build_adapter

    adapter = build_adapter(tiny_model, tmp_path / "adapter")
    full = _model_for_training(adapter, TrainingConfig(method="full", steps=1))
    merged = merged_adapter(adapter).state_dict()
    assert all(torch.equal(t, merged[name]) for name, t in full.state_dict().items())
    lora = _model_for_training(adapter, CONFIG)
    q = next(p for n, p in lora.named_parameters() if n.endswith("layers.0.self_attn.q_proj.base_layer.weight"))
    assert torch.equal(q, merged["model.layers.0.self_attn.q_proj.weight"]) and q.dtype == torch.float32
