"""The student's view of rationales: token scores against the model's own loss, and the predictors' formulas."""

import numpy as np
import pytest
import torch

from capgap.errors import CapgapError
from capgap.evaluation.predictors import local_rows, predictor, ranked, rationale_scores, steps_of, teacher_scores
from capgap.models import ModelSource, decide, load_model
from capgap.models.scoring import TokenScores, score_rows


@pytest.fixture(scope="module")
def loaded(tiny_model):
    return load_model(ModelSource("tiny", "dir", path=tiny_model), precision=decide("float32"))


def _row(tok, prompt: str, completion: str) -> dict:
    p, c = tok(prompt)["input_ids"], tok(completion, add_special_tokens=False)["input_ids"]
    return {"input_ids": p + c, "labels": [-100] * len(p) + c}


def test_token_scores_are_the_models_own_loss_and_ranks(loaded):
    tok = loaded.tokenizer
    rows = [_row(tok, "What is 3 + 4?", " 3 + 4 = 7. The answer is 7."),
            _row(tok, "Tom has 12 apples and gives 5 away. How many are left?", " 12 - 5 = 7.")]
    scored = score_rows(loaded, rows, batch_size=2, rank_clip=10_000)  # padded together, scored apart
    for row, s in zip(rows, scored, strict=True):
        ids, labels = torch.tensor([row["input_ids"]]), torch.tensor([row["labels"]])
        with torch.inference_mode():
            out = loaded.model(input_ids=ids, labels=labels)
        assert len(s.nll) == sum(x != -100 for x in row["labels"])
        assert s.nll.mean() == pytest.approx(float(out.loss), rel=1e-4)
        logits = out.logits[0, :-1][labels[0, 1:] != -100]
        targets = labels[0, 1:][labels[0, 1:] != -100]
        top = logits.argmax(-1) == targets
        assert np.array_equal(s.rank == 1, top.numpy())  # rank 1: the student's own first choice
        assert (s.rank >= 1).all() and (s.rank <= logits.shape[-1]).all()
    clipped = score_rows(loaded, rows[:1], rank_clip=2)[0]
    assert clipped.rank.max() <= 2


def test_rsr_is_mean_rank_over_mean_nll_and_teachers_average_it():
    a = TokenScores(np.array([0.5, 1.5, 2.0]), np.array([1.0, 3.0, 8.0]))
    b = TokenScores(np.array([1.0, 1.0]), np.array([2.0, 2.0]))
    ra = rationale_scores(a, [TokenScores(np.array([0.5]), np.array([1.0])),
                              TokenScores(np.array([1.5, 2.0]), np.array([3.0, 8.0]))])
    assert ra["rsr"] == pytest.approx((12 / 3) / (4 / 3))
    assert ra["local_naturalness"] == pytest.approx(np.mean([-0.5, -1.75]))  # mean over steps, not tokens
    rb = rationale_scores(b, [])
    teacher = teacher_scores([ra, rb])
    assert teacher["rsr"] == pytest.approx((3.0 + 2.0) / 2)
    assert teacher["nll"] == pytest.approx(6.0 / 5)  # token-weighted
    assert teacher["perplexity"] == pytest.approx(np.exp(1.2))
    assert teacher["mean_tokens"] == 2.5 and teacher["local_naturalness"] == pytest.approx(ra["local_naturalness"])


def test_local_rows_score_each_step_given_only_the_one_before(loaded):
    tok = loaded.tokenizer
    text = "First 3 + 4 = 7. Then 7 * 2 = 14.\nThe answer is 14."
    assert steps_of(text) == ["First 3 + 4 = 7.", "Then 7 * 2 = 14.", "The answer is 14."]
    rows = local_rows(tok, text, chat=True)
    assert len(rows) == 3
    for row, step in zip(rows, steps_of(text), strict=True):
        scored = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
        assert tok.decode(scored).strip() == step
    assert tok.decode(rows[2]["input_ids"][1:]).strip() == "Then 7 * 2 = 14. The answer is 14."  # no first step


def test_ranking_follows_each_predictors_direction():
    rows = [{"teacher": "a", "rsr": 3.0, "nll": 1.0, "teacher_accuracy": 0.9},
            {"teacher": "b", "rsr": 2.0, "nll": 2.0, "teacher_accuracy": 0.5},
            {"teacher": "c", "rsr": None, "nll": 1.5, "teacher_accuracy": 0.7}]
    assert [r["teacher"] for r in ranked(rows, "rsr")] == ["b", "a", "c"]  # lower is better; none last
    assert [r["teacher"] for r in ranked(rows, "teacher_accuracy")] == ["a", "c", "b"]
    with pytest.raises(CapgapError, match="valid: rsr, local_naturalness"):
        predictor("perplexity-ish")
