"""A task's pool and test split from separate sources (a published train file and test file, or one file
split by a field), under a name of its own."""

import json

import pytest

from capgap.config import parse
from capgap.errors import CapgapError
from capgap.study.data import prepare_task
from capgap.study.validate import check_file

FIELDS = {"question": "q", "answer": "a", "rationale": "why"}


def _records(prefix: str, n: int, split: str | None = None) -> list[dict]:
    return [{"q": f"{prefix} question {i}: is {i} even?", "a": i % 2 == 0, "why": f"{i} ends in {i}. So yes.",
             **({"split": split} if split else {})} for i in range(n)]


def _jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path.name


def _task(tmp_path, pool: dict, test: dict, **options) -> dict:
    return {"name": "evenness", "kind": "jsonl", "pool": pool, "test": test,
            "options": {"fields": FIELDS, "answer_type": "yesno", **options}}


def _config(tmp_path, *tasks) -> dict:
    return {"name": "sources", "tasks": list(tasks), "students": ["smollm2-135m-instruct"],
            "teachers": [{"name": "gold", "kind": "reference"}], "data_dir": str(tmp_path)}


def _prepared(tmp_path, task: dict):
    config, problems = parse(_config(tmp_path, task))
    assert not problems, problems
    return prepare_task(config.tasks[0], 0, config.data_dir)


def test_a_published_train_file_and_test_file_make_the_pool_and_the_test_split(tmp_path):
    _jsonl(tmp_path / "train.jsonl", _records("train", 30))
    _jsonl(tmp_path / "test.jsonl", _records("test", 12))
    st = _prepared(tmp_path, _task(tmp_path, {"data": "train.jsonl"}, {"data": "test.jsonl"}))
    assert st.name == st.task.name == st.test.name == "evenness"  # the task's own name, not "jsonl"
    assert len(st.pool) == 30 - 8 and len(st.test.items) == 12  # every test item; 8 train items are the shots
    assert all(it.question.startswith("train") for it in st.pool + st.test.exemplars)
    assert all(it.question.startswith("test") for it in st.test.items)
    assert st.task.definition["pool"]["file"] == "train.jsonl" and st.task.definition["test"]["file"] == "test.jsonl"
    one_file = _prepared(tmp_path, _task(tmp_path, {"first": 10}, {"rest": True}, data="train.jsonl"))
    assert st.test.definition != one_file.test.definition  # the test file's items key its evaluations


def test_one_file_split_by_a_field(tmp_path):
    _jsonl(tmp_path / "all.jsonl", _records("train", 20, "train") + _records("test", 7, "test"))
    task = _task(tmp_path, {"where": {"split": "train"}, "first": 10}, {"where": {"split": ["test", "dev"]}},
                 data="all.jsonl")
    st = _prepared(tmp_path, task)
    assert len(st.pool) == 10 and [it.question[:4] for it in st.test.items] == ["test"] * 7
    assert st.task.definition["test"]["where"] == {"split": ["test", "dev"]}


def test_a_where_that_selects_nothing_names_the_values_it_found(tmp_path):
    _jsonl(tmp_path / "all.jsonl", _records("train", 20, "train"))
    task = _task(tmp_path, {"where": {"split": "train"}}, {"where": {"split": "test"}}, data="all.jsonl")
    with pytest.raises(CapgapError, match=r"all.jsonl: no record matches where \{'split': 'test'\} \(values found: "
                                          r"split: train\); fix where"):
        _prepared(tmp_path, task)


def test_a_hub_split_name_on_a_local_file_is_refused_with_the_fix(tmp_path):
    _jsonl(tmp_path / "all.jsonl", _records("train", 20, "train") + _records("test", 7, "test"))
    task = _task(tmp_path, {"split": "train"}, {"split": "test"}, data="all.jsonl")
    with pytest.raises(CapgapError, match=r"split 'train' names a Hub dataset split, but .*all.jsonl is a local "
                                          r"file; select its records with where: \{FIELD: train\} instead"):
        _prepared(tmp_path, task)


def test_a_question_in_both_files_is_a_leak(tmp_path):
    _jsonl(tmp_path / "train.jsonl", _records("same", 20))
    _jsonl(tmp_path / "test.jsonl", _records("same", 20)[15:])
    with pytest.raises(CapgapError, match="tasks\\[0\\]: 5 test items also appear in the training pool"):
        _prepared(tmp_path, _task(tmp_path, {"data": "train.jsonl"}, {"data": "test.jsonl"}))


def test_two_file_tasks_in_one_study_have_their_own_names_and_validate_with_a_plan(tmp_path):
    _jsonl(tmp_path / "a.jsonl", _records("a", 30))
    _jsonl(tmp_path / "b.jsonl", _records("b", 30))
    first = {**_task(tmp_path, {"first": 12}, {"rest": True}, data="a.jsonl"), "name": "task-a"}
    second = {**_task(tmp_path, {"first": 12}, {"rest": True}, data="b.jsonl"), "name": "task-b"}
    path = tmp_path / "study.yaml"
    path.write_text(json.dumps(_config(tmp_path, first, second)))
    result = check_file(path)
    assert result.problems == []
    tasks = [line for line in result.plan if line.startswith("task ")]
    assert [line.split(":")[0] for line in tasks] == ["task task-a", "task task-b"]
    assert "12 training questions, 10 test items" in tasks[0]
