"""Verdicts, recommendations, capacity-gap and ranking analyses on simulated studies in a real store."""

import json

import numpy as np
import pytest

from capgap.analysis import analyse_store
from capgap.errors import CapgapError
from capgap.store import Store
from tests.analysis.sim import TRAINING, write_study

STUDENT = {"small": {"pre": 0.3, "params": 1e8}}
TEACHERS = {"best": {"params": 8e9, "accuracy": 0.95}, "good": {"params": 7e10, "accuracy": 0.9},
            "flat": {"params": 5e11, "accuracy": 0.8}, "harmful": {"params": 1e12, "accuracy": 0.6}}


def analyse(tmp_path, **kwargs):
    with Store(tmp_path / "s.sqlite") as store:
        write_study(store, "sim", **kwargs)
        return analyse_store(store)["studies"][0]


def by_teacher(study):
    return {g["teacher"]: g for g in study["cells"]}


def test_the_known_best_teacher_is_recommended_and_verdicts_follow_the_truth(tmp_path):
    gains = {("small", "best", "own-correct"): 0.15, ("small", "good", "own-correct"): 0.05,
             ("small", "flat", "own-correct"): 0.0, ("small", "harmful", "own-correct"): -0.12}
    study = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains, seeds=4, n_items=500)
    cells = by_teacher(study)
    assert cells["best"]["verdict"] == "improves" and cells["harmful"]["verdict"] == "degrades"
    assert cells["flat"]["verdict"] == "no detectable change"
    assert cells["best"]["gain"] == pytest.approx(0.15, abs=0.03)
    assert cells["best"]["ci95"][0] < cells["best"]["gain"] < cells["best"]["ci95"][1]
    assert all(c["p_holm"] >= c["p_value"] and c["holm_family_size"] == 4 for c in cells.values())
    for c in cells.values():  # a detectable verdict always has a 95% CI on its side of 0
        assert c["verdict"] != "improves" or c["ci95"][0] > 0
        assert c["verdict"] != "degrades" or c["ci95"][1] < 0
    assert cells["best"]["test"].startswith("seed-aware t") and len(cells["best"]["p_mcnemar_by_seed"]) == 4
    assert cells["best"]["scope"].startswith("4 seeds") and "p_mcnemar" not in cells["best"]
    (rec,) = study["recommendations"]
    assert (rec["teacher"], rec["protocol"]) == ("best", "own-correct")
    assert rec["versus_runner_up"]["runner_up"] == "good" and rec["versus_runner_up"]["difference_ci95"][0] > 0
    assert rec["confidence"].startswith("clearly ahead of good")


def test_when_no_teacher_helps_the_recommendation_says_do_not_distil(tmp_path):
    gains = {("small", "best", "own-correct"): 0.01, ("small", "good", "own-correct"): -0.03,
             ("small", "harmful", "own-correct"): -0.10}
    study = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains)
    (rec,) = study["recommendations"]
    assert rec["teacher"] is None and rec["decision"].startswith("do not distil")
    assert "detects gains of about" in rec["evidence"]
    assert by_teacher(study)["harmful"]["verdict"] == "degrades"


def test_a_small_test_set_reports_a_large_minimal_detectable_effect(tmp_path):
    gains = {("small", "best", "own-correct"): 0.05}
    small = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains, n_items=40)
    big = analyse(tmp_path / "big", students=STUDENT, teachers=TEACHERS, gains=gains, n_items=1000)
    assert by_teacher(small)["best"]["mde"] > 2 * by_teacher(big)["best"]["mde"]
    assert by_teacher(small)["best"]["verdict"] == "no detectable change"


