"""`capgap run`: plan a study's cells (tasks x students x teachers x protocols x seeds), then run what is missing.

    capgap run examples/svamp-six-teachers-cpu.yaml

Reading top to bottom: every task's data and teachers are prepared, every cell is planned with complete keys
(`study.cells`) and the plan recorded, then per task x student the baseline is evaluated and each cell is
trained (or its stored checkpoint reused) and evaluated exactly as the baseline was. A finished cell is never
redone, and an interrupted evaluation continues from its stored rows.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from capgap.config import StudyConfig, describe_budget
from capgap.evaluation import evaluate
from capgap.evaluation.prompts import render
from capgap.evaluation.runner import versions
from capgap.models import load_model
from capgap.models.sources import ModelSource
from capgap.store import Store
from capgap.study.cells import CellSpec, Student, plan_cells
from capgap.study.data import StudyTask, prepare_task
from capgap.study.teachers import gather_all
from capgap.training import read_metadata, tokenize_examples, train


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def budget_line(config: StudyConfig) -> str:
    t = config.training
    return "budget: " + describe_budget(t.steps, t.epochs, t.batch_size * t.grad_accum)


@dataclass
class CellContext:
    """What every cell of one task x student shares."""

    config: StudyConfig
    st: StudyTask
    student: Student
    store: Store
    run_dir: Path
    pre_key: str  # the student's pre-distillation evaluation, in this run's precision


def _cell_row(ctx: CellContext, cell: CellSpec) -> dict:
    """The columns every cell row has, whatever its status."""
    return {"cell_key": cell.key, "study": ctx.config.name, "task": cell.task, "student": cell.student,
            "teacher": cell.teacher, "protocol": cell.protocol, "seed": cell.seed, "pre_eval_key": ctx.pre_key,
            "training_json": json.dumps(asdict(ctx.config.training)), "train_key": cell.train_key,
            "test_items_json": json.dumps([it.id for it in ctx.st.test.items]),
            "evaluation_json": json.dumps(cell.evaluation, sort_keys=True, default=str),
            "precision_json": json.dumps(ctx.student.precision.record()), "student_params": ctx.student.params}


def _training_facts(meta: dict, checkpoint: Path) -> dict:
    """Cell columns from a checkpoint's metadata JSON (the record written beside its weights)."""
    return {"n_train": meta["n_examples"], "n_available": meta["n_available"],
            "train_item_ids_json": json.dumps(meta["train_item_ids"]),
            "n_too_long": meta["n_too_long"], "steps": meta["steps"], "warmup_steps": meta["warmup_steps"],
            "effective_batch": meta["effective_batch"], "tokens": meta["tokens"], "train_seconds": meta["seconds"],
            "loss_curve_json": json.dumps(meta["loss_curve"]), "checkpoint": str(checkpoint)}


def _stored_checkpoint(ctx: CellContext, cell: CellSpec) -> dict | None:
    """Training facts of a complete checkpoint with this cell's training key, if one exists."""
    candidates = [ctx.run_dir / "checkpoints" / cell.train_key]
    earlier = ctx.store.study.trained_cell(cell.train_key)
    if earlier and earlier["checkpoint"]:
        candidates.append(Path(earlier["checkpoint"]))
    for checkpoint in candidates:
        meta = read_metadata(checkpoint)
        if meta and meta.get("train_key") == cell.train_key and (checkpoint / "config.json").is_file():
            return _training_facts(meta, checkpoint)
    return None


def _train(ctx: CellContext, cell: CellSpec) -> dict | None:
    """Train the cell's checkpoint; None when every example is longer than max_length (nothing to train)."""
    student, config = ctx.student, ctx.config
    by_id = {it.id: it for it in ctx.st.pool}
    prompts = [render(ctx.st.task, by_id[e.item_id], student.tokenizer, student.prompt) for e in cell.examples]
    data = tokenize_examples(student.tokenizer, prompts, [e.rationale for e in cell.examples], chat=student.chat,
                             max_length=config.training.max_length)
    if data.too_long:
        log(f"           {data.too_long} of {len(cell.examples)} examples exceed max_length "
            f"{config.training.max_length} tokens and are left out")
    if not data.rows:
        return None
    checkpoint = ctx.run_dir / "checkpoints" / cell.train_key
    item_ids = [cell.examples[i].item_id for i in data.kept]
    train(student.base_dir, student.tokenizer, data.rows, config.training, cell.seed, checkpoint, student.precision,
          metadata={"train_key": cell.train_key, "train_item_ids": item_ids, "n_too_long": data.too_long})
    return _training_facts(read_metadata(checkpoint), checkpoint)


