"""What carried over between two checkpoints of a lineage: checked by simulation with item and seed noise
(coverage bounded on both sides), and through a real store and the three report formats."""

import json
import re

import numpy as np
import pytest

from capgap.analysis import analyse_store, lineage, seedaware
from capgap.report import render
from capgap.store import Store
from tests.analysis.sim import draw_lineage, draw_post, seed_gains, write_lineage_study

N, K, SIGMA = 300, 3, 0.02


def _group(teacher: str, pre: np.ndarray, post: np.ndarray) -> dict:
    """A trained cell as `analysis.cells.group_cells` gives it, with its own seed-aware test and verdict."""
    test = seedaware.cell_test(pre, post)
    gain = float((post - pre).mean())
    verdict = ("improves" if gain > 0 else "degrades") if test.p_value < 0.05 else "no detectable change"
    ids = [f"q{i}" for i in range(pre.size)]
    return {"teacher": teacher, "gain": gain, "ci95": test.ci95, "verdict": verdict, "seeds": list(range(len(post))),
            "_items": {"ids": ids, "d": post - pre, "pre": pre, "post": post}}


def _world(rng, mu_old: float, mu_new: float, drift: float) -> tuple[dict, dict]:
    (pre_old, h_old, b_old), (pre_new, h_new, b_new) = draw_lineage(N, [drift], rng)
    posts = [np.stack([draw_post(pre, h, g, rng, baseline=b) for g in seed_gains(K, mu, SIGMA, rng)])
             for pre, h, b, mu in ((pre_old, h_old, b_old, mu_old), (pre_new, h_new, b_new, mu_new))]
    return _group("t", pre_old, posts[0]), _group("t", pre_new, posts[1])


@pytest.mark.parametrize(("mu_old", "mu_new", "drift"), [(0.0, 0.0, 0.0), (0.08, 0.0, 0.10), (0.02, 0.07, -0.05)])
def test_change_drift_and_deployment_cis_cover_the_truth(mu_old, mu_new, drift):
    rng = np.random.default_rng(7)
    reps, hits = 1000, {"change": 0, "drift": 0, "deployment": 0}
    for _ in range(reps):
        old, new = _world(rng, mu_old, mu_new, drift)
        change = lineage.teacher_change(old, new, 1, 1)["change"]
        moved = lineage.baseline_drift(old, new)
        deploy = lineage.deployment(old, new["_items"]["pre"], new["_items"]["ids"])
        for name, result, truth in (("change", change, mu_new - mu_old), ("drift", moved, drift),
                                    ("deployment", deploy, mu_old - drift)):
            lo, hi = result["ci95"]
            hits[name] += lo <= truth <= hi
    # the seed-aware CIs (change, deployment) are as conservative as a cell's (the calibration bench: 94.5-99%,
    # a seed term with k - 1 df); the drift has no seeds: a paired t on items
    bounds = {"change": (0.93, 0.99), "deployment": (0.93, 0.99), "drift": (0.93, 0.975)}
    for name, hit in hits.items():
        assert bounds[name][0] <= hit / reps <= bounds[name][1], (name, hit / reps)


def test_a_real_change_is_found_and_named():
    rng = np.random.default_rng(3)
    found = []
    for _ in range(40):
        old, new = _world(rng, 0.12, 0.0, 0.10)
        result = lineage.teacher_change(old, new, 1, 2)
        found.append(result["change"]["p_value"] < 0.05)
        if result["verdict_old"] == "improves" and result["verdict_new"] == "no detectable change":
            said = "no longer helps" if found[-1] else "helps on the old only (the change is not significant)"
            assert result["carried"] == f"{said}, changed rank (1 → 2)"
    # a 12-point loss of gain, 3 seeds, 300 items: found about half the time (four 0/1 answers per item and a
    # seed term with 2 df on each side); the test only checks that it is found far above the 5% false rate
    assert 0.3 < np.mean(found) < 0.8


