"""Extraction version 4: the families of answers a held-out check found misread, each with its own cases.

Every case gives the generation, the gold, and what strict and flexible must read; the cases that must
*not* change (a range, a product of a count and a size, a subtraction in words) sit beside them.
"""

import pytest

from capgap.evaluation.scoring import scores
from capgap.tasks.base import Item, Task
from capgap.tasks.choices import shown_options, with_options
from capgap.tasks.extraction import AnswerType, extract, hedged
from capgap.tasks.grading import canonical_gold, is_correct
from capgap.tasks.notation import plain_numbers
from capgap.teachers.base import normalize_rationale

N, C, S = AnswerType.NUMBER, AnswerType.CHOICE, AnswerType.STRING

# family: (generation, gold, strict, flexible)
NUMBER_FAMILIES = {
    "spaced-groups": ("The answer is 1 234 567.", "1234567", "1234567", "1234567"),
    "thin-space-groups": ("It costs 12\u202f500 rupees. The answer is 12\u202f500", "12500", "12500", "12500"),
    "one-spaced-group-at-sentence-end": ("The answer is 12 345.", "12345", "12345", "12345"),
    "indian-lakh": ("The answer is 1,00,000.", "100000", "100000", "100000"),
    "indian-crore-rupee-sign": ("The answer is ₹12,34,567.", "1234567", "1234567", "1234567"),
    "scale-million": ("The answer is 2 million.", "2000000", "2000000", "2000000"),
    "scale-decimal-million-dollars": ("The answer is 1.5 million dollars.", "1500000", "1500000", "1500000"),
    "scale-thousand": ("He earns 3 thousand. The answer is 3 thousand", "3000", "3000", "3000"),
    "scale-grouped-thousand": ("The answer is 1,200 thousand.", "1200000", "1200000", "1200000"),
    "times-ten-power": ("The answer is 1.5 × 10^6.", "1500000", "1500000", "1500000"),
    "x-ten-power": ("The answer is 3.84 x 10^5 km.", "384000", "384000", "384000"),
    "latex-times-ten": ("The answer is $6.02 \\times 10^{23}$.", "6.02e23", "602000000000000000000000",
                        "602000000000000000000000"),
    "boxed-negative-exponent": ("So \\boxed{2 \\times 10^{-3}}", "0.002", "0.002", "0.002"),
    "cdot-ten-power": ("The answer is $2.5 \\cdot 10^{-2}$", "0.025", "0.025", "0.025"),
    "negative-word": ("The answer is negative 7.", "-7", "-7", "-7"),
    "minus-word-as-sign": ("The temperature is minus 4. The answer is minus 4", "-4", "-4", "-4"),
    "en-dash-minus": ("The answer is –7.", "-7", "-7", "-7"),
    "minus-before-dollar": ("He loses money. The answer is -$20.", "-20", "-20", "-20"),
    "rupees-abbreviation": ("The answer is Rs. 450.", "450", "450", "450"),
    "inr-code": ("The answer is INR 1,250", "1250", "1250", "1250"),
    "euro-sign": ("The answer is €15.", "15", "15", "15"),
    "dollars-and-cents": ("The answer is 5 dollars and 50 cents.", "5.5", "5.5", "5.5"),
    "dollar-sign-and-cents": ("The answer is $5 and 5 cents.", "5.05", "5.05", "5.05"),
    "speed-unit-strict": ("The answer is 5 km/h.", "5", "5", "5"),
    "percent-of-which-is": ("The answer is 50% of 80, which is 40.", "40", "40", "40"),
    "percent-of-alone": ("The answer is 25% of 200.", "50", "50", "200"),
    "computation-which-is-said": ("The answer is 3 × 4, which is 12 apples.", "12", "12", "12"),
    "double-braced-box": ("The answer is \\boxed{{12}}", "12", "12", "12"),
    "display-math-after-statement": ("The answer is\n$$\n12\n$$", "12", "12", "12"),
    "display-brackets-after-colon": ("The answer is:\n\\[\n12\n\\]", "12", "12", "12"),
    "markdown-final-answer-heading": ("3 * 14 = 42\n### Final Answer\n**42**", "42", "42", "42"),
    "bold-answer-heading": ("**Answer**\n42 apples", "42", "42", "42"),
    "numbered-hashes-heading": ("#### 1. Count the apples\n3 + 4 = 7\n#### 7", "7", "7", "7"),
    "numbered-hashes-is-no-answer": ("#### 2. Count the pears\n3 + 4 = 7 pears.", "2", None, "7"),
    "next-chat-turn": ("The answer is 7.<|im_end|>\n<|im_start|>user\nAnd 2+2? The answer is 4.", "7", "7", "7"),
    "gemma-turn-end": ("So 3 + 4 = 7.<end_of_turn>\n<start_of_turn>user\n9", "7", None, "7"),
    "hypothesis-after-answer": ("The answer is 12. Someone might think the answer is 15, but that is wrong.",
                                "12", "12", "12"),
    "disowned-statement": ("The answer is 12. The answer is 15, but that is incorrect.", "12", "12", "12"),
    "tempting-statement": ("It is tempting to say the answer is 20. The answer is 24.", "24", "24", "24"),
    "check-after-answer": ("The answer is 9. Double-check: 9 - 4 = 5", "9", "9", "9"),
    "verification-after-answer": ("The answer is 9.\nVerification: 5 + 4 = 9, and 9 - 5 = 4", "9", "9", "9"),
}

