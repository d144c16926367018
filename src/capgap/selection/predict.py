"""Predict which teacher will help a student most, before any fine-tune: `capgap predict CONFIG`.

    capgap predict examples/svamp-six-teachers-cpu.yaml --sample 64

For every task x student x protocol x teacher of the study, the student scores a sample of the rationales
that protocol would train it on (the same prompt, tokenization and max_length as training; over-long ones
are left out as training leaves them out), in batched forward passes on the device the run's precision
decides. The predictors (`evaluation.predictors`) are stored with their cost (seconds, tokens in the forward
passes), keyed by everything that determines them, so a second run reads them from the store. The cost is
what the prediction newly scored: a rationale already scored under another protocol of the same run is
not scored (nor counted) again. Model teachers' rationales are generated first when the store lacks them
(the run's own stage one).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable

from tqdm import tqdm

from capgap.config import StudyConfig
from capgap.digests import digest
from capgap.evaluation.predictors import (
    PREDICTOR_VERSION,
    RANK_CLIP,
    WINDOW,
    local_rows,
    rationale_scores,
    teacher_scores,
)
from capgap.evaluation.prompts import render
from capgap.models import Precision, decide, load_model
from capgap.models.scoring import score_rows
from capgap.store import Store
from capgap.study.cells import Student
from capgap.study.data import Example, StudyTask, prepare_task, training_examples
from capgap.study.executors import LocalExecutor
from capgap.study.generations import plan_generations, run_generations
from capgap.study.teachers import gather_all, read_files
from capgap.teachers import TeacherRationales
from capgap.training.sft import tokenize_examples

DEFAULT_SAMPLE = 64


def sampled(examples: list[Example], n: int) -> list[Example]:
    """n of a protocol's examples, the same ones whichever run asks: ordered by a hash of the item id."""
    order = sorted(examples, key=lambda e: hashlib.sha256(e.item_id.encode()).hexdigest())
    return order[:n]


class Scorer:
    """The student loaded once, scoring rationales; a rationale scored under one protocol is not scored again."""

    def __init__(self, st: StudyTask, student: Student, max_length: int, batch_size: int):
        self.st, self.student, self.max_length, self.batch_size = st, student, max_length, batch_size
        self._loaded = None
        self._done: dict[tuple[str, str], dict] = {}
        self.by_id = {it.id: it for it in st.pool}

    def _prompt(self, e: Example) -> str:
        return render(self.st.task, self.by_id[e.item_id], self.student.tokenizer, self.student.prompt)

    def score(self, examples: list[Example]) -> tuple[list[dict], int]:
        """Each example's numbers (over-long ones left out, as in training), and the tokens passed forward."""
        todo = [e for e in examples if (e.item_id, e.rationale) not in self._done]
        tokens = self._score(todo) if todo else 0
        keys = [(e.item_id, e.rationale) for e in examples]
        return [self._done[k] for k in keys if k in self._done], tokens

    def _score(self, todo: list[Example]) -> int:
        tok, chat = self.student.tokenizer, self.student.chat
        prompts = [self._prompt(e) for e in todo]
        data = tokenize_examples(tok, prompts, [e.rationale for e in todo], chat=chat, max_length=self.max_length)
        kept = [todo[i] for i in data.kept]
        local = [local_rows(tok, todo[i].rationale, chat) for i in data.kept]
        flat = [row for rows in local for row in rows]
        self._loaded = self._loaded or load_model(self.student.source, precision=self.student.precision)
        with tqdm(total=len(data.rows) + len(flat), desc="scoring", unit="row", disable=not sys.stderr.isatty()) as bar:
            whole = score_rows(self._loaded, data.rows, self.batch_size, RANK_CLIP, bar.update)
            steps = score_rows(self._loaded, flat, self.batch_size, RANK_CLIP, bar.update)
        at = 0
        for e, w, rows in zip(kept, whole, local, strict=True):
            self._done[(e.item_id, e.rationale)] = rationale_scores(w, steps[at:at + len(rows)])
            at += len(rows)
        return sum(len(r["input_ids"]) for r in data.rows + flat)


def prediction_key(config: StudyConfig, st: StudyTask, student: Student, teacher: TeacherRationales,
                   protocol: str, examples: list[Example], chosen: list[Example]) -> str:
    return digest({"student": student.fingerprint, "task_definition": st.task.definition,
                   "prompt": student.prompt.key(), "chat": student.chat, "teacher": teacher.teacher,
                   "teacher_accuracy": teacher.accuracy, "protocol": protocol,
                   "usable": digest([(e.item_id, e.rationale) for e in examples]),
                   "examples": [(e.item_id, e.rationale) for e in chosen], "max_length": config.training.max_length,
                   "predictors": PREDICTOR_VERSION, "rank_clip": RANK_CLIP, "window": WINDOW,
                   "dtype": student.precision.dtype, "device": student.precision.device})


def _predict_one(scorer: Scorer, config: StudyConfig, teacher: TeacherRationales, protocol: str,
                 examples: list[Example], sample: int, store: Store) -> dict:
    chosen = sampled(examples, sample)
    st, student = scorer.st, scorer.student
    key = prediction_key(config, st, student, teacher, protocol, examples, chosen)
    if (stored := store.selection.prediction(key)) is not None:
        row = {**stored, "study": config.name}
        store.selection.save_prediction(row)  # this study's copy, now its latest
        return row
    start = time.perf_counter()
    per_rationale, tokens = scorer.score(chosen)
    scores = {"teacher_accuracy": teacher.accuracy, "usable": len(examples), "sampled": len(chosen),
              "scored": len(per_rationale), **teacher_scores(per_rationale)}
    row = {"prediction_key": key, "study": config.name, "task": st.name, "student": student.spec,
           "teacher": teacher.teacher, "protocol": protocol, "scores": scores,
           "seconds": time.perf_counter() - start, "tokens": tokens}
    store.selection.save_prediction(row)
    return row


def predict_study(config: StudyConfig, store: Store, *, sample: int = DEFAULT_SAMPLE, batch_size: int = 8,
                  precision: Precision | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Every (task, student, protocol, teacher) prediction of the study, computed or read from the store."""
    precision = precision or decide(config.evaluation.dtype)
    students = [Student(spec, config, precision) for spec in config.students]
    tasks = [prepare_task(t, i, config.data_dir) for i, t in enumerate(config.tasks)]
    files = [read_files(config, st) for st in tasks]
    run_generations(plan_generations(config, tasks, students, baselines=False), store, LocalExecutor(), log)
    rows = []
    for st, read in zip(tasks, files, strict=True):
        teachers = gather_all(config, st, store, log, precision, read)
        for student in students:
            scorer = Scorer(st, student, config.training.max_length, batch_size)
            for protocol in config.protocols:
                for t in teachers:
                    examples = training_examples(protocol, t, teachers)
                    row = _predict_one(scorer, config, t, protocol, examples, sample, store)
                    log(f"  [predict] {student.spec} <- {t.teacher} ({protocol}): {row['scores']['scored']} "
                        f"rationale(s) scored, {row['tokens']} tokens, {row['seconds']:.1f} s")
                    rows.append(row)
    return rows
