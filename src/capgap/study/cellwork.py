"""One cell's work, from the driver's side: its job (the stored checkpoint reused, or training data tokenized
for a new one), and its rows in the store (trained, done, or skipped when no example is usable). A checkpoint
that is damaged (its files do not match the hashes recorded when it was written) is named and trained again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from capgap.config import StudyConfig
from capgap.evaluation.prompts import render
from capgap.logs import log
from capgap.models.sources import ModelSource
from capgap.store import CellRow, Store
from capgap.study.cells import CellSpec, Student
from capgap.study.data import StudyTask
from capgap.study.jobs import CellJob, CellOutcome, TrainJob, post_key
from capgap.training import checkpoint_problem, read_metadata, tokenize_examples


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


def _cell_row(ctx: CellContext, cell: CellSpec) -> CellRow:
    """The columns every cell row has, whatever its status."""
    return CellRow(cell.key, ctx.config.name, cell.task, cell.student, cell.teacher, cell.protocol, cell.seed,
                   pre_eval_key=ctx.pre_key, training_json=json.dumps(asdict(cell.training)),
                   train_key=cell.train_key, test_items_json=json.dumps([it.id for it in ctx.st.test.items]),
                   evaluation_json=json.dumps(cell.evaluation, sort_keys=True, default=str),
                   precision_json=json.dumps(ctx.student.precision.record()), student_params=ctx.student.params,
                   config_version=ctx.config_version)


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


def _job(ctx: CellContext, cell: CellSpec, reuse: dict | None) -> CellJob | None:
    """The cell's job: reuse the stored checkpoint (`reuse`: its facts), or train one (None when every example
    is longer than max_length: nothing to train)."""
    student, config = ctx.student, ctx.config
    checkpoint = Path(reuse["checkpoint"]) if reuse else ctx.run_dir / "checkpoints" / cell.train_key
    name = f"{student.spec}<-{cell.teacher}/{cell.protocol}/s{cell.seed}"
    common = {"label": cell.label, "model_name": name, "checkpoint": checkpoint, "test": ctx.st.test,
              "prompt": student.prompt, "decoding": student.decoding, "precision": student.precision,
              "batch_size": config.evaluation.batch_size, "student": student.spec, "backend": student.backend}
    if reuse:  # what the store already holds of its evaluation is not generated again
        job = CellJob(train=None, **common)
        key, _ = post_key(job, ModelSource(name, "dir", path=checkpoint).fingerprint())
        return CellJob(train=None, stored=frozenset(ctx.store.items(key)), **common)
    by_id = {it.id: it for it in ctx.st.pool}
    prompts = [render(ctx.st.task, by_id[e.item_id], student.tokenizer, student.prompt) for e in cell.examples]
    data = tokenize_examples(student.tokenizer, prompts, [e.rationale for e in cell.examples], chat=student.chat,
                             max_length=cell.training.max_length)
    if data.too_long:
        log(f"           {data.too_long} of {len(cell.examples)} examples exceed max_length "
            f"{cell.training.max_length} tokens and are left out")
    if not data.rows:
        return None
    item_ids = [cell.examples[i].item_id for i in data.kept]
    metadata = {"train_key": cell.train_key, "train_item_ids": item_ids, "n_too_long": data.too_long}
    train = TrainJob(student.spec, student.fingerprint, data.rows, cell.training, cell.seed, metadata)
    return CellJob(train=train, **common)


def prepare(ctx: CellContext, cell: CellSpec, failed: tuple[Path, str] | None = None) -> CellJob | None:
    """The cell's job, its checkpoint reused when a whole one is stored (after discarding `failed`, one that
    did not load, with the reason). None: nothing to train (recorded as skipped)."""
    if failed is not None:
        _discard(ctx, cell, *failed)
    facts = _stored_checkpoint(ctx, cell, failed[0] if failed else None) if cell.examples else None
    if facts:
        log(f"  [reuse]  {cell.label}: stored checkpoint, evaluated under this run's settings")
        return _job(ctx, cell, facts)
    job = _job(ctx, cell, None) if cell.examples else None
    if job is None:  # recorded too: "0 training examples" is a finding about this teacher and protocol
        log(f"  [skip]   {cell.label}: no usable training examples under this protocol")
        ctx.store.study.save_cell(replace(_cell_row(ctx, cell), status="skipped", n_train=0,
                                          n_too_long=len(cell.examples) if cell.examples else 0))
    else:
        log(f"  [train]  {cell.label}: {len(cell.examples)} examples")
    return job


def record_trained(ctx: CellContext, cell: CellSpec, meta: dict, checkpoint: Path) -> CellRow:
    row = replace(_cell_row(ctx, cell), status="trained", **_training_facts(meta, checkpoint))
    ctx.store.study.save_cell(row)
    log(f"  [eval]   {cell.label}")
    return row


def record(ctx: CellContext, cell: CellSpec, job: CellJob, outcome: CellOutcome, streamed: bool) -> CellRow:
    """The driver's part: the cell's training facts and post-evaluation rows (unless an in-process job
    recorded them as it went), then the cell as done."""
    row = (CellRow(**ctx.store.study.cell(cell.key)) if streamed
           else record_trained(ctx, cell, outcome.facts, job.checkpoint))
    if not streamed:
        ctx.store.add_items(outcome.eval_key, outcome.rows, outcome.record)
    row = replace(row, status="done", post_eval_key=outcome.eval_key, checkpoint_fingerprint=outcome.fingerprint)
    ctx.store.study.save_cell(row)
    return row
