"""`capgap run`: plan a study's cells (tasks x students x teachers x protocols x seeds), then run what is missing.

    capgap run examples/svamp-six-teachers-cpu.yaml

Reading top to bottom: every task's data and teachers are prepared, every cell is planned with complete keys
(`study.cells`) and the plan recorded, then per task x student the baseline is evaluated and each cell is
trained (or its stored checkpoint reused) and evaluated exactly as the baseline was. A finished cell is never
redone, and an interrupted evaluation continues from its stored rows.

Runs sharing a store split the work: a run claims a cell (a lease in the store, `store.leases`) before it
trains it, leaves cells that another live run holds to that run, and waits for them at the very end; a killed
run's claims are taken over. A checkpoint that is damaged (its files do not match the hashes recorded when it
was written, or it does not load) is trained again, after saying so.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from capgap.config import StudyConfig, describe_budget
from capgap.evaluation import evaluate
from capgap.evaluation.prompts import render
from capgap.evaluation.runner import versions
from capgap.models import load_model
from capgap.models.loading import ModelLoadError
from capgap.models.sources import ModelSource
from capgap.redact import redact
from capgap.store import Store
from capgap.study.cells import CellSpec, Student, plan_cells
from capgap.study.data import StudyTask, prepare_task
from capgap.study.teachers import gather_all
from capgap.training import checkpoint_problem, clean_staging, read_metadata, tokenize_examples, train

POLL_SECONDS = 5.0  # how often a run looks again at cells another run holds


def log(message: str) -> None:
    print(redact(message), file=sys.stderr, flush=True)


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
    config_version: int  # the version of the study's config these cells run under


def _cell_row(ctx: CellContext, cell: CellSpec) -> dict:
    """The columns every cell row has, whatever its status."""
    return {"cell_key": cell.key, "study": ctx.config.name, "task": cell.task, "student": cell.student,
            "teacher": cell.teacher, "protocol": cell.protocol, "seed": cell.seed, "pre_eval_key": ctx.pre_key,
            "training_json": json.dumps(asdict(ctx.config.training)), "train_key": cell.train_key,
            "test_items_json": json.dumps([it.id for it in ctx.st.test.items]),
            "evaluation_json": json.dumps(cell.evaluation, sort_keys=True, default=str),
            "precision_json": json.dumps(ctx.student.precision.record()), "student_params": ctx.student.params,
            "config_version": ctx.config_version}


def _training_facts(meta: dict, checkpoint: Path) -> dict:
    """Cell columns from a checkpoint's metadata JSON (the record written beside its weights)."""
    return {"n_train": meta["n_examples"], "n_available": meta["n_available"],
            "train_item_ids_json": json.dumps(meta["train_item_ids"]),
            "n_too_long": meta["n_too_long"], "steps": meta["steps"], "warmup_steps": meta["warmup_steps"],
            "effective_batch": meta["effective_batch"], "tokens": meta["tokens"], "train_seconds": meta["seconds"],
            "loss_curve_json": json.dumps(meta["loss_curve"]), "checkpoint": str(checkpoint)}


def _stored_checkpoint(ctx: CellContext, cell: CellSpec, failed: Path | None = None) -> dict | None:
    """Training facts of a whole checkpoint with this cell's training key, if one exists (never `failed`, one
    that did not load). A damaged one is named, and removed when it is this run's own."""
    own = ctx.run_dir / "checkpoints" / cell.train_key
    candidates = [own]
    earlier = ctx.store.study.trained_cell(cell.train_key)
    if earlier and earlier["checkpoint"] and Path(earlier["checkpoint"]) != own:
        candidates.append(Path(earlier["checkpoint"]))
    for checkpoint in candidates:
        if not checkpoint.exists() or checkpoint == failed:
            continue
        problem = checkpoint_problem(checkpoint)
        meta = read_metadata(checkpoint)
        if problem is None and meta and meta.get("train_key") == cell.train_key:
            return _training_facts(meta, checkpoint)
        if problem is not None:
            _discard(ctx, cell, checkpoint, problem)
    return None


def _discard(ctx: CellContext, cell: CellSpec, checkpoint: Path, problem: str) -> None:
    """Say that a checkpoint cannot be used; remove it when it lies in this run's folder."""
    log(f"  [damaged] {cell.label}: checkpoint {checkpoint} cannot be used ({problem}); training it again")
    if checkpoint.parent == ctx.run_dir / "checkpoints":
        shutil.rmtree(checkpoint, ignore_errors=True)


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


def _checkpoint(ctx: CellContext, cell: CellSpec, failed: tuple[Path, str] | None = None) -> dict | None:
    """The cell's checkpoint facts: reused, or trained (after discarding `failed`, a checkpoint that did not
    load, with the reason). Cells of other evaluation settings can share a training key, so the key is
    claimed too: a run that finds another one training it waits and reuses the result."""
    if not cell.examples:
        return None
    with ctx.store.leases.holding(f"train:{cell.train_key}", lambda who: log(
            f"  [wait]   {cell.label}: another run ({who}) is training the same checkpoint")):
        if failed is not None:
            _discard(ctx, cell, *failed)
        facts = _stored_checkpoint(ctx, cell, failed[0] if failed else None)
        if facts:
            log(f"  [reuse]  {cell.label}: stored checkpoint, evaluated under this run's settings")
            return facts
        log(f"  [train]  {cell.label}: {len(cell.examples)} examples")
        return _train(ctx, cell)


