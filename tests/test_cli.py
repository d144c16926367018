"""The CLI as a user runs it: a real process, real store file, real tiny model."""

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


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


def store_contents(store) -> list[str]:
    """Every table's schema and every row of a SQLite store, as SQL statements."""
    with contextlib.closing(sqlite3.connect(store)) as db:
        return list(db.iterdump())


def every_path(folder) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def one_error_line(result, message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capgap: error: ") and message in lines[0], result.stderr


def test_bad_input_is_one_line_and_keeps_the_store(tiny_model, filled_store, tmp_path):
    store = tmp_path / "results" / "store.sqlite"
    store.parent.mkdir()
    shutil.copy(filled_store, store)
    before = store_contents(store)
    for args, message in [
        (["--model", "nope", "--task", "arith"], "unknown model 'nope'"),
        (["--model", str(tiny_model), "--task", "arithm"], "unknown task 'arithm'"),
        (["--model", str(tiny_model), "--task", "svamp", "--data", str(tmp_path / "x.json")], "not found"),
        (["--model", str(tiny_model), "--task", "arith", "--limit", "0"], "--limit must be a positive"),
        (["--model", str(tiny_model), "--task", "arith", "--max-new-tokens", str(10**9)],
         "--max-new-tokens: 1000000000 is out of range; must be between 1 and 131072"),
        (["--model", str(tiny_model), "--task", "arith", "--batch-size", "0"],
         "--batch-size: 0 is out of range; must be between 1 and 4096"),
        (["--model", str(tiny_model), "--task", "svamp", "--n", "4"],
         "--n does not apply to task 'svamp' (its options: data, split, where, duplicates)"),
        (["--model", str(tiny_model), "--task", "arith", "--data", "x.json"], "--data does not apply to task 'arith'"),
        (["--model", str(tiny_model), "--task", "jsonl", "--data", "x.json", "--answer-type", "colour"],
         "unknown answer type 'colour'"),
    ]:
        one_error_line(capgap("eval", *args, "--store", str(store)), message)
        assert store_contents(store) == before, args
    assert every_path(tmp_path) == {Path("results"), Path("results/store.sqlite")}


def test_eval_reads_a_data_file_task(tiny_model, tmp_path):
    data = tmp_path / "SVAMP.json"
    data.write_text(json.dumps([{"ID": "s1", "Body": "Ann has 3 apples", "Question": "How many apples?",
                                 "Answer": 3.0, "Equation": "( 3.0 )"},
                                {"ID": "s2", "Body": "Bo has 2 pens", "Question": "How many pens?", "Answer": 2.0}]))
    result = capgap("eval", "--model", str(tiny_model), "--task", "svamp", "--data", str(data),
                    "--max-new-tokens", "4", "--store", str(tmp_path / "s.sqlite"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["n"] == 2


def sound_study(**changes) -> dict:
    study = {"name": "clean", "tasks": [{"name": "arith", "options": {"n": 30, "max_steps": 2},
                                         "pool": {"first": 10}, "test": {"rest": True, "limit": 5}}],
             "students": ["smollm2-135m-instruct"], "teachers": [{"name": "ref", "kind": "reference"}],
             "training": {"steps": 2}}
    return {**study, **changes}


BAD_STUDIES = [
    (sound_study(tasks=[{"name": "arith", "options": {"max_step": 3}, "pool": {"first": 10}, "test": {"rest": True}}]),
     ["tasks[0].options.max_step: unknown option (did you mean 'max_steps'?)"]),
    (sound_study(tasks=[{"name": "arith", "pool": {"first": 10}, "test": {"rest": True, "limit": -3}}]),
     ["tasks[0].test.limit: -3 is out of range; must be >= 1"]),
    (sound_study(name="../escape"), ["name: '../escape' is not a plain name"]),
    (sound_study(seeds=[0, 0], protocols=["own-correct", "own-correct"],
                 teachers=[{"name": "ref", "kind": "reference", "samples": 2, "files": ["a.json"]}],
                 training={"steps": 2, "warmup_ratio": 1.0, "learning_rate": float("nan"), "epochs": 0}),
     ["seeds[1]: 0 repeats seeds[0]", "protocols[1]: 'own-correct' repeats protocols[0]",
      "teachers[0].samples: only model teachers take samples (kind here is 'reference')",
      "teachers[0].files: only imported teachers take files (kind here is 'reference')",
      "training.warmup_ratio: 1.0 is out of range; must be >= 0 and < 1",
      "training.learning_rate: nan is not a finite number", "training.epochs: 0.0 is out of range; must be > 0",
      "training.steps: is ignored when epochs is set"]),
]


@pytest.mark.parametrize(("study", "expected"), BAD_STUDIES, ids=["option-typo", "limit", "name", "many"])
def test_a_bad_study_is_rejected_before_the_store_is_touched(filled_store, tmp_path, study, expected):
    store = tmp_path / "results" / "store.sqlite"
    store.parent.mkdir()
    shutil.copy(filled_store, store)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    before, paths = store_contents(store), every_path(tmp_path)
    validate = capgap("validate", str(config))
    assert validate.returncode == 2 and f"{len(expected)} problem(s)" in validate.stderr, validate.stderr
    problems = validate.stdout.strip().splitlines()
    assert len(problems) == len(expected), validate.stdout
    assert all(line.startswith(f"{config}: ") for line in problems), problems
    for fragment in expected:
        assert sum(fragment in line for line in problems) == 1, (fragment, problems)
    run = capgap("run", str(config), "--store", str(store))
    one_error_line(run, f"{len(expected)} problem(s)")
    assert all(fragment in run.stderr for fragment in expected), run.stderr
    assert store_contents(store) == before
    assert every_path(tmp_path) == paths  # no run folder, nothing else written


def test_models_and_tasks_are_listed():
    models = capgap("models")
    assert models.returncode == 0 and "smollm2-135m-instruct" in models.stdout and "gemma3-270m" in models.stdout
    tasks = capgap("tasks")
    assert all(name in tasks.stdout for name in ("arith", "svamp", "gsm8k", "jsonl"))


def test_validate_prints_the_plan_a_user_checks_before_a_run(tiny_model, tmp_path):
    from capgap.tasks import load_task

    pool = load_task("arith", n=30, max_steps=2).items[:10]
    rows = [{"question": it.question, "rationale": f"Adding up. The answer is {it.answer if i < 4 else 999}."}
            for i, it in enumerate(pool[:7])]  # 7 of 10 pool questions, the first 4 right
    rows += [{"question": "Not a pool question at all?", "rationale": "The answer is 1."},
             {"question": pool[0].question, "rationale": "Again. The answer is 5."}]  # unmatched, repeated
    (tmp_path / "imported.json").write_text(json.dumps(rows))
    study = sound_study(students=[str(tiny_model)], data_dir=str(tmp_path), protocols=["own-correct", "unfiltered"],
                        seeds=[0, 1, 2], teachers=[{"name": "ref", "kind": "reference"},
                                                   {"name": "file", "kind": "imported", "files": ["imported.json"]}])
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    result = capgap("validate", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{config}: ok"
    assert "  task arith: 10 training questions, 5 test items, disjoint (no shared id or question text)" in lines
    assert "    teacher ref: rationales for 10 of 10 pool questions, 100.0% correct by capgap's checker" in lines
    assert ("    teacher file: rationales for 7 of 10 pool questions, 40.0% correct by capgap's checker; 1 of 9 "
            "records match no pool question (e.g. 'Not a pool question at all?'); 1 repeated questions (the first "
            "rationale of each kept)") in lines
    assert "  cells: 12 = 1 task(s) x 1 student(s) x 2 teacher(s) x 2 protocol(s) x 3 seed(s)" in lines
    assert any(line.startswith("  work: at most 12 training runs of 2 optimizer steps") for line in lines)
    # 12 cells x 2 steps x batch 8 x 384 tokens; (5 baseline + 60 post-distillation answers) x 256 new tokens
    assert ("  cost (upper bounds): 74k tokens trained on, 17k tokens generated in evaluations") in lines
