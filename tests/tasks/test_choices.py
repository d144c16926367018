"""Multiple-choice and yes/no data as releases write it: option shapes, gold forms, real shared files."""

import json
from collections import Counter

import pytest

from capgap.errors import CapgapError
from capgap.tasks import load_task
from capgap.tasks.choices import choice_letter, option_texts
from tests.conftest import shared_data

TEXTS = ["fairgrounds", "movie theatre", "shop"]


@pytest.mark.parametrize("options", [
    TEXTS,
    ["A)fairgrounds", "B) movie theatre", "(C) shop"],
    ["A. fairgrounds", "B: movie theatre", "C) shop"],
    {"A": "fairgrounds", "C": "shop", "B": "movie theatre"},
    {"label": ["A", "B", "C"], "text": TEXTS},
    {"fairgrounds": 0, "movie theatre": 1, "shop": 0},
])
def test_every_published_option_shape_reads_as_the_same_lettered_options(options):
    assert option_texts(options, "r1") == TEXTS


@pytest.mark.parametrize(("gold", "letter"), [
    ("B", "B"), ("(b)", "B"), ("b.", "B"), (1, "B"), ("1", "B"), ("Movie Theatre", "B"), ("movie theatre.", "B"),
    ({"fairgrounds": 0, "movie theatre": 1, "shop": 0}, "B"), (0, "A"), ("shop", "C"),
])
def test_a_gold_given_as_letter_index_text_or_scores_becomes_the_letter(gold, letter):
    assert choice_letter(gold, TEXTS, "r1") == letter


@pytest.mark.parametrize(("gold", "options", "message"), [
    ("cinema", TEXTS, r"r1: gold 'cinema' is neither a letter, a 0-based index nor the text of one of the options"),
    (3, TEXTS, "r1: gold 3 is neither"),
    ("D", TEXTS, "r1: gold 'D' is neither"),
    ({"a": 1, "b": 1}, TEXTS, "r1: 2 options share the top score 1"),
    (2, ["1", "2", "3"], "r1: gold 2 is ambiguous: the 0-based index of option C and the text of option B"),
])
def test_a_gold_that_names_no_option_is_one_line_naming_the_record(gold, options, message):
    with pytest.raises(CapgapError, match=message):
        choice_letter(gold, options, "r1")


@pytest.mark.parametrize(("options", "message"), [
    ("fairgrounds", "cannot read the options field"), (["only one"], "1 options; a choice task takes 2 to 8"),
    ({"x": "y", "z": "w"}, "cannot read the options field"),
    ({"A": "x", "C": "y"}, "cannot read the options field"),  # a gap in the letters would move the gold
    ({"label": ["A", "B"], "text": ["x", "y", "z"]}, "the options' label and text lists differ in length"),
])
def test_unreadable_options_are_one_line(options, message):
    with pytest.raises(CapgapError, match=message):
        option_texts(options, "r1")


def _write(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def test_golds_as_text_and_as_index_load_from_a_file_and_name_the_line_when_wrong(tmp_path):
    data = _write(tmp_path / "mc.jsonl", [
        {"q": "Where are films shown?", "choices": {"label": ["A", "B"], "text": ["fair", "cinema"]}, "a": "cinema"},
        {"q": "Where is bread sold?", "choices": {"label": ["A", "B"], "text": ["bakery", "pool"]}, "a": 0},
    ])
    task = load_task("jsonl", data=data, fields={"question": "q", "answer": "a", "options": "choices"},
                     answer_type="choice")
    assert [it.answer for it in task.items] == ["B", "A"]
    assert task.items[0].question == "Where are films shown?\nAnswer choices: (A) fair (B) cinema"
    bad = _write(tmp_path / "bad.jsonl", [{"q": "x?", "choices": ["a", "b"], "a": "c"}])
    with pytest.raises(CapgapError, match=r"bad.jsonl line 1: gold 'c' is neither"):
        load_task("jsonl", data=bad, fields={"question": "q", "answer": "a", "options": "choices"},
                  answer_type="choice")


def test_labels_that_are_not_letters_map_the_gold_by_label(tmp_path):
    arc = {"label": ["1", "2", "3", "4"], "text": ["rain", "snow", "sun", "fog"]}
    data = _write(tmp_path / "arc.jsonl", [{"q": "What melts?", "choices": arc, "a": "2"}])
    task = load_task("jsonl", data=data, fields={"question": "q", "answer": "a", "options": "choices"},
                     answer_type="choice")
    assert task.items[0].answer == "B"  # label "2" is the second option, not index 2


def test_shuffled_options_refuse_rationales_that_name_the_old_letters(tmp_path):
    data = _write(tmp_path / "mc.jsonl", [{"q": "x?", "o": ["a", "b"], "a": "A", "r": "So A. The answer is A."}])
    with pytest.raises(CapgapError, match="shuffle_options gives the options new letters, but the rationale field"):
        load_task("jsonl", data=data, fields={"question": "q", "answer": "a", "options": "o", "rationale": "r"},
                  answer_type="choice", shuffle_options=True)


def test_yes_no_golds_as_booleans_or_scores(tmp_path):
    data = _write(tmp_path / "yn.jsonl", [{"question": "Do fish walk?", "answer": False},
                                          {"question": "Do birds fly?", "answer": True},
                                          {"question": "Is ice cold?", "answer": {"Yes": 1, "No": 0}}])
    task = load_task("jsonl", data=data, answer_type="yesno")
    assert [it.answer for it in task.items] == ["no", "yes", "yes"]


def test_real_aqua_golds_are_letters_of_their_written_options():
    task = load_task("jsonl", data=str(shared_data("aqua", "test.json")),
                     fields={"question": "question", "answer": "correct", "options": "options"}, answer_type="choice")
    assert len(task.items) == 254 and set(Counter(it.answer for it in task.items)) == set("ABCDE")
    assert task.items[0].question.endswith("\nAnswer choices: (A) 5(√3 + 1) (B) 6(√3 + √2) (C) 7(√3 – 1) "
                                           "(D) 8(√3 – 2) (E) None of these")  # "A)" written in the release: once


def test_real_bigbench_target_scores_and_shuffled_options():
    path = str(shared_data("bigbench", "bigbench_date_understanding_task.json"))
    fields = {"question": "input", "answer": "target_scores", "options": "target_scores"}
    as_released = load_task("jsonl", data=path, fields=fields, answer_type="choice")
    shuffled = load_task("jsonl", data=path, fields=fields, answer_type="choice", shuffle_options=True)
    assert len(as_released.items) == len(shuffled.items) == 369
    first = Counter(it.answer for it in as_released.items)["A"]
    assert first > 360  # the release lists the right date first: "always A" would score 99%
    counts = Counter(it.answer for it in shuffled.items)
    assert len(counts) == 6 and max(counts.values()) < 100  # six options, none holding more than ~27%
    again = load_task("jsonl", data=path, fields=fields, answer_type="choice", shuffle_options=True)
    assert [it.question for it in again.items] == [it.question for it in shuffled.items]  # same order every run
    for a, b in zip(as_released.items, shuffled.items, strict=True):  # the same right date, under its new letter
        right = dict(part.split(") ", 1) for part in a.question.split("Answer choices: (")[1].split(" ("))
        moved = dict(part.split(") ", 1) for part in b.question.split("Answer choices: (")[1].split(" ("))
        assert right[a.answer] == moved[b.answer]
