"""Gather every teacher's rationales on a task's training pool, and record them in the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from capgap.config import StudyConfig, TeacherConfig
from capgap.errors import CapgapError
from capgap.models.precision import Precision
from capgap.store import Store
from capgap.study.data import StudyTask
from capgap.tasks.base import Task
from capgap.teachers import ImportSource, TeacherRationales, imported_rationales, reference_rationales
from capgap.teachers.model import model_rationales


def gather(config: TeacherConfig, study: StudyConfig, st: StudyTask, store: Store, log,
           precision: Precision | None = None) -> TeacherRationales:
    pool_task = Task(st.task.name, st.pool, st.task.answer_type, st.task.exemplars, st.task.definition)
    if config.kind == "reference":
        return reference_rationales(config.name, st.task, st.pool)
    if config.kind == "imported":
        source = ImportSource(config.files, config.question_field, config.rationale_field, config.id_field,
                              config.questions_file, config.cut_at, config.strip_prefix)
        data_dir = Path(study.data_dir) if study.data_dir else None
        params = int(config.params) if config.params else None
        return imported_rationales(config.name, source, st.task, st.pool, data_dir, params)
    if config.kind == "model":
        log(f"  teacher {config.name}: generating rationales with {config.model} on {len(st.pool)} questions")
        ev = study.evaluation
        return model_rationales(config, pool_task, store, dtype=ev.dtype, precision=precision,
                                batch_size=ev.batch_size,
                                progress=sys.stderr.isatty())
    raise CapgapError(f"teacher '{config.name}': unknown kind '{config.kind}'; valid: imported, model, reference")


def record(store: Store, study: str, task: str, kind: str, t: TeacherRationales) -> None:
    words = [len(r.text.split()) for r in t.rationales]
    row = {"study": study, "task": task, "teacher": t.teacher, "kind": kind, "params": t.params,
           "pool_size": t.pool_size, "accuracy": t.accuracy, "mean_words": sum(words) / max(len(words), 1),
           "notes_json": json.dumps(t.notes)}
    rows = [(study, task, t.teacher, r.item_id, r.sample, r.text, r.answer, int(r.correct)) for r in t.rationales]
    store.study.save_teacher(row, rows)


def gather_all(study: StudyConfig, st: StudyTask, store: Store, log,
               precision: Precision | None = None) -> list[TeacherRationales]:
    """Every teacher's rationales, generated (model teachers) in the run's one precision decision."""
    teachers = []
    for config in study.teachers:
        # Runs sharing the store generate a model teacher's rationales once: the others wait, then read them.
        with store.leases.holding(f"teacher:{study.name}:{st.name}:{config.name}",
                                  lambda who, name=config.name: log(f"  teacher {name}: waiting for another "
                                                                    f"run ({who}) generating its rationales")):
            t = gather(config, study, st, store, log, precision)
        record(store, study.name, st.name, config.kind, t)
        coverage = f"; {'; '.join(t.notes)}" if t.notes else ""
        log(f"  teacher {t.teacher}: accuracy {100 * t.accuracy:.1f}% on {t.pool_size} pool questions "
            f"({len(t.rationales)} rationales){coverage}")
        teachers.append(t)
    return teachers
