"""`capgap report` from a real store: HTML with every figure embedded, Markdown, JSON with the documented keys."""

import base64
import json
import re

import pytest

from capgap.cli import main
from capgap.store import Store
from tests.analysis.sim import TRAINING, write_study

TEACHERS = {"gpt": {"params": None, "accuracy": 0.98}, "llama": {"params": 7e10, "accuracy": 0.99},
            "palm": {"params": 5.4e11, "accuracy": 0.6}}


@pytest.fixture
def run_dir(tmp_path):
    store_path = tmp_path / "results" / "store.sqlite"
    with Store(store_path) as store:
        gains = {("smol", "gpt", "own-correct"): 0.14, ("smol", "llama", "own-correct"): 0.02,
                 ("smol", "palm", "own-correct"): -0.05, ("smol", "gpt", "intersection"): 0.01,
                 ("smol", "llama", "intersection"): 0.04, ("smol", "palm", "intersection"): 0.0}
        write_study(store, "study-a", students={"smol": {"pre": 0.25, "params": 1.35e8}}, teachers=TEACHERS,
                    gains=gains, seeds=3, n_items=600)
        store.study.save_cell({"cell_key": "skip", "study": "study-a", "task": "sim", "student": "smol",
                               "teacher": "human", "protocol": "own-correct", "seed": 0, "status": "skipped",
                               "n_train": 0, "pre_eval_key": "study-a-pre-smol", "training_json": json.dumps(TRAINING)})
    (tmp_path / "results" / "study-a").mkdir()
    return tmp_path / "results" / "study-a"


