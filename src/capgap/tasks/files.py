"""Tasks read from data: SVAMP, GSM8K and any JSON / JSONL file, from a local path or the HF Hub.

Errors name the file, the line (or record) and the field, and say how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError, did_you_mean
from capgap.tasks.arith import number_exemplars
from capgap.tasks.base import Item, Task
from capgap.tasks.choices import choice_letter, option_labels, option_texts, shuffled, top_scored, with_options
from capgap.tasks.extraction import AnswerType
from capgap.tasks.grading import canonical_gold

Record = tuple[str, dict]  # (where: "file.jsonl line 3", record)

MISSING_FIX = "pass --data with the path to an existing file"
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_text(path: Path, fix: str = MISSING_FIX) -> str:
    """The text of a data file: UTF-8 (a byte-order mark is allowed); anything else is a CapgapError.

    `fix` is the hint when the file is not there (how the user named it: --data, a config's files).
    """
    try:
        if not path.exists():
            raise CapgapError(f"data file {path} not found; {fix}")
        if path.is_dir():
            raise CapgapError(f"data file {path} is a folder, not a file; pass the path of a JSON or JSONL file")
        data = path.read_bytes()
    except OSError as e:
        raise CapgapError(f"cannot read data file {path} ({e.strerror or type(e).__name__}); "
                          "check the path and the file's permissions") from None
    return decode_text(path, data)


def decode_text(path: Path, data: bytes) -> str:
    """`data` as UTF-8 text, or a one-line CapgapError naming the line and byte that are not."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CapgapError(f"{path} line 1: UTF-16 text, not UTF-8 (byte-order mark 0x{data[0]:02x} 0x{data[1]:02x} "
                          "at offset 0); re-save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig")  # offsets in errors count the byte-order mark, as the file does
    except UnicodeDecodeError as e:
        raise CapgapError(_bad_byte(path, data, e.start, binary=b"\x00" in data)) from None
    if "\x00" in text:
        raise CapgapError(_bad_byte(path, data, data.index(b"\x00"), binary=True))
    return text


def _bad_byte(path: Path, data: bytes, offset: int, *, binary: bool) -> str:
    line = data.count(b"\n", 0, offset) + 1
    at = f"byte 0x{data[offset]:02x} at offset {offset}"
    if binary:
        return f"{path} line {line}: binary data, not JSON text ({at}); pass a JSON or JSONL file saved as UTF-8 text"
    return f"{path} line {line}: not UTF-8 text ({at}); re-save the file as UTF-8"


def _json_kind(value: object) -> str:
    kinds = {dict: "JSON object", list: "JSON list", str: "string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "number")


def _json_error(path: Path, e: json.JSONDecodeError, fix: str) -> CapgapError:
    cut = ", where the file ends: is it cut short?" if e.pos >= len(e.doc.rstrip()) else ""
    return CapgapError(f"{path} line {e.lineno}: not valid JSON ({e.msg} at column {e.colno}{cut}); {fix}")


def read_json(path: Path, fix: str = MISSING_FIX) -> object:
    """The one JSON value a data file holds (a list, an object, ...)."""
    text = read_text(path, fix)
    if not text.strip():
        raise CapgapError(f"{path}: the file is empty; pass a file holding the JSON data")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _json_error(path, e, "fix the file there") from None


def read_records(path: Path, fix: str = MISSING_FIX) -> list[Record]:
    """Records of a .json file (a list, or an object holding one list) or of a JSON-lines file.

    Every record is a JSON object; anything else (a bad byte, broken JSON, a number where a record
    should be) is a CapgapError naming the file and the line or record.
    """
    text = read_text(path, fix)
    stripped = text.lstrip()
    if not stripped:
        raise CapgapError(f"{path}: the file is empty; pass a JSON list of records or a JSONL file (one per line)")
    if path.suffix.lower() in JSONL_SUFFIXES and not stripped.startswith("["):
        return list(_jsonl(path, text))  # one record per line, each kept whole
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if _parses(stripped.split("\n", 1)[0]):
            return list(_jsonl(path, text))  # JSON lines, whatever the file's name
        raise _json_error(path, e, "fix the file there (a JSON list of records, or one record per line)") from None
    if isinstance(data, list):
        return _checked(path, "record", data)
    if isinstance(data, dict):
        return _unwrap(path, [(f"{path} record 1", data)])
    line = text[: len(text) - len(stripped)].count("\n") + 1
    raise CapgapError(f"{path} line {line}: the file holds a {_json_kind(data)}, not records; write a JSON list "
                      "of objects, an object holding one such list, or one object per line (JSONL)")


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _checked(path: Path, unit: str, data: list) -> list[Record]:
    for i, r in enumerate(data):
        if not isinstance(r, dict):
            raise CapgapError(f"{path} {unit} {i + 1}: a {_json_kind(r)}, not a JSON object; each record must be "
                              "an object of fields (fix or remove it)")
    return [(f"{path} {unit} {i + 1}", r) for i, r in enumerate(data)]


def _unwrap(path: Path, records: list[Record]) -> list[Record]:
    """A lone object holding one list of records (e.g. {"data": [...]}) stands for that list."""
    if len(records) != 1:
        return records
    lists = {k: v for k, v in records[0][1].items()
             if isinstance(v, list) and any(isinstance(r, dict) for r in v)}
    if len(lists) > 1:
        raise CapgapError(f"{path}: an object holding {len(lists)} lists of records ({', '.join(lists)}); "
                          "pass a file holding one list of records")
    return _checked(path, "record", next(iter(lists.values()))) if lists else records


def _jsonl(path: Path, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.split("\n"), 1):  # "\n" only: editors' line numbers, and U+2028 in strings
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            cut = ", where the line ends" if e.pos >= len(line.rstrip()) else ""
            raise CapgapError(f"{path} line {number}: not valid JSON ({e.msg} at column {e.colno}{cut}); "
                              "fix or remove that line") from None
        if not isinstance(record, dict):
            raise CapgapError(f"{path} line {number}: a {_json_kind(record)}, not a JSON object; write one "
                              "object (record) per line, or remove that line")
        yield f"{path} line {number}", record


def is_hub_id(source: str) -> bool:
    """Whether a data source names a Hub dataset ("org/name") rather than a local file."""
    path = Path(source).expanduser()
    return not path.exists() and source.count("/") == 1 and path.suffix not in (".json", ".jsonl")


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


DUPLICATE_POLICIES = ("error", "keep-first")


def unique_items(items: list[Item], wheres: list[str], duplicates: str) -> list[Item]:
    """Items with unique ids. A repeated id is an error naming both records (`duplicates: error`), or the
    later records are dropped and counted (`keep-first`; the count is in the task's definition)."""
    first: dict[str, str] = {}
    kept = []
    for item, where in zip(items, wheres, strict=True):
        if item.id in first:
            if duplicates == "error":
                raise CapgapError(f"{where}: item id '{item.id}' repeats {first[item.id]} (the same id, or the "
                                  "same question when there is no id field); remove it, or set the task option "
                                  "duplicates: keep-first to keep the first of each and count the rest")
            continue
        first[item.id] = where
        kept.append(item)
    return kept


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
    raw = _field(where, r, fields.answer, hint)
    if options is not None and answer_type is AnswerType.CHOICE:
        return choice_letter(raw, options, where, option_labels(r[fields.options]))
    return _gold(where, top_scored(raw, where) if isinstance(raw, dict) else raw, answer_type, fields.answer)


def mapped_items(records: list[Record], fields: FieldMap, answer_type: AnswerType,
                 shuffle_options: bool = False) -> list[Item]:
    hint = "map the fields with --fields question=...,answer=... (config: `fields:`)"
    if shuffle_options and fields.rationale:
        raise CapgapError("shuffle_options gives the options new letters, but the rationale field names the old "
                          "ones; leave out the rationale field or shuffle_options")
    items = []
    for where, r in records:
        question = str(_field(where, r, fields.question, hint)).strip()
        options = option_texts(_field(where, r, fields.options, hint), where) if fields.options else None
        answer = _mapped_gold(where, r, fields, answer_type, options, hint)
        if options and shuffle_options and answer_type is AnswerType.CHOICE:
            options, answer = shuffled(options, answer, question)
        question = with_options(question, options) if options else question
        rationale = _text(_field(where, r, fields.rationale, hint)) if fields.rationale else None
        item_id = str(_field(where, r, fields.id, hint)) if fields.id else stable_id("item", question)
        items.append(Item(item_id, question, answer, rationale))
    return items


def kept_where(records: list[Record], where: dict, source: str) -> list[Record]:
    """The records whose fields have the given values ({split: test}; a list of values keeps any of them)."""
    wanted = {k: v if isinstance(v, list) else [v] for k, v in where.items()}
    for key in wanted:
        if not any(key in r for _, r in records):
            present = ", ".join(sorted({k for _, r in records[:50] for k in r})[:12])
            raise CapgapError(f"{source}: no record has the field '{key}' of where (fields: {present}); fix where")
    kept = [(at, r) for at, r in records if all(str(r.get(k)) in map(str, vs) for k, vs in wanted.items())]
    if not kept:
        seen = {k: sorted({str(r.get(k)) for _, r in records})[:6] for k in wanted}
        raise CapgapError(f"{source}: no record matches where {where} (values found: "
                          + "; ".join(f"{k}: {', '.join(v)}" for k, v in seen.items()) + "); fix where")
    return kept


def build_task(name: str, items: list[Item], answer_type: AnswerType, source: dict, shots: int = 8) -> Task:
    """A file-backed task; numeric tasks take few-shot exemplars from the fixed arith stream, other tasks
    keep their first `shots` items with a rationale apart as worked examples (never test items)."""
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
        exemplars = [it for it in items if it.rationale][:shots]
        items = [it for it in items if it not in exemplars] if exemplars else items
    definition = {**source, "answer_type": answer_type.value, "items": items_fingerprint(items)}
    return Task(name, items, answer_type, exemplars, definition)
