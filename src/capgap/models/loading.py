"""Load a model and tokenizer from a `ModelSource`, converting GGUF files once to a cached checkpoint.

`transformers` dequantizes a GGUF on every load (20-60 s for 135M-270M models on 2 CPU cores); capgap
saves the dequantized weights as safetensors under the cache, keyed by the GGUF's hash, and later loads
take well under a second.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError
from capgap.models.sources import ModelSource, cache_dir

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class LoadedModel:
    spec: str
    fingerprint: str
    model: object  # a transformers PreTrainedModel
    tokenizer: object  # a transformers PreTrainedTokenizer, left padding, with a pad token
    dtype: str
    n_params: int

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def _bf16_is_faster_on_cpu() -> bool:
    """Time a matmul in both dtypes: CPUs without AVX512-BF16/AMX run bf16 many times slower than fp32."""
    import platform

    import torch

    memo = cache_dir() / "cpu-dtype.json"
    key = f"{platform.processor()}|{os.cpu_count()}|{torch.__version__}|{torch.backends.cpu.get_cpu_capability()}"
    try:
        known = json.loads(memo.read_text())
        if known.get("key") == key:
            return bool(known["bf16_faster"])
    except (OSError, json.JSONDecodeError, KeyError):
        pass
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(256, 256, dtype=dtype), torch.randn(256, 256, dtype=dtype)
        a @ b
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        timings[dtype] = time.perf_counter() - start
    faster = timings[torch.bfloat16] * 1.2 < timings[torch.float32]
    memo.write_text(json.dumps({"key": key, "bf16_faster": faster}))
    return faster


def resolve_dtype(dtype: str) -> str:
    """`auto`: bf16 on a GPU that supports it or a CPU where it measures faster, else float32."""
    if dtype not in DTYPES:
        raise CapgapError(f"unknown dtype '{dtype}'; valid: {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    import torch

    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if _bf16_is_faster_on_cpu() else "float32"


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


def load_model(source: ModelSource, dtype: str = "auto", device: str | None = None) -> LoadedModel:
    """Load weights and tokenizer. Any loading failure becomes one CapgapError line saying why."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fingerprint = source.fingerprint()
    chosen = resolve_dtype(dtype)
    try:
        directory = checkpoint_dir(source)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, chosen))
    except CapgapError:
        raise
    except Exception as e:  # transformers raises many types for unreadable checkpoints
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise CapgapError(f"model '{source.spec}' did not load ({type(e).__name__}: {first}); check that it "
                          "is a causal language model checkpoint that transformers can read") from None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    tokenizer.padding_side = "left"  # generation appends to the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    n_params = sum(p.numel() for p in model.parameters())
    return LoadedModel(source.spec, fingerprint, model, tokenizer, chosen, n_params)


def count_parameters(source: ModelSource) -> int:
    """Parameter count from the config alone (weights are built on the meta device, nothing is loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(checkpoint_dir(source))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())
