import pytest

from capgap.errors import CapgapError
from capgap.study.data import check_no_leak, training_examples
from capgap.tasks import Item
from capgap.teachers import Rationale, TeacherRationales


def teacher(name, marks):
    """marks: {item_id: [correct of sample 0, correct of sample 1, ...]}"""
    rationales = [Rationale(i, f"{name}-{i}-{s}", None, ok, s) for i, oks in marks.items() for s, ok in enumerate(oks)]
    return TeacherRationales(name, rationales, pool_size=4)


A = teacher("a", {"q1": [True], "q2": [False, True], "q3": [True], "q4": [False]})
B = teacher("b", {"q1": [True], "q2": [True], "q3": [False]})


def pairs(examples):
    return [(e.item_id, e.rationale) for e in examples]


def test_own_correct_takes_the_first_correct_sample():
    assert pairs(training_examples("own-correct", A, [A, B])) == [("q1", "a-q1-0"), ("q2", "a-q2-1"), ("q3", "a-q3-0")]


def test_intersection_keeps_questions_every_teacher_got_right():
    assert pairs(training_examples("intersection", A, [A, B])) == [("q1", "a-q1-0"), ("q2", "a-q2-1")]
    assert pairs(training_examples("intersection", B, [A, B])) == [("q1", "b-q1-0"), ("q2", "b-q2-0")]


def test_unfiltered_takes_the_first_sample_right_or_wrong():
    assert pairs(training_examples("unfiltered", A, [A, B])) == [("q1", "a-q1-0"), ("q2", "a-q2-0"), ("q3", "a-q3-0"),
                                                                 ("q4", "a-q4-0")]
    assert A.accuracy == 0.5 and B.accuracy == 0.5  # first samples: a gets q1, q3; b gets q1, q2 (of 4)
    with pytest.raises(CapgapError, match="unknown protocol"):
        training_examples("everything", A, [A])


def test_leak_check_compares_ids_and_question_text():
    pool = [Item("p1", "How many apples?", "3")]
    with pytest.raises(CapgapError, match="1 test items also appear"):
        check_no_leak(pool, [Item("t9", "how many  apples", "3")], "tasks[0]")  # same text, another id
    check_no_leak(pool, [Item("t1", "How many pears?", "2")], "tasks[0]")
