"""A store's full contents as comparable data: what a resumed run must reproduce bit for bit.

    snapshot("a/store.sqlite") == snapshot("b/store.sqlite")   # same results, whenever they were written

Every row of every table, sorted, without the columns that record *when* or *where* something ran (time
stamps, durations, checkpoint paths, the writer's versions) and without the leases of running processes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

# Columns that differ between two runs producing the same results.
VOLATILE = {"created_at", "updated_at", "train_seconds", "seconds", "checkpoint", "heartbeat", "versions_json"}
SKIPPED_TABLES = {"leases"}


def snapshot(path: str | Path, volatile: set[str] = VOLATILE) -> dict[str, list[tuple]]:
    """{table: sorted rows} of the store at `path`, read-only, without the `volatile` columns."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out = {}
        for table in tables:
            if table in SKIPPED_TABLES:
                continue
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] not in volatile]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            out[table] = sorted(rows, key=repr)
        return out


def differences(a: dict[str, list[tuple]], b: dict[str, list[tuple]], limit: int = 5) -> list[str]:
    """Where two snapshots differ: per table, rows only in one of them (at most `limit` shown)."""
    out = []
    for table in sorted(set(a) | set(b)):
        left, right = set(a.get(table, [])), set(b.get(table, []))
        if left != right:
            only_a, only_b = sorted(left - right, key=repr), sorted(right - left, key=repr)
            out.append(f"{table}: {len(only_a)} row(s) only in the first, {len(only_b)} only in the second; "
                       f"e.g. {[r[:4] for r in (only_a + only_b)[:limit]]}")
    return out