# cases that read as before: the notation rules must not fire here
UNCHANGED = {
    "count-times-size": ("He buys 3 250 ml bottles, so 3 * 250 = 750 ml. The answer is 750.", "750", "750", "750"),
    "range-dash": ("Between 5–7 hours. The answer is 6.", "6", "6", "6"),
    "minus-as-operation": ("So 10 minus 3 equals 7. The answer is 7", "7", "7", "7"),
    "scale-word-in-a-compound": ("She has 2 hundred-dollar bills. The answer is 2.", "2", "2", "2"),
    "if-is-no-hypothesis": ("If we add 3 and 4, the answer is 7.", "7", "7", "7"),
    "check-before-answer": ("Check: 3 + 4 = 7. The answer is 7.", "7", "7", "7"),
    "plain-gsm8k": ("She sold 48 + 24 = 72 clips.\n#### 72", "72", "72", "72"),
    "percent-alone": ("The answer is 25%.", "25", "25", "25"),
    "which-after-plain-value": ("The answer is 12, which is more than 10.", "12", "12", "10"),
    "which-after-a-result": ("The answer is 3 × 4 = 12, which is 2 more than 10.", "12", "12", "10"),
    "which-is-a-dozen": ("The answer is 5 + 7 = 12, which is 1 dozen.", "12", "12", "1"),
    "which-is-a-restatement": ("The answer is 6 * 7, which is 6 times 7.", "42", "42", "7"),
    "own-would-say": ("So I would say the answer is 12.", "12", "12", "12"),
    "own-could-conclude": ("We could conclude that the answer is 12.", "12", "12", "12"),
    "incorrectly-counted-is-no-hypothesis": ("Since Tom incorrectly counted 3 extra eggs, the answer is 12.", "12",
                                             "12", "12"),
    "naive-then-but": ("A naive approach gives 10, but the answer is 12.", "12", "12", "12"),
    "hypothesis-then-correction": ("Someone might think the answer is 15, but the answer is 18.", "18", "18", "18"),
    "final-answer-would-say": ("Final answer: I would say 12.", "12", "12", "12"),
    "decimal-then-hypothesis": ("The answer is 12.5, though some might think it is 13.", "12.5", "12.5", "12.5"),
    "hypothesis-in-the-answer-sentence": ("The answer is 12, but someone might say 15.", "12", "12", "12"),
    "impersonal-would-conclude": ("Therefore, one would conclude that the answer is 12.", "12", "12", "12"),
    "impersonal-could-say": ("So you could say the answer is 12.", "12", "12", "12"),
    "divided-then-times-ten": ("The answer is 6 ÷ 3 × 10^2.", "200", "200", "2"),
    "latex-div-then-times-ten": ("The answer is $6 \\div 3 \\times 10^2$.", "200", "200", "2"),
    "fraction-of-a-number": ("The answer is 1/3 of 90 = 30.", "30", "30", "30"),
    "percent-of-equals": ("The answer is 50% of 80 = 40.", "40", "40", "40"),
    "empty-turn-then-user": ("<|im_end|>\n<|im_start|>user\nAnd? The answer is 5.<|im_end|>", "5", None, None),
    "answer-heading-then-check": ("**Answer:**\nLet's check the numbers: 5 + 7 = 12.", "12", "12", "12"),
    "leading-turn-header": ("<|im_start|>assistant\nThe answer is 12.", "12", "12", "12"),
    "quotient-times-ten": ("The answer is 6 / 3 × 10^2.", "200", "200", "2"),
    "chained-scale-words": ("The answer is 2 hundred thousand.", "200000", "200000", "200000"),
    "mixed-number": ("The answer is 3 1/2 cups.", "3.5", "3.5", "3.5"),
}


@pytest.mark.parametrize("case", [*NUMBER_FAMILIES, *UNCHANGED])
def test_number_family(case):
    text, gold, strict, flexible = {**NUMBER_FAMILIES, **UNCHANGED}[case]
    got = extract(text, N)
    assert (got.strict, got.flexible) == (strict, flexible)
    assert is_correct(got.strict, canonical_gold(gold, N), N) is (strict is not None)


