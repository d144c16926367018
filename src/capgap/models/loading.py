"""Load a model and tokenizer from a `ModelSource`, converting GGUF files once to a cached checkpoint.

`transformers` dequantizes a GGUF on every load (20-60 s for 135M-270M models on 2 CPU cores); capgap
saves the dequantized weights as safetensors under the cache, keyed by the GGUF's hash, and later loads
take well under a second.

A LoRA checkpoint is its adapter (`adapter_config.json` and the adapter's weights, as PEFT saves them):
`merged_adapter` merges it into its base in float32 when it is loaded, giving the very weights a merge
before saving gave.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError, first_line
from capgap.models.precision import Precision, decide
from capgap.models.sources import ADAPTER_CONFIG, ModelSource, cache_dir


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


def is_adapter(directory: Path) -> bool:
    """Whether a checkpoint folder holds a LoRA adapter (capgap's LoRA checkpoints) rather than whole weights."""
    return (directory / ADAPTER_CONFIG).is_file()


def adapter_base(directory: Path) -> Path:
    """The base model a LoRA adapter was trained from, as its adapter_config.json names it (capgap writes the
    absolute folder of the student on the machine that trained it)."""
    return Path(json.loads((directory / ADAPTER_CONFIG).read_text())["base_model_name_or_path"])


def engine_base(directory: Path) -> Path:
    """The whole model under a chain of adapters (a lineage's adapter student, say): what an engine starts on."""
    seen = {directory}
    while is_adapter(directory):
        directory = adapter_base(directory)
        if directory in seen:
            raise CapgapError(f"the LoRA adapter {directory} names itself as its base; fix base_model_name_or_path "
                              "in its adapter_config.json")
        seen.add(directory)
    return directory


def _with_adapter(directory: Path, base_dir: Path | None):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir or adapter_base(directory), dtype=torch.float32)
    return PeftModel.from_pretrained(base, directory)


def merged_adapter(directory: Path, base_dir: Path | None = None):
    """The LoRA adapter in `directory` merged into its base model, in float32 (PEFT's `merge_and_unload`, as
    training merged before saving whole weights). `base_dir`: the base's local folder; default the one the
    adapter names (a job on another machine passes its own resolution of the student)."""
    return _with_adapter(directory, base_dir).merge_and_unload()


def merged_weights(directory: Path, base_dir: Path | None = None) -> Iterator[tuple[str, object]]:
    """`merged_adapter`'s weights by checkpoint name, one layer at a time: each adapted weight is its base weight
    plus PEFT's delta (`get_delta_weight`), the very sum the merge computes in place; the others are the base's.
    Nothing is written into the base's weights, which stay the pages of its (memory-mapped) file: on this
    machine the merge in place took 2-3 s, mostly copying those pages. The adapter is read here, before the
    first weight is taken: a damaged one fails before an engine starts replacing its weights."""
    model = _with_adapter(directory, base_dir).get_base_model()
    layers = {name: module for name, module in model.named_modules() if hasattr(module, "get_delta_weight")}
    return (_merged(name, tensor, layers) for name, tensor in model.state_dict().items() if ".lora_" not in name)


def _merged(name: str, tensor, layers: dict) -> tuple[str, object]:
    layer, _, rest = name.rpartition(".base_layer.")
    if rest == "weight" and layer in layers:  # a bias (Qwen2's q, k, v) is not adapted
        (adapter,) = layers[layer].active_adapters
        return f"{layer}.weight", tensor + layers[layer].get_delta_weight(adapter)
    return name.replace(".base_layer.", "."), tensor


def load_model(source: ModelSource, dtype: str = "auto", precision: Precision | None = None,
               base: ModelSource | None = None) -> LoadedModel:
    """Load weights and tokenizer on the device and in the dtype `precision.decide` picks for `dtype` (or as
    an already made decision says); an adapter is merged into `base` (default: the base it names). Any
    loading failure becomes one CapgapError line saying why."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fingerprint = source.fingerprint()
    precision = precision or decide(dtype)
    chosen = precision.dtype
    try:
        directory = checkpoint_dir(source)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if is_adapter(directory):  # the merged float32 weights, cast as loading them whole would cast them
            merged = merged_adapter(directory, checkpoint_dir(base) if base else None)
            model = AutoModelForCausalLM.from_pretrained(merged.name_or_path, dtype=getattr(torch, chosen))
            model.load_state_dict(merged.state_dict())
        else:
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

    directory = checkpoint_dir(source)
    config = AutoConfig.from_pretrained(engine_base(directory))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())