def test_capacity_gap_sentence_follows_which_factor_orders_the_gains(tmp_path):
    # Gains rise with teacher accuracy; the size ratio is shuffled against them.
    sizes, n_train = [3, 1, 4, 0, 5, 2], [150, 90, 120, 200, 110, 130]
    teachers = {f"t{i}": {"params": 10 ** (9 + sizes[i]), "accuracy": 0.5 + 0.08 * i, "n_train": n_train[i]}
                for i in range(6)}
    gains = {("small", f"t{i}", "own-correct"): 0.03 * i for i in range(6)}
    study = analyse(tmp_path, students=STUDENT, teachers=teachers, gains=gains, n_items=3000, seed_sd=0.0)
    (cap,) = study["capacity_gap"]
    assert cap["spearman"]["teacher_accuracy"]["rho"] == pytest.approx(1.0)
    assert abs(cap["spearman"]["log_size_ratio"]["rho"]) < 0.5
    assert cap["sentence"].startswith("The capacity gap does not dominate here")
    full = cap["regressions"][0]
    assert full["n"] == 6 and full["dof"] == 2 and full["r2"] > 0.9
    # Now the size ratio orders the gains and accuracy is flat: the sentence must say so.
    teachers = {f"t{i}": {"params": 10 ** (9 + i / 2), "accuracy": 0.9, "n_train": 100} for i in range(6)}
    study = analyse(tmp_path / "b", students=STUDENT, teachers=teachers, gains=gains, n_items=3000, seed_sd=0.0)
    assert study["capacity_gap"][0]["sentence"].startswith("The capacity gap is the strongest ordering factor")


def test_unknown_sizes_leave_the_capacity_gap_unjudged(tmp_path):
    teachers = {"a": {"params": None}, "b": {"params": None}, "c": {"params": 1e10}}
    gains = {("small", t, "own-correct"): g for t, g in zip("abc", (0.02, 0.04, 0.06), strict=True)}
    study = analyse(tmp_path, students=STUDENT, teachers=teachers, gains=gains)
    assert study["capacity_gap"][0]["sentence"].startswith("The capacity gap cannot be judged here: only 1 of 3 cells")


def test_rank_flips_between_protocols_and_post_only_reporting_across_students(tmp_path):
    students = {"strong": {"pre": 0.6, "params": 1e9}, "weak": {"pre": 0.2, "params": 1e8}}
    gains = {("strong", "best", "a"): -0.06, ("strong", "good", "a"): -0.02,
             ("weak", "best", "a"): 0.15, ("weak", "good", "a"): 0.10,
             ("strong", "best", "b"): 0.04, ("strong", "good", "b"): -0.02}
    study = analyse(tmp_path, students=students, teachers=TEACHERS, gains=gains, n_items=500)
    post_vs_gain = {c["protocol"]: c for c in study["rank_flips"]["post_vs_gain"]}["a"]
    # strong-student cells top the post-only ranking though both got worse
    assert set(post_vs_gain["ranking"]["post"][:2]) == {"best -> strong", "good -> strong"}
    assert post_vs_gain["ranking"]["gain"][:2] == ["best -> weak", "good -> weak"]
    assert post_vs_gain["kendall_tau"] < 0 and len(post_vs_gain["flips"]) == 4
    assert set(post_vs_gain["post_only_helpful_but_worse"]) == {"best -> strong", "good -> strong"}
    (between,) = study["rank_flips"]["between_protocols"]
    assert between["student"] == "strong" and between["flips"] == [["best", "good"]]
    assert between["kendall_tau"] == pytest.approx(-1.0)


def test_an_unknown_study_or_an_empty_store_is_one_clear_error(tmp_path):
    with Store(tmp_path / "empty.sqlite") as store:
        with pytest.raises(CapgapError, match="holds no study yet"):
            analyse_store(store)
        write_study(store, "sim", students=STUDENT, teachers=TEACHERS, gains={("small", "best", "x"): 0.1})
        with pytest.raises(CapgapError, match="studies there: sim"):
            analyse_store(store, "other")


def test_cells_of_an_earlier_budget_or_a_dropped_teacher_are_superseded(tmp_path):
    gains = {("small", "best", "own-correct"): 0.0, ("small", "good", "own-correct"): 0.0}
    with Store(tmp_path / "s.sqlite") as store:
        write_study(store, "sim", students=STUDENT, teachers=TEACHERS, gains=gains)
        store.study.save_study("sim", {"training": TRAINING, "teachers": [{"name": "best"}]}, {})
        stale = {**store.study.cells("sim")[0], "cell_key": "stale", "training_json": json.dumps({"steps": 1}),
                 "post_eval_key": "sim-pre-small"}
        store.study.save_cell(stale)
        study = analyse_store(store)["studies"][0]
    assert [(g["teacher"], g["seeds"]) for g in study["cells"]] == [("best", [0])]


