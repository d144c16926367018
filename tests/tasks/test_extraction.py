import threading

import pytest

from capgap.tasks.extraction import EXTRACTION_VERSION, AnswerType, extract, final_statement, format_number
from capgap.tasks.grading import canonical_gold, is_correct, parse_number

N, C, Y, S = AnswerType.NUMBER, AnswerType.CHOICE, AnswerType.YESNO, AnswerType.STRING
LOOP = "The answer is " + " + ".join(["5"] * 1200) + "."

# generation, gold, expected strict, expected flexible, whether strict is graded correct against the gold
NUMBER_CASES = {
    # the audit's findings
    "integers-never-within-tolerance": ("The answer is 1000000.", "1000001", "1000000", "1000000", False),
    "negated-then-corrected": ("The answer isn't 5. It's 6.", "6", "6", "6", True),
    "negated-is-never-the-answer": ("The answer isn't 5. It's 6.", "5", "6", "6", False),
    "negated-note-does-not-override": ("The answer is 45.\nNote: the answer is not 50", "45", "45", "45", True),
    "negated-but": ("The answer is not 7 but 8.", "8", "8", "8", True),
    "negated-alone-states-nothing": ("Hmm, the answer is not 50.", "50", None, None, False),
    "unicode-minus": ("It fell by 5. The answer is \u22125.", "-5", "-5", "-5", True),
    "boxed-nested-frac": ("So $\\boxed{\\frac{1}{2}}$", "0.5", "0.5", "0.5", True),
    "boxed-frac-is-not-its-denominator": ("So $\\boxed{\\frac{1}{2}}$", "2", "0.5", "0.5", False),
    "flexible-fraction-is-a-value": ("Three of the four are left: 3/4", "0.75", None, "0.75", False),
    "strict-fraction": ("The answer is 3/4.", "0.75", "0.75", "0.75", True),
    "scientific-notation": ("The answer is 3.2e5.", "320000", "320000", "320000", True),
    "number-word": ("The answer is twelve.", "12", "12", "12", True),
    "number-word-bare": ("twelve", "12", None, "12", False),
    "number-word-hyphen": ("The answer is forty-two.", "42", "42", "42", True),
    "number-word-hundred-and": ("The answer is one hundred and five.", "105", "105", "105", True),
    "number-word-thousands": ("The answer is two thousand three hundred.", "2300", "2300", "2300", True),
    "answer-before-justification": ("The answer is 12, since 3 × 4 = 12 (not 3 + 4 = 7).", "12", "12", "12", True),
    "justification-value-is-not-the-answer": (
        "The answer is 12, since 3 × 4 = 12 (not 3 + 4 = 7).", "7", "12", "12", False),
    "hashes-heading-is-no-answer": ("#### Step 2:\nAdd them: 3 + 4 = 7", "2", None, "7", False),
    "hashes-heading-then-answer": ("#### Step 1:\n#### Step 2:\n#### 42", "42", "42", "42", True),
    "looping-expression-never-raises": (LOOP, "6000", None, "5", False),
    "looping-ellipsis": ("The answer is 5 + 5 + … (1,200 terms)", "10", None, "1200", False),
    # formats that must keep working
    "plain": ("3 + 4 = 7. The answer is 7.", "7", "7", "7", True),
    "markdown-bold": ("We need 6 * 7 = 42. The answer is **42**.", "42", "42", "42", True),
    "markdown-final-answer": ("3 + 4 = 7 pens.\n**Final Answer:** 7", "7", "7", "7", True),
    "final-answer-next-line": ("Final Answer:\n42", "42", "42", "42", True),
    "currency-commas-cents": ("The answer is $1,234.50.", "1234.5", "1234.5", "1234.5", True),
    "percent": ("The answer is 25%.", "25", "25", "25", True),
    "final-answer-colon": ("8 x 9 = 72.\nFinal answer: 72", "72", "72", "72", True),
    "boxed-last-wins": ("First \\boxed{40}, then \\boxed{42}", "42", "42", "42", True),
    "palm-expression": ("He scored 84 in 2 rounds. The answer is (84 / 2).", "42", "42", "2", True),
    "times-sign": ("There are 3 rows of 4. The answer is 3 × 4.", "12", "12", "4", True),
    "x-as-times": ("The answer is 3 x 4 = 12 apples.", "12", "12", "12", True),
    "chain-takes-last-value": ("The answer is 5120 / 25 = 20. So each pack costs 20.", "20", "20", "20", True),
    "gsm8k-hashes-no-space": ("She sold 48 + 24 = 72 clips.\n####72", "72", "72", "72", True),
    "gsm8k-hashes": ("They get 9 eggs.\n#### 18", "18", "18", "18", True),
    "last-statement-wins": ("The answer is 1. Wait, the answer is 2.", "2", "2", "2", True),
    "binary-minus-is-no-sign": ("I have 3 apples and then 10 - 4 = 6", "6", None, "6", False),
    "dollars-word": ("The answer is 5 dollars.", "5", "5", "5", True),
    "float-spelling": ("The answer is 145.0.", "145", "145", "145", True),
    "decimal-forms": ("The answer is .50", "0.5", "0.5", "0.5", True),
    "latex-inline-frac": ("The answer is $\\frac{3}{4}$.", "0.75", "0.75", "0.75", True),
    "latex-mixed-number": ("The answer is $2\\frac{1}{2}$ cups.", "2.5", "2.5", "2.5", True),
    "latex-sqrt": ("The answer is $\\sqrt{16}$.", "4", "4", "4", True),
    "answer-that-sentence": ("The answer is that he has 5 left.", "5", "5", "5", True),
    "answer-that-equation": ("The answer is that 3 + 4 = 7 remain.", "7", "7", "7", True),
    "units-inside-expression": ("The answer is 2 apples + 3 apples = 5 apples.", "5", "5", "5", True),
    "units-with-x": ("The answer is 5 dollars per hour x 8 hours = 40 dollars.", "40", "40", "40", True),
    "word-after-answer-is-no-unit": ("The answer is 12 because 3 x 4 = 12.", "12", "12", "12", True),
    "two-values-first-stated": ("The answer is 25 apples and -9 peaches.", "25", "25", "-9", True),
    "no-numbers": ("no numbers at all", "1", None, None, False),
}


