"""`capgap plan CONFIG`: the run's work, what a real store holds of it, and its cost, offline."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from capgap.cli import main
from capgap.models import resolve
from capgap.models.loading import count_parameters
from capgap.store import Store
from capgap.study.workplan import model_params

ROOT = Path(__file__).resolve().parents[2]


def test_plan_reads_what_the_store_holds_and_what_an_edit_changed(finished, tiny_plain_model, tmp_path, capsys):
    config, store, _ = finished
    assert main(["plan", str(config), "--store", str(tmp_path / "none.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "stage 2, cells: 4 = 1 task(s) x 1 student(s) x 2 teacher(s) x 2 protocol(s) x 1 seed(s)" in out
    assert "not there yet, so a run does all of it" in out and not (tmp_path / "none.sqlite").exists()
    assert main(["plan", str(config), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    with Store(store) as s:
        finished_cells = [c for c in s.study.cells("resume") if c["status"] in ("done", "skipped")]
    assert len(finished_cells) == 4
    assert "holds this config as version 1: 2 of 2 teachers' rationales and 4 of 4 cells finished" in out
    edited = yaml.safe_load(config.read_text())
    edited["training"]["steps"] = 3
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(edited))
    assert main(["plan", str(tmp_path / "edited.yaml"), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "(version 1) differs (training.steps: 2 → 3): its 4 finished cell(s) do not count" in out
    # the cost: tokens as upper bounds; FLOPs 2 x params per generated token, 6 x params per trained token
    tutor = count_parameters(resolve(str(tiny_plain_model)))
    tokens = 2 * 16 * 8  # samples x pool questions x max_new_tokens
    row = next(line for line in out.splitlines() if line.strip().startswith("teacher tutor (auto)"))
    hours = float(row.split()[-1])
    assert row.split()[-2] == str(tokens)
    assert hours == pytest.approx(2 * tutor * tokens / 100e12 / 3600, rel=0.01)
    trained = 4 * 3 * 4 * 400  # cells x steps x batch x max_length
    assert re.search(rf"training .*: 4 run\(s\) \(lora\)\s+GPUs\s+{trained // 1000}k\s", out)


def test_plan_rates_are_checked_and_change_the_gpu_hours(finished, tmp_path, capsys):
    config, _, _ = finished
    store = str(tmp_path / "none.sqlite")
    assert main(["plan", str(config), "--store", store, "--train-tflops", "0"]) == 2
    assert "--train-tflops must be a positive rate in TFLOP/s, got 0.0" in capsys.readouterr().err
    totals = []
    for rate in ("100", "400"):
        assert main(["plan", str(config), "--store", store, "--train-tflops", rate, "--generate-tflops", rate]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if "total on this run's GPUs" in x)
        totals.append(float(line.split(":")[1].split()[0]))
    assert totals[0] == pytest.approx(4 * totals[1], rel=0.02)


@pytest.mark.parametrize(("spec", "declared", "expected", "how"), [
    ("Qwen/Qwen2.5-0.5B-Instruct", None, 0.5e9, "from its name"),
    ("Qwen/QwQ-32B", None, 32e9, "from its name"),
    ("meta-llama/Llama-3.1-8B@main", None, 8e9, "from its name"),
    ("smollm2-135m-instruct", None, 135e6, "from its name"),
    ("Qwen/QwQ-32B", 32.8e9, 32.8e9, "declared"),
    ("org/model", None, None, "unknown: declare params"),
])
def test_model_sizes_are_known_without_a_download(spec, declared, expected, how):
    assert model_params(spec, declared) == (expected, how)


def test_a_local_model_is_counted_from_its_config(tiny_model):
    assert model_params(str(tiny_model)) == (count_parameters(resolve(str(tiny_model))), "counted from its config")


def test_the_paper_scale_config_validates_and_plans_offline(tmp_path):
    """Nothing is downloaded and no server is contacted: the Hub and the teachers' endpoints are unreachable."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path)}
    paper = str(ROOT / "examples" / "paper-qwen-math.yaml")
    run = [sys.executable, "-m", "capgap"]
    validated = subprocess.run([*run, "validate", paper], capture_output=True, text=True, env=env, timeout=300)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "cells: 864 = 4 task(s) x 4 student(s) x 9 teacher(s) x 2 protocol(s) x 3 seed(s)" in validated.stdout
    assert "budget not matched, by the teachers' own: mix-long-published (300 steps x 20)" in validated.stdout
    assert "Hub dataset(s) DigitalLearningGmbH/MATH-lighteval, HuggingFaceH4/MATH-500, read at run time" in \
        validated.stdout
    planned = subprocess.run([*run, "plan", paper, "--store", str(tmp_path / "s.sqlite")], capture_output=True,
                             text=True, env=env, timeout=300)
    assert planned.returncode == 0, planned.stderr
    total = re.search(r"total on this run's GPUs: ([\d,.]+) GPU-hours", planned.stdout)
    assert total and 100 < float(total.group(1).replace(",", "")) < 5000
    assert "total on the teachers' servers:" in planned.stdout
    assert not list(tmp_path.rglob("*.parquet")) and not (tmp_path / "s.sqlite").exists()
