"""End to end on a tiny model built in the test: prompts, generation, extraction, store, resume."""

import pytest

from capgap import Decoding, PromptConfig, Store, evaluate, load_model, load_task, resolve
from capgap.errors import CapgapError
from capgap.evaluation.prompts import render
from capgap.models import generation

DECODING = Decoding(max_new_tokens=12)


def test_evaluate_then_answer_from_store(tiny_model, tmp_path):
    task = load_task("arith", n=6)
    with Store(tmp_path / "s.sqlite") as store:
        first = evaluate(str(tiny_model), task, store, decoding=DECODING, batch_size=4)
        assert first.n == 6 and first.n_generated == 6 and first.dtype in ("float32", "bfloat16")
        again = evaluate(str(tiny_model), task, store, decoding=DECODING, batch_size=4)
    assert again.n_generated == 0 and again.rows == first.rows and again.eval_key == first.eval_key
    row = first.rows[0]
    assert row["prompt"].startswith("<|im_start|>user\nQuestion: ") and row["gold"] == task.items[0].answer
    assert 1 <= row["n_new_tokens"] <= 12
    lo, hi = first.ci95()
    assert 0 <= lo <= first.accuracy <= hi <= 1


def test_key_changes_with_prompt_decoding_and_data(tiny_model, tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        base = evaluate(str(tiny_model), load_task("arith", n=2), store, decoding=DECODING)
        keys = {
            base.eval_key,
            evaluate(str(tiny_model), load_task("arith", n=2), store, decoding=Decoding(max_new_tokens=8)).eval_key,
            evaluate(str(tiny_model), load_task("arith", n=2, seed=5), store, decoding=DECODING).eval_key,
            evaluate(str(tiny_model), load_task("arith", n=2), store, decoding=DECODING,
                     prompt=PromptConfig("few-shot-cot", shots=2)).eval_key,
        }
    assert len(keys) == 4


def test_larger_limit_and_interrupted_runs_generate_only_missing_items(tiny_model, tmp_path, monkeypatch):
    task = load_task("arith", n=12)
    with Store(tmp_path / "s.sqlite") as store:
        assert evaluate(str(tiny_model), task.limited(4), store, decoding=DECODING).n_generated == 4
        real_add = store.add_items
        stored = []

        def killed_after_one_batch(*args, **kwargs):
            real_add(*args, **kwargs)
            stored.append(len(args[1]))
            raise KeyboardInterrupt  # killed right after the first batch was committed

        monkeypatch.setattr(store, "add_items", killed_after_one_batch)
        with pytest.raises(KeyboardInterrupt):
            evaluate(str(tiny_model), task, store, decoding=DECODING, batch_size=3)
        monkeypatch.setattr(store, "add_items", real_add)
        resumed = evaluate(str(tiny_model), task, store, decoding=DECODING, batch_size=3)
        assert store.evaluation(resumed.eval_key) is not None
    # batches are fixed slices of 3: [0-2] was stored, [3-5] generated whole for its 2 missing items, then killed
    assert stored == [2] and resumed.n == 12 and resumed.n_generated == 12 - 4 - 2
    with Store(tmp_path / "fresh.sqlite") as fresh:
        uninterrupted = evaluate(str(tiny_model), task, fresh, decoding=DECODING, batch_size=3)
    # the items generated in the same slices, interrupted or not, are the same bit for bit
    assert [r["generation"] for r in resumed.rows[4:]] == [r["generation"] for r in uninterrupted.rows[4:]]


def test_a_model_that_fails_to_load_leaves_no_evaluation_behind(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(CapgapError):
            evaluate(str(broken), load_task("arith", n=2), store, decoding=DECODING)
        assert store.evaluations() == []


def test_loaded_model_matches_spec_and_batching_does_not_change_greedy_answers(tiny_model, tmp_path):
    loaded = load_model(resolve(str(tiny_model)), dtype="float32")
    task = load_task("arith", n=5)
    with Store(tmp_path / "a.sqlite") as a, Store(tmp_path / "b.sqlite") as b:
        one = evaluate(loaded, task, a, decoding=DECODING, batch_size=1)
        five = evaluate(loaded, task, b, decoding=DECODING, batch_size=5)
    assert [r["generation"] for r in one.rows] == [r["generation"] for r in five.rows]


def test_plain_prompts_and_few_shot_exemplars(tiny_plain_model, tmp_path):
    loaded = load_model(resolve(str(tiny_plain_model)), dtype="float32")
    task = load_task("arith", n=3)
    text = render(task, task.items[0], loaded.tokenizer, PromptConfig("few-shot-cot", shots=2))
    assert text.count("Question: ") == 3 and text.endswith("\nAnswer:")
    assert task.exemplars[0].rationale in text and task.items[0].question in text
    with Store(tmp_path / "s.sqlite") as store:
        result = evaluate(loaded, task, store, prompt=PromptConfig("few-shot-cot", shots=2), decoding=DECODING)
    assert all("Question:" not in r["generation"] for r in result.rows)  # cut at the next question
    with pytest.raises(CapgapError, match="has no chat template"):
        render(task, task.items[0], loaded.tokenizer, PromptConfig(chat="on"))


def test_stop_strings_are_cut():
    assert generation.cut_at_stops("The answer is 4.\n\nQuestion: next", ("\n\nQuestion:",)) == "The answer is 4."


def test_rows_from_an_older_extraction_are_rescored_not_regenerated(tiny_model, tmp_path, monkeypatch):
    task = load_task("arith", n=3)
    with Store(tmp_path / "s.sqlite") as store:
        first = evaluate(str(tiny_model), task, store, decoding=DECODING)
        gold = task.items[0].answer
        # Pretend an older extraction mis-read item 0, and that its generation stated the gold answer.
        store._conn.execute("UPDATE eval_items SET generation=?, answer_strict='x', correct_strict=0, "
                            "extraction_version=0 WHERE item_id=?", (f"The answer is {gold}.", task.items[0].id))
        again = evaluate(str(tiny_model), task, store, decoding=DECODING)
        assert again.n_generated == 0 and again.eval_key == first.eval_key
        assert again.rows[0]["answer_strict"] == gold and again.rows[0]["correct_strict"] == 1
        assert store.items(first.eval_key)[task.items[0].id]["extraction_version"] >= 1  # written back
