"""SVAMP (Patel et al. 2021): math word problems in SVAMP.json's format (ID, Body, Question, Equation, Answer),
from a local file or the Hub; the equation becomes the gold rationale."""

from __future__ import annotations

import re

from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import AnswerType
from capgap.tasks.files import Record, read_source
from capgap.tasks.items import build_task, deduplicated, field_value, gold_value, stable_id

SVAMP_HUB = "ChilleD/SVAMP"  # read when the task names no data

def _svamp_equation(equation: str, answer: str) -> str:
    eq = re.sub(r"(\d+)\.0\b", r"\1", " ".join(equation.split()))
    eq = eq.replace("( ", "(").replace(" )", ")")
    if eq.startswith("(") and eq.endswith(")") and eq.count("(") == 1:
        eq = eq[1:-1]
    return f"{eq} = {answer}. The answer is {answer}."


def svamp_items(records: list[Record]) -> list[Item]:
    hint = "SVAMP records need ID, Body, Question, Answer (and Equation for the gold rationale)"
    items = []
    for where, r in records:
        body = str(field_value(where, r, "Body", hint)).strip()
        if body and body[-1] not in ".?!,":
            body += "."  # published bodies often lack the final period before the question
        question = f"{body} {str(field_value(where, r, 'Question', hint)).strip()}"
        answer = gold_value(where, field_value(where, r, "Answer", hint), AnswerType.NUMBER, "Answer")
        rationale = _svamp_equation(str(r["Equation"]), answer) if r.get("Equation") else None
        item_id = str(r.get("ID") or stable_id("svamp", question))
        items.append(Item(item_id, question, answer, rationale))
    return items


def load_svamp(*, data: str | None = None, split: str | None = None, where: dict | None = None,
           duplicates: str = "error") -> Task:
    records, source = read_source("svamp", data, split, SVAMP_HUB, where=where)
    items, source = deduplicated(records, svamp_items(records), duplicates, source)
    return build_task("svamp", items, AnswerType.NUMBER, source)
