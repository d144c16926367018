from pathlib import Path

import pytest
import yaml

from capgap.config import load_config, parse
from capgap.errors import CapgapError
from capgap.study.validate import validate_file
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("src/capgap/recipes/*.yaml")])


def test_there_are_shipped_configs():
    assert {p.name for p in SHIPPED} >= {"quickstart.yaml", "svamp-six-teachers.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path):
    config = load_config(path)
    assert config.tasks and config.students and config.teachers
    if "svamp" in path.name and not SHARED_DATA.exists():
        pytest.skip("../shared/data is absent")
    assert validate_file(path) == []


def test_every_problem_is_reported_with_its_path():
    _, problems = parse({
        "name": "x",
        "tasks": [{"name": "arith", "pool": {"first": 5, "rest": True}, "test": {}}],
        "students": [],
        "teachers": [{"name": "a", "kind": "modle"}, {"name": "a", "kind": "model", "sampels": 2},
                     {"name": "b", "kind": "imported"}],
        "protocols": ["own-corect"],
        "training": {"steps": "many", "learning_rate": "2e-4"},
        "evaulation": {},
    })
    text = "\n".join(problems)
    for expected in [
        "tasks[0].pool: choose exactly one of first or match_file (got first, rest)",
        "tasks[0].pool.rest: only a test split can be the rest",
        "tasks[0].test: choose exactly one of first, match_file or rest (got none)",
        "teachers[0].kind: 'modle' is not one of: reference, model, imported",
        "teachers[1].sampels: unknown key (did you mean 'samples'?)",
        "teachers[1].model: required for a model teacher",
        "teachers[1].name: 'a' names two teachers",
        "teachers[2].files: required for an imported teacher",
        "protocols[0]: unknown protocol 'own-corect' (did you mean 'own-correct'?)",
        "training.steps: expected int, got str 'many'",
        "evaulation: unknown key (did you mean 'evaluation'?)",
        "students: must list at least one entry",
    ]:
        assert expected in text, f"missing: {expected}\n{text}"
    assert "learning_rate" not in text  # "2e-4" is a number YAML 1.1 leaves as a string


def test_load_config_raises_one_error_naming_all_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "tasks": [], "students": ["m"], "teachers": []}))
    with pytest.raises(CapgapError, match=r"2 problem\(s\): tasks: must list.*; teachers: must list"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntasks: [\n")
    with pytest.raises(CapgapError, match=r"broken.yaml line \d+: not valid YAML"):
        load_config(broken)


def test_validate_finds_data_problems(tmp_path):
    config = {"name": "v", "students": ["smollm"], "teachers": [{"name": "t", "kind": "imported",
                                                                  "files": ["nope.json"]}],
              "tasks": [{"name": "arith", "options": {"n": 20}, "pool": {"first": 15}, "test": {"first": 10}}]}
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(config))
    problems = "\n".join(validate_file(path))
    assert "students[0]: unknown model 'smollm'" in problems
    assert "tasks[0]: 10 test items also appear in the training pool" in problems
    config["tasks"][0]["test"] = {"rest": True}
    path.write_text(yaml.safe_dump(config))
    problems = "\n".join(validate_file(path))
    assert "teachers[0] on tasks[0]: data file" in problems and "nope.json not found" in problems
