"""`capgap run`: plan a study's cells (tasks x students x teachers x protocols x seeds), then run what is missing.

    capgap run examples/svamp-six-teachers-cpu.yaml [--executor ray]

Reading top to bottom: the run's precision is decided where its jobs run; every task's data is prepared;
the generations cells depend on (model teachers' rationales, students' baselines) are planned and run side
by side (`study.generations`); every cell is planned with complete keys (`study.cells`) and the plan
recorded; then each cell is trained (or its stored checkpoint reused) and evaluated exactly as its baseline
was, as a job (`study.jobs`) that runs in this process or on a Ray worker (`study.executors`). Only this
process writes the store. A finished cell is never redone, and an interrupted evaluation continues from its
stored rows.

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
from capgap.models.backends import ModelRef
from capgap.models.engines import engine_line
from capgap.models.loading import ModelLoadError
from capgap.models.sources import ModelSource
from capgap.models.vllm_engine import close_engines
from capgap.redact import redact
from capgap.store import Store
from capgap.study.cells import CellSpec, Student, plan_cells
from capgap.study.data import StudyTask, prepare_task
from capgap.study.executors import Executor, LocalExecutor
from capgap.study.generations import plan_generations, run_generations
from capgap.study.jobs import CellJob, CellOutcome, TrainJob, post_key, run_cell_job
from capgap.study.teachers import gather_all, read_files
from capgap.training import checkpoint_problem, clean_staging, read_metadata, tokenize_examples

POLL_SECONDS = 5.0  # how often a run looks again at cells another run holds


def log(message: str) -> None:
    print(redact(message), file=sys.stderr, flush=True)


def budget_line(config: StudyConfig) -> str:
    t = config.training
    return "budget: " + describe_budget(t.steps, t.epochs, t.effective_batch)


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
                             max_length=config.training.max_length)
    if data.too_long:
        log(f"           {data.too_long} of {len(cell.examples)} examples exceed max_length "
            f"{config.training.max_length} tokens and are left out")
    if not data.rows:
        return None
    item_ids = [cell.examples[i].item_id for i in data.kept]
    metadata = {"train_key": cell.train_key, "train_item_ids": item_ids, "n_too_long": data.too_long}
    train = TrainJob(student.spec, student.fingerprint, data.rows, config.training, cell.seed, metadata)
    return CellJob(train=train, **common)


def _prepare(ctx: CellContext, cell: CellSpec, failed: tuple[Path, str] | None = None) -> CellJob | None:
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
        ctx.store.study.save_cell({**_cell_row(ctx, cell), "status": "skipped", "n_train": 0,
                                   "n_too_long": len(cell.examples) if cell.examples else 0})
    else:
        log(f"  [train]  {cell.label}: {len(cell.examples)} examples")
    return job


def _record_trained(ctx: CellContext, cell: CellSpec, meta: dict, checkpoint: Path) -> dict:
    row = {**_cell_row(ctx, cell), "status": "trained", **_training_facts(meta, checkpoint)}
    ctx.store.study.save_cell(row)
    log(f"  [eval]   {cell.label}")
    return row


def _record(ctx: CellContext, cell: CellSpec, job: CellJob, outcome: CellOutcome, streamed: bool) -> dict:
    """The driver's part: the cell's training facts and post-evaluation rows (unless an in-process job
    recorded them as it went), then the cell as done."""
    row = ctx.store.study.cell(cell.key) if streamed else _record_trained(ctx, cell, outcome.facts, job.checkpoint)
    if not streamed:
        ctx.store.add_items(outcome.eval_key, outcome.rows, outcome.record)
    row.update(status="done", post_eval_key=outcome.eval_key, checkpoint_fingerprint=outcome.fingerprint)
    ctx.store.study.save_cell(row)
    return row


@dataclass
class Claimed:
    """A cell this run holds (its claim and its checkpoint's), with the job that runs it."""

    ctx: CellContext
    cell: CellSpec
    job: CellJob


def _claim(ctx: CellContext, cell: CellSpec, held: set[str] | None) -> Claimed | dict | None:
    """Claim the cell and its checkpoint: the stored row when it is done, None when another live run holds
    either (named once, the first time, through `held`), else the claimed cell with its job."""
    row = ctx.store.study.cell(cell.key) or {}
    if row.get("status") == "done":
        log(f"  [stored] {cell.label}")
        return row
    for key in (cell.key, f"train:{cell.train_key}"):
        holder = ctx.store.leases.claim(key)
        if holder is not None:
            if key != cell.key:
                ctx.store.leases.release(cell.key)
            if held is not None and cell.key not in held:
                log(f"  [held]   {cell.label}: another run ({holder}) is on it")
                held.add(cell.key)
            return None
    row = ctx.store.study.cell(cell.key) or {}  # it may have been finished while this run waited for it
    if row.get("status") == "done":
        log(f"  [stored] {cell.label}")
        _release(ctx, cell)
        return row
    job = _prepare(ctx, cell)
    if job is None:
        _release(ctx, cell)
        return ctx.store.study.cell(cell.key)
    return Claimed(ctx, cell, job)


def _release(ctx: CellContext, cell: CellSpec) -> None:
    ctx.store.leases.release(f"train:{cell.train_key}")
    ctx.store.leases.release(cell.key)


def _callbacks(claimed: Claimed) -> dict:
    """What an in-process job reports while it runs: its checkpoint once trained, its rows as they come."""
    ctx, cell = claimed.ctx, claimed.cell
    return {"on_trained": lambda meta: _record_trained(ctx, cell, meta, claimed.job.checkpoint),
            "on_rows": lambda key, record, rows: ctx.store.add_items(key, rows, record)}


def run_cells(executor: Executor, queue: list[tuple[CellContext, CellSpec]], held: set[str]) -> list:
    """Run every cell of `queue` this run can claim through `executor`, recording each as it finishes; the
    cells another run holds are returned. Local jobs run one at a time, each as soon as it is claimed (so a run
    sharing the store takes the next one); Ray jobs are all submitted and Ray places them on the cluster."""
    pending, later, claims, submitted, busy = [], [], {}, [], set()
    for ctx, cell in queue:
        if cell.train_key in busy:  # a job of this run trains the same checkpoint: reuse it afterwards
            later.append((ctx, cell))
            continue
        claimed = _claim(ctx, cell, held)
        if claimed is None:
            pending.append((ctx, cell))
        elif isinstance(claimed, Claimed):
            claims[id(claimed.job)] = claimed
            submitted.append(executor.submit(run_cell_job, claimed.job, claimed.job.gpus, **_callbacks(claimed)))
            busy.add(cell.train_key)
            if executor.streams:
                _finish(executor, submitted, claims)
                submitted, busy = [], set()
    _finish(executor, submitted, claims)
    return pending + (run_cells(executor, later, held) if later else [])


def _finish(executor: Executor, submitted: list, claims: dict) -> None:
    """Record each submitted job as it finishes, then release its claims. A checkpoint that did not load is
    discarded and trained once more. A job that fails does not stop the others from being recorded: its
    error is raised once every submitted job has finished."""
    failure: BaseException | None = None
    for job, outcome, error in executor.results(submitted):
        claimed = claims.pop(id(job))
        ctx, cell = claimed.ctx, claimed.cell
        try:
            if isinstance(error, ModelLoadError):
                job = _prepare(ctx, cell, failed=(job.checkpoint, str(error)))
                if job is None:
                    continue
                claimed = Claimed(ctx, cell, job)
                outcome = executor.call(run_cell_job, job, job.gpus, **_callbacks(claimed))  # 2nd failure raises
            elif error is not None:
                raise error
            _record(ctx, cell, job, outcome, executor.streams)
        except Exception as e:  # raised below, once the other jobs are recorded
            failure = failure or e
        finally:
            _release(ctx, cell)
    if failure is not None:
        raise failure


def run_cell(ctx: CellContext, cell: CellSpec, held: set[str] | None = None,
             executor: Executor | None = None) -> dict | None:
    """One cell: the stored row, or claimed, run (through `executor`, default this process) and recorded;
    None when another live run holds it."""
    claimed = _claim(ctx, cell, held)
    if isinstance(claimed, Claimed):
        executor = executor or LocalExecutor()
        job = claimed.job
        _finish(executor, [executor.submit(run_cell_job, job, job.gpus, **_callbacks(claimed))], {id(job): claimed})
        return ctx.store.study.cell(cell.key)
    return claimed


def wait_for_held(pending: list[tuple[CellContext, CellSpec]], held: set[str], executor: Executor) -> None:
    """Wait until the cells other runs held are finished (by their owner, or by this run once the owner's
    claim expired), saying every minute how many are left."""
    if pending:
        log(f"waiting for {len(pending)} cell(s) that another run is working on")
    said = time.monotonic()
    while pending:
        time.sleep(POLL_SECONDS)
        pending = [(ctx, cell) for ctx, cell in pending if run_cell(ctx, cell, held, executor) is None]
        if pending and time.monotonic() - said > 60:
            log(f"still waiting for {len(pending)} cell(s) that another run is working on")
            said = time.monotonic()


def _baseline(config: StudyConfig, st: StudyTask, student: Student, store: Store, version: int,
              run_dir: Path) -> CellContext:
    """The student's pre-distillation evaluation (generated in stage one: read from the store here)."""
    pre = evaluate(ModelRef(student.spec, student.backend), st.test, store, prompt=student.prompt,
                   decoding=student.decoding, precision=student.precision, batch_size=config.evaluation.batch_size)
    log(f"student {student.spec}: pre-distillation accuracy {100 * pre.accuracy:.1f}% on {pre.n} test items")
    return CellContext(config, st, student, store, run_dir, pre.eval_key, version)


def run_study(config: StudyConfig, store: Store, run_dir: Path, executor: Executor | None = None) -> None:
    """Plan, run and record the study, in the order its dependencies give: the generations cells need
    (model teachers' rationales and students' baselines, `study.generations`, side by side), then the cells,
    planned with their complete keys from the rationales, trained and evaluated through `executor`."""
    executor = executor or LocalExecutor()
    log(budget_line(config))
    precision = executor.decide(config.evaluation.dtype)  # where the jobs run: one decision for the whole run
    engine = executor.engine("auto")  # what `auto` runs on where the jobs run: students' and teachers' engine
    backend = engine if config.evaluation.backend == "auto" else config.evaluation.backend
    students = [Student(spec, config, precision, backend) for spec in config.students]  # a bad model fails here
    log(f"precision: {precision.device}, {precision.dtype} generation, {precision.train} training "
        f"({precision.reason})")
    log(f"engine: {engine_line(config.evaluation.backend, backend)}")
    for key in store.leases.sweep():
        log(f"removed the claim on {key}: its run was killed")
    for leftover in clean_staging(run_dir / "checkpoints"):
        log(f"removed {leftover}: an unfinished checkpoint of a run that was killed")
    tasks = []
    for index, task_config in enumerate(config.tasks):
        st = prepare_task(task_config, index, config.data_dir)
        dropped = st.duplicates_dropped
        log(f"task {st.name}: {len(st.pool)} training questions, {len(st.test.items)} test items (disjoint)"
            + (f"; {dropped} repeated record(s) dropped (duplicates: keep-first)" if dropped else ""))
        tasks.append(st)
    files = [read_files(config, st) for st in tasks]  # a bad rationale file stops the run before any write
    run_generations(plan_generations(config, tasks, students, engine=engine), store, executor, log)
    close_engines(keep={s.fingerprint for s in students})  # this process's teacher engines are done: memory goes
    prepared = [(st, gather_all(config, st, store, log, precision, read, engine))
                for st, read in zip(tasks, files, strict=True)]
    # The config is recorded (a new version when it changed) only once it validated and its data loaded.
    version = store.study.save_study(config.name, asdict(config), versions())
    plans = [(st, student, plan_cells(config, st, student, teachers))  # student-major: one engine after another
             for student in students for st, teachers in prepared]
    store.study.save_plan(config.name, [cell.key for _, _, cells in plans for cell in cells])
    contexts = [(_baseline(config, st, student, store, version, run_dir), cells) for st, student, cells in plans]
    queue = [(ctx, cell) for ctx, cells in contexts for cell in cells]
    held: set[str] = set()
    pending = run_cells(executor, queue, held)  # on Ray: every cell at once, placed by Ray
    wait_for_held(pending, held, executor)  # cells another run holds come last, so this run never idles before them
