"""A whole tiny grid end to end: two teachers (gold rationales, a model), one student, real training."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from capgap.store import Store


def write_config(tmp_path, student, teacher_model, name="tiny"):
    config = {
        "name": name,
        "tasks": [{"name": "arith", "options": {"n": 40, "seed": 3, "max_steps": 2},
                   "pool": {"first": 16}, "test": {"rest": True, "limit": 6}}],
        "students": [str(student)],
        "teachers": [{"name": "gold", "kind": "reference"},
                     {"name": "tutor", "kind": "model", "model": str(teacher_model), "max_new_tokens": 8,
                      "samples": 2, "prompt": {"style": "few-shot-cot", "shots": 2}}],
        "protocols": ["unfiltered", "own-correct"],
        "training": {"method": "lora", "steps": 2, "batch_size": 4, "max_length": 400},
        "evaluation": {"max_new_tokens": 8, "batch_size": 8, "dtype": "float32"},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def capgap(*args, default_engine: bool = False, **kwargs):
    """`capgap ARGS` in a subprocess, on the suite's pinned engine (hf), or on `auto` with `default_engine`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if default_engine:
        env.pop("CAPGAP_ENGINE", None)
    return subprocess.run([sys.executable, "-m", "capgap", *args], capture_output=True, text=True, env=env,
                          timeout=600, **kwargs)


def test_tiny_grid_runs_and_resumes_from_the_store(tiny_model, tiny_plain_model, tmp_path):
    config = write_config(tmp_path, tiny_model, tiny_plain_model)
    store_path = tmp_path / "store.sqlite"
    assert capgap("validate", str(config)).returncode == 0
    first = capgap("run", str(config), "--store", str(store_path))
    assert first.returncode == 0, first.stderr[-2000:]
    # gold rationales are all correct; 2 steps x batch 4 draw 8 of the 16
    assert "| gold | unfiltered | 100.0% | 8 of 16 |" in first.stdout
    assert "| tutor | unfiltered |" in first.stdout
    with Store(store_path) as store:
        cells = [c for c in store.study.cells("tiny") if c["status"] == "done"]
        assert {(c["teacher"], c["protocol"]) for c in cells} >= {("gold", "unfiltered"), ("gold", "own-correct"),
                                                                  ("tutor", "unfiltered")}
        for c in cells:
            pre, post = store.items(c["pre_eval_key"]), store.items(c["post_eval_key"])
            assert set(pre) == set(post) and len(post) == 6  # paired per test item
            assert c["steps"] == 2 and c["effective_batch"] == 4 and len(json.loads(c["loss_curve_json"])) == 2
        test_ids = set(store.items(cells[0]["pre_eval_key"]))
        trained = {i for c in cells for i in json.loads(c["train_item_ids_json"])}
        assert not test_ids & trained  # no test item in any training set
        skipped = [c for c in store.study.cells("tiny") if c["status"] == "skipped"]
        assert all(c["n_train"] == 0 for c in skipped)  # e.g. a teacher with no correct rationale
        assert len(cells) + len(skipped) == 4  # every (teacher, protocol) is recorded
        teachers = {t["teacher"]: t for t in store.study.teachers("tiny")}
        assert teachers["gold"]["accuracy"] == 1.0 and teachers["tutor"]["params"] > 0
    report = json.loads((tmp_path / "tiny" / "report.json").read_text())  # `capgap run` ends with the report
    assert f"report: {tmp_path / 'tiny' / 'report.html'}" in first.stdout
    (study,) = report["studies"]
    assert {(g["teacher"], g["protocol"]) for g in study["cells"]} == {(c["teacher"], c["protocol"]) for c in
                                                                       cells + skipped}
    # the tiny random model writes until its token limit: every trained cell's baseline is cut, so no verdict
    assert {g["verdict"] for g in study["cells"] if g["gain"] is not None} == {"no verdict: baseline cut"}
    assert all(g["verdict"] == "not trained" for g in study["cells"] if g["gain"] is None)
    assert (tmp_path / "tiny" / "report.md").is_file() and (tmp_path / "tiny" / "report.html").is_file()
    again = capgap("run", str(config), "--store", str(store_path))
    assert again.returncode == 0 and "[train]" not in again.stderr and "[stored]" in again.stderr
    assert again.stdout == first.stdout  # the table is rebuilt from the store alone


def test_killed_during_training_only_unfinished_cells_run_again(tiny_model, tiny_plain_model, tmp_path):
    config = write_config(tmp_path, tiny_model, tiny_plain_model, name="killed")
    store_path = tmp_path / "store.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "capgap", "run", str(config), "--store", str(store_path)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    trains = 0
    deadline = time.time() + 300
    for line in proc.stderr:  # kill -9 as soon as the second cell starts training
        trains += "[train]" in line
        if trains == 2 or time.time() > deadline:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert trains == 2
    with Store(store_path) as store:
        finished = [c for c in store.study.cells("killed") if c["status"] == "done"]
    assert len(finished) == 1
    rerun = capgap("run", str(config), "--store", str(store_path))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stderr.count("[stored]") == 1  # the finished cell is not redone
    assert f"gold ({finished[0]['protocol']}, seed 0)" in rerun.stderr.split("[stored]")[1].splitlines()[0]
