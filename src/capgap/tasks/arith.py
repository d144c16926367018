"""`arith`: deterministic multi-step arithmetic word problems in the style of GSM8K / SVAMP.

Each problem is a short story in which a quantity goes through 1-4 operations (+, -, x, /) with integer
results, and comes with a gold step-by-step rationale ending "The answer is N.". Same knobs and seed give
the same items, so an `arith` test set never needs a data file.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

from capgap.errors import CapgapError
from capgap.knobs import knob, range_problem
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import AnswerType

_PEOPLE = [("Maya", "she", "her"), ("Liam", "he", "his"), ("Sofia", "she", "her"), ("Omar", "he", "his"),
           ("Chen", "he", "his"), ("Ava", "she", "her"), ("Ravi", "he", "his"), ("Nora", "she", "her")]
_THINGS = ["apples", "stickers", "marbles", "books", "pencils", "cookies", "stamps", "shells", "coins"]

# Story scenarios: (opening sentence, question). {n}=name, {p}=pronoun, {o}=possessive, {t}=things.
_SCENARIOS = [
    ("{n} has {a} {t}.", "How many {t} does {n} have now?"),
    ("There are {a} {t} in {n}'s box.", "How many {t} are in the box now?"),
    ("{n} collected {a} {t} last week.", "How many {t} does {n} have in the end?"),
    ("A shop gives {n} {a} {t}.", "How many {t} does {n} end up with?"),
]
# Operation sentences, two phrasings each: "{b}" is the operand.
_OPS = {
    "+": ["{P} gets {b} more {t}.", "Then {n} finds another {b} {t}."],
    "-": ["{P} gives {b} {t} to a friend.", "Then {n} loses {b} of the {t}."],
    "*": ["Then the number of {t} becomes {b} times as large.", "{P} ends up with {b} times as many {t}."],
    "/": ["{P} divides the {t} into {b} equal groups and keeps one group.",
          "Then {n} splits the {t} into {b} equal piles and keeps one pile."],
}
MAX_STEPS = 4  # the story templates chain at most this many operations
_STEP_WORDS = {"+": "adding {b}", "-": "taking away {b}", "*": "multiplying by {b}", "/": "dividing by {b}"}


@dataclass(frozen=True)
class ArithConfig:
    """Knobs of the generator; all of them go into the task definition (and so into evaluation keys).

    Their names are the `arith` task's options; each range sits next to its knob.
    """

    n: int = knob(500, "problems generated", min=1, max=1_000_000)
    seed: int = knob(0, "generator seed: same knobs and seed, same problems", min=0, below=2**32)
    min_steps: int = knob(1, "fewest operations per problem", min=1, max=MAX_STEPS)
    max_steps: int = knob(4, "most operations per problem", min=1, max=MAX_STEPS)
    max_start: int = knob(50, "starting quantity drawn from [2, max_start]", min=2)
    max_operand: int = knob(20, "operands of + and - drawn from [1, max_operand]; x and / use 2-5", min=1)
    max_value: int = knob(1000, "no intermediate result exceeds this", min=2)

    def problems(self) -> list[tuple[str, str]]:
        """(knob, problem) for every knob out of its range or inconsistent with another."""
        found = []
        for f in fields(self):
            message = range_problem(getattr(self, f.name), f.metadata)
            if message:
                found.append((f.name, message))
        if not found and self.min_steps > self.max_steps:
            found.append(("min_steps", f"{self.min_steps} is above max_steps ({self.max_steps}); "
                                       "need min_steps <= max_steps"))
        if not found and self.max_value < self.max_start:
            found.append(("max_value", f"{self.max_value} is below max_start ({self.max_start}); "
                                       "need max_value >= max_start"))
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise CapgapError("arith: " + "; ".join(f"{name}: {message}" for name, message in problems))


def _pick_op(rng: random.Random, value: int, cfg: ArithConfig) -> tuple[str, int] | None:
    """A random operation with an operand that keeps the result a positive integer in range."""
    for _ in range(20):
        op = rng.choice("+-*/")
        if op == "+":
            b = rng.randint(1, cfg.max_operand)
            if value + b <= cfg.max_value:
                return op, b
        elif op == "-" and value > 1:
            return op, rng.randint(1, min(cfg.max_operand, value - 1))
        elif op == "*":
            b = rng.randint(2, 5)
            if value * b <= cfg.max_value:
                return op, b
        elif op == "/":
            divisors = [b for b in range(2, 6) if value % b == 0 and value // b >= 1]
            if divisors:
                return op, rng.choice(divisors)
    return None


def _apply(op: str, a: int, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]


def make_problem(rng: random.Random, cfg: ArithConfig) -> tuple[str, str, int]:
    """One (question, rationale, answer) drawn from `rng`."""
    name, pron, poss = rng.choice(_PEOPLE)
    things = rng.choice(_THINGS)
    opening, question = rng.choice(_SCENARIOS)
    fill = {"n": name, "p": pron, "P": pron.capitalize(), "o": poss, "t": things}
    value = rng.randint(2, cfg.max_start)
    sentences = [opening.format(a=value, **fill)]
    steps = [f"{name} starts with {value} {things}."]
    for _ in range(rng.randint(cfg.min_steps, cfg.max_steps)):
        picked = _pick_op(rng, value, cfg)
        if picked is None:
            break
        op, b = picked
        new = _apply(op, value, b)
        sentences.append(rng.choice(_OPS[op]).format(b=b, **fill))
        shown = {"*": "x", "/": "/"}.get(op, op)
        steps.append(f"After {_STEP_WORDS[op].format(b=b)}: {value} {shown} {b} = {new}.")
        value = new
    sentences.append(question.format(**fill))
    steps.append(f"The answer is {value}.")
    return " ".join(sentences), " ".join(steps), value


def generate_items(cfg: ArithConfig, prefix: str = "arith") -> list[Item]:
    """`cfg.n` distinct problems; ids are `{prefix}-{seed}-{index}`."""
    cfg.check()
    rng = random.Random(f"capgap-arith-{cfg.seed}")
    items: list[Item] = []
    seen: set[str] = set()
    attempts = 0
    while len(items) < cfg.n:
        attempts += 1
        if attempts > cfg.n * 50:
            raise CapgapError(f"arith: could only make {len(items)} distinct problems with these knobs; "
                              "lower n or widen max_start / max_operand")
        question, rationale, answer = make_problem(rng, cfg)
        if question in seen:
            continue
        seen.add(question)
        items.append(Item(f"{prefix}-{cfg.seed}-{len(items)}", question, str(answer), rationale))
    return items


# Few-shot exemplars for every numeric task come from this fixed stream, never from the test items.
_EXEMPLAR_CONFIG = ArithConfig(n=8, seed=10_007, min_steps=2, max_steps=3)


def number_exemplars(k: int, exclude: set[str] | None = None) -> list[Item]:
    """k fixed worked examples (2-3 steps) for few-shot CoT prompts on numeric tasks."""
    exclude = exclude or set()
    pool = [it for it in generate_items(_EXEMPLAR_CONFIG, prefix="exemplar") if it.question not in exclude]
    return pool[:k]


def load_arith(cfg: ArithConfig | None = None) -> Task:
    cfg = cfg or ArithConfig()
    items = generate_items(cfg)
    questions = {it.question for it in items}
    return Task("arith", items, AnswerType.NUMBER, number_exemplars(8, exclude=questions),
                {"source": "generator", **asdict(cfg)})