def test_the_teacher_choice_is_tested_against_another_teacher_when_the_runner_up_is_itself(tmp_path):
    gains = {("small", "best", "a"): 0.15, ("small", "best", "b"): 0.13, ("small", "good", "a"): 0.02}
    study = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains, n_items=400)
    (rec,) = study["recommendations"]
    assert (rec["teacher"], rec["protocol"]) == ("best", "a")
    assert (rec["versus_runner_up"]["runner_up"], rec["versus_runner_up"]["runner_up_protocol"]) == ("best", "b")
    assert rec["versus_other_teacher"]["runner_up"] == "good"
    assert rec["versus_other_teacher"]["difference_ci95"][0] > 0 and "best other teacher good" in rec["evidence"]


def test_one_seed_speaks_for_its_run_and_the_study_states_what_it_detects(tmp_path):
    gains = {("small", "best", "own-correct"): 0.10, ("small", "good", "own-correct"): 0.0}
    study = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains, n_items=400)
    cell = by_teacher(study)["best"]
    assert cell["scope"] == "1 seed: speaks for this training run only"
    assert cell["test"] == "paired t on items (1 seed)" and cell["variance_components"]["seed"] is None
    (limit,) = study["detection_limits"]
    assert (limit["seeds"], limit["n_items"], limit["holm_family_size"]) == (1, 400, 2)
    assert limit["alpha"] == pytest.approx(0.025) and 0.02 < limit["mde"] < 0.15
    assert limit["sentence"] == (f"sim · small · own-correct: this study detects gains ≥ {100 * limit['mde']:.1f} pp "
                                 "(80% power, Holm α/m = 0.05/2, 1 seed(s), 400 items); "
                                 "1 seed: speaks for this training run only")
    assert "1 seed: speaks for this training run only" in study["recommendations"][0]["evidence"]


def test_each_seed_is_paired_with_its_own_baseline(tmp_path):
    from capgap.analysis.simulate import cell_row, write_evaluation

    rng = np.random.default_rng(0)
    base = (rng.random(300) < 0.3).astype(int)
    other = base.copy()
    other[:60] = 1 - other[:60]  # seed 1 was evaluated against a different baseline run
    with Store(tmp_path / "s.sqlite") as store:
        store.study.save_study("sim", {"training": TRAINING}, {})
        for key, rows in (("pre-a", base), ("pre-b", other), ("post-0", base), ("post-1", other)):
            write_evaluation(store, key, rows)
        for seed, (pre, post) in enumerate((("pre-a", "post-0"), ("pre-b", "post-1"))):
            store.study.save_cell(cell_row("sim", "small", "t", "p", seed, pre_key=pre, post_key=post, n_items=300))
        (cell,) = analyse_store(store)["studies"][0]["cells"]
    assert cell["gain_by_seed"] == [0.0, 0.0] and cell["gain"] == 0.0  # post equals its own baseline
    assert cell["ci95"] == [0.0, 0.0] and cell["p_value"] == 1.0 and cell["verdict"] == "no detectable change"


def test_a_runner_up_within_noise_is_not_separable(tmp_path):
    gains = {("small", "best", "own-correct"): 0.16, ("small", "good", "own-correct"): 0.15}
    study = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains, seeds=5, n_items=500)
    (rec,) = study["recommendations"]
    versus = rec["versus_runner_up"]
    assert rec["teacher"] in ("best", "good") and versus["difference_ci95"][0] < 0 < versus["difference_ci95"][1]
    assert versus["p_value"] > 0.05 and rec["confidence"].startswith("not separable from")
    assert versus["test"].startswith("seed-aware t") and versus["n_items"] == 500