def test_carried_verdicts_read_both_checkpoints_and_the_change_test():
    labels = ("prod@1", "prod@2")
    verdict = lineage.carried_verdict
    assert verdict("improves", "improves", False, labels) == "still helps"
    assert verdict("improves", "no detectable change", True, labels) == "no longer helps"
    assert verdict("improves", "no detectable change", False, labels) == \
        "helps on prod@1 only (the change is not significant)"
    assert verdict("no detectable change", "improves", True, labels) == "now helps"
    assert verdict("no detectable change", "improves", False, labels) == \
        "helps on prod@2 only (the change is not significant)"
    assert verdict("degrades", "no detectable change", True, labels) == "no longer hurts"
    assert verdict("no detectable change", "degrades", True, labels) == "now hurts"
    assert verdict("improves", "degrades", True, labels) == "no longer helps, now hurts"
    assert verdict("no detectable change", "no detectable change", False, labels) == "no detectable change on either"
    assert verdict("no verdict: baseline cut", "improves", True, labels) == "no verdict on prod@1 (baseline cut)"


def test_a_lineage_study_reports_its_checkpoints_and_steps_in_every_format(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        gains = {("ckpt-a", "gold"): 0.15, ("ckpt-a", "weak"): -0.10, ("ckpt-b", "gold"): 0.0,
                 ("ckpt-b", "weak"): -0.10}
        write_lineage_study(store, "lin", "prod", ["ckpt-a", "ckpt-b"], [0.15], gains, n_items=400, seed=1)
        analysis = analyse_store(store)
    (view,) = analysis["studies"][0]["lineages"]
    assert [p["checkpoint"] for p in view["checkpoints"]] == ["prod@1", "prod@2"]
    (step,) = view["steps"]
    by_teacher = {t["teacher"]: t for t in step["teachers"]}
    gold = by_teacher["gold"]
    significant = gold["change"]["p_value"] < 0.05
    assert gold["carried"].startswith("no longer helps" if significant else "helps on prod@1 only")
    assert by_teacher["weak"]["carried"].startswith("still hurts")
    assert step["baseline_drift"]["ci95"][0] > 0  # the new checkpoint is better as it is
    deploy = {d["teacher"]: d for d in step["deployment"]}
    assert deploy["weak"]["answer"] == "loses to the new checkpoint"
    md = render(analysis, "md")
    assert "### Lineages: a baseline that moves" in md and "What carried over from prod@1 to prod@2:" in md
    assert "| gold |" in md and "Deploy prod@1 distilled from weak instead of prod@2? It loses to" in md
    html = render(analysis, "html")
    assert 'id="fig-lineage-0"' in html and "data:image/png;base64," in html
    public = json.loads(render(analysis, "json"))["studies"][0]["lineages"][0]
    change = public["steps"][0]["teachers"][0]["change"]
    assert change["ci95"][0] <= change["estimate"] <= change["ci95"][1]


def test_the_readme_documents_exactly_the_keys_of_a_lineage_view(tmp_path):
    from pathlib import Path

    with Store(tmp_path / "s.sqlite") as store:
        gains = {(c, t): 0.05 for c in ("a", "b") for t in ("gold", "weak")}
        write_lineage_study(store, "lin", "prod", ["a", "b"], [0.05], gains, n_items=100)
        view = json.loads(render(analyse_store(store), "json"))["studies"][0]["lineages"][0]
    step, point = view["steps"][0], view["checkpoints"][0]
    in_json = (set(view) | set(point) | set(point["baseline"]) | set(point["teachers"]["gold"]) | set(step)
               | set(step["teachers"][0]) | set(step["teachers"][0]["change"]) | set(step["baseline_drift"])
               | set(step["deployment"][0]))
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme[readme.index("- per lineage view"):]
    block = block[:block.index("\n\n")]
    documented = set(re.findall(r"`(\w+)`", block)) - {"prod"}
    assert documented == in_json, documented ^ in_json
