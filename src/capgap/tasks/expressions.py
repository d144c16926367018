"""Answers that are LaTeX expressions (answer type `math`, e.g. MATH): read from a statement, compared by
math-verify.

    read_expression("$\\frac{\\pi}{2}$. So we are done")   # '\\frac{\\pi}{2}'
    same_expression("\\frac{\\pi}{2}", "\\pi/2")            # True

An expression answer is kept as written (the LaTeX of the statement up to its closing "$" or the end of
its sentence, spaces collapsed). Two answers are equal when their texts are, or when math-verify finds them
equivalent (`math_verify.verify`: symbolic and numeric comparison, tuples, intervals and sets; Hugging
Face's Math-Verify, the checker of open-r1 and lighteval's MATH). A gold written as a whole solution
(MATH's `solution` field) is its last \\boxed{...}. Inputs are bounded as in `numbers.latex_value` (at most
300 characters, no huge powers or factorials), so no timer is needed.
"""

from __future__ import annotations

import functools
import logging
import re

from capgap.tasks.numbers import QUIET_TIMEOUT, UNSAFE_LATEX

MAX_CHARS = 300
# The expression: up to a closing "$" / "\)" / "\]", a sentence end (". " before a word), or the line's end.
_REGION = re.compile(r"(?:[^\n$]|\\\$)*?(?=\$|\\\)|\\\]|\.\s+[A-Z]|\.?\s*(?:\n|$))")


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


# Chat-template tokens: an end of turn ends the model's answer (a generation that runs on into a next turn,
# "<|im_end|>\n<|im_start|>user ...", is not the model's answer past it); others are blanked.
_TURN_END = re.compile(r"<\|(?:im_end|im_start|eot_id|end_of_text|endoftext|end|user|system)\|>|<(?:end|start)_of_turn>"
                       r"|</s>")
_OPENING = re.compile(r"<\|im_start\|>|<start_of_turn>")
_HEADER = re.compile(rf"\s*(?:{_OPENING.pattern})[ \t]*(?:assistant|model)?[ \t]*\n?")
_SPECIAL = re.compile(r"<\|[a-z_]{1,24}\|>|<(?:bos|eos|pad)>|<s>|</s>|<(?:end|start)_of_turn>")


def first_turn(text: str) -> str:
    """`text` up to the end of its first chat turn: a closing token ends it wherever it stands ("... The
    answer is 7.<|im_end|><|im_start|>user ..."; an empty turn is empty), an opening one after some content
    does too; an opening token and its role at the start ("<|im_start|>assistant\n...") are blanked. Chat
    tokens left are blanked; every character before the cut keeps its position."""
    blanked = _SPECIAL.sub(lambda m: " " * len(m.group(0)), text)
    header = _HEADER.match(text)
    if header:  # "<|im_start|>assistant\n": the model's own turn begins; its role word is no answer
        blanked = " " * header.end() + blanked[header.end() :]
    for m in _TURN_END.finditer(text, header.end() if header else 0):
        if not _OPENING.fullmatch(m.group(0)) or blanked[: m.start()].strip():
            return blanked[: m.start()]
    return blanked


def clean_text(text: str) -> str:
    """Unicode minus and spaces as ASCII, so that "−5" is -5; the first chat turn only (`first_turn`)."""
    return first_turn(text).replace("\u2212", "-").replace("\u00a0", " ").replace("\u200b", " ")


def braced_end(text: str, open_at: int, limit: int = 1000) -> int | None:
    """Index just past the brace that closes the one at `open_at` (nesting counted), or None.

    Looks at most `limit` characters ahead: an answer in braces is short, and unclosed braces in a long
    generation must not make extraction quadratic.
    """
    depth = 0
    for m in re.finditer(r"[{}]", text[open_at : open_at + limit]):
        depth += 1 if m.group(0) == "{" else -1
        if depth == 0:
            return open_at + m.end()
    return None


def boxed(text: str) -> list[tuple[int, str]]:
    """Every \\boxed{...} with its start and content; nested braces ("\\boxed{\\frac{1}{2}}") stay inside."""
    found = []
    for m in _BOXED.finditer(text):
        end = braced_end(text, m.end() - 1)
        if end is not None:
            found.append((m.start(), text[m.end() : end - 1]))
    return found


def boxed_contents(text: str) -> list[str]:
    """The contents of every \\boxed{...} of `text`, in order."""
    return [inner for _, inner in boxed(clean_text(text))]


def read_expression(span: str) -> str | None:
    """The expression a statement states, from its first character (its decoration already removed)."""
    match = _REGION.match(span.lstrip())
    text = " ".join(match.group(0).split()).rstrip(" .,;") if match else ""
    return text if text and len(text) <= MAX_CHARS and _parsed(text) else None


def expression_gold(text: str) -> str | None:
    """A gold answer: the last \\boxed{...} of a written solution, else the whole text without its "$"."""
    boxes = boxed_contents(text)
    inner = boxes[-1] if boxes else text.strip().strip("$")
    return read_expression(inner)


@functools.lru_cache(maxsize=4096)
def _parsed(tex: str) -> tuple:
    """math-verify's reading of `tex` (empty when it reads nothing, or the input is out of bounds)."""
    if len(tex) > MAX_CHARS or UNSAFE_LATEX.search(tex):
        return ()
    from math_verify import LatexExtractionConfig, parse

    logging.getLogger("math_verify.parser").addFilter(QUIET_TIMEOUT)
    try:
        return tuple(parse(f"${tex}$", [LatexExtractionConfig()], parsing_timeout=None))
    except Exception:  # math-verify and sympy raise many kinds of errors: unreadable reads nothing
        return ()


def same_expression(gold: str, answer: str) -> bool:
    """Whether `answer` states the gold expression: the same text, or equivalent by math-verify."""
    if gold == answer:
        return True
    a, b = _parsed(gold), _parsed(answer)
    if not a or not b:
        return False
    from math_verify import verify

    logging.getLogger("math_verify.grader").addFilter(QUIET_TIMEOUT)
    try:
        return bool(verify(list(a), list(b), timeout_seconds=None))
    except Exception:  # an undecidable comparison is not a match
        return False
