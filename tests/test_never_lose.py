"""Never lose, never waste, never crash: hostile stores and paths, secrets, a full disk, through the real CLI.

Every case runs `capgap` as a user does (a real process, real SQLite files, a real tiny model) and compares
the store's full contents before and after, not its size.
"""

import contextlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from capgap.store import Store, differences, snapshot
from tests.analysis.sim import write_study
from tests.test_cli import capgap, every_path, one_error_line, sound_study, store_contents

EVAL = ["--task", "arith", "--n", "40", "--max-new-tokens", "16", "--batch-size", "4"]


def test_a_store_of_another_application_is_refused_before_anything_is_written(tiny_model, tmp_path):
    other = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'ann')")
        db.commit()
    before = other.read_bytes()
    message = f"{other} is an SQLite file of another application (tables: users), not a capgap results store"
    one_error_line(capgap("eval", "--model", str(tiny_model), *EVAL, "--store", str(other)), message)
    one_error_line(capgap("report", str(other)), message)
    assert other.read_bytes() == before and every_path(tmp_path) == {Path("app.db")}


def test_store_and_report_paths_that_cannot_be_files_are_one_error_line(tiny_model, tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "folder").mkdir()
    model = ["eval", "--model", str(tiny_model), *EVAL]
    one_error_line(capgap(*model, "--store", str(tmp_path / "afile" / "store.sqlite")),
                   f"{tmp_path / 'afile'} is a file, not a folder; pass --store with a path inside a folder")
    one_error_line(capgap(*model, "--store", str(tmp_path / "folder")), "is a folder; pass --store with a file path")
    (tmp_path / "results").mkdir()
    store = sim_store(tmp_path / "results" / "store.sqlite")
    before, paths = store_contents(store), every_path(tmp_path)
    one_error_line(capgap("report", str(store), "-o", str(tmp_path / "folder")),
                   f"report output {tmp_path / 'folder'} is a folder; pass -o with a file path")
    one_error_line(capgap("report", str(store), "-o", str(tmp_path / "afile" / "r.html")),
                   f"{tmp_path / 'afile'} is a file, not a folder")
    assert store_contents(store) == before and every_path(tmp_path) == paths  # no report.partial anywhere


def _freeze(paths: list[Path]) -> bool:
    """Make files and folders unwritable even for root (chattr +i) when the system allows it."""
    if os.geteuid() != 0:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return True
    return all(subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode == 0 for p in paths) \
        if shutil.which("chattr") else False


def _thaw(paths: list[Path]) -> None:
    for p in paths:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(p)], capture_output=True)
        p.chmod(0o755 if p.is_dir() else 0o644)


def test_report_works_on_a_store_it_cannot_write(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    store = sim_store(folder / "store.sqlite")
    before, files = store.read_bytes(), sorted(p.name for p in folder.iterdir())
    frozen = [store, folder]
    really_read_only = _freeze(frozen)
    try:
        result = capgap("report", str(store), "--format", "json", "-o", str(tmp_path / "out" / "r.json"))
    finally:
        _thaw(frozen)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "out" / "r.json").read_text())["studies"][0]["study"] == "tiny"
    # nothing was written: same bytes, no journal or shared-memory file beside the store
    assert store.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == files
    if not really_read_only:
        pytest.skip("the store could not be made read-only here (root without chattr): only 'writes nothing' checked")


SECRET = "sk-proj-" + "Zq9" * 12


def sim_store(path: Path) -> Path:
    """A store holding one simulated finished study (real rows, no model work)."""
    with Store(path) as s:
        write_study(s, "tiny", students={"smol": {"pre": 0.3, "params": 1e8}},
                    teachers={"gpt": {"params": None, "accuracy": 0.9}}, gains={("smol", "gpt", "own-correct"): 0.1})
    return path


def test_secrets_are_refused_and_reach_no_store_log_or_report(tmp_path):
    store = sim_store(tmp_path / "store.sqlite")
    before = store_contents(store)
    study = sound_study(teachers=[{"name": "ref", "kind": "reference", "api_key": SECRET}],
                        tasks=[{"name": "svamp", "options": {"data": "https://ann:hunter22@data.example.org/s.json"},
                                "pool": {"first": 10}, "test": {"rest": True}}])
    config = tmp_path / "study.yaml"
    config.write_text(json.dumps(study))  # JSON is YAML
    validate, run = capgap("validate", str(config)), capgap("run", str(config), "--store", str(store))
    assert "teachers[0].api_key: holds an API key; capgap takes credentials only from environment" in validate.stdout
    assert "tasks[0].options.data: holds a URL with a password" in validate.stdout
    one_error_line(run, "holds an API key")
    url = capgap("eval", "--model", "x", "--task", "svamp", "--data", "https://ann:hunter22@h.org/s.json",
                 "--store", str(store))
    one_error_line(url, "--data holds a URL with a password")
    for output in (validate.stdout, validate.stderr, run.stdout, run.stderr, url.stderr):
        assert SECRET not in output and "hunter22" not in output
    assert store_contents(store) == before
    assert SECRET not in store.read_bytes().decode("latin-1")


def _file_size_limit(limit: int):
    def limited() -> None:  # the process sees a full disk once it has written `limit` bytes to one file
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limited


def test_a_full_disk_mid_evaluation_is_one_error_and_the_next_run_continues(tiny_model, tmp_path):
    store, fresh = tmp_path / "store.sqlite", tmp_path / "fresh.sqlite"
    args = [sys.executable, "-m", "capgap", "eval", "--model", str(tiny_model), *EVAL, "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    full = subprocess.run([*args, "--store", str(store)], capture_output=True, text=True, env=env, timeout=300,
                          preexec_fn=_file_size_limit(140_000))  # the WAL: schema, then batches
    one_error_line(full, f"results store {store}: a write failed")
    assert "run again: it continues from what the store holds" in full.stderr
    with contextlib.closing(sqlite3.connect(store)) as db:  # whole batches were kept, the store is sound
        kept = db.execute("SELECT COUNT(*) FROM eval_items").fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 0 < kept < 40 and kept % 4 == 0
    resumed = subprocess.run([*args, "--store", str(store)], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.splitlines()[-1])["n_generated"] == 40 - kept
    assert subprocess.run([*args, "--store", str(fresh)], capture_output=True, env=env, timeout=300).returncode == 0
    assert differences(snapshot(store), snapshot(fresh)) == []  # the same rows as a run that never failed
