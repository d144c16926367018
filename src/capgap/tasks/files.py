"""Records from data: a local JSON / JSONL file or a Hugging Face Hub dataset, kept by a `where` filter.

Errors name the file, the line (or record) and the field, and say how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from capgap.errors import CapgapError

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


def read_source(name: str, data: str | None, split: str | None, hub: str | None, config: str | None = None,
             where: dict | None = None):
    """Records from a local file, or from a Hub dataset id, kept by `where`; returns (records, source)."""
    source = data or hub
    if source is None:
        raise CapgapError(f"task '{name}' reads its items from data: pass --data PATH (a JSON / JSONL file) "
                          "or a Hugging Face dataset id")
    if is_hub_id(source):
        split = split or "test"
        records, described = load_hub_records(source, config, split), {"hub": source, "split": split}
    else:
        if split is not None:
            raise CapgapError(f"split '{split}' names a Hub dataset split, but {source} is a local file; select its "
                              f"records with where: {{FIELD: {split}}} instead")
        path = Path(source).expanduser()
        records, described = read_records(path), {"file": path.name}
    if where:
        records, described = kept_where(records, where, source), {**described, "where": where}
    return records, described
