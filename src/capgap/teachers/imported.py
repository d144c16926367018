"""Imported teachers: rationale files from elsewhere, mapped onto the training pool by configuration.

Two layouts cover the published teacher files:
- records: JSON / JSONL records holding a question and a rationale (fields mapped in the config);
- aligned: a list of raw continuations aligned by position with a separate question file (PaLM-540B's
  release), optionally cut at a marker where the model went on to invent the next question.
Rationales join the pool by normalised question text (or by id), and are checked by capgap's own checker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from capgap.errors import CapgapError
from capgap.tasks.base import Item, Task
from capgap.tasks.choices import question_stem
from capgap.tasks.files import read_json, read_records
from capgap.teachers.base import TeacherRationales, hedge_note, normalize_question, normalize_rationale, scored

FILES_FIX = "fix the teacher's files (paths are relative to the study's data_dir)"


@dataclass(frozen=True)
class ImportSource:
    files: list[str]  # rationale files (records, or continuations in order)
    question_field: str = "question"
    rationale_field: str = "rationale"
    id_field: str | None = None  # join on this id instead of the question text
    questions_file: str | None = None  # aligned layout: the questions, in the order of the continuations
    cut_at: str | None = None  # aligned layout: cut each continuation here (e.g. "\n\nQ:")
    strip_prefix: str | None = None  # e.g. "Rationale:" or "A:"
    notes: list[str] = field(default_factory=list)


def _resolve(path: str, data_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or data_dir is None else data_dir / p


def _aligned_pairs(source: ImportSource, data_dir: Path | None) -> list[tuple[str, str]]:
    questions = read_records(_resolve(source.questions_file, data_dir), "fix the teacher's questions_file")
    continuations: list[str] = []
    for f in source.files:
        path = _resolve(f, data_dir)
        data = read_json(path, FILES_FIX)
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise CapgapError(f"{path}: the aligned layout needs a JSON list of strings; use the records layout")
        continuations += data
    if len(continuations) > len(questions):
        raise CapgapError(f"{len(continuations)} continuations but only {len(questions)} questions in "
                          f"{source.questions_file}; the files must align by position")
    pairs = []
    for (where, record), text in zip(questions, continuations, strict=False):
        if source.question_field not in record:
            raise CapgapError(f"{where}: missing field '{source.question_field}'; set the teacher's question_field")
        if source.cut_at and source.cut_at in text:
            text = text[: text.index(source.cut_at)]
        pairs.append((str(record[source.question_field]), text))
    return pairs


def _record_pairs(source: ImportSource, data_dir: Path | None) -> list[tuple[str, str]]:
    key_field = source.id_field or source.question_field
    pairs = []
    for f in source.files:
        for where, record in read_records(_resolve(f, data_dir), FILES_FIX):
            for name in (key_field, source.rationale_field):
                if not isinstance(record, dict) or name not in record:
                    raise CapgapError(f"{where}: missing field '{name}'; map the teacher's fields in the config")
            pairs.append((str(record[key_field]), str(record[source.rationale_field])))
    return pairs


def imported_rationales(name: str, source: ImportSource, task: Task, pool: list[Item],
                        data_dir: Path | None = None, params: int | None = None) -> TeacherRationales:
    if any(source.get("shuffle_options") for source in task.sources()):
        raise CapgapError(f"teacher '{name}': shuffle_options gives the task's options new letters, but imported "
                          "rationales name the release's letters; leave out shuffle_options")
    pairs = _aligned_pairs(source, data_dir) if source.questions_file else _record_pairs(source, data_dir)
    if source.id_field:
        by_key = {it.id: it for it in pool}
        key_of = str
    else:
        stems = Counter(normalize_question(question_stem(it.question)) for it in pool)
        by_key = {key: it for it in pool if stems[key := normalize_question(question_stem(it.question))] == 1}
        by_key.update({normalize_question(it.question): it for it in pool})  # releases keep the stem, or not
        key_of = normalize_question
    rationales, seen, empty, unmatched, repeated = [], set(), 0, [], 0
    for key, raw in pairs:
        item = by_key.get(key_of(key))
        if item is None:
            unmatched.append(key)  # not a pool question: a test item, another split, or a question worded otherwise
            continue
        if item.id in seen:
            repeated += 1  # a second rationale for one question: the first is kept
            continue
        seen.add(item.id)
        normalized = normalize_rationale(raw, task, source.strip_prefix, item)
        if not normalized.text:
            empty += 1  # nothing to learn from; counts as a wrong answer in the teacher's accuracy
            continue
        rationales.append(scored(item, normalized, task))
    if not rationales:
        raise CapgapError(f"teacher '{name}': none of its {len(pairs)} rationales matched a training-pool "
                          "question; check the files, the question/id field and the task's pool")
    notes = [f"{len(rationales)} of {len(pool)} pool questions covered (joined by "
             f"{'id field ' + repr(source.id_field) if source.id_field else 'normalised question text'})"]
    if unmatched:
        examples = ", ".join(repr(" ".join(k.split())[:50]) for k in unmatched[:2])
        notes.append(f"{len(unmatched)} of {len(pairs)} records match no pool question (e.g. {examples})")
    if repeated:
        notes.append(f"{repeated} repeated questions (the first rationale of each kept)")
    if empty:
        notes.append(f"{empty} empty rationales skipped")
    notes += hedge_note(rationales)
    return TeacherRationales(name, rationales, len(pool), params, notes)