@pytest.mark.parametrize(("text", "gold", "strict", "flexible", "correct"), NUMBER_CASES.values(),
                         ids=NUMBER_CASES.keys())
def test_number_extraction_and_grading(text, gold, strict, flexible, correct):
    got = extract(text, N)
    assert (got.strict, got.flexible) == (strict, flexible)
    assert is_correct(got.strict, canonical_gold(gold, N), N) is correct


CHOICE_CASES = {
    "letter-then-words": ("The answer is B because it is larger.", "B", "B"),
    "letter-and-not-letter": ("the answer is A and not B", "A", "A"),
    "parenthesised": ("(A) looks wrong, (B) too. The answer is (C).", "C", "C"),
    "close-paren": ("The answer is B) 42", "B", "B"),
    "period": ("The answer is B.", "B", "B"),
    "option-word": ("I pick option B", None, "B"),
    "option-statement": ("The answer is option d", "D", "D"),
    "colon-text": ("The answer is B: 42 apples", "B", "B"),
    "bold": ("**Answer: (E)**", "E", "E"),
    "boxed-text": ("\\boxed{\\text{C}}", "C", "C"),
    "article-a-is-no-option": ("A man thinks it is B)", None, "B"),
    "negated-option": ("It is not B, so (D) remains", None, "D"),
}


@pytest.mark.parametrize(("text", "strict", "flexible"), CHOICE_CASES.values(), ids=CHOICE_CASES.keys())
def test_choice_letters(text, strict, flexible):
    got = extract(text, C)
    assert (got.strict, got.flexible) == (strict, flexible)


