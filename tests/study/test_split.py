"""`split: {train: 3, test: 2, seed: 0}`: a task's one source drawn into a pool and a test split by shares,
deterministic, stratified by answer for yes/no and choice tasks, with repeated questions kept on one side."""

import json
from collections import Counter

import pytest

from capgap.config import parse
from capgap.study.data import prepare_task
from tests.conftest import shared_data

FIELDS = {"question": "q", "answer": "a"}


def _config(tmp_path, task: dict) -> dict:
    return {"name": "shares", "tasks": [task], "students": ["smollm2-135m-instruct"],
            "teachers": [{"name": "gold", "kind": "reference"}], "data_dir": str(tmp_path)}


def _data(tmp_path, n: int = 200, yes_every: int = 4) -> str:
    """n yes/no items, a quarter of them yes; items 0-9 repeat as items 10-19 (same question, other ids)."""
    records = [{"id": f"r{i}", "q": f"is {i % 10 if i < 20 else i} a lucky number?",
                "a": (i % 10 if i < 20 else i) % yes_every == 0} for i in range(n)]
    (tmp_path / "lucky.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return "lucky.jsonl"


def _prepared(tmp_path, split: dict, **sides):
    task = {"name": "lucky", "kind": "jsonl", "split": split, **sides,
            "options": {"data": _data(tmp_path), "fields": {**FIELDS, "id": "id"}, "answer_type": "yesno"}}
    config, problems = parse(_config(tmp_path, task))
    assert not problems, problems
    return prepare_task(config.tasks[0], 0, config.data_dir)


def test_a_three_to_two_split_is_stratified_disjoint_and_the_same_every_time(tmp_path):
    st = _prepared(tmp_path, {"train": 3, "test": 2, "seed": 0})
    pool, test = st.pool, st.test.items
    assert len(pool) + len(test) == 200
    assert 0.58 <= len(pool) / 200 <= 0.62  # 3:2, up to rounding within each answer and repeated questions
    share_yes = [sum(it.answer == "yes" for it in side) / len(side) for side in (pool, test)]
    assert share_yes[0] == pytest.approx(share_yes[1], abs=0.02) and 0.2 <= share_yes[0] <= 0.3
    assert not {it.question for it in pool} & {it.question for it in test}  # repeated questions on one side
    again = _prepared(tmp_path, {"train": 3, "test": 2, "seed": 0})
    assert [it.id for it in again.pool] == [it.id for it in pool]
    other = _prepared(tmp_path, {"train": 3, "test": 2, "seed": 1})
    assert {it.id for it in other.pool} != {it.id for it in pool}
    assert st.test.definition["split"] == {"train": 3, "test": 2, "seed": 0}  # in every evaluation's key
    assert other.test.definition != st.test.definition


def test_limits_cap_each_side_and_other_selectors_are_refused(tmp_path):
    st = _prepared(tmp_path, {"train": 1, "test": 1}, test={"limit": 30})
    assert len(st.test.items) == 30 and 90 <= len(st.pool) <= 110
    task = {"name": "lucky", "kind": "jsonl", "split": {"train": 3, "test": 2}, "pool": {"first": 10},
            "options": {"data": _data(tmp_path), "fields": FIELDS, "answer_type": "yesno"}}
    _, problems = parse(_config(tmp_path, task))
    assert any("tasks[0].pool: first: not with split" in p for p in problems)
    del task["split"], task["pool"]
    _, problems = parse(_config(tmp_path, task))
    assert any(p.startswith("tasks[0].pool: required: which items are training questions") for p in problems)
    assert any("unless split is given" in p for p in problems)
    task["split"] = {"train": 0, "test": 2}
    _, problems = parse(_config(tmp_path, task))
    assert any("tasks[0].split.train" in p and "out of range" in p for p in problems)


def test_strategyqa_splits_three_to_two_with_its_answers_balanced(tmp_path):
    path = shared_data("strategyqa_teachers", "eit", "strategyQA_onlyans.json")
    records = json.loads(path.read_text())
    task = {"name": "sqa", "kind": "jsonl", "split": {"train": 3, "test": 2, "seed": 0},
            "options": {"data": str(path), "fields": {"question": "instruction", "answer": "output"},
                        "answer_type": "yesno", "duplicates": "keep-first"}}
    config, problems = parse(_config(tmp_path, task))
    assert not problems, problems
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    n = len(st.pool) + len(st.test.items)
    assert n <= len(records) and abs(len(st.pool) / n - 0.6) < 0.01
    pool, test = Counter(it.answer for it in st.pool), Counter(it.answer for it in st.test.items)
    assert abs(pool["yes"] / len(st.pool) - test["yes"] / len(st.test.items)) < 0.01
