"""Study-level tables of the results store: config versions, teachers and their rationales, cells, plans.

A study's config is recorded as a numbered version each time a run starts with a config that differs from
the latest one (a config is recorded only once it validated and its data loaded), so an edit never hides or
alters what an earlier version finished: every cell names the version it ran under.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capgap.store.sqlite import Store

@dataclass
class CellRow:
    """One row of the cells table: what the store holds of a (task, student, teacher, protocol, seed) cell. The
    store owns this type: the runner and the simulator write it (`save_cell`), the analysis reads its columns.
    The fields are the table's columns, in the order they are written."""

    cell_key: str  # hash of everything that determines the cell's post-distillation evaluation
    study: str
    task: str
    student: str
    teacher: str
    protocol: str
    seed: int
    status: str | None = None  # trained, done, or skipped (no usable training example)
    student_params: float | None = None
    n_train: int | None = None
    train_item_ids_json: str | None = None
    steps: int | None = None
    effective_batch: int | None = None
    tokens: int | None = None
    train_seconds: float | None = None
    loss_curve_json: str | None = None
    checkpoint: str | None = None
    checkpoint_fingerprint: str | None = None
    pre_eval_key: str | None = None
    post_eval_key: str | None = None
    training_json: str | None = None
    # Columns added after schema 2 (ADDED_CELL_COLUMNS: their SQL types, added to older stores on open).
    train_key: str | None = None  # hash of what determines the weights: cells that share it share a checkpoint
    test_items_json: str | None = None  # the test item ids pre and post are paired on
    evaluation_json: str | None = None  # the post-evaluation spec (items, prompt, decoding, dtype, device, ...)
    precision_json: str | None = None  # device and precision of training and evaluation, with the reason
    n_too_long: int | None = None  # examples dropped for exceeding max_length
    n_available: int | None = None  # usable examples the optimizer drew its n_train from
    warmup_steps: int | None = None
    config_version: int | None = None  # the study config version the cell ran under (schema 4)


CELL_COLUMNS = tuple(f.name for f in fields(CellRow))
ADDED_CELL_COLUMNS = {"train_key": "TEXT", "test_items_json": "TEXT", "evaluation_json": "TEXT",
                      "precision_json": "TEXT", "n_too_long": "INTEGER", "n_available": "INTEGER",
                      "warmup_steps": "INTEGER", "config_version": "INTEGER"}
TEACHER_COLUMNS = ("study", "task", "teacher", "kind", "params", "pool_size", "accuracy", "mean_words", "notes_json")


class StudyTables:
    """Study-level rows: config versions, teachers and their rationales, and grid cells."""

    def __init__(self, store: Store):
        self._store, self._conn = store, store._conn

    def save_study(self, study: str, config: dict, versions: dict) -> int:
        """Record `config` as the study's latest config; its version number (a new one only when it differs
        from the latest recorded config: earlier versions are kept, never rewritten)."""
        text = json.dumps(config, sort_keys=True)
        with self._store.transaction():
            latest = self._conn.execute("SELECT version, config_json FROM study_configs WHERE study=? ORDER BY "
                                        "version DESC LIMIT 1", (study,)).fetchone()
            version = latest[0] if latest and latest[1] == text else (latest[0] + 1 if latest else 1)
            if not latest or latest[1] != text:
                self._conn.execute("INSERT INTO study_configs VALUES (?,?,?,?,?)",
                                   (study, version, text, json.dumps(versions), time.time()))
            self._conn.execute("INSERT OR REPLACE INTO studies VALUES (?,?,?,?)",
                               (study, text, json.dumps(versions), time.time()))
        return version

    def studies(self) -> list[dict]:
        """Every study in the store: name, latest config and its version number, versions, last update."""
        cursor = self._conn.execute(
            "SELECT s.study, s.config_json, s.versions_json, s.updated_at, (SELECT MAX(version) FROM study_configs c "
            "WHERE c.study = s.study) FROM studies s ORDER BY s.updated_at")
        return [{"study": r[0], "config": json.loads(r[1]), "versions": json.loads(r[2]), "updated_at": r[3],
                 "config_version": r[4] or 1} for r in cursor]

    def config_versions(self, study: str) -> dict[int, dict]:
        """Every recorded config of the study by version number."""
        cursor = self._conn.execute("SELECT version, config_json FROM study_configs WHERE study=? ORDER BY version",
                                    (study,))
        return {r[0]: json.loads(r[1]) for r in cursor}

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

    def save_cell(self, row: CellRow | dict) -> None:
        """Write a cell row (a dict is read as a CellRow: a key that is no column is an error)."""
        row = asdict(row if isinstance(row, CellRow) else CellRow(**row))
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

    def save_screening(self, study: str, task: str, result: dict) -> None:
        """A task's screening (every teacher's accuracy, the largest gap, kept or dropped), replacing the last."""
        with self._store.transaction():
            self._conn.execute("INSERT OR REPLACE INTO screenings VALUES (?,?,?,?)",
                               (study, task, json.dumps(result), time.time()))

    def screenings(self, study: str) -> list[dict]:
        """The study's screened tasks ([] in a store written before screenings, opened read-only)."""
        try:
            cursor = self._conn.execute("SELECT result_json FROM screenings WHERE study=? ORDER BY rowid", (study,))
        except sqlite3.OperationalError:  # no such table
            return []
        return [json.loads(r[0]) for r in cursor]

    def cells(self, study: str) -> list[dict]:
        cursor = self._conn.execute(f"SELECT {', '.join(CELL_COLUMNS)} FROM cells WHERE study=? ORDER BY rowid",
                                    (study,))
        return [dict(zip(CELL_COLUMNS, r, strict=True)) for r in cursor]