def test_the_store_pipeline_gives_the_seed_aware_test_of_the_simulated_arrays(tmp_path):
    from capgap.analysis.seedaware import cell_test
    from capgap.analysis.simulate import simulate_cell, write_cell, write_evaluation

    cell = simulate_cell(250, 3, 0.03, 0.02, np.random.default_rng(9))
    with Store(tmp_path / "s.sqlite") as store:
        store.study.save_study("sim", {"training": TRAINING}, {})
        write_evaluation(store, "pre", cell.pre)
        write_cell(store, "sim", "small", "t", "own-correct", cell, "pre")
        (record,) = analyse_store(store)["studies"][0]["cells"]
    expected = cell_test(cell.pre, cell.post)
    assert record["ci95"] == pytest.approx(expected.ci95) and record["p_value"] == pytest.approx(expected.p_value)
    assert record["gain_by_seed"] == pytest.approx(list((cell.post - cell.pre).mean(axis=1)))
    assert record["df"] == pytest.approx(expected.t.df) and record["n_items"] == 250


def _cut_study(tmp_path, cut_share: float, pre: float = 0.4, config: dict | None = None) -> dict:
    """One student, two teachers, 5 seeds on 200 items; the baseline's first `cut_share` of answers reached the
    96-token limit, the rest used 40 tokens."""
    from capgap.analysis.simulate import simulate_family, write_cell, write_evaluation

    family = simulate_family(200, 5, [0.20, 0.0], [0.01, 0.01], np.random.default_rng(3), baseline=pre)
    lengths = np.where(np.arange(200) < cut_share * 200, 96, 40)
    with Store(tmp_path / "s.sqlite") as store:
        store.study.save_study("sim", {"training": TRAINING, **(config or {})}, {})
        write_evaluation(store, "pre", family[0].pre, lengths, max_new_tokens=96)
        for name, cell in zip(("a", "b"), family, strict=True):
            write_cell(store, "sim", "small", name, "own-correct", cell, "pre")
        return analyse_store(store)["studies"][0]


def test_a_baseline_cut_at_its_token_limit_gets_no_verdict_and_says_what_to_change(tmp_path):
    study = _cut_study(tmp_path, 0.6)
    cells = by_teacher(study)
    assert {c["verdict"] for c in cells.values()} == {"no verdict: baseline cut"}
    note = cells["a"]["baseline_note"]
    assert "cut at 96 tokens for 60% of items" in note and "max_new_tokens to at least 192" in note
    (rec,) = study["recommendations"]
    assert rec["decision"].startswith("no verdict") and rec["teacher"] is None
    # under the threshold the verdict stands (the +20 pp teacher improves); the threshold is the config's
    fair = by_teacher(_cut_study(tmp_path / "fair", 0.04))
    assert fair["a"]["verdict"] == "improves" and fair["a"]["baseline_note"] is None
    relaxed = by_teacher(_cut_study(tmp_path / "relaxed", 0.6, config={"evaluation": {"max_baseline_cut": 0.7}}))
    assert relaxed["a"]["verdict"] == "improves"


def test_a_baseline_at_the_floor_is_named(tmp_path):
    cells = by_teacher(_cut_study(tmp_path, 0.0, pre=0.02))
    assert cells["b"]["baseline_note"].startswith("the baseline is at the floor")
    assert cells["b"]["verdict"] != "no verdict: baseline cut"


def test_when_teachers_degrade_the_recommendation_leads_with_it(tmp_path):
    gains = {("small", "best", "own-correct"): -0.12, ("small", "good", "own-correct"): -0.15}
    study = analyse(tmp_path, students=STUDENT, teachers=TEACHERS, gains=gains, seeds=3, n_items=400)
    (rec,) = study["recommendations"]
    assert {g["verdict"] for g in study["cells"]} == {"degrades"}
    assert rec["decision"] == "do not distil: every teacher makes the student worse", rec
    best = next(g for g in study["cells"] if g["teacher"] == "best")
    assert f"best (own-correct) {100 * best['gain']:+.1f} pp" in rec["evidence"], rec
    (limit,) = study["detection_limits"]  # the detection limit agrees with the tests that found the losses
    assert limit["mde"] < min(abs(g["gain"]) for g in study["cells"]), limit
