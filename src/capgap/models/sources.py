"""Where a model comes from, and its content fingerprint.

A model spec is a built-in alias, a local `.gguf` file, a local Hugging Face directory, or a Hub id
(`org/name` or `org/name@revision`). The fingerprint identifies the weights *and* the tokenizer (whose chat
template shapes the prompt): a hash of the files for local models, the commit for Hub models. It is cheap
to get (hashes are cached by file size and mtime), so a stored evaluation is found without loading weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError, did_you_mean
from capgap.models.registry import ALIASES

ADAPTER_CONFIG = "adapter_config.json"  # a LoRA checkpoint's config (PEFT's), naming its base
# Files of a local HF directory that determine its outputs.
_MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "tokenizer.model", "special_tokens_map.json", "chat_template.jinja", ADAPTER_CONFIG)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")


def cache_dir() -> Path:
    """capgap's cache (converted GGUF checkpoints, file hashes): $CAPGAP_CACHE_DIR or ~/.cache/capgap."""
    explicit = os.environ.get("CAPGAP_CACHE_DIR")
    path = Path(explicit) if explicit else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "capgap"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so large weights are hashed once."""
    stat = path.stat()
    memo_path = cache_dir() / "file-hashes.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, json.JSONDecodeError):
        memo = {}
    if key not in memo:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        memo[key] = h.hexdigest()
        tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        tmp.replace(memo_path)  # atomic: concurrent writers cannot leave a torn file
    return memo[key]


def _content_hash(path: Path) -> str:
    """A model file's hash; a LoRA adapter's config without the folder of its base (a path of the machine that
    trained it), so the same training gives the same fingerprint on any machine."""
    if path.name != ADAPTER_CONFIG:
        return file_sha256(path)
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return file_sha256(path)
    config.pop("base_model_name_or_path", None)
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ModelSource:
    spec: str  # what the user wrote
    kind: str  # "gguf" | "dir" | "hub"
    path: Path | None = None  # the .gguf file or the directory
    repo_id: str | None = None
    revision: str | None = None

    def fingerprint(self) -> str:
        if self.kind == "gguf":
            return "gguf:" + file_sha256(self.path)[:20]
        if self.kind == "dir":
            h = hashlib.sha256()
            for f in sorted(self.path.iterdir()):
                if f.name in _MODEL_FILES or f.suffix in _WEIGHT_SUFFIXES:
                    h.update(f.name.encode() + _content_hash(f).encode())
            return "dir:" + h.hexdigest()[:20]
        return f"hub:{self.repo_id}@{self.resolved_revision()}"

    def resolved_revision(self) -> str:
        """The commit a Hub id (and optional @revision) points at, from the Hub or, offline, its cache."""
        return Path(self.snapshot()).name

    def snapshot(self) -> str:
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(self.repo_id, revision=self.revision,
                                     allow_patterns=["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt"])
        except Exception as e:  # offline, unknown repo, gated, network down: all the user's to fix
            raise CapgapError(
                f"model '{self.spec}' could not be fetched from the Hugging Face Hub ({type(e).__name__}); "
                "check the id, your network and HF_HUB_OFFLINE, or pass a local directory / .gguf file "
                f"or a built-in alias ({', '.join(ALIASES)})") from None


def require_same_model(spec: str, found: str, planned: str) -> None:
    """A job on another machine must see the files its planner fingerprinted: else one error line."""
    if found != planned:
        import platform

        raise CapgapError(f"model '{spec}' on {platform.node()} is not the model the run planned with ({found} vs "
                          f"{planned}); install the same model files on every machine")


def resolve(spec: str) -> ModelSource:
    """A model spec → its source. Raises CapgapError listing the aliases when nothing matches."""
    if spec in ALIASES:
        return ModelSource(spec, "gguf", path=ALIASES[spec].locate())
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise CapgapError(f"model file {path} not found; pass an existing .gguf file")
        return ModelSource(spec, "gguf", path=path)
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / ADAPTER_CONFIG).is_file():
            raise CapgapError(f"model directory {path} has no config.json; pass a directory written by "
                              "save_pretrained, a .gguf file, a Hub id or an alias")
        return ModelSource(spec, "dir", path=path)
    looks_like_hub_id = spec.count("/") == 1 and not spec.startswith((".", "/", "~")) and not path.exists()
    if looks_like_hub_id:
        repo_id, _, revision = spec.partition("@")
        return ModelSource(spec, "hub", repo_id=repo_id, revision=revision or None)
    raise CapgapError(f"unknown model '{spec}': not a built-in alias, .gguf file, model directory or "
                      f"Hub id (org/name){did_you_mean(spec, list(ALIASES))}")
