"""Truncation and no-answer rates beside each gain, from real store rows."""

from capgap.analysis.failures import answer_failures
from capgap.store import EvalRecord, Store
from capgap.tasks.extraction import EXTRACTION_VERSION

LIMIT = 128


def evaluation(store: Store, key: str, rows: list[tuple], texts: list[str] | None = None) -> None:
    """Rows of (new tokens, stated answer) on items i0, i1, ...; gold is always 1; `texts`: the generations."""
    texts = texts or ["g"] * len(rows)
    spec = {"answer_type": "number", "decoding": {"max_new_tokens": LIMIT}}
    store.add_items(key, [{"item_id": f"i{i}", "item_hash": f"h{i}", "prompt": "p", "generation": texts[i],
                           "n_new_tokens": n, "gold": "1", "answer_strict": a, "answer_flexible": a,
                           "correct_strict": int(a == "1"), "correct_flexible": int(a == "1"),
                           "extraction_version": EXTRACTION_VERSION} for i, (n, a) in enumerate(rows)],
                    EvalRecord(key, "t", key, "fp-" + key, "zero-shot-cot", spec, {}))


def test_a_loss_made_of_cut_answers_is_said_beside_the_gain(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        # baseline: 1 of 10 cut; after: 5 of 10 cut at the limit (no answer), accuracy 6/10 -> 3/10
        evaluation(store, "pre", [(LIMIT, None)] + [(40, "1")] * 6 + [(40, "2")] * 3)
        evaluation(store, "post", [(LIMIT, None)] * 5 + [(60, "1")] * 3 + [(60, "2")] * 2)
        cells = [{"pre_eval_key": "pre", "post_eval_key": "post"}]
        result = answer_failures(store, cells, [f"i{i}" for i in range(10)], gain=-0.3)
    assert result["pre"] == {"truncated": 0.1, "looped": 0.0, "no_answer_strict": 0.1, "no_answer_flexible": 0.1}
    assert result["post"] == {"truncated": 0.5, "looped": 0.0, "no_answer_strict": 0.5, "no_answer_flexible": 0.5}
    assert result["max_new_tokens"] == LIMIT
    assert result["sentence"] == ("answers cut at the 128-token limit went from 10% to 50% of test items: much of "
                                  "this -30.0 pp gain may come from them, not from reasoning")


def test_no_sentence_when_failures_do_not_explain_the_gain(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        evaluation(store, "pre", [(40, "1")] * 3 + [(40, "2")] * 7)
        evaluation(store, "post", [(LIMIT, None)] + [(40, "1")] * 7 + [(40, "2")] * 2)
        result = answer_failures(store, [{"pre_eval_key": "pre", "post_eval_key": "post"}],
                                 [f"i{i}" for i in range(10)], gain=0.4)
    assert result["post"]["truncated"] == 0.1 and result["sentence"] is None


LOOP = "So she gives 1 / 2 to another friend. " * 20  # what a looping student writes until the limit
PROSE = ("Maya starts with 9 cookies and loses 1, which leaves 8. She then finds another 6 cookies, so she has "
         "8 + 6 = 14 cookies. Checking each step again: nine minus one is eight, eight plus six is fourteen, and "
         "no step divides or multiplies anything, so the count cannot be a fraction. Each of these numbers is")


def test_answers_that_loop_at_the_limit_are_not_a_cut_budget(tmp_path):
    from capgap.analysis.failures import baseline_note

    with Store(tmp_path / "s.sqlite") as store:
        rows = [(LIMIT, None)] * 3 + [(40, "1")] * 7
        evaluation(store, "loops", rows, [LOOP] * 3 + ["The answer is 1."] * 7)
        evaluation(store, "cuts", rows, [PROSE] * 3 + ["The answer is 1."] * 7)
        ids = [f"i{i}" for i in range(10)]
        loops = answer_failures(store, [{"pre_eval_key": "loops", "post_eval_key": "loops"}], ids, gain=0.0)
        cuts = answer_failures(store, [{"pre_eval_key": "cuts", "post_eval_key": "cuts"}], ids, gain=0.0)
    assert loops["pre"]["truncated"] == 0.3 and loops["pre"]["looped"] == 0.3
    assert cuts["pre"]["truncated"] == 0.3 and cuts["pre"]["looped"] == 0.0
    assert baseline_note({"answer_failures": loops, "pre_accuracy": 0.7}) is None  # the student as it was
    note = baseline_note({"answer_failures": cuts, "pre_accuracy": 0.7})
    assert note.startswith("no verdict: the baseline's answers were cut at 128 tokens for 30% of items")
