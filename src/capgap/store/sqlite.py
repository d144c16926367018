"""The results store: one SQLite file holding every evaluation's per-item rows.

The store is the contract between running and reporting: whatever a run produces lands here, and reports
are built from it alone. Rows are written per batch in short transactions (WAL mode), so an interrupted
evaluation keeps what it finished, and two processes sharing a file never corrupt it: SQLite serialises
writers, and `INSERT OR IGNORE` on the (evaluation, item) key makes a duplicated batch harmless.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError

SCHEMA_VERSION = 1
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
    """A results store at `path` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=60000")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise CapgapError(f"results store {self.path} cannot be opened ({e}); pass --store with a "
                              "capgap store file or a new path") from None

    def _migrate(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise CapgapError(f"results store {self.path} was written by a newer capgap (schema "
                                  f"{row[0]}); upgrade capgap or use another --store")

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
                f"INSERT OR IGNORE INTO eval_items (eval_key, {', '.join(ITEM_COLUMNS)}, created_at) "
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


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so concurrent writers queue, never deadlock."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")
