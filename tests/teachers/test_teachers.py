import json

import pytest

from capgap.errors import CapgapError
from capgap.tasks import load_task
from capgap.teachers import (
    ImportSource,
    imported_rationales,
    normalize_question,
    normalize_rationale,
    reference_rationales,
)
from tests.conftest import shared_data

EIT = "svamp_teachers/eit/"


@pytest.fixture(scope="module")
def svamp_pool():
    data_dir = shared_data("svamp", "SVAMP.json").parents[1]
    task = load_task("svamp", data=str(data_dir / "svamp" / "SVAMP.json"))
    human = json.loads((data_dir / EIT / "svamp_human_annotation.json").read_text())
    questions = {normalize_question(r["instruction"]) for r in human}
    return data_dir, task, [it for it in task.items if normalize_question(it.question) in questions]


@pytest.mark.parametrize(("name", "source", "covered", "accuracy"), [
    ("gpt-4o", ImportSource([EIT + "SVAMP_ChatGPT_level3_ranked.json"], "instruction", "output"), 699, 0.983),
    ("human", ImportSource([EIT + "svamp_human_annotation.json"], "instruction", "output"), 700, 1.0),
    ("palm-540b", ImportSource(["svamp_teachers/palm540b_dss/llm/train_CoT_0.json",
                                "svamp_teachers/palm540b_dss/llm/train_CoT_1.json"], "input",
                               questions_file="svamp_teachers/palm540b_dss/svamp_train.json", cut_at="\n\nQ:"),
     564, 0.603),  # "The answer is (some bags + 4 bags)." states no number: wrong (extraction v1 read 4)
    ("llama3-chatqa-8b", ImportSource(["svamp_teachers/llama3_chatqa_8b/svamp_train_llama3.json",
                                       "svamp_teachers/llama3_chatqa_8b/svamp_test_llama3.json"], "input",
                                      "gen_label", strip_prefix="Rationale:"), 697, 0.733),  # 3 empty skipped
    ("gpt-3.5", ImportSource(["svamp_teachers/gpt35_llm_adapters/svamp_1.json"], "question", "chain-of-thought",
                             strip_prefix="A:"), 700, 0.810),
])
def test_real_teachers_import_and_are_checked_by_capgap(svamp_pool, name, source, covered, accuracy):
    data_dir, task, pool = svamp_pool
    assert len(pool) == 700
    teacher = imported_rationales(name, source, task, pool, data_dir)
    assert len(teacher.rationales) == covered
    assert teacher.accuracy == pytest.approx(accuracy, abs=0.001)
    assert all(r.text.endswith(".") and "The answer is" in r.text for r in teacher.rationales)
    assert all("\n\nQ:" not in r.text for r in teacher.rationales)  # PaLM continuations are cut


def test_normalisation_keeps_the_stated_answer_and_fixes_the_phrase():
    task = load_task("arith", n=1)
    assert normalize_rationale("84 / 2 = 42. The answer is (84 / 2).", task) == (
        "84 / 2 = 42. The answer is (84 / 2).", "42")
    assert normalize_rationale(" Rationale: 3 + 4 = 7. Answer: 7", task, "Rationale:") == (
        "3 + 4 = 7. The answer is 7.", "7")
    assert normalize_rationale("So 5 apples remain", task) == ("So 5 apples remain. The answer is 5.", "5")


def test_reference_teacher_and_mismatched_files(tmp_path):
    task = load_task("arith", n=20)
    ref = reference_rationales("reference", task, task.items)
    assert ref.accuracy == 1.0 and len(ref.rationales) == 20
    other = tmp_path / "r.jsonl"
    other.write_text(json.dumps({"question": "unrelated", "rationale": "The answer is 1."}) + "\n")
    with pytest.raises(CapgapError, match="none of its 1 rationales matched a training-pool question"):
        imported_rationales("t", ImportSource([str(other)]), task, task.items)
    with pytest.raises(CapgapError, match="missing field 'output'"):
        imported_rationales("t", ImportSource([str(other)], rationale_field="output"), task, task.items)


def test_the_scored_answer_is_the_one_the_training_text_states():
    task = load_task("arith", n=1)
    for raw in ("So 5 + 3 = 8. The answer is 8. Wait: \\boxed{9}", "3 + 4 = 7", "The answer is ((29/2) and (30/2))."):
        text, answer = normalize_rationale(raw, task)
        assert task.extract(text).strict == answer
    assert normalize_rationale("The answer is ((29/2) and (30/2)).", task)[1] is None  # two values: no answer
