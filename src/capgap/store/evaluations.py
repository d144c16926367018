"""Evaluations and their per-item rows in the results store: one evaluation per key (what determines it is
its spec), one row per (evaluation, item), written per batch."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

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


class EvaluationRows:
    """The evaluation methods of `Store` (it provides `_conn` and `transaction`)."""

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
