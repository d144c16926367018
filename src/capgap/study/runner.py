"""`capgap run`: expand tasks x students x teachers x protocols x seeds into cells and run what is missing.

A cell trains one student on one teacher's rationales under one protocol and seed, then evaluates it
exactly as the student's pre-distillation baseline was evaluated (same test items, prompt, decoding and
extraction). Cells are keyed by a hash of everything that determines them; a finished cell is never redone,
a trained one is only evaluated, and an interrupted evaluation continues from its stored rows.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from capgap.config import StudyConfig, describe_budget
from capgap.evaluation import PromptConfig, evaluate
from capgap.evaluation.prompts import render, uses_chat
from capgap.evaluation.runner import versions
from capgap.models import load_model, resolve
from capgap.models.generation import Decoding
from capgap.models.loading import checkpoint_dir, count_parameters, resolve_dtype
from capgap.models.sources import ModelSource
from capgap.store import Store
from capgap.study.data import StudyTask, prepare_task, training_examples
from capgap.study.teachers import gather_all
from capgap.teachers import TeacherRationales
from capgap.training import tokenize_examples, train


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def budget_line(config: StudyConfig) -> str:
    t = config.training
    return "budget: " + describe_budget(t.steps, t.epochs, t.batch_size * t.grad_accum)


class Student:
    """What a cell needs of its student: its base checkpoint, tokenizer and how it is prompted."""

    def __init__(self, spec: str, config: StudyConfig):
        from transformers import AutoTokenizer

        self.spec, self.source = spec, resolve(spec)
        self.fingerprint = self.source.fingerprint()
        self.base_dir = checkpoint_dir(self.source)
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_dir)
        self.params = count_parameters(self.source)
        self.prompt = PromptConfig(**asdict(config.evaluation.prompt))
        self.decoding = Decoding(max_new_tokens=config.evaluation.max_new_tokens)
        self.dtype = resolve_dtype(config.evaluation.dtype)
        self.chat = uses_chat(self.prompt, self.tokenizer)


def cell_key(
    config: StudyConfig,
    st: StudyTask,
    student: Student,
    teacher: TeacherRationales,
    protocol: str,
    seed: int,
    item_ids: list[str],
) -> str:
    examples = hashlib.sha256(
        json.dumps(
            sorted((r.item_id, r.sample, r.text) for r in teacher.rationales if r.item_id in set(item_ids))
        ).encode()
    ).hexdigest()
    spec = {
        "study": config.name,
        "task": st.task.definition,
        "student": student.fingerprint,
        "teacher": teacher.teacher,
        "protocol": protocol,
        "seed": seed,
        "examples": examples,
        "training": asdict(config.training),
        "prompt": student.prompt.key(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass
class CellContext:
    """What every cell of one task x student shares."""

    config: StudyConfig
    st: StudyTask
    student: Student
    store: Store
    run_dir: Path
    pre_key: str  # the student's pre-distillation evaluation


def _cell_row(ctx: CellContext, key: str, teacher: TeacherRationales, protocol: str, seed: int) -> dict:
    """The columns every cell row has, whatever its status."""
    return {"cell_key": key, "study": ctx.config.name, "task": ctx.st.name, "student": ctx.student.spec,
            "teacher": teacher.teacher, "protocol": protocol, "seed": seed, "pre_eval_key": ctx.pre_key,
            "training_json": json.dumps(asdict(ctx.config.training))}


def _train_and_record(ctx: CellContext, key: str, teacher: TeacherRationales, protocol: str, seed: int,
                      examples: list, checkpoint: Path) -> dict:
    student, config = ctx.student, ctx.config
    by_id = {it.id: it for it in ctx.st.pool}
    prompts = [render(ctx.st.task, by_id[e.item_id], student.tokenizer, student.prompt) for e in examples]
    rows = tokenize_examples(student.tokenizer, prompts, [e.rationale for e in examples], chat=student.chat,
                             max_length=config.training.max_length)
    result = train(student.base_dir, student.tokenizer, rows, config.training, seed, checkpoint,
                   use_bf16=student.dtype == "bfloat16")
    row = {**_cell_row(ctx, key, teacher, protocol, seed), "status": "trained", "student_params": student.params,
           "n_train": len(examples), "train_item_ids_json": json.dumps([e.item_id for e in examples]),
           "steps": result.steps, "effective_batch": result.effective_batch, "tokens": result.tokens,
           "train_seconds": result.seconds, "loss_curve_json": json.dumps(result.loss_curve),
           "checkpoint": str(checkpoint)}
    ctx.store.study.save_cell(row)
    return row


def _evaluate_and_record(ctx: CellContext, row: dict, checkpoint: Path) -> dict:
    """The trained student, measured exactly as its baseline was (same items, prompt, decoding, dtype)."""
    student = ctx.student
    name = f"{student.spec}<-{row['teacher']}/{row['protocol']}/s{row['seed']}"
    source = ModelSource(name, "dir", path=checkpoint)
    post = evaluate(load_model(source, student.dtype), ctx.st.test, ctx.store, prompt=student.prompt,
                    decoding=student.decoding, batch_size=ctx.config.evaluation.batch_size,
                    progress=sys.stderr.isatty())
    row.update(status="done", post_eval_key=post.eval_key, checkpoint_fingerprint=source.fingerprint())
    ctx.store.study.save_cell(row)
    return row


def run_cell(ctx: CellContext, teacher: TeacherRationales, protocol: str, seed: int, examples: list) -> dict:
    """One cell: skipped if stored, trained unless a complete checkpoint exists, then evaluated."""
    key = cell_key(ctx.config, ctx.st, ctx.student, teacher, protocol, seed, [e.item_id for e in examples])
    row = ctx.store.study.cell(key) or {}
    label = f"{ctx.student.spec} <- {teacher.teacher} ({protocol}, seed {seed})"
    if not examples:  # recorded too: "0 training examples" is a finding about this teacher and protocol
        log(f"  [skip]   {label}: no training examples under this protocol")
        row = {**_cell_row(ctx, key, teacher, protocol, seed), "status": "skipped", "n_train": 0}
        ctx.store.study.save_cell(row)
        return row
    if row.get("status") == "done":
        log(f"  [stored] {label}")
        return row
    checkpoint = ctx.run_dir / "checkpoints" / key
    if row.get("status") != "trained" or not (checkpoint / "config.json").is_file():
        log(f"  [train]  {label}: {len(examples)} examples")
        row = _train_and_record(ctx, key, teacher, protocol, seed, examples, checkpoint)
    log(f"  [eval]   {label}")
    return _evaluate_and_record(ctx, row, checkpoint)


def run_study(config: StudyConfig, store: Store, run_dir: Path) -> None:
    store.study.save_study(config.name, asdict(config), versions())
    log(budget_line(config))
    for index, task_config in enumerate(config.tasks):
        st = prepare_task(task_config, index, config.data_dir)
        log(f"task {st.name}: {len(st.pool)} training questions, {len(st.test.items)} test items (disjoint)")
        teachers = gather_all(config, st, store, log)
        for spec in config.students:
            student = Student(spec, config)
            pre = evaluate(spec, st.test, store, prompt=student.prompt, decoding=student.decoding,
                           dtype=student.dtype, batch_size=config.evaluation.batch_size,
                           progress=sys.stderr.isatty())
            log(f"student {spec}: pre-distillation accuracy {100 * pre.accuracy:.1f}% on {pre.n} test items")
            ctx = CellContext(config, st, student, store, run_dir, pre.eval_key)
            # Seed-major: a whole pass over teachers x protocols comes before extra seeds, so an interrupted
            # study already compares every teacher.
            for seed in config.seeds:
                for protocol in config.protocols:
                    for teacher in teachers:
                        run_cell(ctx, teacher, protocol, seed, training_examples(protocol, teacher, teachers))
