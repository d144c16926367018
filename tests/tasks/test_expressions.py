"""Answer type `math`: LaTeX answers read from statements and boxes, compared by math-verify (MATH)."""

import json

import pytest

from capgap.errors import CapgapError
from capgap.tasks import load_task
from capgap.tasks.expressions import MAX_CHARS, read_expression, same_expression
from capgap.tasks.extraction import AnswerType, extract, hedged
from capgap.tasks.grading import canonical_gold, is_correct
from capgap.teachers import reference_rationales

MATH = AnswerType.MATH
POLAR = r"\left( 3, \frac{\pi}{2} \right)"


@pytest.mark.parametrize(("text", "strict"), [
    (r"So the answer is $\frac{\pi}{2}$. Done.", r"\frac{\pi}{2}"),
    (r"Thus $\boxed{\dfrac{\pi}{2}}$", r"\dfrac{\pi}{2}"),
    (r"The answer is \left( 3, \frac{\pi}{2} \right).", POLAR),
    ("Final answer: $x^2 + 1$\nThat is all.", "x^2 + 1"),
    (r"The answer is $\boxed{2}$, not 3.", "2"),
    ("I could not finish the problem.", None),
])
def test_the_stated_expression_is_read_as_written(text, strict):
    assert extract(text, MATH).strict == strict


@pytest.mark.parametrize(("gold", "answer", "same"), [
    (r"\frac{\pi}{2}", r"\pi/2", True),
    (r"\frac{\pi}{2}", r"\dfrac{\pi}{2}", True),
    (POLAR, r"(3, \pi/2)", True),
    (r"\frac{3}{4}", "0.75", True),
    (r"\frac{\pi}{2}", r"\frac{\pi}{3}", False),
    ("x^2 + 1", "x^2 - 1", False),
    (POLAR, r"(3, \pi)", False),
    ("2", "3", False),
])
def test_answers_compare_by_math_verify(gold, answer, same):
    assert same_expression(gold, answer) is same
    assert is_correct(answer, canonical_gold(gold, MATH), MATH) is same


def test_a_gold_written_as_a_solution_is_its_last_box_and_bounds_hold():
    solution = r"First $\boxed{1}$ is wrong; we get $x = \frac{3}{4}$, so $\boxed{\frac{3}{4}}$."
    assert canonical_gold(solution, MATH) == r"\frac{3}{4}"
    with pytest.raises(ValueError, match="not a valid math"):
        canonical_gold("", MATH)
    assert read_expression("1+" * MAX_CHARS + "1") is None  # too long to parse: no answer, no hang
    assert read_expression("10^{10^{10}}") is None  # a tower of powers is not evaluated
    assert not hedged(r"The answer is $x = 1$ or $x = 2$.", MATH)  # "or" belongs to the answer here


def test_a_math_task_from_a_release_scores_its_own_solutions_correct(tmp_path):
    records = [
        {"problem": "What is $1/2 + 1/4$?", "solution": r"Add: $\frac{1}{2}+\frac{1}{4}=\boxed{\frac{3}{4}}$."},
        {"problem": "Convert $(0,3)$ to polar coordinates.", "solution": rf"So it is $\boxed{{{POLAR}}}$."},
        {"problem": "Solve $x^2=4$ for positive $x$.", "solution": r"$x = \boxed{2}$"},
    ]
    path = tmp_path / "math.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    task = load_task("jsonl", data=str(path), answer_type="math", exemplars=0,
                     fields={"question": "problem", "answer": "solution", "rationale": "solution"})
    assert [it.answer for it in task.items] == [r"\frac{3}{4}", POLAR, "2"]
    teacher = reference_rationales("reference", task, task.items)
    assert teacher.accuracy == 1.0
    assert teacher.rationales[1].text.endswith(rf"The answer is {POLAR}.")  # one closing phrase for every teacher
    with pytest.raises(CapgapError, match="subset 'algebra' names a configuration of a Hub dataset"):
        load_task("jsonl", data=str(path), subset="algebra", answer_type="math")