@pytest.mark.parametrize(("a", "b", "same"), [
    ("145.0", "145", True), ("1,000", "1000", True), ("$5", "5", True), ("5 dollars", "5", True),
    ("0.5", "0.50", True), ("0.5", ".50", True), ("7", "8", False), ("-2", "2", False), ("1/4", "0.25", True),
    ("1000000", "1000001", False), ("123456789", "123456788", False), ("0.1", "0.10000001", False),
    # a value with no finite decimal matches a decimal of >= 2 places it rounds to (half-up), both ways
    ("0.333", "1/3", True), ("0.33", "1/3", True), ("1/3", "0.333", True), ("0.3", "1/3", False),
    ("0.334", "1/3", False), ("0.67", "2/3", True), ("0.66", "2/3", False), ("0.25", "0.3", False),
])
def test_numbers_compare_exactly(a, b, same):
    assert is_correct(a, canonical_gold(b, N), N) is same


def test_gold_is_canonical_and_rejects_non_numbers():
    assert EXTRACTION_VERSION == 4
    assert canonical_gold("51.0", N) == "51"
    assert canonical_gold("1,234", N) == "1234"
    assert canonical_gold("1/3", N) == "1/3"
    assert canonical_gold("-7.50", N) == "-7.5"
    with pytest.raises(ValueError):
        canonical_gold("many", N)
    assert parse_number(None) is None
    assert parse_number("(84 / 2)") == 42.0
    assert parse_number("3/4") == 0.75
    assert format_number(2.0) == "2" and format_number(0.1234567) == "0.123457"


def test_string_golds_keep_abbreviations():
    gold = canonical_gold("Dr. Smith", S)
    assert gold == "dr smith"
    assert not is_correct(extract("The answer is Dr. Jones.", S).strict, gold, S)
    got = extract("Who did it? The answer is Dr. Smith. He had the key.", S)
    assert (got.strict, is_correct(got.strict, gold, S)) == ("dr smith", True)
    assert extract("The answer is J. K. Rowling.", S).strict == "j k rowling"
    s = extract("Thinking...\nThe answer is Paris, France.", S)
    assert s.strict == "paris france"
    assert is_correct(s.strict, canonical_gold("Paris, France", S), S)
    assert extract("The answer isn't Rome. It's Paris.", S).strict == "paris"
    assert not is_correct(None, "1", N)


def test_yes_no():
    y = extract("Yes at first, but no. The answer is no.", Y)
    assert (y.strict, y.flexible) == ("no", "no")
    assert extract("No, that is not true.", Y).flexible == "no"
    assert extract("The answer is True.", Y).strict == "yes"


def test_final_statement_skips_negations_and_unreadable_statements():
    assert final_statement("The answer is 45. Note: the answer is not 50") == (4, "45")
    text = "So 3 + 4 = 7. The answer is 7. I double-checked the answer: looks right."
    assert final_statement(text, N) == (text.index("answer is 7"), "7")
    assert final_statement(text) == (text.index("answer: looks"), "looks right")  # no type: any statement
    assert final_statement("**Final Answer:** 18", N) == (2, "18")
    assert final_statement("no statement here") is None


def test_latex_values_work_outside_the_main_thread():
    got: list = []
    worker = threading.Thread(target=lambda: got.append(extract("So $\\boxed{\\dfrac{7}{2}}$", N)))
    worker.start()
    worker.join(timeout=60)
    assert got and (got[0].strict, got[0].flexible) == ("3.5", "3.5")


def test_pathological_inputs_never_raise():
    for text in (LOOP, "(" * 5000 + "1" + ")" * 5000, "The answer is " + "(" * 3000, "\\boxed{" * 500,
                 "The answer is 10^10^10^10.", "The answer is $10^{10^{10}}$.", "The answer is 1/0.",
                 "The answer is " + "9" * 5000 + ".", "The answer is " + " * ".join(["99999^64"] * 20) + ".",
                 "The answer is $(10^{999})^{999}$."):
        for kind in AnswerType:
            extract(text, kind)
    assert extract("The answer is 2^10.", N).strict == "1024"
    assert extract("The answer is 10^10^10.", N).strict is None


@pytest.mark.parametrize("text", ["The answer is 1e5000", "so 1e-3000000 apples", "The answer is " + "9" * 5000,
                                  "The answer is 2^99999999.", "7" * 100_000])
def test_absurd_numbers_never_raise_or_hang(text):
    import time

    start = time.perf_counter()
    for answer_type in (AnswerType.NUMBER, AnswerType.STRING):
        extract(text, answer_type)
    assert time.perf_counter() - start < 2.0
