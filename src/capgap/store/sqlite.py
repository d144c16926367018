"""The results store: one SQLite file holding every evaluation's per-item rows.

The store is the contract between running and reporting: whatever a run produces lands here, and reports
are built from it alone. Rows are written per batch in short transactions (WAL mode), so an interrupted
evaluation keeps what it finished, and two processes sharing a file never corrupt it: SQLite serialises
writers, and the (evaluation, item) primary key makes a duplicated batch harmless.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from capgap.errors import CapgapError
from capgap.store.connections import (
    BUSY_SECONDS,
    Transaction,
    check_owned,
    check_owned_before_writing,
    check_writable_location,
    connect_readonly,
)
from capgap.store.evaluations import EvaluationRows
from capgap.store.leases import Leases
from capgap.store.schema import SCHEMA_VERSION, migrate
from capgap.store.selection import SelectionTables
from capgap.store.study import StudyTables


class Store(EvaluationRows):
    """A results store at `path` (created on first use). `readonly=True` opens an existing store without
    writing anything to it (what `capgap report` needs: it works on a store it may not write)."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path, self.readonly = Path(path), readonly
        self._leases: Leases | None = None
        try:
            if readonly:
                self._conn = connect_readonly(self.path)
                check_owned(self._conn, self.path)
                if (version := self.schema_version()) < SCHEMA_VERSION:
                    self._conn.close()
                    raise _OlderSchema(f"results store {self.path} has schema {version} of an older capgap; open it "
                                       "once with a writing command (capgap run) to upgrade it")
                return
            check_writable_location(self.path)
            check_owned_before_writing(self.path)
            self._conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            self._open()
        except sqlite3.DatabaseError as e:
            raise CapgapError(f"results store {self.path} cannot be opened ({e}); pass --store with a "
                              "capgap store file or a new path") from None

    def _open(self) -> None:
        # Switching a new file to WAL takes an exclusive lock and SQLite answers "database is locked" at once,
        # without its busy handler, when another process is doing the same: retry until the deadline.
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._migrate()
                return
            except sqlite3.OperationalError as e:
                if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        with self.transaction():
            migrate(self._conn, self.path)

    @property
    def study(self) -> StudyTables:
        return StudyTables(self)

    @property
    def selection(self) -> SelectionTables:
        return SelectionTables(self)

    @classmethod
    def for_reading(cls, path: str | Path) -> Store:
        """The store opened read-only, or, when it has an older schema, opened to upgrade it first."""
        try:
            return cls(path, readonly=True)
        except _OlderSchema as e:
            if not os.access(path, os.W_OK):
                raise CapgapError(f"{e}; it cannot be written here: do that where it is writable, then retry") from None
            return cls(path)

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else SCHEMA_VERSION

    @property
    def leases(self) -> Leases:
        """This process's claims on work in this store (see `store.leases`)."""
        if self._leases is None:
            self._leases = Leases(self)
        return self._leases

    def transaction(self):
        if self.readonly:
            raise CapgapError(f"results store {self.path} was opened read-only; a writing command needs a "
                              "store it can write")
        return Transaction(self._conn, self.path)

    def close(self) -> None:
        if self._leases is not None:
            self._leases.close()
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _OlderSchema(CapgapError):
    """A store opened read-only that needs the upgrade a writing open makes."""
