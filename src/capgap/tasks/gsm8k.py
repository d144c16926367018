"""GSM8K (Cobbe et al. 2021): grade-school math in its JSONL format (question; answer: a solution ending with
"#### N"), from a local file or the Hub; the solution without its calculator annotations is the rationale."""

from __future__ import annotations

import re

from capgap.errors import CapgapError
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import AnswerType
from capgap.tasks.files import Record, read_source
from capgap.tasks.items import build_task, deduplicated, field_value, gold_value, stable_id

GSM8K_HUB = "openai/gsm8k"  # read when the task names no data

def gsm8k_items(records: list[Record]) -> list[Item]:
    hint = "GSM8K records need 'question' and 'answer' (a solution ending with '#### N')"
    items = []
    for where, r in records:
        question = str(field_value(where, r, "question", hint)).strip()
        solution = str(field_value(where, r, "answer", hint))
        if "####" not in solution:
            raise CapgapError(f"{where}: field 'answer' has no '#### N' final answer; {hint}")
        steps, final = solution.rsplit("####", 1)
        answer = gold_value(where, final.strip(), AnswerType.NUMBER, "answer")
        steps = re.sub(r"<<[^>]*>>", "", steps).strip()  # calculator annotations are not rationale text
        items.append(Item(stable_id("gsm8k", question), question, answer, f"{steps}\nThe answer is {answer}."))
    return items


def load_gsm8k(*, data: str | None = None, split: str | None = None, where: dict | None = None,
           duplicates: str = "error") -> Task:
    records, source = read_source("gsm8k", data, split, GSM8K_HUB, "main" if not data else None, where)
    items, source = deduplicated(records, gsm8k_items(records), duplicates, source)
    return build_task("gsm8k", items, AnswerType.NUMBER, source)
