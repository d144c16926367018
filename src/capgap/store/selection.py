"""Selection tables of the results store: cheap predictions per teacher, and the traces of budgeted selections.

A prediction row is keyed by everything that determines its numbers (student weights, task, prompt, the
protocol's rationales and the sampled ones, the predictor version, precision): `capgap predict` run twice
computes it once. A study that asks for a prediction another study computed gets its own copy of the row,
and asking again makes it the study's latest.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capgap.store.sqlite import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (  -- capgap predict: one row per study, task, student, teacher, protocol
    prediction_key TEXT NOT NULL, study TEXT NOT NULL, task TEXT NOT NULL, student TEXT NOT NULL,
    teacher TEXT NOT NULL, protocol TEXT NOT NULL, scores_json TEXT NOT NULL,
    seconds REAL NOT NULL, tokens INTEGER NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (prediction_key, study)
);
CREATE TABLE IF NOT EXISTS selections (  -- capgap select: each run's rounds, choice and compute (schema 5)
    study TEXT NOT NULL, created_at REAL NOT NULL, trace_json TEXT NOT NULL,
    PRIMARY KEY (study, created_at)
);
"""
PREDICTION_FIELDS = ("prediction_key", "study", "task", "student", "teacher", "protocol")


class SelectionTables:
    def __init__(self, store: Store):
        self._store, self._conn = store, store._conn

    def save_prediction(self, row: dict) -> None:
        with self._store.transaction():
            self._conn.execute("INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?)",
                               (*(row[f] for f in PREDICTION_FIELDS), json.dumps(row["scores"]), row["seconds"],
                                row["tokens"], time.time()))

    def prediction(self, key: str) -> dict | None:
        """The stored prediction with this key (from whichever study computed it), or None."""
        found = self._rows("WHERE prediction_key=?", (key,))
        return found[0] if found else None

    def predictions(self, study: str) -> list[dict]:
        """The study's predictions, the latest per (task, student, teacher, protocol)."""
        latest = {}
        for row in self._rows("WHERE study=? ORDER BY created_at", (study,)):
            latest[(row["task"], row["student"], row["teacher"], row["protocol"])] = row
        return list(latest.values())

    def _rows(self, where: str, args: tuple) -> list[dict]:
        rows = self._conn.execute(f"SELECT {', '.join(PREDICTION_FIELDS)}, scores_json, seconds, tokens FROM "
                                  f"predictions {where}", args).fetchall()
        return [{**dict(zip(PREDICTION_FIELDS, r[:6], strict=True)), "scores": json.loads(r[6]), "seconds": r[7],
                 "tokens": r[8]} for r in rows]

    def save_selection(self, study: str, trace: dict) -> None:
        with self._store.transaction():
            self._conn.execute("INSERT INTO selections VALUES (?,?,?)", (study, time.time(), json.dumps(trace)))

    def selections(self, study: str) -> list[dict]:
        rows = self._conn.execute("SELECT trace_json FROM selections WHERE study=? ORDER BY created_at", (study,))
        return [json.loads(r[0]) for r in rows]
