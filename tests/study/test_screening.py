"""`capgap screen` and `screening: {min_teacher_gap: 30}`: every teacher's accuracy on a task (model teachers
in context on a stored, seeded pool sample), the largest gap with Newcombe's CI, and the paper's keep rule."""

import json

import numpy as np
import pytest
import yaml
from statsmodels.stats.proportion import confint_proportions_2indep

from capgap.cli import main
from capgap.store import Store
from capgap.study.screening import _decide, newcombe_interval
from tests.study.test_grid import capgap, write_config


@pytest.mark.parametrize(("a", "b"), [((90, 100), (40, 100)), ((700, 700), (12, 100)), ((3, 20), (0, 50))])
def test_the_gap_ci_is_newcombes_as_statsmodels_computes_it(a, b):
    ours = newcombe_interval(a, b)
    theirs = confint_proportions_2indep(a[0], a[1], b[0], b[1], method="newcomb", compare="diff")
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_the_ci_covers_the_true_gap_at_its_level():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        a, b = rng.binomial(100, 0.7), rng.binomial(300, 0.45)
        lo, hi = newcombe_interval((a, 100), (b, 300))
        covered += lo <= 0.25 <= hi
    assert 0.93 <= covered / 2000 <= 0.975


def _score(name, correct, n):
    return {"teacher": name, "kind": "imported", "correct": correct, "n": n, "accuracy": correct / n,
            "ci95": [0, 1], "how": "-"}


def test_the_keep_rule_is_the_papers_with_its_firmness_said():
    kept = _decide("t", [_score("a", 90, 100), _score("b", 40, 100), {**_score("g", 100, 100), "kind": "reference"}],
                   30)
    assert kept["kept"] and kept["gap"] == pytest.approx(0.5) and "not a firm" not in kept["reason"]
    assert kept["best"] == "a"  # a reference teacher (the gold) is listed, never the best candidate
    close = _decide("t", [_score("a", 62, 100), _score("b", 30, 100)], 30)
    assert close["kept"] and "(the CI reaches across 30: not a firm decision)" in close["reason"]
    dropped = _decide("t", [_score("a", 50, 100), _score("b", 40, 100)], 30)
    assert not dropped["kept"] and "<= 30: dropped" in dropped["reason"]
    assert _decide("t", [_score("a", 50, 100)], 30)["kept"]  # one teacher: nothing to compare


def test_screen_measures_model_and_file_teachers_and_a_run_applies_the_rule(tiny_model, tiny_plain_model,
                                                                          tmp_path, capsys):
    from capgap.tasks import load_task

    config = write_config(tmp_path, tiny_model, tiny_plain_model, name="screened")
    raw = yaml.safe_load(config.read_text())
    items = load_task("arith", n=40, seed=3, max_steps=2).items  # an imported teacher: the gold, as a file
    (tmp_path / "gold.json").write_text(json.dumps([{"question": it.question, "rationale": it.rationale}
                                                    for it in items]))
    raw["teachers"].append({"name": "filed", "kind": "imported", "files": [str(tmp_path / "gold.json")]})
    config.write_text(yaml.safe_dump(raw))
    store = tmp_path / "store.sqlite"
    assert main(["screen", str(config), "--store", str(store), "--sample", "5"]) == 0
    out = capsys.readouterr().out
    assert "### arith: kept" in out and "| gold | reference | 100.0% |" in out
    assert "| filed | imported | 100.0% |" in out
    assert "| tutor | model |" in out and "in context (few-shot-cot, 2 shots), greedy, on 5 sampled pool" in out
    with Store(store) as s:
        (screened,) = s.study.screenings("screened")
        evaluations = s.evaluations()
        rows = s.items(evaluations[0].eval_key)
    assert (screened["best"], screened["worst"]) == ("filed", "tutor")  # the reference is listed, not a candidate
    assert screened["scores"][1]["n"] == 5 and screened["gap"] > 0.3
    assert len(evaluations) == 1 and len(rows) == 5  # the screening's generations: stored, keyed
    assert main(["screen", str(config), "--store", str(store), "--sample", "5", "--min-gap", "100"]) == 0
    assert "### arith: dropped" in capsys.readouterr().out
    raw["screening"] = {"min_teacher_gap": 100, "sample": 5}
    config.write_text(yaml.safe_dump(raw))
    result = capgap("run", str(config), "--store", str(store))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "screening arith: largest gap" in result.stderr and ": dropped" in result.stderr
    with Store(store) as s:
        assert s.study.cells("screened") == []
    md = (tmp_path / "screened" / "report.md").read_text()
    assert "### Tasks screened by teacher gap" in md and "arith: largest gap" in md and "dropped" in md
    report = json.loads((tmp_path / "screened" / "report.json").read_text())
    assert report["studies"][0]["screening"][0]["kept"] is False


def test_a_run_on_a_cluster_refuses_to_screen_model_teachers_in_its_driver(tiny_model, tiny_plain_model, tmp_path):
    from capgap.config import load_config
    from capgap.errors import CapgapError
    from capgap.study.screening import check_screening_here

    config = load_config(write_config(tmp_path, tiny_model, tiny_plain_model, name="ray"))

    class RayLike:
        pass

    with pytest.raises(CapgapError, match="screening runs the model teachers tutor in this process"):
        check_screening_here(config, RayLike())
