"""Processes of this host: its name, whether a process of it still runs, and how the `capgap` command ends.

A leaf of the package: the store's claims (`store.leases`) and the training folders left by dead runs
(`training.checkpoints`) both tell a live owner from a dead one with it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

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


def exit_process(code: int | None, before: Callable[[], None] | None = None) -> NoReturn:
    """End the `capgap` command with `code`: what Python runs at exit that has effects runs (threads finish,
    atexit handlers: logging's flush, temporary folders, Ray's shutdown), then the process ends without the
    interpreter tearing down every module. With vLLM, torch and transformers imported that teardown alone took
    1.6 s of a 27 s `capgap eval` here, and did nothing a finished command needs (README, "Engine"). `before`
    runs first on that quick path only (the CLI forgets its in-process engines there); should it fail, the exit
    handlers still do what it would have skipped. Called by the command-line entry only: `cli.main` returns
    normally to callers in Python."""
    if any(t is not threading.main_thread() and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)  # a running thread must finish first: the interpreter's own exit waits for it
    if sys.getprofile() or sys.gettrace():
        sys.exit(code)  # a profiler or debugger (python -m cProfile) writes what it saw after the command returns
    if before is not None:
        with contextlib.suppress(Exception):
            before()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream has nothing more to take
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)  # what C code buffered on stdout (os._exit skips C's own exit)
    os._exit(code or 0)
