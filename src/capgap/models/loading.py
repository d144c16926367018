"""Load a model and tokenizer from a `ModelSource`, converting GGUF files once to a cached checkpoint.

`transformers` dequantizes a GGUF on every load (20-60 s for 135M-270M models on 2 CPU cores); capgap
saves the dequantized weights as safetensors under the cache, keyed by the GGUF's hash, and later loads
take well under a second.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError, first_line
from capgap.models.precision import Precision, decide
from capgap.models.sources import ModelSource, cache_dir


class ModelLoadError(CapgapError):
    """A model's files exist but could not be read as a checkpoint (damaged, truncated, not a model)."""


@dataclass
class LoadedModel:
    spec: str
    fingerprint: str
    model: object  # a transformers PreTrainedModel
    tokenizer: object  # a transformers PreTrainedTokenizer, left padding, with a pad token
    dtype: str
    n_params: int
    precision: Precision | None = None  # the decision (device, dtype, reason) it was loaded under

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def _converted_gguf(source: ModelSource, fingerprint: str) -> Path:
    """Directory of the GGUF's dequantized checkpoint, converting it on first use."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "models" / fingerprint.replace(":", "-")
    if (target / "config.json").is_file():
        return target
    folder, name = str(source.path.parent), source.path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # save_pretrained refuses a model that still carries its GGUF quantizer, though the weights are dense.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)  # atomic; a concurrent converter that finished first wins
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def checkpoint_dir(source: ModelSource) -> Path:
    """A local directory `from_pretrained` reads: the converted GGUF, the Hub snapshot, or the directory."""
    if source.kind == "gguf":
        return _converted_gguf(source, source.fingerprint())
    if source.kind == "hub":
        return Path(source.snapshot())
    return source.path


def load_model(source: ModelSource, dtype: str = "auto", precision: Precision | None = None) -> LoadedModel:
    """Load weights and tokenizer on the device and in the dtype `precision.decide` picks for `dtype` (or as
    an already made decision says). Any loading failure becomes one CapgapError line saying why."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fingerprint = source.fingerprint()
    precision = precision or decide(dtype)
    chosen = precision.dtype
    try:
        directory = checkpoint_dir(source)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, chosen))
    except CapgapError:
        raise
    except (MemoryError, torch.OutOfMemoryError) as e:
        raise CapgapError(f"model '{source.spec}' does not fit in memory as {chosen} ({type(e).__name__}); use a "
                          "smaller model, a smaller dtype or a machine with more memory") from None
    except Exception as e:  # transformers raises many types for unreadable checkpoints
        first = first_line(e)
        raise ModelLoadError(f"model '{source.spec}' did not load ({type(e).__name__}: {first}); check that it "
                             "is a causal language model checkpoint that transformers can read") from None
    model.to(precision.device).eval()
    tokenizer.padding_side = "left"  # generation appends to the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_params = sum(p.numel() for p in model.parameters())
    return LoadedModel(source.spec, fingerprint, model, tokenizer, chosen, n_params, precision)


def count_parameters(source: ModelSource) -> int:
    """Parameter count from the config alone (weights are built on the meta device, nothing is loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(checkpoint_dir(source))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())