def test_notation_keeps_every_position():
    texts = ["The answer is 1.5 million dollars.", "negative 7", "-$20", "Rs. 450", "₹12,34,567",
             "5 dollars and 50 cents", "1 234 567", "$6.02 \\times 10^{23}$", "minus 3"]
    for text in texts:
        rewritten = plain_numbers(text)
        assert len(rewritten) == len(text) and rewritten != text
    assert plain_numbers("10 minus 3 and 5–7 and 3 250 ml") == "10 minus 3 and 5–7 and 3 250 ml"


def test_a_scaled_answer_is_the_full_value():
    """Decision: "2 million" is 2,000,000, so it no longer matches a gold of 2 (counted in millions)."""
    assert not is_correct(extract("The answer is 2 million.", N).strict, "2", N)
    assert not is_correct(extract("The answer is 1.5M.", N).strict, "1500000", N)  # letter suffixes not read


STRING_FAMILIES = {
    "leading-article": ("The answer is the Pacific Ocean.", "Pacific Ocean", "the pacific ocean"),
    "gold-with-article": ("The answer is Pacific Ocean.", "The Pacific Ocean", "pacific ocean"),
    "appositive": ("The answer is photosynthesis, the process by which plants make food.", "photosynthesis",
                   "photosynthesis"),
    "appositive-which": ("The answer is Paris, which is the capital of France.", "Paris", "paris"),
    "comma-kept-in-a-name": ("The answer is Paris, France.", "Paris, France", "paris france"),
    "chat-token-left-in": ("The answer is Paris<|im_end|>", "Paris", "paris"),
    "eot-token": ("The answer is Lima.<|eot_id|><|start_header_id|>user", "Lima", "lima"),
}


@pytest.mark.parametrize("case", STRING_FAMILIES)
def test_string_family(case):
    text, gold, strict = STRING_FAMILIES[case]
    got = extract(text, S)
    assert got.strict == strict
    assert is_correct(got.strict, canonical_gold(gold, S), S)


OPTIONS = ["shark", "Blue whale", "elephant", "100", "10"]
CHOICE_FAMILIES = {
    "option-text": ("The answer is blue whale.", "B"),
    "option-text-with-article-and-reason": ("The answer is the blue whale, since it is the largest.", "B"),
    "option-value": ("The answer is 100 kg.", "D"),
    "shorter-value-is-no-prefix": ("The answer is 10.", "E"),
    "letter-still-wins": ("The answer is (C) elephant.", "C"),
}


@pytest.mark.parametrize("case", CHOICE_FAMILIES)
def test_choice_named_by_its_text(case):
    text, letter = CHOICE_FAMILIES[case]
    assert extract(text, C, OPTIONS).strict == letter
    assert extract(text, C).strict in (None, "C")  # without the options only a letter reads


def test_option_text_reaches_the_scorer_from_the_question_and_from_a_stored_prompt():
    question = with_options("Which animal is the largest?", OPTIONS)
    assert shown_options(question) == OPTIONS
    assert scores(C, "The answer is blue whale.", "B", question)["correct_strict"] == 1
    prompt = f"Q: {with_options('Pick one', ['x', 'y'])}\nA: The answer is (A).\n\nQ: {question}\nA:"
    assert shown_options(prompt) == OPTIONS  # the last question's options, not an exemplar's
    assert scores(C, "The answer is blue whale.", "B", prompt)["correct_strict"] == 1
    assert scores(C, "The answer is blue whale.", "B")["correct_strict"] == 0


def test_a_teacher_naming_the_option_trains_on_its_letter():
    item = Item("q1", with_options("Which animal is the largest?", OPTIONS), "B")
    task = Task("t", [item], C)
    normalized = normalize_rationale("Whales are huge. So the answer is Blue whale.", task, item=item)
    assert normalized.text.endswith("The answer is B.") and normalized.answer == "B"


def test_stored_string_golds_with_an_article_still_match():
    """Golds are stored as version 3 canonicalised them ("the beatles"); articles fold at comparison."""
    assert scores(S, "The answer is Beatles.", "the beatles")["correct_strict"] == 1
    assert scores(S, "The answer is the Beatles.", "beatles")["correct_strict"] == 1
    assert scores(S, "The answer is the Rolling Stones.", "the beatles")["correct_strict"] == 0


def test_a_rationale_running_into_a_next_turn_trains_on_its_own_turn():
    task = Task("t", [Item("q", "What is 3 + 4?", "7")], N)
    normalized = normalize_rationale("3 + 4 = 7. The answer is 7.<|im_end|>\n<|im_start|>user\nAnd 9?", task)
    assert normalized.text == "3 + 4 = 7. The answer is 7." and normalized.answer == "7"
    headed = normalize_rationale("<|im_start|>assistant\n3 + 4 = 7. The answer is 7.", task)
    assert headed.text == "3 + 4 = 7. The answer is 7."  # the role word is no part of the target


def test_hedges_still_hold_with_the_new_readers():
    assert hedged("The answer is 2 million or 3 million.", N)
    assert hedged("The answer is 5 or 6.", N)
    assert extract("The answer is either blue whale or shark.", C, OPTIONS).strict is None
