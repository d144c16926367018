"""A cell's identity covers everything that determines its post evaluation; pre and post are always scored by
one extraction on one item set, and each seed pairs with its own baseline."""

import json

import pytest
import yaml

from capgap.analysis.pairing import paired_arrays
from capgap.store import EvalRecord, Store
from capgap.tasks.extraction import EXTRACTION_VERSION
from tests.study.test_grid import capgap, write_config


def _run(config_path, store_path, **changes):
    config = yaml.safe_load(config_path.read_text())
    for section, values in changes.items():
        target = config["tasks"][0]["test"] if section == "test" else config[section]
        target.update(values)
    config["teachers"] = config["teachers"][:1]  # gold only: the test is about keys, not teachers
    config["protocols"] = ["own-correct"]
    config_path.write_text(yaml.safe_dump(config))
    result = capgap("run", str(config_path), "--store", str(store_path))
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _done(store_path):
    with Store(store_path) as store:
        planned = store.study.planned("keys")
        return [c for c in store.study.cells("keys") if c["status"] == "done" and c["cell_key"] in planned]


@pytest.mark.parametrize("change,retrain", [
    ({"test": {"limit": 4}}, False),                  # another test set: the same weights, evaluated again
    ({"evaluation": {"max_new_tokens": 6}}, False),   # another decoding: likewise
    ({"evaluation": {"dtype": "bfloat16"}}, True),    # another precision: training precision follows it
], ids=["test-items", "decoding", "dtype"])
def test_changing_what_determines_the_post_evaluation_makes_a_new_cell(change, retrain, tiny_model,
                                                                       tiny_plain_model, tmp_path):
    config, store_path = write_config(tmp_path, tiny_model, tiny_plain_model, name="keys"), tmp_path / "s.sqlite"
    first = _run(config, store_path)
    assert "[train]" in first.stderr
    (before,) = _done(store_path)
    second = _run(config, store_path, **change)
    assert "[stored]" not in second.stderr and "[eval]" in second.stderr  # never an old result
    assert ("[train]" in second.stderr) == retrain and ("[reuse]" in second.stderr) != retrain
    (after,) = _done(store_path)
    assert after["cell_key"] != before["cell_key"]
    assert (after["checkpoint"] == before["checkpoint"]) != retrain
    report = json.loads((tmp_path / "keys" / "report.json").read_text())
    (cell,) = report["studies"][0]["cells"]
    expected_items = change.get("test", {}).get("limit", 6)
    assert cell["n_items"] == expected_items == len(json.loads(after["test_items_json"]))
    if "evaluation" in change:
        assert after["post_eval_key"] != before["post_eval_key"]
    if change.get("evaluation", {}).get("dtype"):
        assert after["pre_eval_key"] != before["pre_eval_key"]  # the baseline is re-measured in that precision
        assert json.loads(after["precision_json"])["dtype"] == "bfloat16"


def _evaluation(store, key, correct, *, version=EXTRACTION_VERSION, answers=None):
    store.register_evaluation(EvalRecord(key, "sim", key, "fp", "zero-shot-cot", {"answer_type": "number"}, {}))
    rows = []
    for i, c in enumerate(correct):
        text = answers[i] if answers else ("The answer is 1." if c else "The answer is 0.")
        rows.append({"item_id": f"q{i}", "item_hash": "h", "prompt": "p", "generation": text, "n_new_tokens": 3,
                     "gold": "1", "answer_strict": None, "answer_flexible": None, "correct_strict": int(c),
                     "correct_flexible": int(c), "extraction_version": version})
    store.add_items(key, rows)


def _cell(key, seed, pre, post, items):
    return {"cell_key": key, "pre_eval_key": pre, "post_eval_key": post, "seed": seed,
            "test_items_json": json.dumps(items)}


def test_each_seed_pairs_with_its_own_baseline_on_the_cells_items(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _evaluation(store, "pre-a", [0, 0, 0, 0, 1])  # seed 0's baseline (e.g. one precision)
        _evaluation(store, "pre-b", [1, 1, 1, 0, 1])  # seed 1's baseline (another)
        _evaluation(store, "post-0", [1, 0, 0, 0, 1, 1])  # an extra stored row (q5) is not a test item
        _evaluation(store, "post-1", [1, 1, 1, 1, 1])
        items = [f"q{i}" for i in range(5)]
        ids, pre, post = paired_arrays(store, [_cell("c0", 0, "pre-a", "post-0", items),
                                               _cell("c1", 1, "pre-b", "post-1", items)])
    assert ids == items and pre.shape == post.shape == (2, 5)
    assert (post.mean(axis=1) - pre.mean(axis=1)).tolist() == pytest.approx([0.2, 0.2])
    assert pre[0].tolist() == [0, 0, 0, 0, 1] and pre[1].tolist() == [1, 1, 1, 0, 1]


def test_pre_and_post_are_rescored_by_the_current_extraction_from_their_generations(tmp_path):
    # Rows an older extraction scored (wrongly, here) are re-scored from the stored text, on both sides.
    with Store(tmp_path / "s.sqlite") as store:
        _evaluation(store, "pre", [1, 1, 1], version=0, answers=["The answer is 2.", "The answer is 1.", "no idea"])
        _evaluation(store, "post", [0, 0, 0], version=EXTRACTION_VERSION - 1,
                    answers=["The answer is 1.", "The answer is 1.", "The answer is 1."])
        _, pre, post = paired_arrays(store, [_cell("c", 0, "pre", "post", ["q0", "q1", "q2"])])
        assert pre.tolist() == [[0, 1, 0]] and post.tolist() == [[1, 1, 1]]
        assert {r["extraction_version"] for r in store.items("pre").values()} == {EXTRACTION_VERSION}


def test_a_missing_row_is_an_error_never_a_smaller_test_set(tmp_path):
    from capgap.errors import CapgapError

    with Store(tmp_path / "s.sqlite") as store:
        _evaluation(store, "pre", [1, 0, 1])
        _evaluation(store, "post", [1, 1])
        with pytest.raises(CapgapError, match="no stored row for test item 'q2'"):
            paired_arrays(store, [_cell("c", 0, "pre", "post", ["q0", "q1", "q2"])])
