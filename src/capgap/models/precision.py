"""The one place that decides device and numeric precision, for evaluation, teacher generation and training.

    precision = decide("auto")       # Precision(device='cpu', dtype='bfloat16', train='bf16-autocast', reason=...)

What `auto` picks, and why:
- CUDA: bf16 weights for generation and bf16 mixed precision for training where the GPU supports bf16,
  else fp16 weights and fp16 mixed precision.
- CPU: a timing probe (a matmul in both dtypes, memoised per CPU and torch build) decides. Where bf16 is
  faster (AVX512-BF16 / AMX), generation runs in bf16 weights and training in bf16 *autocast* over float32
  master weights (TRL/Trainer: `bf16=True, use_cpu=True`): measured on a real SmolLM2-135M cell, it trains as
  well as float32 (bench/train_precision.py). Where bf16 is slower (plain AVX2, ~100x), everything is float32.
- `CAPGAP_DTYPE=float32` (or bfloat16 / float16) in the environment overrides `auto` everywhere: the switch
  for a machine whose bf16 you do not trust.

The decision and its reason are recorded with every evaluation and every trained cell in the store; the
resolved dtype and device are part of the evaluation key, so results of different precisions never mix.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass

from capgap.errors import CapgapError

DTYPES = ("auto", "float32", "bfloat16", "float16")
ENV = "CAPGAP_DTYPE"
_TRAIN_MODE = {"float32": "fp32", "bfloat16": "bf16-autocast", "float16": "fp16-autocast"}


@dataclass(frozen=True)
class Precision:
    device: str  # "cuda" or "cpu"
    dtype: str  # weights of generation: float32 | bfloat16 | float16
    train: str  # training: fp32 | bf16-autocast | fp16-autocast (float32 master weights in every mode)
    reason: str

    def record(self) -> dict:
        return asdict(self)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _best_seconds(a, b, rounds: int = 7, calls: int = 5) -> float:
    """The fastest of `rounds` timings of `calls` matmuls, after warm-up calls (thread pool, kernel choice):
    the decision is remembered for good, so one slow round (another process, a first-use compile) must not
    make it."""
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            a @ b
        best = min(best, time.perf_counter() - start)
    return best


def bf16_faster_on_cpu() -> tuple[bool, str]:
    """Time a 256x256 matmul in both dtypes: CPUs without AVX512-BF16/AMX run bf16 many times slower."""
    import torch

    from capgap.models.sources import cache_dir

    memo = cache_dir() / "cpu-dtype.json"
    key = f"{platform.processor()}|{os.cpu_count()}|{torch.__version__}|{torch.backends.cpu.get_cpu_capability()}"
    try:
        known = json.loads(memo.read_text())
        if known.get("key") == key:
            return bool(known["bf16_faster"]), known["timing"]
    except (OSError, json.JSONDecodeError, KeyError):
        pass
    timings = {dtype: _best_seconds(torch.randn(256, 256, dtype=dtype), torch.randn(256, 256, dtype=dtype))
               for dtype in (torch.float32, torch.bfloat16)}
    faster = timings[torch.bfloat16] * 1.2 < timings[torch.float32]
    timing = (f"bf16 matmul {1e3 * timings[torch.bfloat16]:.2f} ms vs fp32 {1e3 * timings[torch.float32]:.2f} ms "
              f"({torch.backends.cpu.get_cpu_capability()})")
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps({"key": key, "bf16_faster": faster, "timing": timing}))
    return faster, timing


def _auto(device: str) -> tuple[str, str]:
    import torch

    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bfloat16", f"auto: CUDA GPU {torch.cuda.get_device_name()} supports bf16"
        return "float16", f"auto: CUDA GPU {torch.cuda.get_device_name()} lacks bf16"
    faster, timing = bf16_faster_on_cpu()
    if faster:
        return "bfloat16", f"auto: bf16 is faster on this CPU ({timing})"
    return "float32", f"auto: bf16 is not faster on this CPU ({timing})"


def decide(requested: str = "auto") -> Precision:
    """Device and precision for `requested` (a config's or the CLI's dtype), with the reason."""
    if requested not in DTYPES:
        raise CapgapError(f"unknown dtype '{requested}'; valid: {', '.join(DTYPES)}")
    device = _device()
    override = os.environ.get(ENV)
    if requested == "auto" and override:
        if override not in DTYPES[1:]:
            raise CapgapError(f"{ENV}={override!r} is not a dtype; set it to one of {', '.join(DTYPES[1:])}")
        dtype, reason = override, f"{ENV}={override} in the environment"
    elif requested == "auto":
        dtype, reason = _auto(device)
    else:
        dtype, reason = requested, f"dtype {requested} requested"
    if device == "cpu" and dtype == "float16":
        raise CapgapError("float16 is not supported on a CPU; use dtype float32 or bfloat16 (or auto)")
    return Precision(device, dtype, _TRAIN_MODE[dtype], reason)


def resolve_dtype(dtype: str) -> str:
    """The dtype that `decide` picks for generation weights."""
    return decide(dtype).dtype
