"""Fixtures of the study tests: a tiny study run to the end once per module, and copies of it."""

import shutil
import sqlite3

import pytest

from tests.study.test_grid import capgap, write_config


@pytest.fixture(scope="module")
def finished(tiny_model, tiny_plain_model, tmp_path_factory):
    """A tiny study run to the end: (config, store, run folder)."""
    folder = tmp_path_factory.mktemp("finished")
    config = write_config(folder, tiny_model, tiny_plain_model, name="resume")
    result = capgap("run", str(config), "--store", str(folder / "store.sqlite"))
    assert result.returncode == 0, result.stderr[-2000:]
    return config, folder / "store.sqlite", folder / "resume"


def copy_of(finished, tmp_path):
    config, store, run_dir = finished
    shutil.copy(store, tmp_path / "store.sqlite")
    shutil.copytree(run_dir, tmp_path / "resume")
    with sqlite3.connect(tmp_path / "store.sqlite") as db:  # the copy's cells point at the copy's checkpoints
        db.execute("UPDATE cells SET checkpoint = replace(checkpoint, ?, ?)", (str(run_dir), str(tmp_path / "resume")))
    return config, tmp_path / "store.sqlite", tmp_path / "resume"


