"""Mixture teachers: each question's rationales drawn from one part in the parts' shares (seeded, the same in
every run), filtered by the protocol like any teacher's, with the shares each protocol trains on stated."""

import json
from dataclasses import replace

import numpy as np
import pytest

from capgap.config import parse
from capgap.store import Store
from capgap.study.data import prepare_task, training_examples
from capgap.study.teachers import gather_all, mixture_notes
from capgap.teachers.mixture import drawn_part, mixture_rationales
from tests.conftest import shared_data
from tests.study.test_grid import capgap, write_config


def test_parts_are_drawn_in_their_shares_and_the_same_every_time():
    shares = [("long", 0.2), ("short", 0.8)]
    ids = [f"q{i}" for i in range(20_000)]
    drawn = [drawn_part(0, i, shares) for i in ids]
    share = drawn.count("long") / len(ids)
    assert 0.2 - 4 * np.sqrt(0.16 / len(ids)) < share < 0.2 + 4 * np.sqrt(0.16 / len(ids))
    assert drawn == [drawn_part(0, i, shares) for i in ids]  # deterministic, whatever the mixture's name
    other = [drawn_part(1, i, shares) for i in ids]
    assert 0.6 < np.mean([a == b for a, b in zip(drawn, other, strict=True)]) < 0.75  # another draw: 0.2²+0.8²


def _svamp_levels(tmp_path, parts: list[dict]) -> dict:
    data = shared_data("svamp", "SVAMP.json").parents[1]
    files = {"terse": "svamp_teachers/eit/SVAMP_ChatGPT_level1_ranked.json",
             "detailed": "svamp_teachers/eit/SVAMP_ChatGPT_level6_ranked.json"}
    return {"name": "mix", "data_dir": str(data), "students": ["smollm2-135m-instruct"],
            "protocols": ["own-correct", "intersection", "unfiltered"],
            "tasks": [{"name": "svamp", "options": {"data": "svamp/SVAMP.json"},
                       "pool": {"match_file": "svamp_teachers/eit/svamp_human_annotation.json",
                                "match_field": "instruction"}, "test": {"rest": True}}],
            "teachers": [*({"name": n, "kind": "imported", "files": [f], "question_field": "instruction",
                            "rationale_field": "output"} for n, f in files.items()),
                         {"name": "mix-long", "kind": "mixture", "parts": parts}]}


def test_a_mix_long_of_real_terse_and_detailed_rationales(tmp_path):
    raw = _svamp_levels(tmp_path, [{"teacher": "detailed", "share": 0.2}, {"teacher": "terse", "share": 0.8}])
    config, problems = parse(raw)
    assert not problems, problems
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    with Store(tmp_path / "s.sqlite") as store:
        teachers = gather_all(config, st, store, lambda _: None)
        recorded = {t["teacher"]: json.loads(t["notes_json"]) for t in store.study.teachers("mix")}
    terse, detailed, mix = teachers
    by_id = {t.teacher: {r.item_id: r.text for r in t.rationales} for t in (terse, detailed)}
    for r in mix.rationales:  # every rationale is its drawn part's own
        assert r.text == by_id[mix.drawn[r.item_id]][r.item_id]
    examples = training_examples("own-correct", mix, teachers)
    long = sum(mix.drawn[e.item_id] == "detailed" for e in examples) / len(examples)
    n = len(examples)
    assert n > 500 and abs(long - 0.2) < 4 * np.sqrt(0.16 / n)
    said = f"own-correct: {n} examples, detailed {100 * long:.0f}%"
    assert any(note.startswith(said) for note in recorded["mix-long"])
    assert not any("SHORTFALL" in note for note in recorded["mix-long"])
    shared = set.intersection(*(t.correct_items() for t in teachers))
    assert {e.item_id for e in training_examples("intersection", mix, teachers)} == shared


def test_a_part_with_too_few_usable_rationales_is_a_stated_shortfall(tmp_path):
    raw = _svamp_levels(tmp_path, [{"teacher": "detailed", "share": 0.5}, {"teacher": "terse", "share": 0.5}])
    config, _ = parse(raw)
    st = prepare_task(config.tasks[0], 0, config.data_dir)
    with Store(tmp_path / "s.sqlite") as store:
        terse, detailed, mix = gather_all(config, st, store, lambda _: None)
    (note,) = mixture_notes(config.teachers[2], mix, [terse, detailed, mix], ["own-correct"])
    assert "SHORTFALL" not in note
    thinned = replace(detailed, rationales=detailed.rationales[::2])  # half of its questions have no rationale
    mix = mixture_rationales("mix-long", [(thinned, 0.5), (terse, 0.5)], st.pool)
    (note,) = mixture_notes(config.teachers[2], mix, [terse, thinned, mix], ["own-correct"])
    assert "SHORTFALL: detailed below the share asked" in note
    shares = dict(part.rsplit(" ", 1) for part in note.split(" examples, ")[1].split(" (")[0].split(", "))
    assert 25 <= int(shares["detailed"].rstrip("%")) <= 40  # about a third: half of its half is gone


@pytest.mark.parametrize(("parts", "message"), [
    ([{"teacher": "detailed", "share": 0.3}, {"teacher": "terse", "share": 0.8}], "shares sum to 1.1"),
    ([{"teacher": "detailed", "share": 1.0}], "a mixture needs at least two parts"),
    ([{"teacher": "detaled", "share": 0.2}, {"teacher": "terse", "share": 0.8}], "did you mean 'detailed'"),
    ([{"teacher": "mix-long", "share": 0.2}, {"teacher": "terse", "share": 0.8}], "is no other teacher"),
])
def test_a_mixture_names_other_teachers_with_shares_that_sum_to_one(tmp_path, parts, message):
    _, problems = parse(_svamp_levels(tmp_path, parts))
    assert any(message in p and p.startswith("teachers[2].parts") for p in problems), problems


def test_a_study_with_a_mixture_teacher_runs_end_to_end(tiny_model, tiny_plain_model, tmp_path):
    import yaml

    path = write_config(tmp_path, tiny_model, tiny_plain_model, name="mixed")
    config = yaml.safe_load(path.read_text())
    config["teachers"] += [{"name": "long", "kind": "reference", "style": "long"},  # Mix-Long, offline
                           {"name": "mix", "kind": "mixture", "parts": [{"teacher": "long", "share": 0.2},
                                                                       {"teacher": "gold", "share": 0.8}]}]
    config["protocols"] = ["unfiltered"]
    path.write_text(yaml.safe_dump(config))
    result = capgap("run", str(path), "--store", str(tmp_path / "store.sqlite"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| mix | unfiltered |" in result.stdout
    with Store(tmp_path / "store.sqlite") as store:
        cells = {c["teacher"]: c for c in store.study.cells("mixed")}
        notes = {t["teacher"]: json.loads(t["notes_json"]) for t in store.study.teachers("mixed")}
    assert cells["mix"]["status"] == "done" and cells["mix"]["n_train"] > 0
    assert any(n.startswith("unfiltered: 16 examples, long ") for n in notes["mix"])
    assert cells["long"]["status"] == "done" and notes["long"][0].startswith("long style: 16 of 16")
