"""Which cells this run does, and when: a cell is claimed in the store (with its checkpoint's training key)
before its job is submitted, released once it is recorded; cells another live run holds are left to it and
waited for at the very end. Local jobs run one at a time, each as soon as it is claimed; Ray jobs are all
submitted and placed by Ray.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from capgap.logs import log
from capgap.models.loading import ModelLoadError
from capgap.study.cells import CellSpec
from capgap.study.cellwork import CellContext, prepare, record, record_trained
from capgap.study.executors import Executor, LocalExecutor
from capgap.study.jobs import CellJob, run_cell_job

POLL_SECONDS = 5.0  # how often a run looks again at cells another run holds


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
    job = prepare(ctx, cell)
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
    return {"on_trained": lambda meta: record_trained(ctx, cell, meta, claimed.job.checkpoint),
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
                job = prepare(ctx, cell, failed=(job.checkpoint, str(error)))
                if job is None:
                    continue
                claimed = Claimed(ctx, cell, job)
                outcome = executor.call(run_cell_job, job, job.gpus, **_callbacks(claimed))  # 2nd failure raises
            elif error is not None:
                raise error
            record(ctx, cell, job, outcome, executor.streams)
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
