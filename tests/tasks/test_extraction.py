import pytest

from capgap.tasks.extraction import AnswerType, canonical_gold, extract, is_correct, parse_number

N = AnswerType.NUMBER


@pytest.mark.parametrize(("text", "strict", "flexible"), [
    ("3 + 4 = 7. The answer is 7.", "7", "7"),
    ("The answer is 145.0.", "145", "145"),
    ("So the total is... The answer is $1,000.", "1000", "1000"),
    ("The answer is 5 dollars.", "5", "5"),
    ("The answer is 5.5.", "5.5", "5.5"),
    ("The final answer is: -3", "-3", "-3"),
    ("Answer: 12", "12", "12"),
    ("They get 9 eggs.\n#### 18", "18", "18"),
    ("we find \\boxed{42}", "42", "42"),
    ("The answer is (84 / 2).", "42", "2"),  # PaLM-style expression answers
    ("The answer is 5120 / 25 = 20. So each pack costs 20.", "20", "20"),
    ("The answer is 1. Wait, the answer is 2.", "2", "2"),  # the last statement wins
    ("I have 3 apples and then 10 - 4 = 6", None, "6"),  # binary minus is not a negative sign
    ("no numbers at all", None, None),
    ("The answer is 25%.", "25", "25"),
])
def test_number_pipelines(text, strict, flexible):
    got = extract(text, N)
    assert (got.strict, got.flexible) == (strict, flexible)


@pytest.mark.parametrize(("a", "b", "same"), [
    ("145.0", "145", True), ("1,000", "1000", True), ("$5", "5", True), ("5 dollars", "5", True),
    ("0.5", "0.50", True), ("7", "8", False), ("-2", "2", False), ("1/4", "0.25", True),
])
def test_numbers_compare_tolerantly(a, b, same):
    assert is_correct(a, canonical_gold(b, N), N) is same


def test_gold_is_canonical_and_rejects_non_numbers():
    assert canonical_gold("51.0", N) == "51"
    assert canonical_gold("1,234", N) == "1234"
    with pytest.raises(ValueError):
        canonical_gold("many", N)
    assert parse_number(None) is None


def test_choice_yesno_and_string_pipelines():
    c = extract("(A) looks wrong, (B) too. The answer is (C).", AnswerType.CHOICE)
    assert (c.strict, c.flexible) == ("C", "C")
    assert extract("A man thinks it is B)", AnswerType.CHOICE).flexible == "B"  # the article A is no option
    y = extract("Yes at first, but no. The answer is no.", AnswerType.YESNO)
    assert (y.strict, y.flexible) == ("no", "no")
    s = extract("Thinking...\nThe answer is Paris, France.", AnswerType.STRING)
    assert s.strict == "paris france"
    assert is_correct(s.strict, canonical_gold("Paris, France", AnswerType.STRING), AnswerType.STRING)
    assert not is_correct(None, "1", N)
