"""Any JSON / JSONL data (or Hub dataset) with a field mapping and an answer type: number, choice (options as a
list or a dict, see `choices`), yes/no, string or LaTeX math."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from capgap.errors import CapgapError, did_you_mean
from capgap.tasks.base import Item, Task
from capgap.tasks.choices import choice_letter, option_labels, option_texts, shuffled, top_scored, with_options
from capgap.tasks.extraction import AnswerType
from capgap.tasks.files import Record, is_hub_id, read_source
from capgap.tasks.items import build_task, check_file_options, deduplicated, field_value, gold_value, stable_id


@dataclass(frozen=True)
class FieldMap:
    """Which record fields hold what, for generic JSON / JSONL data."""

    question: str = "question"
    answer: str = "answer"
    rationale: str | None = None
    id: str | None = None
    options: str | None = None  # the options (a list or a dict: see choices.py), shown as (A) ... (B) ...

    @classmethod
    def parse(cls, given: str | Mapping | None) -> FieldMap:
        """From a mapping {role: field} (a config's `fields: {question: q, answer: a}`) or the same as text,
        "question=q,answer=a" (the CLI's --fields): one reading of both."""
        if not given:
            return cls()
        valid = ", ".join(cls.__dataclass_fields__)
        if isinstance(given, str):
            pairs = {}
            for part in given.split(","):
                key, sep, value = part.partition("=")
                if not sep:
                    raise CapgapError(f"fields: cannot read '{part}'; write ROLE=FIELD pairs with ROLE in {valid}")
                pairs[key.strip()] = value.strip()
            given = pairs
        roles = list(cls.__dataclass_fields__)
        for role, name in given.items():
            if role not in roles:
                raise CapgapError(f"fields: unknown role '{role}'{did_you_mean(str(role), roles)}")
            if not isinstance(name, str) or not name.strip():
                raise CapgapError(f"fields: role '{role}' needs a field name (text), got {name!r}")
        return cls(**{role: name.strip() for role, name in given.items()})


def _text(value: object) -> str:
    """A text field; a list of sentences (StrategyQA's facts) is joined into one text."""
    return " ".join(str(v).strip() for v in value) if isinstance(value, list) else str(value)


def _mapped_gold(where: str, r: dict, fields: FieldMap, answer_type: AnswerType, options: list[str] | None,
                 hint: str) -> str:
    raw = field_value(where, r, fields.answer, hint)
    if options is not None and answer_type is AnswerType.CHOICE:
        return choice_letter(raw, options, where, option_labels(r[fields.options]))
    return gold_value(where, top_scored(raw, where) if isinstance(raw, dict) else raw, answer_type, fields.answer)


def mapped_items(records: list[Record], fields: FieldMap, answer_type: AnswerType,
                 shuffle_options: bool = False) -> list[Item]:
    hint = "map the fields with --fields question=...,answer=... (config: `fields:`)"
    if shuffle_options and fields.rationale:
        raise CapgapError("shuffle_options gives the options new letters, but the rationale field names the old "
                          "ones; leave out the rationale field or shuffle_options")
    items = []
    for where, r in records:
        question = str(field_value(where, r, fields.question, hint)).strip()
        options = option_texts(field_value(where, r, fields.options, hint), where) if fields.options else None
        answer = _mapped_gold(where, r, fields, answer_type, options, hint)
        if options and shuffle_options and answer_type is AnswerType.CHOICE:
            options, answer = shuffled(options, answer, question)
        question = with_options(question, options) if options else question
        rationale = _text(field_value(where, r, fields.rationale, hint)) if fields.rationale else None
        item_id = str(field_value(where, r, fields.id, hint)) if fields.id else stable_id("item", question)
        items.append(Item(item_id, question, answer, rationale))
    return items


def answer_type_of(value: str) -> AnswerType:
    try:
        return AnswerType(value)
    except ValueError:
        valid = ", ".join(t.value for t in AnswerType)
        raise CapgapError(f"unknown answer type '{value}'; valid: {valid}") from None


def load_jsonl(*, data: str | None = None, split: str | None = None, subset: str | None = None,
           where: dict | None = None, fields: dict | str | None = None, answer_type: str = "number",
           duplicates: str = "error", shuffle_options: bool = False, exemplars: int = 8) -> Task:
    field_map = fields if isinstance(fields, FieldMap) else FieldMap.parse(fields)
    kind = answer_type_of(answer_type)  # option mistakes first: before any data is read
    if subset is not None and not (data and is_hub_id(data)):
        raise CapgapError(f"subset '{subset}' names a configuration of a Hub dataset, but the data is not a Hub "
                          "dataset id; leave subset out for a local file")
    records, source = read_source("jsonl", data, split, None, subset, where)
    source = {**source, "subset": subset} if subset else source
    items = mapped_items(records, field_map, kind, shuffle_options)
    items, source = deduplicated(records, items, duplicates, source)
    shuffle = {"shuffle_options": True} if shuffle_options else {}
    return build_task("jsonl", items, kind, {**source, "fields": field_map.__dict__, **shuffle}, exemplars)


def check_jsonl(options: dict) -> list[tuple[str, str]]:
    problems = [] if options.get("data") else [("data", "required: the JSON / JSONL file of the items")]
    problems += check_file_options(options)
    if not 0 <= options.get("exemplars", 8) <= 8:
        problems.append(("exemplars", f"{options['exemplars']} is out of range; must be between 0 and 8"))
    for key, parse in (("fields", FieldMap.parse), ("answer_type", answer_type_of)):
        try:
            if key in options:
                parse(options[key])
        except CapgapError as e:
            problems.append((key, str(e).removeprefix(f"{key}: ")))
    return problems