def test_html_report_is_self_contained_with_every_figure(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    path = run_dir / "report.html"
    assert capsys.readouterr().out.strip() == f"report: {path}"
    html = path.read_text()
    images = re.findall(r'<img id="fig-(\w+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', html)
    assert [anchor for anchor, _ in images] == ["forest", "heatmap", "size", "flips", "loss"]
    for _, data in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not re.search(r'(src|href)="(http|//)', html)  # nothing fetched from elsewhere
    assert "distil from gpt (own-correct data)" in html and "not trained" in html


def test_markdown_and_json_carry_the_same_verdicts(run_dir, tmp_path):
    store = run_dir.parent / "store.sqlite"
    assert main(["report", str(store), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    assert main(["report", str(store), "--format", "md", "-o", str(tmp_path / "r.md")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    (study,) = report["studies"]
    for cell in study["cells"]:
        assert {"gain", "ci95", "p_value", "verdict", "mde", "n_items", "seeds"} <= set(cell)
        assert "p_mcnemar" not in cell
        assert not any(k.startswith("_") for k in cell)
    assert {"recommendations", "rank_flips", "capacity_gap", "budget", "teachers"} <= set(study)
    markdown = (tmp_path / "r.md").read_text()
    for cell in study["cells"]:
        if cell["gain"] is not None:
            assert f"| smol | {cell['teacher']} | {cell['protocol']} |" in markdown
            assert f"{100 * cell['gain']:+.1f} | " in markdown and cell["verdict"] in markdown
    assert study["recommendations"][0]["decision"] in markdown
    assert study["capacity_gap"][0]["sentence"] in markdown


def test_report_reads_the_store_only_and_says_what_is_wrong(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "is not a capgap results store" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # nothing created
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    assert main(["report", str(empty)]) == 2
    assert "holds no study yet" in capsys.readouterr().err


def _documented_keys(readme: str, start: str, end: str) -> set[str]:
    """The backticked names of one bullet of the README's JSON key list (nested keys included)."""
    block = readme[readme.index(start):readme.index(end)]
    return set(re.findall(r"`(\w+)`", block))


def _keys(*dicts: dict) -> set[str]:
    return set().union(*(d.keys() for d in dicts))


def test_the_readme_documents_exactly_the_keys_of_a_real_report(run_dir, tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert main(["report", str(run_dir), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    (study,) = report["studies"]
    cell = next(c for c in study["cells"] if c["gain"] is not None)
    rec = study["recommendations"][0]
    assert rec["versus_runner_up"] is not None  # the fixture's recommendation has a runner-up to document
    cap = study["capacity_gap"][0]
    flips = study["rank_flips"]["post_vs_gain"] + study["rank_flips"]["between_protocols"]
    documented_vs_json = {
        ("- top level:", "- per study:"): _keys(report, report["settings"]),
        ("- per study:", "- per cell:"): _keys(study, study["budget"]),
        ("- per cell:", "- per recommendation:"): _keys(cell, cell["mean_squares"], cell["variance_components"],
                                                        cell["answer_failures"], cell["answer_failures"]["pre"]),
        ("- per recommendation:", "- per detection limit:"): _keys(rec, rec["versus_runner_up"]),
        ("- per detection limit:", "- per capacity-gap entry:"): _keys(*study["detection_limits"]),
        ("- `rank_flips`:", "- per superseded entry"): _keys(study["rank_flips"], *flips) | {"rank_flips"},
    }
    for (start, end), in_json in documented_vs_json.items():
        documented = _documented_keys(readme, start, end)
        assert documented == in_json, (start, documented - in_json, in_json - documented)
    # capacity gap: a regression that was skipped has no fitted numbers, so those may be absent here
    documented = _documented_keys(readme, "- per capacity-gap entry:", "- `rank_flips`:")
    in_json = _keys(cap, *cap["spearman"].values(), *cap["regressions"]) | set(cap["spearman"])
    assert in_json - set(cap["spearman"]) <= documented
    assert documented - in_json <= {"dof", "r2", "intercept_pp", "coef_pp_per_sd", "skipped"}


def test_one_seed_rows_say_they_speak_for_one_run_and_the_report_states_what_it_detects(tmp_path):
    with Store(tmp_path / "store.sqlite") as store:
        write_study(store, "one", students={"smol": {"pre": 0.3, "params": 1.35e8}}, teachers=TEACHERS,
                    gains={("smol", "gpt", "own-correct"): 0.2, ("smol", "palm", "own-correct"): 0.0}, n_items=300)
        from capgap.report import write_reports

        paths = write_reports(store, {"md": tmp_path / "r.md", "html": tmp_path / "r.html",
                                      "json": tmp_path / "r.json"})
    assert [p.name for p in paths] == ["r.md", "r.html", "r.json"]
    (study,) = json.loads((tmp_path / "r.json").read_text())["studies"]
    gpt = next(c for c in study["cells"] if c["teacher"] == "gpt")
    assert gpt["verdict"] == "improves" and gpt["scope"] == "1 seed: speaks for this training run only"
    markdown, html = (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()
    assert "| improves (1 seed: speaks for this training run only) |" in markdown
    assert '<td class="improves">improves (1 seed: speaks for this training run only)</td>' in html
    (limit,) = study["detection_limits"]
    assert limit["sentence"].startswith("sim · smol · own-correct: this study detects gains ≥ ")
    assert f"- {limit['sentence']}." in markdown and limit["sentence"] in html
    assert "(80% power, Holm α/m = 0.05/2, 1 seed(s), 300 items)" in limit["sentence"]


def test_a_study_with_no_trained_cell_still_reports(tmp_path):
    with Store(tmp_path / "store.sqlite") as store:
        store.study.save_study("early", {"training": TRAINING}, {})
        store.study.save_cell({"cell_key": "k", "study": "early", "task": "sim", "student": "smol", "teacher": "t",
                               "protocol": "own-correct", "seed": 0, "status": "skipped", "n_train": 0,
                               "training_json": json.dumps(TRAINING)})
    for fmt in ("json", "md", "html"):
        assert main(["report", str(tmp_path), "--format", fmt]) == 0
    (study,) = json.loads((tmp_path / "report.json").read_text())["studies"]
    assert [c["verdict"] for c in study["cells"]] == ["not trained"] and study["recommendations"] == []
    assert "No finished cell yet." in (tmp_path / "report.md").read_text()
    assert "nothing to draw yet" in (tmp_path / "report.html").read_text()


def test_the_report_lists_only_the_teachers_of_the_latest_config(tmp_path):
    store_path = tmp_path / "store.sqlite"
    with Store(store_path) as store:
        write_study(store, "s", students={"smol": {"pre": 0.3, "params": 1e8}}, teachers=TEACHERS,
                    gains={("smol", t, "own-correct"): 0.0 for t in TEACHERS})
        config = {"training": TRAINING, "teachers": [{"name": "gpt"}, {"name": "llama"}]}  # palm dropped
        store.study.save_study("s", config, {"capgap": "test"})
    assert main(["report", str(store_path), "--format", "json", "-o", str(tmp_path / "r.json")]) == 0
    (study,) = json.loads((tmp_path / "r.json").read_text())["studies"]
    assert sorted(t["teacher"] for t in study["teachers"]) == ["gpt", "llama"]
    assert study["config_version"] == 2


def test_the_forest_plot_fits_the_cis_not_a_100_pp_detection_band():
    from capgap.report.plots import forest_limits

    cells = [{"ci95": [-0.17, -0.05], "mde": 1.0}, {"ci95": [-0.02, 0.09], "mde": 0.2}]
    lo, hi = forest_limits(cells)
    assert lo == pytest.approx(-1.15 * 17 - 0.5) and hi == -lo  # the widest CI end sets both sides
    assert hi < 25  # not the ±100 pp the MDE band would ask for


def test_report_rescores_rows_of_an_older_extraction_in_a_read_only_store(tmp_path):
    # rows scored by an older extraction are re-scored on read; `capgap report` opens the store read-only
    # (SQLite mode=ro), so the new scores live in memory and the store is left as it was
    import sqlite3

    import numpy as np

    from capgap.analysis.simulate import simulate_family, write_cell, write_evaluation
    from tests.analysis.sim import TRAINING

    family = simulate_family(120, 3, [0.2, 0.0], [0.01, 0.01], np.random.default_rng(4))
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        store.study.save_study("sim", {"training": TRAINING}, {})
        write_evaluation(store, "pre", family[0].pre)
        for name, cell in zip(("a", "b"), family, strict=True):
            write_cell(store, "sim", "small", name, "own-correct", cell, "pre")
    assert main(["report", str(path), "--format", "json", "-o", str(tmp_path / "fresh.json")]) == 0
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE eval_items SET extraction_version = 1, correct_strict = 0")  # as an old store
    before = path.read_bytes()
    assert main(["report", str(path), "--format", "json", "-o", str(tmp_path / "old.json")]) == 0
    assert path.read_bytes() == before  # nothing written
    fresh, old = (json.loads((tmp_path / f).read_text())["studies"][0]["cells"] for f in ("fresh.json", "old.json"))
    assert [(c["teacher"], c["gain"], c["verdict"]) for c in old] == [(c["teacher"], c["gain"], c["verdict"])
                                                                    for c in fresh]
