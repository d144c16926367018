"""The results store's tables, its schema version, and the upgrade of a store an older capgap wrote (run in
the writing open's first transaction)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from capgap.errors import CapgapError
from capgap.store.selection import SCHEMA as SELECTION_SCHEMA
from capgap.store.study import ADDED_CELL_COLUMNS

SCHEMA_VERSION = 5  # 2: study tables; 3: cells' training keys and plans; 4: config versions and leases;
# 5: predictions and selections (store.selection). Tables added since (screenings) are made on any writing
# open and read as empty where absent, so a read-only store of schema 5 still reports.
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
CREATE TABLE IF NOT EXISTS screenings (  -- each task's teacher gap and whether it was kept
    study TEXT NOT NULL, task TEXT NOT NULL, result_json TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (study, task)
);
"""


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create what is missing and upgrade an older store in place (inside the caller's transaction)."""
    for statement in (_SCHEMA + SELECTION_SCHEMA).split(";"):
        if statement.strip():
            conn.execute(statement)
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise CapgapError(f"results store {path} was written by a newer capgap (schema "
                          f"{row[0]}); upgrade capgap or use another --store")
    present = {r[1] for r in conn.execute("PRAGMA table_info(cells)")}
    for column, kind in ADDED_CELL_COLUMNS.items():
        if column not in present:
            conn.execute(f"ALTER TABLE cells ADD COLUMN {column} {kind}")
    # Studies recorded before config versions: their one config becomes version 1.
    conn.execute("INSERT OR IGNORE INTO study_configs SELECT study, 1, config_json, versions_json, "
                 "updated_at FROM studies WHERE study NOT IN (SELECT study FROM study_configs)")
    if row is None or int(row[0]) < SCHEMA_VERSION:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
