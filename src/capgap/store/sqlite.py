"""The results store: one SQLite file holding every evaluation's per-item rows.

The store is the contract between running and reporting: whatever a run produces lands here, and reports
are built from it alone. Rows are written per batch in short transactions (WAL mode), so an interrupted
evaluation keeps what it finished, and two processes sharing a file never corrupt it: SQLite serialises
writers, and the (evaluation, item) primary key makes a duplicated batch harmless.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError
from capgap.filepaths import check_file_path
from capgap.store.leases import Leases
from capgap.store.selection import SCHEMA as SELECTION_SCHEMA
from capgap.store.selection import SelectionTables
from capgap.store.study import ADDED_CELL_COLUMNS, StudyTables

_BUSY_SECONDS = 60  # how long a writer waits for another process before giving up
SCHEMA_VERSION = 5  # 2: study tables; 3: cells' training keys and plans; 4: config versions and leases;
# 5: predictions and selections (store.selection)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    eval_key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    prompt_style TEXT NOT NULL,
    spec_json TEXT NOT NULL,      -- everything that determines the evaluation (the key is its hash)
    versions_json TEXT NOT NULL,  -- capgap / torch / transformers versions of the first writer
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_items (
    eval_key TEXT NOT NULL REFERENCES evaluations(eval_key),
    item_id TEXT NOT NULL,
    item_hash TEXT NOT NULL,      -- question + gold: a row is reused only for the same item content
    prompt TEXT NOT NULL,
    generation TEXT NOT NULL,
    n_new_tokens INTEGER NOT NULL,
    gold TEXT NOT NULL,
    answer_strict TEXT,
    answer_flexible TEXT,
    correct_strict INTEGER NOT NULL,
    correct_flexible INTEGER NOT NULL,
    extraction_version INTEGER NOT NULL,  -- rows scored by an older extraction are re-scored on read
    created_at REAL NOT NULL,
    PRIMARY KEY (eval_key, item_id)
);
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,    -- the resolved config of the latest run (all of them: study_configs)
    versions_json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS teachers (
    study TEXT NOT NULL, task TEXT NOT NULL, teacher TEXT NOT NULL,
    kind TEXT NOT NULL,
    params REAL,                  -- parameter count when known
    pool_size INTEGER NOT NULL,
    accuracy REAL NOT NULL,       -- on the training pool, by capgap's checker
    mean_words REAL NOT NULL,     -- mean rationale length
    notes_json TEXT NOT NULL,
    PRIMARY KEY (study, task, teacher)
);
CREATE TABLE IF NOT EXISTS rationales (
    study TEXT NOT NULL, task TEXT NOT NULL, teacher TEXT NOT NULL, item_id TEXT NOT NULL, sample INTEGER NOT NULL,
    text TEXT NOT NULL, answer TEXT, correct INTEGER NOT NULL,
    PRIMARY KEY (study, task, teacher, item_id, sample)
);
CREATE TABLE IF NOT EXISTS cells (
    cell_key TEXT PRIMARY KEY,    -- hash of everything that determines the trained student
    study TEXT NOT NULL, task TEXT NOT NULL, student TEXT NOT NULL, teacher TEXT NOT NULL,
    protocol TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL,         -- trained (checkpoint saved) | done (post-distillation rows stored)
    student_params INTEGER,
    n_train INTEGER, train_item_ids_json TEXT,
    steps INTEGER, effective_batch INTEGER, tokens INTEGER, train_seconds REAL, loss_curve_json TEXT,
    checkpoint TEXT, checkpoint_fingerprint TEXT,
    pre_eval_key TEXT, post_eval_key TEXT,  -- per-item rows in eval_items, paired by item_id
    training_json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS study_configs (  -- every config a study ran with, numbered (schema 4)
    study TEXT NOT NULL, version INTEGER NOT NULL,
    config_json TEXT NOT NULL, versions_json TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (study, version)
);
CREATE TABLE IF NOT EXISTS leases (  -- claims on work held by running processes (store.leases)
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS planned_cells (  -- the cells of each study's latest plan: what its report shows
    study TEXT NOT NULL, cell_key TEXT NOT NULL,
    PRIMARY KEY (study, cell_key)
);
"""
ITEM_COLUMNS = ("item_id", "item_hash", "prompt", "generation", "n_new_tokens", "gold", "answer_strict",
                "answer_flexible", "correct_strict", "correct_flexible", "extraction_version")
