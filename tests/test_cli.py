"""The CLI as a user runs it: a real process, real store file, real tiny model."""

import json
import os
import subprocess
import sys


def capgap(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "capgap", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_eval_json_and_store_hit(tiny_model, tmp_path):
    store = tmp_path / "s.sqlite"
    args = ["eval", "--model", str(tiny_model), "--task", "arith", "--n", "4", "--max-new-tokens", "8",
            "--store", str(store), "--json"]
    first = capgap(*args)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["n"] == 4 and result["n_generated"] == 4 and len(result["ci95"]) == 2
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["accuracy_flexible"] <= 1
    assert "strict" in first.stdout and "flexible" in first.stdout and store.is_file()
    second = json.loads(capgap(*args).stdout.strip().splitlines()[-1])
    assert second["n_generated"] == 0 and second["accuracy"] == result["accuracy"]


def test_bad_input_is_one_line_and_keeps_the_store(tiny_model, tmp_path):
    store = tmp_path / "s.sqlite"
    ok = capgap("eval", "--model", str(tiny_model), "--task", "arith", "--n", "2", "--max-new-tokens", "4",
                "--store", str(store))
    assert ok.returncode == 0
    size = store.stat().st_size
    for args, message in [
        (["--model", "nope", "--task", "arith"], "unknown model 'nope'"),
        (["--model", str(tiny_model), "--task", "arithm"], "unknown task 'arithm'"),
        (["--model", str(tiny_model), "--task", "svamp", "--data", str(tmp_path / "x.json")], "not found"),
        (["--model", str(tiny_model), "--task", "arith", "--limit", "0"], "--limit must be a positive"),
    ]:
        bad = capgap("eval", *args, "--store", str(store))
        assert bad.returncode == 2
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("capgap: error: ") and message in lines[0], bad.stderr
    assert store.stat().st_size >= size


def test_models_and_tasks_are_listed():
    models = capgap("models")
    assert models.returncode == 0 and "smollm2-135m-instruct" in models.stdout and "gemma3-270m" in models.stdout
    tasks = capgap("tasks")
    assert all(name in tasks.stdout for name in ("arith", "svamp", "gsm8k", "jsonl"))