def _train_and_evaluate(ctx: CellContext, cell: CellSpec) -> dict:
    """Train (or reuse) the cell's checkpoint and evaluate it; a checkpoint that fails to load is trained once
    more. Called only while this run holds the cell's claim."""
    failed = None
    for attempt in (1, 2):
        facts = _checkpoint(ctx, cell, failed)
        if not facts:  # recorded too: "0 training examples" is a finding about this teacher and protocol
            log(f"  [skip]   {cell.label}: no usable training examples under this protocol")
            row = {**_cell_row(ctx, cell), "status": "skipped", "n_train": 0,
                   "n_too_long": len(cell.examples) if cell.examples else 0}
            ctx.store.study.save_cell(row)
            return row
        row = {**_cell_row(ctx, cell), "status": "trained", **facts}
        ctx.store.study.save_cell(row)
        log(f"  [eval]   {cell.label}")
        try:
            return _evaluate(ctx, row, Path(facts["checkpoint"]))
        except ModelLoadError as e:
            if attempt == 2:
                raise
            failed = (Path(facts["checkpoint"]), str(e))
    raise AssertionError("unreachable: the second attempt returns or raises")


def run_cell(ctx: CellContext, cell: CellSpec, held: set[str] | None = None) -> dict | None:
    """One cell: skipped if stored; else claimed, its checkpoint reused or trained, and evaluated. None when
    another live run holds the cell (named once, the first time, through `held`)."""
    row = ctx.store.study.cell(cell.key) or {}
    if row.get("status") == "done":
        log(f"  [stored] {cell.label}")
        return row
    holder = ctx.store.leases.claim(cell.key)
    if holder is not None:
        if held is not None and cell.key not in held:
            log(f"  [held]   {cell.label}: another run ({holder}) is on it")
            held.add(cell.key)
        return None
    try:
        row = ctx.store.study.cell(cell.key) or {}  # it may have been finished while this run waited for it
        if row.get("status") == "done":
            log(f"  [stored] {cell.label}")
            return row
        return _train_and_evaluate(ctx, cell)
    finally:
        ctx.store.leases.release(cell.key)


def wait_for_held(pending: list[tuple[CellContext, CellSpec]], held: set[str]) -> None:
    """Wait until the cells other runs held are finished (by their owner, or by this run once the owner's
    claim expired), saying every minute how many are left."""
    if pending:
        log(f"waiting for {len(pending)} cell(s) that another run is working on")
    said = time.monotonic()
    while pending:
        time.sleep(POLL_SECONDS)
        pending = [(ctx, cell) for ctx, cell in pending if run_cell(ctx, cell, held) is None]
        if pending and time.monotonic() - said > 60:
            log(f"still waiting for {len(pending)} cell(s) that another run is working on")
            said = time.monotonic()


def run_study(config: StudyConfig, store: Store, run_dir: Path) -> None:
    log(budget_line(config))
    students = [Student(spec, config) for spec in config.students]  # a bad model fails before any store write
    p = students[0].precision
    log(f"precision: {p.device}, {p.dtype} generation, {p.train} training ({p.reason})")
    for leftover in clean_staging(run_dir / "checkpoints"):
        log(f"removed {leftover}: an unfinished checkpoint of a run that was killed")
    tasks = []
    for index, task_config in enumerate(config.tasks):
        st = prepare_task(task_config, index, config.data_dir)
        dropped = st.duplicates_dropped
        log(f"task {st.name}: {len(st.pool)} training questions, {len(st.test.items)} test items (disjoint)"
            + (f"; {dropped} repeated record(s) dropped (duplicates: keep-first)" if dropped else ""))
        tasks.append(st)
    prepared = [(st, gather_all(config, st, store, log, p)) for st in tasks]
    # The config is recorded (a new version when it changed) only once it validated and its data loaded.
    version = store.study.save_study(config.name, asdict(config), versions())
    plans = [(st, student, plan_cells(config, st, student, teachers))
             for st, teachers in prepared for student in students]
    store.study.save_plan(config.name, [cell.key for _, _, cells in plans for cell in cells])
    pending: list[tuple[CellContext, CellSpec]] = []
    held: set[str] = set()
    for st, student, cells in plans:
        with store.leases.holding(f"baseline:{config.name}:{st.name}:{student.spec}",
                                  lambda who: log(f"  waiting for the baseline another run ({who}) evaluates")):
            pre = evaluate(student.spec, st.test, store, prompt=student.prompt, decoding=student.decoding,
                           precision=student.precision, batch_size=config.evaluation.batch_size,
                           progress=sys.stderr.isatty())
        log(f"student {student.spec}: pre-distillation accuracy {100 * pre.accuracy:.1f}% on {pre.n} test items")
        ctx = CellContext(config, st, student, store, run_dir, pre.eval_key, version)
        pending += [(ctx, cell) for cell in cells if run_cell(ctx, cell, held) is None]
    wait_for_held(pending, held)  # cells another run holds come last, so this run never idles before them
