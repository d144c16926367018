"""Checkpoints on disk: written whole or not at all, verified before reuse, staging leftovers cleaned.

`train` writes a checkpoint into a staging folder `KEY.HOST-PID.tmp` and renames it to `KEY` once complete; the
metadata JSON beside the weights records each file's SHA-256. A checkpoint is reused only when every
recorded file is there with its hash (a truncated or damaged file means: train again), and a staging folder
whose process is dead (a killed run) is removed by the next run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from capgap.models.loading import is_adapter
from capgap.models.sources import file_sha256
from capgap.processes import HOST, process_alive

METADATA = "capgap-training.json"  # written beside the weights of every checkpoint


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a checkpoint folder (its metadata JSON aside), by relative path."""
    return {str(p.relative_to(folder)): file_sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != METADATA}


def read_metadata(checkpoint: Path) -> dict | None:
    """The metadata JSON of a complete checkpoint, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((checkpoint / METADATA).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why the checkpoint at `checkpoint` cannot be reused (None when it is whole)."""
    meta = read_metadata(checkpoint)
    if meta is None:
        return f"{METADATA} is missing or unreadable"
    if not (checkpoint / "config.json").is_file() and not is_adapter(checkpoint):
        return "config.json (or a LoRA checkpoint's adapter_config.json) is missing"
    for name, expected in (meta.get("files") or {}).items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != expected:
            return f"{name} does not match the hash recorded when it was written"
    return None


def staging_folder(out_dir: Path, pid: int, host: str = HOST) -> Path:
    return out_dir.with_name(f"{out_dir.name}.{host}-{pid}.tmp")


def clean_staging(folder: Path) -> list[Path]:
    """Remove staging folders (`KEY.HOST-PID.tmp`) that processes of this host left in `folder` and that are
    no longer running (a run folder shared between machines keeps the other machines' folders)."""
    removed = []
    for path in sorted(folder.glob("*.tmp")) if folder.is_dir() else []:
        owner = path.name[: -len(".tmp")].split(".", 1)[-1]  # training keys are hex: the first dot ends them
        host, _, pid = owner.rpartition("-")
        if path.is_dir() and host == HOST and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
