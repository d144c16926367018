"""The results store: one SQLite file holding every evaluation's per-item rows.

The store is the contract between running and reporting: whatever a run produces lands here, and reports
are built from it alone. Rows are written per batch in short transactions (WAL mode), so an interrupted
evaluation keeps what it finished, and two processes sharing a file never corrupt it: SQLite serialises
writers, and the (evaluation, item) primary key makes a duplicated batch harmless.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError

_BUSY_SECONDS = 60  # how long a writer waits for another process before giving up
SCHEMA_VERSION = 3  # 2 added the study tables, 3 the cells' training keys and plans (both added on open)
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
    config_json TEXT NOT NULL,    -- the resolved config of the latest run
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
CREATE TABLE IF NOT EXISTS planned_cells (  -- the cells of each study's latest plan: what its report shows
    study TEXT NOT NULL, cell_key TEXT NOT NULL,
    PRIMARY KEY (study, cell_key)
);
"""
# Columns added after schema 2, with their types: added to older stores on open.
_ADDED_CELL_COLUMNS = {
    "train_key": "TEXT",            # hash of what determines the weights: cells that share it share a checkpoint
    "test_items_json": "TEXT",      # the test item ids pre and post are paired on
    "evaluation_json": "TEXT",      # the post-evaluation spec (items, prompt, decoding, dtype, device, extraction)
    "precision_json": "TEXT",       # device and precision of training and evaluation, with the reason
    "n_too_long": "INTEGER",        # examples dropped for exceeding max_length
    "n_available": "INTEGER",       # usable examples the optimizer drew its n_train from
    "warmup_steps": "INTEGER",
}
CELL_COLUMNS = ("cell_key", "study", "task", "student", "teacher", "protocol", "seed", "status", "student_params",
                "n_train", "train_item_ids_json", "steps", "effective_batch", "tokens", "train_seconds",
                "loss_curve_json", "checkpoint", "checkpoint_fingerprint", "pre_eval_key", "post_eval_key",
                "training_json", *_ADDED_CELL_COLUMNS)
TEACHER_COLUMNS = ("study", "task", "teacher", "kind", "params", "pool_size", "accuracy", "mean_words", "notes_json")
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
    """A results store at `path` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise CapgapError(f"results store {self.path} was written by a newer capgap (schema "
                                  f"{row[0]}); upgrade capgap or use another --store")
            present = {r[1] for r in self._conn.execute("PRAGMA table_info(cells)")}
            for column, kind in _ADDED_CELL_COLUMNS.items():
                if column not in present:
                    self._conn.execute(f"ALTER TABLE cells ADD COLUMN {column} {kind}")
            if row is None or int(row[0]) < SCHEMA_VERSION:
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @property
    def study(self) -> StudyTables:
        return StudyTables(self)

    def transaction(self):
        return _Transaction(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- evaluations -------------------------------------------------------------------------------
    def register_evaluation(self, record: EvalRecord) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT OR IGNORE INTO evaluations VALUES (?,?,?,?,?,?,?,?)",
                (record.eval_key, record.task, record.model, record.model_fingerprint, record.prompt_style,
                 json.dumps(record.spec, sort_keys=True), json.dumps(record.versions, sort_keys=True),
                 time.time()))

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
    def add_items(self, eval_key: str, rows: Iterable[dict]) -> None:
        now = time.time()
        values = [(*(r[c] for c in ITEM_COLUMNS), now) for r in rows]
        with self.transaction():
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


class StudyTables:
    """Study-level rows: the resolved config, teachers and their rationales, and grid cells."""

    def __init__(self, store: Store):
        self._store, self._conn = store, store._conn

    def save_study(self, study: str, config: dict, versions: dict) -> None:
        with self._store.transaction():
            self._conn.execute("INSERT OR REPLACE INTO studies VALUES (?,?,?,?)",
                               (study, json.dumps(config, sort_keys=True), json.dumps(versions), time.time()))

    def studies(self) -> list[dict]:
        """Every study in the store: name, resolved config, versions, last update (oldest first)."""
        cursor = self._conn.execute("SELECT study, config_json, versions_json, updated_at FROM studies "
                                    "ORDER BY updated_at")
        return [{"study": r[0], "config": json.loads(r[1]), "versions": json.loads(r[2]), "updated_at": r[3]}
                for r in cursor]

    def save_teacher(self, row: dict, rationales: Iterable[tuple]) -> None:
        """A teacher's summary and its rationales (study, task, teacher, item_id, sample, text, answer, correct)."""
        with self._store.transaction():
            self._conn.execute(f"INSERT OR REPLACE INTO teachers VALUES ({', '.join('?' * len(TEACHER_COLUMNS))})",
                               tuple(row[c] for c in TEACHER_COLUMNS))
            self._conn.execute("DELETE FROM rationales WHERE study=? AND task=? AND teacher=?",
                               (row["study"], row["task"], row["teacher"]))
            self._conn.executemany("INSERT INTO rationales VALUES (?,?,?,?,?,?,?,?)", list(rationales))

    def teachers(self, study: str) -> list[dict]:
        cursor = self._conn.execute(f"SELECT {', '.join(TEACHER_COLUMNS)} FROM teachers WHERE study=?", (study,))
        return [dict(zip(TEACHER_COLUMNS, r, strict=True)) for r in cursor]

    def save_cell(self, row: dict) -> None:
        with self._store.transaction():
            self._conn.execute(
                f"INSERT OR REPLACE INTO cells ({', '.join(CELL_COLUMNS)}, updated_at) "
                f"VALUES ({', '.join('?' * len(CELL_COLUMNS))}, ?)", (*(row.get(c) for c in CELL_COLUMNS), time.time()))

    def cell(self, cell_key: str) -> dict | None:
        r = self._conn.execute(f"SELECT {', '.join(CELL_COLUMNS)} FROM cells WHERE cell_key=?", (cell_key,)).fetchone()
        return dict(zip(CELL_COLUMNS, r, strict=True)) if r else None

    def trained_cell(self, train_key: str) -> dict | None:
        """The latest trained or finished cell with this training key (its checkpoint and training facts)."""
        r = self._conn.execute(f"SELECT {', '.join(CELL_COLUMNS)} FROM cells WHERE train_key=? AND status IN "
                               "('trained', 'done') ORDER BY updated_at DESC LIMIT 1", (train_key,)).fetchone()
        return dict(zip(CELL_COLUMNS, r, strict=True)) if r else None

    def save_plan(self, study: str, cell_keys: list[str]) -> None:
        """The cells of the study's latest plan (replacing the previous plan's list; no cell is deleted)."""
        with self._store.transaction():
            self._conn.execute("DELETE FROM planned_cells WHERE study=?", (study,))
            self._conn.executemany("INSERT OR IGNORE INTO planned_cells VALUES (?, ?)",
                                   [(study, k) for k in cell_keys])

    def planned(self, study: str) -> set[str] | None:
        """Cell keys of the study's latest plan; None for a study run before plans were recorded."""
        keys = {r[0] for r in self._conn.execute("SELECT cell_key FROM planned_cells WHERE study=?", (study,))}
        return keys or None

    def cells(self, study: str) -> list[dict]:
        cursor = self._conn.execute(f"SELECT {', '.join(CELL_COLUMNS)} FROM cells WHERE study=? ORDER BY rowid",
                                    (study,))
        return [dict(zip(CELL_COLUMNS, r, strict=True)) for r in cursor]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so concurrent writers queue, never deadlock."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
