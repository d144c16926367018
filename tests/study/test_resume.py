"""Runs that share a store, are killed, find damaged checkpoints or an edited config: a real tiny study each time.

Nothing finished is lost or hidden, nothing is trained twice, and a resumed run ends with the store an
uninterrupted one has, bit for bit (`capgap.store.snapshot`: every row but time stamps and paths).
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from capgap.store import Store, differences, snapshot
from capgap.training.checkpoints import file_hashes, staging_folder
from tests.study.conftest import copy_of
from tests.study.test_grid import capgap, write_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_damaged_checkpoint_is_trained_again_and_dead_staging_folders_are_removed(finished, tmp_path):
    config, store, run_dir = copy_of(finished, tmp_path)
    with Store(store) as s:
        cell = next(c for c in s.study.cells("resume") if c["status"] == "done")
    checkpoint = Path(cell["checkpoint"])
    hashes = file_hashes(checkpoint)
    with sqlite3.connect(store) as db:  # killed after training, and the weights file was cut short
        db.execute("UPDATE cells SET status='trained', post_eval_key=NULL WHERE cell_key=?", (cell["cell_key"],))
    weights = next(checkpoint.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    # a killed run's staging folder (pid above pid_max: never a live process), and another machine's
    staging = staging_folder(run_dir / "checkpoints" / cell["train_key"], 4194305)
    elsewhere = staging_folder(run_dir / "checkpoints" / cell["train_key"], 4194305, host="other-machine")
    elsewhere.mkdir()
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"partial")
    rerun = capgap("run", str(config), "--store", str(store), "--run-dir", str(run_dir))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"removed {staging}: an unfinished checkpoint of a run that was killed" in rerun.stderr
    assert "[damaged]" in rerun.stderr and "does not match the hash recorded" in rerun.stderr
    assert rerun.stderr.count("[train]") == 1 and not staging.exists() and elsewhere.exists()
    assert file_hashes(checkpoint) == hashes  # trained again to the same weights
    assert differences(snapshot(store), snapshot(finished[1])) == []


def test_report_finds_the_store_of_a_run_folder_placed_anywhere(finished, tmp_path):
    config, store, _ = finished
    (tmp_path / "results").mkdir()
    shutil.copy(store, tmp_path / "results" / "store.sqlite")
    elsewhere = tmp_path / "elsewhere" / "run"
    run = capgap("run", str(config), "--store", str(tmp_path / "results" / "store.sqlite"), "--run-dir", str(elsewhere))
    assert run.returncode == 0 and "[train]" not in run.stderr, run.stderr[-2000:]
    assert f"rebuild with `capgap report {elsewhere}`" in run.stdout
    assert json.loads((elsewhere / "capgap-run.json").read_text()) == {"store": "../../results/store.sqlite",
                                                                      "study": "resume"}
    report = capgap("report", str(elsewhere), "--format", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads((elsewhere / "report.json").read_text())["studies"][0]["study"] == "resume"


def test_two_runs_of_one_study_on_one_store_split_the_cells(finished, tiny_model, tiny_plain_model, tmp_path):
    config = write_config(tmp_path, tiny_model, tiny_plain_model, name="resume")
    store = tmp_path / "store.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "capgap", "run", str(config), "--store", str(store)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    trained = sum(err.count("[train]") for _, err in outputs)
    with Store(store) as s:
        cells = s.study.cells("resume")
    # every checkpoint trained once, by one of the runs (cells with the same training key share one)
    assert trained == len({c["train_key"] for c in cells if c["status"] == "done"})
    assert len({c["cell_key"] for c in cells}) == len(cells) and all(c["status"] in ("done", "skipped") for c in cells)
    assert outputs[0][0] == outputs[1][0]  # both report the same finished study
    assert any("another run (" in err for _, err in outputs)  # they overlapped: one waited for or left work
    assert differences(snapshot(store), snapshot(finished[1])) == []


def test_an_edited_config_keeps_the_finished_cells_of_the_earlier_one_visible(finished, tmp_path):
    config, store, run_dir = copy_of(finished, tmp_path)
    with Store(store) as s:
        before = {c["cell_key"]: c for c in s.study.cells("resume")}
    edited = yaml.safe_load(config.read_text())
    edited["training"]["steps"] = 3
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(edited))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "capgap", "run", str(tmp_path / "edited.yaml"), "--store",
                             str(store), "--run-dir", str(run_dir)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    for line in proc.stderr:  # the edited run fails (is killed) before it finishes a cell
        if "[train]" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    result = capgap("report", str(run_dir), "--format", "json")
    assert result.returncode == 0, result.stderr
    study = json.loads((run_dir / "report.json").read_text())["studies"][0]
    done = [c for c in before.values() if c["status"] == "done"]
    assert study["config_version"] == 2 and study["config"]["training"]["steps"] == 3
    (entry,) = study["superseded"]
    assert entry["config_version"] == 1 and entry["n_cells"] == len(done)
    assert "training.steps: 2 → 3" in entry["changes"]
    markdown = capgap("report", str(run_dir), "--format", "md")
    assert markdown.returncode == 0
    text = (run_dir / "report.md").read_text()
    assert f"No finished cell of config version 2 yet; {len(done)} cell(s) finished under earlier versions" in text
    assert "training.steps: 2 → 3" in text
    with Store(store) as s:
        assert sorted(s.study.config_versions("resume")) == [1, 2]
        after = {c["cell_key"]: c for c in s.study.cells("resume")}
    assert all(after[key] == cell for key, cell in before.items())  # the earlier cells are untouched
    readme = (ROOT / "README.md").read_text()
    block = readme.split("- per superseded entry")[1].split("###")[0].split("- `choosing`")[0]
    assert set(entry) == set(re.findall(r"`(\w+)`", block))


def test_a_study_killed_at_any_moment_resumes_to_the_uninterrupted_result(tmp_path):
    """The kill drill (bench/kill_drill.py): SIGKILL at five moments, resume, compare bit for bit."""
    out = tmp_path / "drill.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "kill_drill.py"), "--out", str(out)],
                            capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    results = json.loads(out.read_text())["results"]
    assert result.returncode == 0, (result.stdout[-3000:], [r.get("problems") for r in results])
    moments = {r["moment"]: r for r in results}
    assert set(moments) == {"uninterrupted", "teacher", "baseline", "training", "trained", "post-eval"}
    assert all(r["killed"] and r["status"] == "PASS" for m, r in moments.items() if m != "uninterrupted")
    assert moments["trained"]["cells_when_killed"][-1] == "trained"  # killed between training and evaluation
    assert moments["training"]["resume_log_tags"]["stored"] >= 1  # the cell finished before the kill was kept
