"""Processes of this host: its name and whether a process of it still runs.

A leaf of the package: the store's claims (`store.leases`) and the training folders left by dead runs
(`training.checkpoints`) both tell a live owner from a dead one with it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HOST = socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host is running (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
