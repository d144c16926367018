"""Tasks read from data: SVAMP, GSM8K and any JSON / JSONL file, from a local path or the HF Hub.

Errors name the file, the line (or record) and the field, and say how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError
from capgap.tasks.arith import number_exemplars
from capgap.tasks.base import Item, Task
from capgap.tasks.extraction import AnswerType, canonical_gold

Record = tuple[str, dict]  # (where: "file.jsonl line 3", record)


def read_records(path: Path) -> list[Record]:
    """Records of a .json file (a list, or a dict holding one list) or of a JSON-lines file."""
    if not path.is_file():
        raise CapgapError(f"data file {path} not found; pass --data with the path to an existing file")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CapgapError(f"{path} line {e.lineno}: not valid JSON ({e.msg}); fix the file") from None
        return [(f"{path} record {i + 1}", r) for i, r in enumerate(data)]
    if stripped.startswith("{") and "\n" not in stripped.strip():
        data = json.loads(text)
        lists = [v for v in data.values() if isinstance(v, list)] if isinstance(data, dict) else []
        if len(lists) == 1:
            return [(f"{path} record {i + 1}", r) for i, r in enumerate(lists[0])]
    return list(_jsonl(path, text))


def _jsonl(path: Path, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path} line {number}", json.loads(line)
        except json.JSONDecodeError as e:
            raise CapgapError(f"{path} line {number}: not valid JSON ({e.msg}); fix that line") from None


def load_hub_records(dataset_id: str, config: str | None, split: str) -> list[Record]:
    """Records of a Hugging Face dataset split (needs the `datasets` package and the Hub or its cache)."""
    try:
        import datasets
    except ImportError:
        raise CapgapError(f"loading '{dataset_id}' from the Hugging Face Hub needs the `datasets` package: "
                          "pip install datasets, or pass --data with a local file") from None
    try:
        rows = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as e:  # the Hub reports many kinds of failure; all are the user's to fix
        raise CapgapError(f"could not load dataset '{dataset_id}' split '{split}' from the Hugging Face "
                          f"Hub ({type(e).__name__}: {str(e).splitlines()[0][:200]}); check the id and "
                          "split, your network or HF_HUB_OFFLINE, or pass --data with a local file") from None
    return [(f"{dataset_id}[{split}] row {i}", dict(r)) for i, r in enumerate(rows)]


def _field(where: str, record: dict, name: str, hint: str) -> object:
    if not isinstance(record, dict):
        raise CapgapError(f"{where}: expected a JSON object, got {type(record).__name__}; {hint}")
    if name not in record or record[name] is None:
        present = ", ".join(sorted(record)) or "none"
        raise CapgapError(f"{where}: missing field '{name}' (fields present: {present}); {hint}")
    return record[name]


def _gold(where: str, raw: object, answer_type: AnswerType, field: str) -> str:
    try:
        return canonical_gold(str(raw), answer_type)
    except ValueError:
        raise CapgapError(f"{where}: field '{field}' = {raw!r} is not a valid {answer_type.value} answer; "
                          "fix the value or choose another --answer-type") from None


def stable_id(prefix: str, question: str) -> str:
    """An id from the question text, for data without ids: stable across files and row order."""
    return f"{prefix}-{hashlib.sha1(question.encode()).hexdigest()[:10]}"


def items_fingerprint(items: list[Item]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(json.dumps([it.id, it.question, it.answer], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


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
        body = str(_field(where, r, "Body", hint)).strip()
        if body and body[-1] not in ".?!,":
            body += "."  # published bodies often lack the final period before the question
        question = f"{body} {str(_field(where, r, 'Question', hint)).strip()}"
        answer = _gold(where, _field(where, r, "Answer", hint), AnswerType.NUMBER, "Answer")
        rationale = _svamp_equation(str(r["Equation"]), answer) if r.get("Equation") else None
        item_id = str(r.get("ID") or stable_id("svamp", question))
        items.append(Item(item_id, question, answer, rationale))
    return items


def gsm8k_items(records: list[Record]) -> list[Item]:
    hint = "GSM8K records need 'question' and 'answer' (a solution ending with '#### N')"
    items = []
    for where, r in records:
        question = str(_field(where, r, "question", hint)).strip()
        solution = str(_field(where, r, "answer", hint))
        if "####" not in solution:
            raise CapgapError(f"{where}: field 'answer' has no '#### N' final answer; {hint}")
        steps, final = solution.rsplit("####", 1)
        answer = _gold(where, final.strip(), AnswerType.NUMBER, "answer")
        steps = re.sub(r"<<[^>]*>>", "", steps).strip()  # calculator annotations are not rationale text
        items.append(Item(stable_id("gsm8k", question), question, answer, f"{steps}\nThe answer is {answer}."))
    return items


@dataclass(frozen=True)
class FieldMap:
    """Which record fields hold what, for generic JSON / JSONL data."""

    question: str = "question"
    answer: str = "answer"
    rationale: str | None = None
    id: str | None = None
    options: str | None = None  # a list of options, appended to the question as (A) ... (B) ...

    @classmethod
    def parse(cls, text: str | None) -> FieldMap:
        """From "question=q,answer=a,rationale=r" (the CLI's --fields)."""
        if not text:
            return cls()
        pairs = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in cls.__dataclass_fields__:
                valid = ", ".join(cls.__dataclass_fields__)
                raise CapgapError(f"--fields: cannot read '{part}'; write ROLE=FIELD pairs with ROLE in {valid}")
            pairs[key.strip()] = value.strip()
        return cls(**pairs)


def _with_options(question: str, options: object, where: str) -> str:
    if not isinstance(options, list):
        raise CapgapError(f"{where}: the options field must be a list; fix the data or the --fields map")
    shown = []
    for letter, opt in zip("ABCDEFGH", options, strict=False):
        text = re.sub(r"^\(?[A-H]\)\s*", "", str(opt).strip())
        shown.append(f"({letter}) {text}")
    return f"{question}\nAnswer choices: {' '.join(shown)}"


def mapped_items(records: list[Record], fields: FieldMap, answer_type: AnswerType) -> list[Item]:
    hint = "map the fields with --fields question=...,answer=... (config: `fields:`)"
    items = []
    for where, r in records:
        question = str(_field(where, r, fields.question, hint)).strip()
        if fields.options:
            question = _with_options(question, _field(where, r, fields.options, hint), where)
        answer = _gold(where, _field(where, r, fields.answer, hint), answer_type, fields.answer)
        rationale = str(_field(where, r, fields.rationale, hint)) if fields.rationale else None
        item_id = str(_field(where, r, fields.id, hint)) if fields.id else stable_id("item", question)
        items.append(Item(item_id, question, answer, rationale))
    return items


def build_task(name: str, items: list[Item], answer_type: AnswerType, source: dict) -> Task:
    """A file-backed task; numeric tasks take few-shot exemplars from the fixed arith stream."""
    if not items:
        raise CapgapError(f"task '{name}': the data holds no items; check the file or split")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise CapgapError(f"task '{name}': item id '{dup}' appears twice; ids must be unique (fix the id field)")
    if answer_type is AnswerType.NUMBER:
        exemplars = number_exemplars(8, exclude={it.question for it in items})
    else:
        # Non-numeric data gives its own worked examples: items with a rationale, kept out of the test set.
        exemplars = [it for it in items if it.rationale][:8]
        items = [it for it in items if it not in exemplars] if exemplars else items
    definition = {**source, "answer_type": answer_type.value, "items": items_fingerprint(items)}
    return Task(name, items, answer_type, exemplars, definition)
