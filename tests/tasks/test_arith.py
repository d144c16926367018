import re

import pytest

from capgap.errors import CapgapError
from capgap.tasks import load_task
from capgap.tasks.arith import ArithConfig, generate_items


def test_same_seed_same_items_other_seed_other_items():
    a, b = generate_items(ArithConfig(n=30, seed=3)), generate_items(ArithConfig(n=30, seed=3))
    assert a == b
    assert [it.question for it in generate_items(ArithConfig(n=30, seed=4))] != [it.question for it in a]
    assert len({it.id for it in a}) == 30 and len({it.question for it in a}) == 30


def test_rationales_are_correct_step_by_step_computations():
    for it in generate_items(ArithConfig(n=200, seed=1)):
        steps = re.findall(r"(\d+) ([-+x/]) (\d+) = (\d+)", it.rationale)
        assert 1 <= len(steps) <= 4
        for a, op, b, result in steps:
            a, b, result = int(a), int(b), int(result)
            assert {"+": a + b, "-": a - b, "x": a * b, "/": a / b}[op] == result
        assert it.rationale.endswith(f"The answer is {it.answer}.")
        assert int(steps[-1][3]) == int(it.answer) > 0


def test_knobs_bound_steps_and_values():
    items = generate_items(ArithConfig(n=100, seed=2, min_steps=1, max_steps=1, max_start=9, max_value=60))
    for it in items:
        assert it.rationale.count(" = ") == 1
        assert all(int(x) <= 60 for x in re.findall(r"\d+", it.rationale))


def test_bad_knobs_and_exemplars_disjoint_from_items():
    with pytest.raises(CapgapError, match="min_steps"):
        generate_items(ArithConfig(min_steps=3, max_steps=2))
    task = load_task("arith", n=50, seed=0)
    assert len(task.items) == 50 and len(task.exemplars) == 8
    assert not {e.question for e in task.exemplars} & {it.question for it in task.items}
    assert task.definition["seed"] == 0 and task.definition["n"] == 50
