import json

import pytest

from capgap.config.schema import PROTOCOLS
from capgap.errors import CapgapError
from capgap.study.data import training_examples
from capgap.tasks import AnswerType, Item, Task, load_task
from capgap.teachers import (
    ImportSource,
    imported_rationales,
    normalize_question,
    normalize_rationale,
    reference_rationales,
)
from capgap.teachers.base import TeacherRationales, hedge_note, scored
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


def test_normalisation_states_the_canonical_answer_and_fixes_the_phrase():
    task = load_task("arith", n=1)
    assert normalize_rationale("84 / 2 = 42. The answer is (84 / 2).", task)[:2] == (
        "84 / 2 = 42. The answer is 42.", "42")
    assert normalize_rationale(" Rationale: 3 + 4 = 7. Answer: $7.00", task, "Rationale:")[:2] == (
        "3 + 4 = 7. The answer is 7.", "7")
    assert normalize_rationale("So 5 apples remain", task)[:2] == ("So 5 apples remain. The answer is 5.", "5")


def _typed(kind: AnswerType, gold: str) -> tuple[Task, Item]:
    item = Item("q1", "Is it?", gold)
    return Task("t", [item], kind), item


@pytest.mark.parametrize(("kind", "raw", "text", "answer"), [
    (AnswerType.YESNO, "Birds fly, so ans is True", "Birds fly. The answer is yes.", "yes"),
    (AnswerType.YESNO, "Birds fly. The answer is: TRUE.", "Birds fly. The answer is yes.", "yes"),
    (AnswerType.YESNO, "Fish walk? Final answer: No", "Fish walk? The answer is no.", "no"),
    (AnswerType.CHOICE, "Shops sell food. So the answer is (b) fairgrounds.", "Shops sell food. The answer is B.",
     "B"),
    (AnswerType.CHOICE, "Shops sell food. Answer: option c", "Shops sell food. The answer is C.", "C"),
    (AnswerType.STRING, "He was born there. The answer is Paris, France.", "He was born there. The answer is "
     "Paris, France.", "paris france"),
])
def test_every_answer_type_is_stated_in_one_canonical_form(kind, raw, text, answer):
    task, _ = _typed(kind, answer)
    assert normalize_rationale(raw, task) == (text, answer, False)


@pytest.mark.parametrize(("kind", "raw"), [
    (AnswerType.CHOICE, "People watch films there. The answer is either (b) fairgrounds or (c) movie theatre."),
    (AnswerType.CHOICE, "The answer is B or C."),
    (AnswerType.YESNO, "It depends. The answer is yes or no."),
    (AnswerType.NUMBER, "About half. The answer is 5 or 6."),
    (AnswerType.NUMBER, "The answer is 5 or maybe 6."),
    (AnswerType.CHOICE, "Hard to say. The answer is probably B or C."),
    (AnswerType.CHOICE, "The answer is (B) (or possibly (C))."),
])
def test_a_hedged_statement_is_scored_wrong_and_never_trained_on(kind, raw):
    gold = {AnswerType.CHOICE: "B", AnswerType.YESNO: "yes", AnswerType.NUMBER: "5"}[kind]
    task, item = _typed(kind, gold)
    normalized = normalize_rationale(raw, task)
    assert normalized.answer is None and normalized.hedged  # B is among the hedged answers, yet not credited
    rationales = [scored(item, normalized, task)]
    teacher = TeacherRationales("t", rationales, 1, notes=hedge_note(rationales))
    assert teacher.accuracy == 0.0
    assert teacher.notes == ["1 rationale(s) hedge between answers (scored wrong, never trained on)"]
    assert all(training_examples(p, teacher, [teacher]) == [] for p in PROTOCOLS)


def test_committed_statements_are_not_hedges():
    task, _ = _typed(AnswerType.NUMBER, "12")
    for raw in ("3 x 4. The answer is 12, since 3 or 4 alone is too small.", "The answer is 12 (or 12.0)."):
        assert normalize_rationale(raw, task)[1:] == ("12", False)
    for raw in ("The answer is 15 minutes, or 0.25 hours.", "The answer is 15 or 15.0."):
        assert normalize_rationale(raw, _typed(AnswerType.NUMBER, "15")[0])[1:] == ("15", False)
    task, _ = _typed(AnswerType.YESNO, "no")
    for raw in ("The answer is no, and that settles it.", "The answer is no, and yes-men would disagree."):
        assert normalize_rationale(raw, task)[1:] == ("no", False)
    task, _ = _typed(AnswerType.CHOICE, "D")
    for raw in ("The answer is (D) 5 km/h.", "The answer is (D) both A and B.", "The answer is D: none of A, B or C."):
        assert normalize_rationale(raw, task)[1:] == ("D", False)


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
        text, answer, _ = normalize_rationale(raw, task)
        assert task.extract(text).strict == answer
    assert normalize_rationale("The answer is ((29/2) and (30/2)).", task)[1] is None  # two values: no answer


def test_joining_a_real_release_by_its_id_field_matches_joining_by_question_text(svamp_pool):
    data_dir, task, pool = svamp_pool
    files = ["svamp_teachers/gpt35_llm_adapters/svamp_1.json"]
    by_text = imported_rationales("gpt-3.5", ImportSource(files, "question", "chain-of-thought", strip_prefix="A:"),
                                  task, pool, data_dir)
    by_id = imported_rationales("gpt-3.5", ImportSource(files, rationale_field="chain-of-thought", id_field="ID",
                                                        strip_prefix="A:"), task, pool, data_dir)
    assert [(r.item_id, r.text, r.correct) for r in by_id.rationales] == [
        (r.item_id, r.text, r.correct) for r in by_text.rationales]
    assert by_id.notes[0] == "700 of 700 pool questions covered (joined by id field 'ID')"
    assert by_id.notes[1] == ("300 of 1000 records match no pool question (e.g. 'chal-1', 'chal-4')")
