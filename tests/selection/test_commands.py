"""capgap predict, select and the report's choosing section, end to end on a tiny real study (three teachers:
gold rationales and two tiny models; real scoring, real LoRA pilots, a real SQLite store)."""

import json
import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from capgap.store import Store
from tests.conftest import build_tiny_model
from tests.study.test_grid import capgap


@pytest.fixture(scope="module")
def config(tiny_model, tiny_plain_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("choosing")
    other = build_tiny_model(folder / "other", seed=2, chat=False, init_std=0.2)
    study = {
        "name": "choose",
        "tasks": [{"name": "arith", "options": {"n": 60, "seed": 3, "max_steps": 2},
                   "pool": {"first": 24}, "test": {"rest": True, "limit": 8}}],
        "students": [str(tiny_model)],
        "teachers": [{"name": "gold", "kind": "reference"},
                     {"name": "tutor", "kind": "model", "model": str(tiny_plain_model), "max_new_tokens": 8},
                     {"name": "rambler", "kind": "model", "model": str(other), "max_new_tokens": 8}],
        "protocols": ["unfiltered"],
        "seeds": [0, 1],
        "training": {"method": "lora", "steps": 4, "batch_size": 2, "max_length": 400},
        "evaluation": {"max_new_tokens": 8, "batch_size": 8, "dtype": "float32"},
    }
    path = folder / "choose.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_predict_ranks_every_teacher_and_a_second_run_reads_the_store(config, tmp_path):
    store = tmp_path / "s.sqlite"
    first = capgap("predict", str(config), "--store", str(store), "--sample", "6")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "ranked by rsr" in first.stdout and "predicted best:" in first.stdout
    with Store(store) as s:
        rows = s.selection.predictions("choose")
    assert {r["teacher"] for r in rows} == {"gold", "tutor", "rambler"}
    gold = next(r for r in rows if r["teacher"] == "gold")
    assert gold["scores"]["scored"] == 6 and gold["scores"]["usable"] == 24 and gold["tokens"] > 0
    assert gold["scores"]["teacher_accuracy"] == 1.0 and gold["scores"]["rsr"] > 0 and gold["seconds"] > 0
    again = capgap("predict", str(config), "--store", str(store), "--sample", "6", "--by", "nll")
    assert again.returncode == 0 and "[predict]" in again.stderr
    with Store(store) as s:
        assert s.selection.predictions("choose") == rows  # read back, not computed again
    assert "ranked by nll" in again.stdout


def test_select_runs_pilot_rounds_within_its_budget_and_the_report_validates_predictions(config, tmp_path):
    store = tmp_path / "s.sqlite"
    chosen = capgap("select", str(config), "--store", str(store), "--budget", "40%", "--prune", "rsr",
                    "--keep", "3")
    assert chosen.returncode == 0, chosen.stderr[-3000:]
    assert "choice:" in chosen.stdout and "compute used:" in chosen.stdout
    with Store(store) as s:
        (trace,) = s.selection.selections("choose")
        studies = {row["study"] for row in s.study.studies()}
    assert trace["choice"] in {"gold", "tutor", "rambler"} and trace["pruned"]["dropped"] == []
    rounds = trace["rounds"]
    assert len(rounds) == 1 and len(rounds[0]["arms"]) == 3  # three teachers: one round
    assert rounds[0]["steps"] < 4 and rounds[0]["seeds"] == 1 and trace["compute_share"] <= 0.45
    assert studies == {"choose.select-r1"}
    with sqlite3.connect(store) as db:  # the pilots trained at the round's steps
        steps = {r[0] for r in db.execute("SELECT steps FROM cells WHERE study='choose.select-r1'")}
    assert steps == {rounds[0]["steps"]}
    run = capgap("run", str(config), "--store", str(store))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "choose" / "report.json").read_text())
    (study,) = report["studies"]
    found = study["choosing"]
    assert len(found["predictions"]) == 3 and len(found["selections"]) == 1
    (family,) = found["validation"]
    assert sorted(family["teachers"]) == ["gold", "rambler", "tutor"] and family["seeds"] == [2]
    rsr = family["predictors"]["rsr"]
    assert rsr["regret_pp"] >= 0 and rsr["spearman_ci95"] == [None, None]  # 3 teachers: no CI
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme[readme.index("- `choosing`:"):]
    block = block[:block.index("\n\n")]
    documented = set(re.findall(r"`(\w+)`", block))
    in_json = set(found) | set(family) | set(rsr) | {"choosing"}
    assert documented == in_json, documented ^ in_json
    html = (tmp_path / "choose" / "report.html").read_text()
    assert "Choosing a teacher" in html and 'id="fig-choosing"' in html and "Budgeted selection" in html


@pytest.mark.parametrize("flags,message", [(["--budget", "0%"], "must be above 0"),
                                           (["--budget", "lots"], "is not a number"),
                                           (["--keep", "1"], "--keep must be at least 2")])
def test_bad_select_flags_give_one_clear_line(config, tmp_path, flags, message):
    result = capgap("select", str(config), "--store", str(tmp_path / "s.sqlite"), *flags)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists()