def _evaluate(ctx: CellContext, row: dict, checkpoint: Path) -> dict:
    """The trained student, measured exactly as its baseline was (same items, prompt, decoding, precision)."""
    student = ctx.student
    name = f"{student.spec}<-{row['teacher']}/{row['protocol']}/s{row['seed']}"
    source = ModelSource(name, "dir", path=checkpoint)
    post = evaluate(load_model(source, precision=student.precision), ctx.st.test, ctx.store, prompt=student.prompt,
                    decoding=student.decoding, batch_size=ctx.config.evaluation.batch_size,
                    progress=sys.stderr.isatty())
    row.update(status="done", post_eval_key=post.eval_key, checkpoint_fingerprint=source.fingerprint())
    ctx.store.study.save_cell(row)
    return row


def run_cell(ctx: CellContext, cell: CellSpec) -> dict:
    """One cell: skipped if stored; its checkpoint reused when one with its training key exists, else
    trained; then evaluated."""
    row = ctx.store.study.cell(cell.key) or {}
    if row.get("status") == "done":
        log(f"  [stored] {cell.label}")
        return row
    facts = _stored_checkpoint(ctx, cell) if cell.examples else None
    if facts:
        log(f"  [reuse]  {cell.label}: stored checkpoint, evaluated under this run's settings")
    elif cell.examples:
        log(f"  [train]  {cell.label}: {len(cell.examples)} examples")
        facts = _train(ctx, cell)
    if not facts:  # recorded too: "0 training examples" is a finding about this teacher and protocol
        log(f"  [skip]   {cell.label}: no usable training examples under this protocol")
        row = {**_cell_row(ctx, cell), "status": "skipped", "n_train": 0,
               "n_too_long": len(cell.examples) if cell.examples else 0}
        ctx.store.study.save_cell(row)
        return row
    row = {**_cell_row(ctx, cell), "status": "trained", **facts}
    ctx.store.study.save_cell(row)
    log(f"  [eval]   {cell.label}")
    return _evaluate(ctx, row, Path(facts["checkpoint"]))


def run_study(config: StudyConfig, store: Store, run_dir: Path) -> None:
    log(budget_line(config))
    students = [Student(spec, config) for spec in config.students]  # a bad model fails before any store write
    p = students[0].precision
    log(f"precision: {p.device}, {p.dtype} generation, {p.train} training ({p.reason})")
    prepared = []
    for index, task_config in enumerate(config.tasks):
        st = prepare_task(task_config, index, config.data_dir)
        log(f"task {st.name}: {len(st.pool)} training questions, {len(st.test.items)} test items (disjoint)")
        prepared.append((st, gather_all(config, st, store, log, p)))
    plans = [(st, student, plan_cells(config, st, student, teachers))
             for st, teachers in prepared for student in students]
    # The config and its plan are recorded only once data, models and teachers are known to be sound.
    store.study.save_study(config.name, asdict(config), versions())
    store.study.save_plan(config.name, [cell.key for _, _, cells in plans for cell in cells])
    for st, student, cells in plans:
        pre = evaluate(student.spec, st.test, store, prompt=student.prompt, decoding=student.decoding,
                       precision=student.precision, batch_size=config.evaluation.batch_size,
                       progress=sys.stderr.isatty())
        log(f"student {student.spec}: pre-distillation accuracy {100 * pre.accuracy:.1f}% on {pre.n} test items")
        ctx = CellContext(config, st, student, store, run_dir, pre.eval_key)
        for cell in cells:
            run_cell(ctx, cell)
