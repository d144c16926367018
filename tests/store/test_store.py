import multiprocessing as mp
import sqlite3

import pytest

from capgap.errors import CapgapError
from capgap.store import EvalRecord, Store


def row(i: int) -> dict:
    return {"item_id": f"i{i}", "item_hash": "h", "prompt": "p", "generation": f"The answer is {i}.",
            "n_new_tokens": 5, "gold": str(i), "answer_strict": str(i), "answer_flexible": str(i),
            "correct_strict": 1, "correct_flexible": 1, "extraction_version": 1}


RECORD = EvalRecord("k1", "arith", "m", "fp", "zero-shot-cot", {"a": 1}, {"capgap": "0"})


def test_rows_roundtrip_and_a_rewritten_row_replaces_the_old(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.register_evaluation(RECORD)
        store.register_evaluation(RECORD)  # idempotent
        store.add_items("k1", [row(1), row(2)])
        store.add_items("k1", [{**row(2), "generation": "new"}, row(3)])
        assert sorted(store.items("k1")) == ["i1", "i2", "i3"]
        assert store.items("k1")["i2"]["generation"] == "new"
        assert set(store.items("k1", ["i1", "i9"])) == {"i1"}
        assert store.evaluation("k1").spec == {"a": 1}
    with Store(tmp_path / "s.sqlite") as again:  # persisted, schema already there
        assert len(again.items("k1")) == 3 and [e.eval_key for e in again.evaluations()] == ["k1"]


def _writer(path: str, start: int) -> None:
    with Store(path) as store:
        store.register_evaluation(RECORD)
        for i in range(start, start + 200, 10):
            store.add_items("k1", [row(j) for j in range(i, i + 10)])


def test_two_processes_write_one_store_without_corruption(tmp_path):
    path = str(tmp_path / "s.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start)) for start in (0, 100)]  # overlapping ids
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store(path) as store:
        assert sorted(store.items("k1")) == sorted(f"i{i}" for i in range(300))


def _opener(path: str, barrier) -> None:
    barrier.wait()
    Store(path).close()


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    # Regression: switching a fresh file to WAL answered "database is locked" at once to the loser of the race.
    ctx = mp.get_context("fork")
    for attempt in range(20):
        path = str(tmp_path / f"race{attempt}.sqlite")
        barrier = ctx.Barrier(6)
        procs = [ctx.Process(target=_opener, args=(path, barrier)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 6


def test_a_file_that_is_not_a_store_is_reported(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(CapgapError, match="cannot be opened"):
        Store(bad)
    assert bad.read_text().startswith("this is not a database")  # nothing overwritten
