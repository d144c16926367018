"""The long-CoT style of a reference teacher: the gold's steps restated and checked, one wrong step caught and
corrected, the same answer stated, so Mix-Long runs offline on generated or released gold rationales."""

import re

from capgap.config import parse
from capgap.tasks import load_task
from capgap.teachers.longcot import _STEP, lengthen
from capgap.teachers.reference import reference_rationales
from tests.conftest import shared_data


def _check_long(gold: str, long: str, question: str) -> None:
    steps = re.findall(r"-?\d+ [-+x*/] -?\d+ = -?\d+", gold)
    assert long.startswith(f"Let me restate the problem: {question.strip()}")
    assert long.count("Wait, let me check") == 1 and long.count(", which matches.") == len(steps) - 1
    assert all(step in long for step in steps)  # every gold step, the corrected one too
    assert long.endswith(gold[gold.rindex("The answer is"):]) and len(long.split()) > 1.5 * len(gold.split())


def test_every_arith_gold_rationale_lengthens_to_the_same_answer():
    task = load_task("arith", n=300, seed=7)
    long = reference_rationales("long", task, task.items, style="long")
    gold = reference_rationales("gold", task, task.items)
    assert long.accuracy == gold.accuracy == 1.0  # the wrong step is corrected: the stated answer is the gold's
    assert long.notes[0].startswith("long style: 300 of 300 rationales lengthened")
    by_id = {it.id: it for it in task.items}
    for r in long.rationales[:50]:
        item = by_id[r.item_id]
        _check_long(item.rationale, lengthen(item.rationale, item.question, item.id), item.question)
    assert lengthen(task.items[0].rationale, task.items[0].question, task.items[0].id) == long.rationales[0].text


def test_svamp_equations_lengthen_and_plain_text_stays():
    task = load_task("svamp", data=str(shared_data("svamp", "SVAMP.json"))).limited(200)
    long = reference_rationales("long", task, task.items, style="long")
    assert long.accuracy == reference_rationales("gold", task, task.items).accuracy
    simple = sum(bool(_STEP.search(it.rationale)) for it in task.items)  # "a OP b = c": 153 of the first 200
    assert simple >= 140 and sum("Wait, let me check" in r.text for r in long.rationales) == simple
    assert lengthen("Paris is in France. The answer is yes.", "Is Paris in France?", "q") == \
        "Paris is in France. The answer is yes."


def test_the_long_style_is_for_reference_teachers_only():
    raw = {"name": "x", "tasks": [{"name": "arith", "pool": {"first": 4}, "test": {"rest": True}}], "students": ["s"],
           "teachers": [{"name": "g", "kind": "reference", "style": "long"},
                        {"name": "f", "kind": "imported", "files": ["a.json"], "style": "long"}]}
    _, problems = parse(raw)
    assert [p for p in problems if "style" in p] == [
        "teachers[1].style: only reference teachers take style (kind here is 'imported')"]