RESCORED_COLUMNS = ("answer_strict", "answer_flexible", "correct_strict", "correct_flexible", "extraction_version")


@dataclass(frozen=True)
class EvalRecord:
    eval_key: str
    task: str
    model: str
    model_fingerprint: str
    prompt_style: str
    spec: dict
    versions: dict


class Store:
    """A results store at `path` (created on first use). `readonly=True` opens an existing store without
    writing anything to it (what `capgap report` needs: it works on a store it may not write)."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path, self.readonly = Path(path), readonly
        self._leases: Leases | None = None
        try:
            if readonly:
                self._conn = _connect_readonly(self.path)
                _check_owned(self._conn, self.path)
                if (version := self.schema_version()) < SCHEMA_VERSION:
                    self._conn.close()
                    raise _OlderSchema(f"results store {self.path} has schema {version} of an older capgap; open it "
                                       "once with a writing command (capgap run) to upgrade it")
                return
            _check_writable_location(self.path)
            _check_owned_before_writing(self.path)
            self._conn = sqlite3.connect(self.path, timeout=_BUSY_SECONDS, isolation_level=None)
            self._open()
        except sqlite3.DatabaseError as e:
            raise CapgapError(f"results store {self.path} cannot be opened ({e}); pass --store with a "
                              "capgap store file or a new path") from None

    def _open(self) -> None:
        # Switching a new file to WAL takes an exclusive lock and SQLite answers "database is locked" at once,
        # without its busy handler, when another process is doing the same: retry until the deadline.
        deadline = time.monotonic() + _BUSY_SECONDS
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._migrate()
                return
            except sqlite3.OperationalError as e:
                if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        with self.transaction():
            for statement in (_SCHEMA + SELECTION_SCHEMA).split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise CapgapError(f"results store {self.path} was written by a newer capgap (schema "
                                  f"{row[0]}); upgrade capgap or use another --store")
            present = {r[1] for r in self._conn.execute("PRAGMA table_info(cells)")}
            for column, kind in ADDED_CELL_COLUMNS.items():
                if column not in present:
                    self._conn.execute(f"ALTER TABLE cells ADD COLUMN {column} {kind}")
            # Studies recorded before config versions: their one config becomes version 1.
            self._conn.execute("INSERT OR IGNORE INTO study_configs SELECT study, 1, config_json, versions_json, "
                               "updated_at FROM studies WHERE study NOT IN (SELECT study FROM study_configs)")
            if row is None or int(row[0]) < SCHEMA_VERSION:
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

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
        return _Transaction(self._conn, self.path)

    def close(self) -> None:
        if self._leases is not None:
            self._leases.close()
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- evaluations -------------------------------------------------------------------------------
    def register_evaluation(self, record: EvalRecord) -> None:
        with self.transaction():
            self._insert_evaluation(record)

    def _insert_evaluation(self, record: EvalRecord) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO evaluations VALUES (?,?,?,?,?,?,?,?)",
            (record.eval_key, record.task, record.model, record.model_fingerprint, record.prompt_style,
             json.dumps(record.spec, sort_keys=True), json.dumps(record.versions, sort_keys=True), time.time()))

    def evaluation(self, eval_key: str) -> EvalRecord | None:
        row = self._conn.execute(
            "SELECT eval_key, task, model, model_fingerprint, prompt_style, spec_json, versions_json "
            "FROM evaluations WHERE eval_key=?", (eval_key,)).fetchone()
        if row is None:
            return None
        return EvalRecord(*row[:5], json.loads(row[5]), json.loads(row[6]))

    def evaluations(self) -> list[EvalRecord]:
        keys = [r[0] for r in self._conn.execute("SELECT eval_key FROM evaluations ORDER BY created_at")]
        return [self.evaluation(k) for k in keys]  # type: ignore[misc]

    # -- per-item rows -----------------------------------------------------------------------------
    def add_items(self, eval_key: str, rows: Iterable[dict], record: EvalRecord | None = None) -> None:
        """Store rows of an evaluation; with `record`, register the evaluation in the same transaction (so no
        evaluation is ever recorded without rows: a model that fails to load leaves nothing behind)."""
        now = time.time()
        values = [(*(r[c] for c in ITEM_COLUMNS), now) for r in rows]
        with self.transaction():
            if record is not None:
                self._insert_evaluation(record)
            self._conn.executemany(
                # REPLACE: a row regenerated because its item changed supersedes the stale one; a batch two
                # processes both wrote is the same row either way.
                f"INSERT OR REPLACE INTO eval_items (eval_key, {', '.join(ITEM_COLUMNS)}, created_at) "
                f"VALUES (?, {', '.join('?' * len(ITEM_COLUMNS))}, ?)",
                [(eval_key, *v) for v in values])

    def rescore_items(self, eval_key: str, rows: Iterable[dict]) -> None:
        """Overwrite the extraction results of stored rows (the generation itself never changes)."""
        sets = ", ".join(f"{c}=?" for c in RESCORED_COLUMNS)
        with self.transaction():
            self._conn.executemany(
                f"UPDATE eval_items SET {sets} WHERE eval_key=? AND item_id=?",
                [(*(r[c] for c in RESCORED_COLUMNS), eval_key, r["item_id"]) for r in rows])

    def items(self, eval_key: str, item_ids: Iterable[str] | None = None) -> dict[str, dict]:
        """Stored rows of an evaluation by item id (all of them, or those among `item_ids`)."""
        cursor = self._conn.execute(
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM eval_items WHERE eval_key=?", (eval_key,))
        rows = {r[0]: dict(zip(ITEM_COLUMNS, r, strict=True)) for r in cursor}
        if item_ids is None:
            return rows
        wanted = set(item_ids)
        return {k: v for k, v in rows.items() if k in wanted}


class _OlderSchema(CapgapError):
    """A store opened read-only that needs the upgrade a writing open makes."""


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so concurrent writers queue, never deadlock.
    A write the disk refuses (full, read-only, I/O error) rolls back and ends as one CapgapError: what earlier
    transactions committed stays, and the next run continues from it."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn, self._path = conn, path

    def __enter__(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise _write_failed(self._path, e) from None

    def __exit__(self, exc_type, exc, _tb) -> None:
        if exc_type is not None:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _refused(exc):
                raise _write_failed(self._path, exc) from None
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise _write_failed(self._path, e) from None


# SQLite errors that mean the machine refused a write, with the fix; any other error is a bug in capgap.
_REFUSALS = {"full": "free disk space", "I/O": "free disk space or check the disk",
             "readonly": "make the store and its folder writable",
             "locked": "check that no other program holds the store",
             "busy": "check that no other program holds the store"}


def _refused(error: sqlite3.OperationalError) -> bool:
    return any(word in str(error) for word in _REFUSALS)


def _write_failed(path: Path, error: sqlite3.OperationalError) -> CapgapError:
    text = str(error)
    fix = next((f for word, f in _REFUSALS.items() if word in text), "check the disk and its free space")
    return CapgapError(f"results store {path}: a write failed ({text}); nothing of this step was kept: {fix} and "
                       "run again: it continues from what the store holds")


def _check_writable_location(path: Path) -> None:
    """The store's folder exists or can be made (a file in the way is named)."""
    check_file_path(path, "results store", "--store", "store.sqlite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CapgapError(f"results store {path}: its folder cannot be created ({e.strerror}); pass --store with "
                          "a writable path") from None


_CAPGAP_TABLES = {"meta", "evaluations", "eval_items"}


def _check_owned(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite file that another application wrote (capgap's tables and schema version are absent)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return
    version = (conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
               if "meta" in tables else None)
    if not tables >= _CAPGAP_TABLES or version is None:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise CapgapError(f"{path} is an SQLite file of another application (tables: {shown}), not a capgap "
                          "results store; nothing was written to it: pass --store with a capgap store or a new path")


def _check_owned_before_writing(path: Path) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        return
    conn = _connect_readonly(path)
    try:
        _check_owned(conn, path)
    finally:
        conn.close()


def _connect_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise CapgapError(f"results store {path} not found; pass the store file that `capgap run` wrote")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_SECONDS)
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

