"""`capgap rebase` end to end on tiny real models: a finished study moved onto a lineage's new checkpoint reuses
what the store holds, pairs every post-distillation evaluation with its own checkpoint's baseline, and reports
what carried over; a cell paired with another checkpoint's baseline is refused."""

import contextlib
import json
import shutil
import sqlite3
from pathlib import Path

import yaml

from capgap.store import Store
from tests.conftest import build_adapter, build_tiny_model
from tests.study.test_grid import capgap, write_config
from tests.test_cli import one_error_line


def _lineage_config(tmp_path, student, teacher_model):
    path = write_config(tmp_path, student, teacher_model, name="lin")
    config = yaml.safe_load(path.read_text())
    config["students"] = [{"name": "prod", "checkpoints": [str(student)]}]
    config["protocols"], config["seeds"] = ["unfiltered"], [0, 1]
    path.write_text(yaml.safe_dump(config))
    return path


def test_rebase_reuses_pairs_with_its_own_baseline_and_reports_what_carried_over(tiny_model, tiny_plain_model,
                                                                                tmp_path):
    new = build_tiny_model(tmp_path / "prod-v2", seed=5)
    path, store = _lineage_config(tmp_path, tiny_model, tiny_plain_model), tmp_path / "store.sqlite"
    first = capgap("run", str(path), "--store", str(store))
    assert first.returncode == 0, first.stderr[-2000:]

    rebased = capgap("rebase", str(path), "--to", str(new), "--budget", "50%", "--store", str(store))
    assert rebased.returncode == 0, rebased.stderr[-3000:]
    log = rebased.stderr
    assert f"rebase prod: prod@1 ({tiny_model}) -> prod@2 ({new}); re-running 1 of 2 teacher(s) on prod@2" in log
    assert "reused from the store: 4 finished cell(s) of prod@1" in log
    assert log.count("[stored]") == 4 and log.count("[train]") == 2  # the leader's two seeds, on prod@2 only
    assert "not re-run: rsr rank moved by" in log
    assert "What carried over from prod@1 to prod@2:" in rebased.stdout
    assert f"{{name: prod, checkpoints: [{tiny_model}, {new}]}}" in rebased.stdout  # the entry to write

    with Store(store) as s:
        cells = [c for c in s.study.cells("lin") if c["status"] == "done"]
        baselines = {c["student"]: c["pre_eval_key"] for c in cells}
        for c in cells:  # every post pairs with the baseline of the checkpoint it was trained from
            assert s.evaluation(c["pre_eval_key"]).model == c["student"]
        config = s.study.studies()[0]["config"]
    assert len(set(baselines.values())) == 2 and set(baselines) == {str(tiny_model), str(new)}
    assert config["lineages"] == [{"name": "prod", "checkpoints": [str(tiny_model), str(new)]}]
    report = json.loads((tmp_path / "lin" / "report.json").read_text())["studies"][0]
    (view,) = report["lineages"]
    assert [p["checkpoint"] for p in view["checkpoints"]] == ["prod@1", "prod@2"]
    (step,) = view["steps"]
    carried = {t["teacher"]: t["carried"] for t in step["teachers"]}
    assert len(carried) == 2 and sum(v == "not re-run" for v in carried.values()) == 1
    rerun = next(t for t in step["teachers"] if t["carried"] != "not re-run")
    lo, hi = rerun["change"]["ci95"]
    assert lo <= rerun["change"]["estimate"] <= hi and rerun["n_items"] == 6
    assert step["baseline_drift"]["n_items"] == 6 and len(step["deployment"]) == 2

    again = capgap("rebase", str(path), "--to", str(new), "--budget", "50%", "--store", str(store))
    assert again.returncode == 0 and again.stderr.count("[train]") == 0  # a second rebase finds it all stored
    copy = tmp_path / "prod-copy"
    shutil.copytree(tiny_model, copy)
    one_error_line(capgap("rebase", str(path), "--to", str(copy), "--store", str(store)),
                   f"--to {copy} holds the same weights as {tiny_model}")

    with contextlib.closing(sqlite3.connect(store)) as db:  # a post paired with the other checkpoint's baseline
        db.execute("UPDATE cells SET pre_eval_key=? WHERE student=?", (baselines[str(tiny_model)], str(new)))
        db.commit()
    one_error_line(capgap("report", str(store)), f"trains {new} but is paired with the baseline of {tiny_model}")


