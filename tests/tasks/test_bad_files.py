"""Data files with bad content end in one clear error line naming the file, the line and the fix.

Driven through the real CLI on a real store (which must come out unchanged), plus the reader itself.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from capgap.errors import CapgapError
from capgap.tasks.files import read_json, read_records
from capgap.teachers import ImportSource, imported_rationales
from tests.test_cli import capgap, one_error_line, sound_study, store_contents

GOOD = {"q": "Ann has 3 apples. How many apples?", "a": 3}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


def jsonl(*rows: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def store(filled_store, tmp_path) -> Path:
    copy = tmp_path / "results" / "store.sqlite"
    copy.parent.mkdir()
    shutil.copy(filled_store, copy)
    return copy


JSONL_CASES = [
    ("latin-1", jsonl(GOOD) + '{"q": "Un café coûte 3 euros?", "a": 3}\n'.encode("latin-1"),
     "line 2: not UTF-8 text (byte 0xe9 at offset 65); re-save the file as UTF-8"),
    ("random-bytes", b'{"q": "x"}\n\x00\xff' + os.urandom(300),
     "line 2: binary data, not JSON text (byte 0xff at offset 12); pass a JSON or JSONL file saved as UTF-8"),
    ("broken-line", jsonl(GOOD) + b'{"q": "Bo has 2 pens.", \n' + jsonl(GOOD),
     "line 2: not valid JSON (Expecting property name enclosed in double quotes at column 25, where the line "
     "ends); fix or remove that line"),
    ("not-an-object", jsonl(GOOD) + b'["Bo has 2 pens.", 2]\n', "line 2: a JSON list, not a JSON object"),
    ("empty", b"\n\n", ": the file is empty"),
    ("utf-16", '{"q": "x", "a": 1}\n'.encode("utf-16"), "line 1: UTF-16 text, not UTF-8"),
]


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in JSONL_CASES], ids=[c[0] for c in JSONL_CASES])
def test_a_bad_jsonl_file_is_one_error_line(tiny_model, store, tmp_path, content, message):
    data = tmp_path / "BAD.jsonl"
    data.write_bytes(content)
    before = store_contents(store)
    result = capgap("eval", "--model", str(tiny_model), "--task", "jsonl", "--data", str(data),
                    "--fields", "question=q,answer=a", "--store", str(store))
    one_error_line(result, f"{data}{message}" if message.startswith(":") else f"{data} {message}")
    assert store_contents(store) == before


SVAMP = {"ID": "s1", "Body": "Ann has 3 apples", "Question": "How many apples?", "Answer": 3.0}
JSON_CASES = [
    ("latin-1", json.dumps([SVAMP, {**SVAMP, "ID": "s2", "Body": "Zoé has 3 apples"}], ensure_ascii=False,
                           indent=1).encode("latin-1"), "line 10: not UTF-8 text (byte 0xe9 at offset 133)"),
    ("png", PNG, "line 1: binary data, not JSON text (byte 0x89 at offset 0)"),
    ("truncated", b'[{"ID": "s1", "Body": "Ann has 3 apples", ',
     "line 1: not valid JSON (Expecting property name enclosed in double quotes at column 43, where the file "
     "ends: is it cut short?); fix the file there"),
    ("top-level-number", b"\n42\n", "line 2: the file holds a number, not records"),
    ("top-level-string", b'"SVAMP"', "line 1: the file holds a string, not records"),
    ("record-not-object", json.dumps({"data": [SVAMP, [1, 2]]}).encode(), "record 2: a JSON list, not a JSON object"),
    ("list-item-not-object", json.dumps([SVAMP, "s2"]).encode(), "record 2: a string, not a JSON object"),
]


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_a_bad_json_file_is_one_error_line(tiny_model, store, tmp_path, content, message):
    data = tmp_path / "BAD.json"
    data.write_bytes(content)
    before = store_contents(store)
    result = capgap("eval", "--model", str(tiny_model), "--task", "svamp", "--data", str(data), "--store", str(store))
    one_error_line(result, f"{data} {message}")
    assert store_contents(store) == before


def test_a_folder_as_data_is_one_error_line(tiny_model, store, tmp_path):
    folder = tmp_path / "svamp.json"
    folder.mkdir()
    before = store_contents(store)
    result = capgap("eval", "--model", str(tiny_model), "--task", "svamp", "--data", str(folder), "--store", str(store))
    one_error_line(result, f"data file {folder} is a folder, not a file; pass the path of a JSON or JSONL file")
    assert store_contents(store) == before


def test_a_utf8_byte_order_mark_is_accepted(tiny_model, tmp_path):
    data = tmp_path / "bom.json"
    data.write_bytes(b"\xef\xbb\xbf" + json.dumps([SVAMP, {**SVAMP, "ID": "s2", "Body": "Zoé has 2 pens",
                                                          "Answer": 2}], ensure_ascii=False).encode())
    result = capgap("eval", "--model", str(tiny_model), "--task", "svamp", "--data", str(data),
                    "--max-new-tokens", "4", "--store", str(tmp_path / "s.sqlite"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["n"] == 2


def imported_study(tmp_path: Path, student: Path, teacher: dict) -> Path:
    study = sound_study(name="bad-teacher", students=[str(student)], data_dir=str(tmp_path / "data"),
                        teachers=[{"name": "imp", "kind": "imported", **teacher}])
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(study))
    return config


def test_validate_names_a_latin1_teacher_file(tiny_model, tmp_path):
    (tmp_path / "data").mkdir()
    rationales = tmp_path / "data" / "rationales.json"
    rationales.write_bytes(json.dumps([{"question": "What is 2 + 2?", "rationale": "2 + 2 = 4. Voilà."}],
                                      ensure_ascii=False).encode("latin-1"))
    config = imported_study(tmp_path, tiny_model, {"files": ["rationales.json"]})
    result = capgap("validate", str(config))
    assert result.returncode == 2 and "1 problem(s)" in result.stderr, result.stderr + result.stdout
    assert result.stdout.strip().splitlines() == [
        f"{config}: teachers[0] on tasks[0]: {rationales} line 1: not UTF-8 text (byte 0xe0 at offset 61); "
        "re-save the file as UTF-8"]


def test_run_stops_on_a_binary_teacher_file_and_keeps_the_store(tiny_model, store, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "teacher.jsonl").write_bytes(PNG)
    config = imported_study(tmp_path, tiny_model, {"files": ["teacher.jsonl"]})
    before = store_contents(store)
    result = capgap("run", str(config), "--store", str(store))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after the run's progress lines
    assert last.startswith(f"capgap: error: {tmp_path / 'data' / 'teacher.jsonl'} line 1: binary data, not JSON text")
    assert store_contents(store) == before


# The reader itself: the cases the CLI tests do not reach.

def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing-comma.json", b'[\n {"q": "a"}\n {"q": "b"}\n]\n',
     r"line 3: not valid JSON \(Expecting ',' delimiter at column 2\)"),
    ("plain-text.json", b"question,answer\n1,2\n", r"line 1: not valid JSON \(Expecting value at column 1\)"),
    ("two-lists.json", b'{"train": [{"q": 1}], "test": [{"q": 2}]}',
     r"an object holding 2 lists of records \(train, test\); pass a file holding one list"),
    ("nul.jsonl", b'{"q": "a"}\n{"q": "\x00"}\n', r"line 2: binary data, not JSON text \(byte 0x00 at offset 18\)"),
    ("numbers.json", b"1\n2\n", r"numbers.json line 1: a number, not a JSON object"),
])
def test_reader_errors_name_the_line(tmp_path, name, content, message):
    with pytest.raises(CapgapError, match=message):
        read_records(write(tmp_path, name, content))


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bom.jsonl", b"\xef\xbb\xbf" + jsonl({"q": "a"}, {"q": "b"}), ["bom.jsonl line 1", "bom.jsonl line 2"]),
    ("crlf.jsonl", b'{"q": "a"}\r\n\r\n{"q": "b"}\r\n', ["crlf.jsonl line 1", "crlf.jsonl line 3"]),
    ("pretty.json", json.dumps({"data": [{"q": "a"}, {"q": "b"}]}, indent=2).encode(),
     ["pretty.json record 1", "pretty.json record 2"]),
    ("named.json", jsonl({"q": "a"}, {"q": "b", "options": ["x", "y"]}), ["named.json line 1", "named.json line 2"]),
    ("one.jsonl", json.dumps({"q": "a\u2028b", "tags": []}, ensure_ascii=False).encode(), ["one.jsonl line 1"]),
])
def test_reader_accepts_sound_files(tmp_path, name, content, expected):
    assert [where.removeprefix(f"{tmp_path}/") for where, _ in read_records(write(tmp_path, name, content))] == expected


def test_an_unreadable_file_is_a_capgap_error(tmp_path, monkeypatch):
    path = write(tmp_path, "locked.json", b"[]")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(CapgapError, match=r"cannot read data file .*locked.json \(Permission denied\); check"):
        read_records(path)


def test_imported_teacher_files_go_through_the_reader(tmp_path):
    from capgap.tasks import load_task

    task = load_task("arith", n=4)
    write(tmp_path, "questions.jsonl", jsonl(*({"question": it.question} for it in task.items)))
    write(tmp_path, "continuations.json", '["Voilà: 1 + 1 = 2."]'.encode("latin-1"))
    aligned = ImportSource(["continuations.json"], questions_file="questions.jsonl")
    with pytest.raises(CapgapError, match=r"continuations.json line 1: not UTF-8 text \(byte 0xe0 at offset 6\)"):
        imported_rationales("t", aligned, task, task.items, tmp_path)
    write(tmp_path, "continuations.json", b'["1 + 1 = 2.", ')
    with pytest.raises(CapgapError, match=r"continuations.json line 1: not valid JSON \(.* at column 16, where the"):
        imported_rationales("t", aligned, task, task.items, tmp_path)
    with pytest.raises(CapgapError, match=r"data file .*gone.json not found; fix the teacher's files"):
        imported_rationales("t", ImportSource(["gone.json"]), task, task.items, tmp_path)
    with pytest.raises(CapgapError, match=r"empty.json: the file is empty"):
        read_json(write(tmp_path, "empty.json", b" \n"))
