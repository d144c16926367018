"""The known-truth corpus of `bench/extraction_changes.py`: realistic generations, each stating the gold or
a different value, so the truth is known by construction (the extraction audit's formats, ordinary "The
answer is N." rationales, and the families extraction version 4 reads)."""

from __future__ import annotations

import random


def _body(rng: random.Random) -> tuple[str, int]:
    """A short arithmetic rationale and its result, like the teachers' and the student's."""
    a, b = rng.randint(2, 90), rng.randint(2, 90)
    op = rng.choice(["+", "-", "*"])
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"Tom has {a} apples and gets {b} more boxes. So {a} {op} {b} = {value}.", value


def corpus(seed: int = 0) -> list[dict]:
    """(category, generation, gold, truth): truth says whether the generation's final answer is the gold."""
    rng = random.Random(seed)
    cases: list[dict] = []

    def add(category: str, generation: str, gold: str, truth: bool) -> None:
        """One case: `truth` says whether the generation's final answer equals `gold`."""
        cases.append({"category": category, "generation": generation, "gold": gold, "truth": truth})

    phrasings = ["The answer is {}.", "Therefore, the answer is {}.", "So the final answer is {}.",
                 "Answer: {}", "The answer is: {}"]
    for i in range(40):
        body, value = _body(rng)
        truth = i % 4 != 3
        stated = value if truth else value + rng.choice([1, 2, 10])
        add("plain 'The answer is N.'", f"{body} {phrasings[i % len(phrasings)].format(stated)}", str(value), truth)
    _formats(add, rng)
    _families(add)
    _audit(add)
    return cases


def _formats(add, rng: random.Random) -> None:
    """Markdown, currency, percentages, LaTeX, GSM8K and PaLM formats, each right and wrong."""
    for truth in (True, False):
        k = 0 if truth else 1
        add("markdown bold", f"3 + 4 = 7 pens.\n**Final Answer:** {7 + k}", "7", truth)
        add("markdown bold", f"We need 6 * 7 = 42. The answer is **{42 + k}**.", "42", truth)
        add("currency, commas", f"Total: 1234.5 dollars. The answer is ${1234 + k:,}.50.", "1234.5", truth)
        add("currency, commas", f"She earns $1,200 a week, so the answer is ${3600 + k:,}.", "3600", truth)
        add("percent", f"40 of 160 is a quarter. The answer is {25 + k}%.", "25", truth)
        add("boxed", f"Adding, 12 + 30 = 42, so $\\boxed{{{42 + k}}}$.", "42", truth)
        add("boxed nested", f"Half of it: \\boxed{{\\frac{{{1 + k}}}{{2}}}}", "0.5", truth)
        add("boxed last wins", f"First \\boxed{{{40 + 2 * (1 - k)}}}, then corrected: \\boxed{{{42 + k}}}", "42", truth)
        add("final answer:", f"Each box holds 8, 8 x 9 = 72.\nFinal answer: {72 + k}", "72", truth)
        add("PaLM expression", f"He scored 84 points in 2 rounds. The answer is ({84 + 2 * k} / 2).", "42", truth)
        add("PaLM expression", f"There are 3 rows of 4. The answer is 3 × {4 + k}.", "12", truth)
        add("PaLM expression", f"The answer is 5120 / 25 = {20 + k}. Each pack costs that.", "20", truth)
        add("GSM8K ####", f"Natalia sold 48 / 2 = 24 clips in May.\n#### {72 + k}", "72", truth)
        add("GSM8K ####", f"She sold 48 + 24 = 72 clips.\n####{72 + k}", "72", truth)
        add("GSM8K heading", f"#### Step 1:\nShe has 30.\n#### Step 2:\nShe gets {12 + k}.\nThe answer is {42 + k}.",
            "42", truth)
        add("unicode minus", f"The temperature fell 5 degrees from 0. The answer is \u2212{5 + k}.", "-5", truth)
        add("scientific", f"The distance is 3.2 × 10^5 km. The answer is {3.2 + k}e5.", "320000", truth)
        add("number words", f"Six plus six gives a dozen. The answer is {['twelve', 'thirteen'][k]}.", "12", truth)
        add("number words", f"The answer is {['forty-two', 'forty-three'][k]}.", "42", truth)
        add("number words", f"The answer is one hundred and {['five', 'six'][k]}.", "105", truth)
        add("fractions", f"Three of the four slices are left: {3 + k}/4", "0.75", truth)
        add("fractions", f"The answer is \\frac{{{3 + k}}}{{4}}.", "0.75", truth)
        add("answer then justification", f"The answer is {12 + k}, since 3 × 4 = 12 (not 3 + 4 = 7).", "12", truth)
        add("decimal forms", f"The answer is {['.50', '.55'][k]}.", "0.5", truth)
        n = rng.randint(10**5, 10**7)
        add("large integers", f"The total is {n + k}. The answer is {n + k}.", str(n), truth)