def test_rebase_after_the_keys_changed_re_evaluates_the_old_checkpoint(tiny_model, tiny_plain_model, tmp_path):
    """A store written before an engine or evaluation key changed (a capgap upgrade): the old checkpoint's
    finished cells no longer match this run's keys. The rebase keeps them, reuses their trained checkpoints
    and evaluates them under this run's settings, so the lineage report still holds the old checkpoint."""
    new = build_tiny_model(tmp_path / "prod-v2", seed=5)
    path, store = _lineage_config(tmp_path, tiny_model, tiny_plain_model), tmp_path / "store.sqlite"
    assert capgap("run", str(path), "--store", str(store)).returncode == 0
    with contextlib.closing(sqlite3.connect(store)) as db:  # the keys an older capgap computed
        for table in ("cells", "planned_cells"):
            db.execute(f"UPDATE {table} SET cell_key = 'older-' || cell_key")
        db.commit()

    rebased = capgap("rebase", str(path), "--to", str(new), "--budget", "50%", "--store", str(store))
    assert rebased.returncode == 0, rebased.stderr[-3000:]
    log = rebased.stderr
    assert "reused from the store: 4 finished cell(s) of prod@1" in log
    assert log.count("[reuse]") == 4 and log.count("[stored]") == 0 and log.count("[train]") == 2
    report = json.loads((tmp_path / "lin" / "report.json").read_text())["studies"][0]
    (view,) = report["lineages"]
    assert [p["checkpoint"] for p in view["checkpoints"]] == ["prod@1", "prod@2"]
    (step,) = view["steps"]
    assert len(step["teachers"]) == 2 and sum(t["carried"] == "not re-run" for t in step["teachers"]) == 1


def test_rebase_onto_a_lora_checkpoint_trains_from_its_merged_weights_and_saves_them_whole(tiny_model,
                                                                                        tiny_plain_model, tmp_path):
    """The new checkpoint is a LoRA adapter (as capgap's own training writes one): its baseline and its cells run,
    and each cell trained from it is saved whole (an adapter names one base; theirs is the adapter merged)."""
    new = build_adapter(tiny_model, tmp_path / "prod-v2")
    path, store = _lineage_config(tmp_path, tiny_model, tiny_plain_model), tmp_path / "store.sqlite"
    assert capgap("run", str(path), "--store", str(store)).returncode == 0
    rebased = capgap("rebase", str(path), "--to", str(new), "--store", str(store))
    assert rebased.returncode == 0, rebased.stderr[-3000:]
    assert rebased.stderr.count("[train]") == 4 and rebased.stderr.count("[stored]") == 4
    with Store(store) as s:
        cells = [c for c in s.study.cells("lin") if c["status"] == "done" and c["student"] == str(new)]
        assert len(cells) == 4 and {s.evaluation(c["pre_eval_key"]).model for c in cells} == {str(new)}
    assert all((Path(c["checkpoint"]) / "config.json").is_file() for c in cells)
    report = json.loads((tmp_path / "lin" / "report.json").read_text())["studies"][0]
    assert [p["checkpoint"] for p in report["lineages"][0]["checkpoints"]] == ["prod@1", "prod@2"]


def test_rebase_refuses_what_it_cannot_do(tiny_model, tiny_plain_model, tmp_path):
    path, store = _lineage_config(tmp_path, tiny_model, tiny_plain_model), tmp_path / "store.sqlite"
    one_error_line(capgap("rebase", str(path), "--to", str(tmp_path / "v2"), "--store", str(store)),
                   "study 'lin' has no finished cell of")
    one_error_line(capgap("rebase", str(path), "--to", str(tiny_model), "--store", str(store)),
                   "is the checkpoint the study was run on")
    one_error_line(capgap("rebase", str(path), "--to", "x", "--from", "nope", "--store", str(store)),
                   "--from nope: no lineage of the config holds it")
    one_error_line(capgap("rebase", str(path), "--to", "x", "--budget", "0", "--store", str(store)),
                   "--budget '0' must be above 0")


def test_the_shipped_lineage_example_validates():
    from pathlib import Path

    from capgap.study.validate import check_file
    from tests.conftest import shared_data

    examples = Path(__file__).parents[2] / "examples"
    result = check_file(examples / "lineage-arith-cpu.yaml")
    assert result.problems == [] and "cells: 6 = 1 task(s) x 1 student(s) x 2 teacher(s)" in "\n".join(result.plan)
    data = shared_data("gsm8k/train.jsonl")
    weekly = check_file(examples / "lineage" / "weekly-finetune.yaml", str(data.parents[1]))
    assert weekly.problems == [] and "task gsm8k: 96 training questions" in "\n".join(weekly.plan)
