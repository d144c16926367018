import json

import pytest

from capgap.errors import CapgapError
from capgap.tasks import AnswerType, load_task, option_problems
from tests.conftest import shared_data


def test_svamp_from_shared_data():
    task = load_task("svamp", data=str(shared_data("svamp", "SVAMP.json")))
    assert len(task.items) == 1000 and task.answer_type is AnswerType.NUMBER
    first = task.items[0]
    assert first.id == "chal-1" and first.answer == "51"
    assert first.question.startswith("Each pack of dvds costs 76 dollars.")
    assert first.rationale == "76 - 25 = 51. The answer is 51."


def test_gsm8k_from_shared_data_strips_calculator_annotations():
    task = load_task("gsm8k", data=str(shared_data("gsm8k", "test.jsonl")))
    assert len(task.items) == 1319
    janet = task.items[0]
    assert janet.answer == "18" and "<<" not in janet.rationale
    assert janet.rationale.endswith("The answer is 18.")
    # ids come from the question text, so they survive reordering and other copies of the data
    assert janet.id == load_task("gsm8k", data=str(shared_data("gsm8k", "test.jsonl"))).items[0].id


def test_aqua_through_the_generic_loader():
    path = shared_data("aqua", "test.json")
    task = load_task("jsonl", data=str(path), answer_type="choice",
                     fields="question=question,answer=correct,rationale=rationale,options=options")
    assert task.answer_type is AnswerType.CHOICE and len(task.exemplars) == 8
    assert len(task.items) == 254 - 8  # worked examples are kept out of the test set
    assert "Answer choices: (A)" in task.items[0].question and task.items[0].answer in "ABCDE"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_jsonl_field_mapping_and_types(tmp_path):
    rows = [{"q": "Is ice cold?", "a": "yes", "uid": "x1"}, {"q": "Is fire cold?", "a": "No", "uid": "x2"}]
    data = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in rows))
    task = load_task("jsonl", data=data, fields="question=q,answer=a,id=uid", answer_type="yesno")
    assert [(it.id, it.answer) for it in task.items] == [("x1", "yes"), ("x2", "no")]
    # a config's mapping reads the same as the CLI's text
    mapped = load_task("jsonl", data=data, fields={"question": "q", "answer": "a", "id": "uid"}, answer_type="yesno")
    assert mapped.items == task.items and mapped.definition == task.definition


@pytest.mark.parametrize(("content", "options", "message"), [
    ('{"question": "q", "answer": 1}\n{"question": "q2"\n', {}, r"d.jsonl line 2: not valid JSON"),
    ('{"question": "q", "answer": 1}\n{"question": "q2"}\n', {},
     r"d.jsonl line 2: missing field 'answer' \(fields present: question\)"),
    ('{"q": "q", "answer": 1}\n', {}, r"line 1: missing field 'question'.*--fields"),
    ('{"question": "q", "answer": "many"}\n', {}, r"line 1: field 'answer' = 'many' is not one number"),
    ('{"question": "q", "answer": 1}\n', {"answer_type": "colour"}, r"unknown answer type 'colour'; valid"),
    ('{"question": "q", "answer": 1}\n', {"fields": "query"}, r"fields: cannot read 'query'"),
    ('{"question": "q", "answer": 1}\n', {"fields": {"querstion": "q"}},
     r"fields: unknown role 'querstion' \(did you mean 'question'\?\)"),
    ('{"question": "q", "answer": 1}\n', {"fields": {"question": 3}}, r"fields: role 'question' needs a field name"),
    ('{"question": "q", "answer": 1, "id": 7}\n{"question": "r", "answer": 2, "id": 7}\n',
     {"fields": "id=id"}, r"d.jsonl line 2: item id '7' repeats .*d.jsonl line 1 .*duplicates: keep-first"),
    ('{"question": "q", "answer": 1}\n\n{"question": "q", "answer": 1}\n', {},
     r"d.jsonl line 3: item id 'item-\w+' repeats .*d.jsonl line 1 \(the same id, or the same question"),
])
def test_bad_data_names_file_line_and_field(tmp_path, content, options, message):
    data = write(tmp_path, "d.jsonl", content)
    with pytest.raises(CapgapError, match=message):
        load_task("jsonl", data=data, **options)


def test_missing_file_and_unknown_task(tmp_path):
    with pytest.raises(CapgapError, match="data file .*nope.json not found"):
        load_task("svamp", data=str(tmp_path / "nope.json"))
    with pytest.raises(CapgapError, match=r"unknown task 'smavp'.*valid names: arith, gsm8k, jsonl, svamp"):
        load_task("smavp")


def test_svamp_record_without_answer(tmp_path):
    data = write(tmp_path, "s.json", json.dumps([{"ID": "a", "Body": "b", "Question": "q"}]))
    with pytest.raises(CapgapError, match=r"s.json record 1: missing field 'Answer'"):
        load_task("svamp", data=data)


def test_keep_first_drops_repeated_records_and_counts_them(tmp_path):
    rows = [{"q": "Is ice cold?", "a": "yes"}, {"q": "Is fire cold?", "a": "no"}, {"q": "Is ice cold?", "a": "yes"},
            {"q": "Is ice cold?", "a": "no"}]
    data = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in rows))
    task = load_task("jsonl", data=data, fields={"question": "q", "answer": "a"}, answer_type="yesno",
                     duplicates="keep-first")
    assert [(it.question, it.answer) for it in task.items] == [("Is ice cold?", "yes"), ("Is fire cold?", "no")]
    assert task.definition["duplicates_dropped"] == 2
    with pytest.raises(CapgapError, match="item id .* repeats"):
        load_task("jsonl", data=data, fields={"question": "q", "answer": "a"}, answer_type="yesno")
    assert option_problems("svamp", {"duplicates": "maybe"}) == [("duplicates", "'maybe' is not one of: error, "
                                                                               "keep-first")]