def _families(add) -> None:
    """The families version 4 reads (held-out check of issue 23), each stated right and wrong."""
    for truth in (True, False):
        k = 0 if truth else 1
        add("v4: digit groups", f"The answer is 1 234 {567 + k}.", "1234567", truth)
        add("v4: digit groups", f"The answer is 1,00,00{k}.", "100000", truth)
        add("v4: scale words", f"The answer is {2 + k} million dollars.", "2000000", truth)
        add("v4: scale words", f"So the total is {3 + k} thousand.\nThe answer is {3 + k} thousand", "3000", truth)
        add("v4: times ten", f"The answer is {1.5 + k} × 10^6.", "1500000", truth)
        add("v4: times ten", f"So $\\boxed{{{2 + k} \\times 10^{{-3}}}}$", "0.002", truth)
        add("v4: signs", f"The answer is negative {7 + k}.", "-7", truth)
        add("v4: signs", f"He is short. The answer is -${20 + k}.", "-20", truth)
        add("v4: currency", f"The answer is Rs. {450 + k}.", "450", truth)
        add("v4: currency", f"The answer is {5 + k} dollars and 50 cents.", "5.5", truth)
        add("v4: computation", f"The answer is 50% of 80, which is {40 + k}.", "40", truth)
        add("v4: display math", f"Adding up:\nThe answer is\n$$\n{12 + k}\n$$", "12", truth)
        add("v4: markdown", f"3 * 14 = 42\n### Final Answer\n**{42 + k}**", "42", truth)
        add("v4: markdown", f"#### 1. Add them\n3 + 4 = 7\nThe answer is {7 + k}.", "7", truth)
        add("v4: chat turn", f"The answer is {7 + k}.<|im_end|>\n<|im_start|>user\nThe answer is 9.", "7", truth)
        add("v4: check after", f"The answer is {9 + k}. Double-check: 9 - 4 = 5.", "9", truth)
        add("v4: hypothesis after", f"The answer is {12 + k}. Someone might think the answer is 15, but no.",
            "12", truth)


def _audit(add) -> None:
    """The audit's cases: each states the gold (or not) in the way that fooled version 1."""
    add("tolerance", "The answer is 1000000.", "1000001", False)
    add("tolerance", "The answer is 1000001.", "1000001", True)
    add("negation", "The answer isn't 5. It's 6.", "6", True)
    add("negation", "The answer isn't 5. It's 6.", "5", False)
    add("negation", "The answer is 45.\nNote: the answer is not 50", "45", True)
    add("negation", "The answer is 45.\nNote: the answer is not 50", "50", False)
    add("negation", "The answer is not 7 but 8.", "8", True)
    add("answer then justification", "The answer is 12, since 3 × 4 = 12 (not 3 + 4 = 7).", "7", False)
    add("looping", "The answer is " + " + ".join(["5"] * 1200), "6000", False)
    add("looping", "The answer is 5 + 5 + … (1,200 terms)", "10", False)
    add("GSM8K heading", "#### Step 2:\nAdd them up: 3 + 4 = 7", "2", False)
