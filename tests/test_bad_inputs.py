"""The inputs a held-out check still found slipping through (issue 23), through the real CLI: each is one
clear line naming where, what and the fix, before anything is written; non-ASCII names are names."""

import contextlib
import json
import sqlite3
from pathlib import Path

import yaml

from capgap.filepaths import folder_name
from capgap.store import Store
from tests.study.test_grid import write_config
from tests.test_cli import capgap, every_path, one_error_line

EVAL = ["--max-new-tokens", "8", "--batch-size", "4"]


def test_a_store_whose_schema_version_is_not_a_number_is_one_line_and_left_alone(tiny_model, tmp_path):
    store = tmp_path / "store.sqlite"
    with Store(store):
        pass
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.execute("UPDATE meta SET value='two' WHERE key='schema_version'")
        db.commit()
    before = store.read_bytes()
    message = f"results store {store}: its schema version 'two' is not a number"
    one_error_line(capgap("eval", "--model", str(tiny_model), "--task", "arith", "--n", "4", *EVAL,
                          "--store", str(store)), message)
    one_error_line(capgap("report", str(store)), message)
    assert store.read_bytes() == before


def test_a_number_task_with_golds_that_are_no_numbers_is_refused(tiny_model, tmp_path):
    data = tmp_path / "d.jsonl"
    for gold, shown in (("Paris 2024", "'Paris 2024'"), ("3:45", "'3:45'"), ("5 or 6", "'5 or 6'")):
        data.write_text(json.dumps({"q": "What is it?", "a": "7"}) + "\n" + json.dumps({"q": "And?", "a": gold}) + "\n")
        result = capgap("eval", "--model", str(tiny_model), "--task", "jsonl", "--data", str(data),
                        "--fields", "question=q,answer=a", *EVAL, "--store", str(tmp_path / "s.sqlite"))
        one_error_line(result, f"{data} line 2: field 'a' = {shown} is not one number")
        assert "fix the value or choose another --answer-type" in result.stderr
    assert every_path(tmp_path) == {Path("d.jsonl")}
    data.write_text(json.dumps({"q": "What is it?", "a": "$1,200"}) + "\n")  # one number, as written
    result = capgap("eval", "--model", str(tiny_model), "--task", "jsonl", "--data", str(data),
                    "--fields", "question=q,answer=a", *EVAL, "--store", str(tmp_path / "s.sqlite"), "--json")
    assert result.returncode == 0 and json.loads(result.stdout.splitlines()[-1])["n"] == 1


def test_task_flags_are_named_as_typed(tiny_model, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"q": "What is it?", "a": "7"}) + "\n")
    store = ["--store", str(tmp_path / "s.sqlite")]
    cases = [(["--task", "jsonl", "--data", str(data), "--fields", "garbage"], "--fields: cannot read 'garbage'"),
             (["--task", "jsonl", "--data", str(data), "--fields", "question=q,answer=a,bogus=x"],
              "--fields: unknown role 'bogus'"),
             (["--task", "arith", "--n", "0"], "--n: 0 is out of range; must be between 1 and 1000000"),
             (["--task", "arith", "--seed", "-1"], "--seed: -1 is out of range")]
    for args, message in cases:
        one_error_line(capgap("eval", "--model", str(tiny_model), *args, *EVAL, *store), message)
    assert every_path(tmp_path) == {Path("d.jsonl")}


def test_non_ascii_study_task_and_teacher_names_run_and_are_shown(tiny_model, tiny_plain_model, tmp_path):
    name = "tïny-研究"
    path = write_config(tmp_path, tiny_model, tiny_plain_model, name="unicode")
    config = yaml.safe_load(path.read_text())
    config["name"] = name
    config["tasks"][0]["name"], config["tasks"][0]["kind"] = "ärith", "arith"
    config["teachers"] = [{"name": "référence-老师", "kind": "reference"}]
    config["protocols"] = ["unfiltered"]
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert capgap("validate", str(path)).returncode == 0
    result = capgap("run", str(path), "--store", str(tmp_path / "store.sqlite"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| référence-老师 | unfiltered |" in result.stdout
    folder = tmp_path / folder_name(name)
    assert folder.name.isascii() and folder.name.startswith("tiny-__-")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))["studies"][0]
    assert report["study"] == name and {c["teacher"] for c in report["cells"]} == {"référence-老师"}
    assert name in (folder / "report.md").read_text(encoding="utf-8")
    assert "référence-老师" in (folder / "report.html").read_text(encoding="utf-8")
    assert folder_name("tïny-研究") != folder_name("tïny-研究2") and folder_name("plain-name") == "plain-name"
