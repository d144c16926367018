"""How capgap holds a results store's SQLite file: write transactions that queue and roll back whole, a write
the machine refuses as one error line, and the checks before a file is opened (a folder that can hold it, a
file that is a capgap store, a read-only opening that works even in a folder this process cannot write)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from capgap.errors import CapgapError
from capgap.filepaths import check_file_path

BUSY_SECONDS = 60  # how long a writer waits for another process before giving up


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so concurrent writers queue, never deadlock.
    A write the disk refuses (full, read-only, I/O error) rolls back and ends as one CapgapError: what earlier
    transactions committed stays, and the next run continues from it."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn, self._path = conn, path

    def __enter__(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise write_failed(self._path, e) from None

    def __exit__(self, exc_type, exc, _tb) -> None:
        if exc_type is not None:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and refused(exc):
                raise write_failed(self._path, exc) from None
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise write_failed(self._path, e) from None


# SQLite errors that mean the machine refused a write, with the fix; any other error is a bug in capgap.
_REFUSALS = {"full": "free disk space", "I/O": "free disk space or check the disk",
             "readonly": "make the store and its folder writable",
             "locked": "check that no other program holds the store",
             "busy": "check that no other program holds the store"}


def refused(error: sqlite3.OperationalError) -> bool:
    return any(word in str(error) for word in _REFUSALS)


def write_failed(path: Path, error: sqlite3.OperationalError) -> CapgapError:
    text = str(error)
    fix = next((f for word, f in _REFUSALS.items() if word in text), "check the disk and its free space")
    return CapgapError(f"results store {path}: a write failed ({text}); nothing of this step was kept: {fix} and "
                       "run again: it continues from what the store holds")


def check_writable_location(path: Path) -> None:
    """The store's folder exists or can be made (a file in the way is named)."""
    check_file_path(path, "results store", "--store", "store.sqlite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CapgapError(f"results store {path}: its folder cannot be created ({e.strerror}); pass --store with "
                          "a writable path") from None


CAPGAP_TABLES = {"meta", "evaluations", "eval_items"}


def check_owned(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite file that another application wrote (capgap's tables and schema version are absent)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return
    version = (conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
               if "meta" in tables else None)
    if not tables >= CAPGAP_TABLES or version is None:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise CapgapError(f"{path} is an SQLite file of another application (tables: {shown}), not a capgap "
                          "results store; nothing was written to it: pass --store with a capgap store or a new path")
    if not re.fullmatch(r"\s*[0-9]+\s*", str(version[0])):
        raise CapgapError(f"results store {path}: its schema version {str(version[0])[:40]!r} is not a number (the "
                          "file was edited or damaged); nothing was written to it: restore it from a copy, or pass "
                          "--store with another path")


def check_owned_before_writing(path: Path) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        return
    conn = connect_readonly(path)
    try:
        check_owned(conn, path)
    finally:
        conn.close()


def connect_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise CapgapError(f"results store {path} not found; pass the store file that `capgap run` wrote")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
    try:
        conn.execute("SELECT name FROM sqlite_master").fetchall()
        return conn
    except sqlite3.OperationalError as e:
        conn.close()
        if "unable to open" not in str(e):
            raise
    # A WAL store in a folder this process cannot write (SQLite cannot make its shared-memory file): read it
    # as an unchanging file, which is exact only when no write-ahead log holds rows not yet in the file.
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise CapgapError(f"results store {path} cannot be read in a read-only folder while {wal.name} holds "
                          "recent writes; open it once where it can be written (any capgap command), then retry")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    conn.execute("SELECT name FROM sqlite_master").fetchall()
    return conn

