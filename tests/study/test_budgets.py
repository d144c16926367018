"""A teacher at its own budget (a published setting) beside its twin at the study's matched budget: trained at
that budget, marked "budget not matched", and compared with the twin by the seed-aware difference."""

import json

import pytest
import yaml

from capgap.config import parse
from capgap.config.schema import config_record, training_of
from capgap.store import Store
from tests.study.test_grid import capgap, write_config


def test_a_published_budget_trains_as_set_and_is_compared_with_its_matched_twin(tiny_model, tiny_plain_model,
                                                                                tmp_path):
    path = write_config(tmp_path, tiny_model, tiny_plain_model, name="budgets")
    config = yaml.safe_load(path.read_text())
    config["teachers"] = [{"name": "gold", "kind": "reference"},
                          {"name": "gold-2x2", "kind": "reference", "budget": {"batch_size": 2, "grad_accum": 2,
                                                                                 "steps": 3}}]
    config["protocols"], config["seeds"] = ["unfiltered"], [0, 1]
    path.write_text(yaml.safe_dump(config))
    result = capgap("run", str(path), "--store", str(tmp_path / "store.sqlite"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| gold-2x2 | unfiltered | 100.0% | 12 of 16 | 3 x 4 (own) |" in result.stdout
    with Store(tmp_path / "store.sqlite") as store:
        cells = {(c["teacher"], c["seed"]): c for c in store.study.cells("budgets")}
    own, twin = cells[("gold-2x2", 0)], cells[("gold", 0)]
    assert (json.loads(own["training_json"])["batch_size"], own["steps"], own["effective_batch"]) == (2, 3, 4)
    assert (twin["steps"], twin["effective_batch"]) == (2, 4) and own["train_key"] != twin["train_key"]
    report = json.loads((tmp_path / "budgets" / "report.json").read_text())["studies"][0]
    marks = {g["teacher"]: g["budget_matched"] for g in report["cells"]}
    assert marks == {"gold": True, "gold-2x2": False}
    (comparison,) = report["budget_comparisons"]
    gains = {g["teacher"]: g["gain"] for g in report["cells"]}
    assert comparison["twin"] == "gold" and comparison["difference"] == gains["gold-2x2"] - gains["gold"]
    lo, hi = comparison["difference_ci95"]
    assert lo <= comparison["difference"] <= hi
    md = (tmp_path / "budgets" / "report.md").read_text()
    assert "gold-2x2: budget not matched (3 steps x 4 examples/step, its own)" in md
    said = "2 optimizer steps x effective batch 4 for every teacher but gold-2x2 (3 steps x 4), at its own"
    assert said in result.stderr and f"Budget: {said} (budget not matched)." in md
    assert "gold on arith · " in md and "at matched 4; difference" in md


def test_training_of_lays_a_teachers_budget_over_the_studys():
    raw = {"name": "x", "tasks": [{"name": "arith", "pool": {"first": 4}, "test": {"rest": True}}],
           "students": ["s"], "training": {"steps": 10, "batch_size": 2},
           "teachers": [{"name": "a", "kind": "reference"},
                        {"name": "b", "kind": "reference", "budget": {"batch_size": 5, "grad_accum": 4}}]}
    config, problems = parse(raw)
    assert not problems
    a, b = (training_of(config, t) for t in config.teachers)
    assert (a.steps, a.effective_batch) == (10, 2) and (b.steps, b.effective_batch, b.batch_size) == (10, 20, 5)
    raw["teachers"][1]["budget"] = {"batch_size": 0, "packing": True}
    _, problems = parse(raw)
    assert any("teachers[1].budget.batch_size" in p and "out of range" in p for p in problems)
    assert any("teachers[1].budget.packing: unknown key" in p for p in problems)


@pytest.mark.parametrize(("budget", "training", "message"), [
    ({}, {}, "teachers[1].budget: sets nothing"),
    ({"steps": 4}, {"epochs": 1}, "teachers[1].budget.steps: not with training.epochs"),
    ({"batch_size": 5}, {"batch_size": 4, "processes": 2}, "teachers[1].budget.batch_size: 2 processes cannot share"),
])
def test_a_teachers_budget_is_checked_against_the_studys_training(budget, training, message):
    raw = {"name": "x", "tasks": [{"name": "arith", "pool": {"first": 4}, "test": {"rest": True}}],
           "students": ["s"], "training": training,
           "teachers": [{"name": "a", "kind": "reference"}, {"name": "b", "kind": "reference", "budget": budget}]}
    _, problems = parse(raw)
    assert any(p.startswith(message) for p in problems), problems


def test_the_stored_config_leaves_out_new_fields_at_their_unset_value():
    raw = {"name": "x", "tasks": [{"name": "arith", "pool": {"first": 4}, "test": {"rest": True}}],
           "students": ["s"], "teachers": [{"name": "a", "kind": "model", "model": "m", "backend": "openai",
                                             "endpoint": {"base_url": "http://127.0.0.1:1/v1"}}]}
    config, _ = parse(raw)
    record = config_record(config)
    assert "screening" not in record and "split" not in record["tasks"][0]
    assert not {"budget", "parts", "draw"} & set(record["teachers"][0])
    assert set(record["teachers"][0]["endpoint"]) == {"base_url", "api_key_env", "concurrency", "timeout", "retries"}
    assert record["tasks"][0]["pool"]["split"] is None  # a split's Hub split name: an old field, kept
    raw["teachers"].append({"name": "b", "kind": "reference", "budget": {"steps": 3}})
    config, _ = parse(raw)
    assert config_record(config)["teachers"][1]["budget"] == {"batch_size": None, "grad_accum": None, "steps": 3,
                                                              "learning_rate": None}
