"""Claims on work in the results store, so that runs sharing a store split the work instead of repeating it.

Before a run trains a cell (or evaluates a baseline, or generates a teacher's rationales) it claims the cell's
key: a row in `leases` naming its owner (host, process id, a random token) with a heartbeat that a background
thread refreshes every BEAT_SECONDS. Another run finding a live claim leaves that work to its owner and comes
back to it later. A claim whose owner is dead is taken over: on the same host at once (its process is gone),
from another host once its heartbeat is older than LEASE_SECONDS. The claim is taken in one `BEGIN IMMEDIATE`
transaction, so two runs can never both win it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from capgap.errors import CapgapError
from capgap.processes import HOST, process_alive

if TYPE_CHECKING:
    from capgap.store.sqlite import Store

BEAT_SECONDS = 10.0
POLL_SECONDS = 2.0  # how often `holding` tries again for a claim another run holds
LEASE_SECONDS = 120.0  # a heartbeat this old means its owner or its host is gone: the claim can be taken over


def owner_alive(host: str, pid: int, heartbeat: float, now: float | None = None) -> bool:
    """Whether a claim's owner still holds it: a fresh heartbeat, and on this host a running process."""
    if host == HOST and not process_alive(pid):
        return False
    return (now or time.time()) - heartbeat < LEASE_SECONDS


class Leases:
    """This process's claims on one store."""

    def __init__(self, store: Store):
        self._store = store
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def claim(self, key: str) -> str | None:
        """Claim `key` for this process: None when it is now ours, else who holds it ("host pid N")."""
        conn = self._store._conn
        with self._store.transaction():
            row = conn.execute("SELECT owner, host, pid, heartbeat FROM leases WHERE key=?", (key,)).fetchone()
            if row and row[0] != self.owner and owner_alive(row[1], row[2], row[3]):
                return f"{row[1]} pid {row[2]}"
            conn.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?)",
                         (key, self.owner, HOST, os.getpid(), time.time()))
        with self._lock:
            self._held.add(key)
        self._start_beating()
        return None

    def sweep(self) -> list[str]:
        """Delete the claims whose owners are gone (the keys): a run killed after its work was stored but
        before it gave the claim back leaves one that no later run would ever take over."""
        conn = self._store._conn
        with self._store.transaction():
            rows = conn.execute("SELECT key, owner, host, pid, heartbeat FROM leases").fetchall()
            dead = [key for key, owner, host, pid, beat in rows
                    if owner != self.owner and not owner_alive(host, pid, beat)]
            conn.executemany("DELETE FROM leases WHERE key=?", [(key,) for key in dead])
        return dead

    @contextmanager
    def holding(self, key: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold `key` for the duration of the block, first waiting while another live run holds it
        (`on_wait(holder)` is called once, when this run starts waiting)."""
        waited = False
        while (holder := self.claim(key)) is not None:
            if on_wait is not None and not waited:
                on_wait(holder)
            waited = True
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            self.release(key)

    def release(self, key: str) -> None:
        """Give back `key`. A store that refuses the write (a full disk) keeps the claim until `close` tries
        again or this process ends; the error that is already on its way is not hidden by this one."""
        try:
            with self._store.transaction():
                self._store._conn.execute("DELETE FROM leases WHERE key=? AND owner=?", (key, self.owner))
        except CapgapError:
            return
        with self._lock:
            self._held.discard(key)

    def close(self) -> None:
        """Stop the heartbeat and give back every claim still held."""
        self._stop.set()
        if self._beater is not None:
            self._beater.join(timeout=BEAT_SECONDS)
        with self._lock:
            held = list(self._held)
        for key in held:
            self.release(key)

    def _start_beating(self) -> None:
        if self._beater is None:
            self._beater = threading.Thread(target=self._beat, name="capgap-lease-heartbeat", daemon=True)
            self._beater.start()

    def _beat(self) -> None:
        conn = sqlite3.connect(self._store.path, timeout=LEASE_SECONDS / 2, isolation_level=None)  # autocommit
        try:
            while not self._stop.wait(BEAT_SECONDS):
                try:
                    conn.execute("UPDATE leases SET heartbeat=? WHERE owner=?", (time.time(), self.owner))
                except sqlite3.Error:  # a busy or full store: the next beat tries again
                    continue
        finally:
            conn.close()
