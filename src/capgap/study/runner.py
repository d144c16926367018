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

from collections.abc import Callable
from pathlib import Path

from capgap.config import StudyConfig, describe_budget
from capgap.config.schema import config_record, own_budgets
from capgap.evaluation import evaluate
from capgap.evaluation.runner import versions
from capgap.logs import log
from capgap.models.backends import ModelRef
from capgap.models.engines import engine_line
from capgap.models.vllm_engine import close_engines
from capgap.store import Store
from capgap.study.cells import CellSpec, Student, plan_cells
from capgap.study.cellwork import CellContext
from capgap.study.data import StudyTask, prepare_task
from capgap.study.executors import Executor, LocalExecutor
from capgap.study.generations import plan_generations, run_generations
from capgap.study.scheduling import run_cells, wait_for_held
from capgap.study.screening import check_screening_here, screen_tasks
from capgap.study.teachers import gather_all, read_files
from capgap.training import clean_staging


def budget_line(config: StudyConfig) -> str:
    t = config.training
    return "budget: " + describe_budget(t.steps, t.epochs, t.effective_batch, own_budgets(config_record(config)))


def _baseline(config: StudyConfig, st: StudyTask, student: Student, store: Store, version: int,
              run_dir: Path) -> CellContext:
    """The student's pre-distillation evaluation (generated in stage one: read from the store here)."""
    pre = evaluate(ModelRef(student.spec, student.backend), st.test, store, prompt=student.prompt,
                   decoding=student.decoding, precision=student.precision, batch_size=config.evaluation.batch_size)
    log(f"student {student.spec}: pre-distillation accuracy {100 * pre.accuracy:.1f}% on {pre.n} test items")
    return CellContext(config, st, student, store, run_dir, pre.eval_key, version)


def run_study(config: StudyConfig, store: Store, run_dir: Path, executor: Executor | None = None,
              keep: Callable[[CellSpec], bool] | None = None) -> None:
    """Plan, run and record the study, in the order its dependencies give: the generations cells need
    (model teachers' rationales and students' baselines, `study.generations`, side by side), then the cells,
    planned with their complete keys from the rationales, trained and evaluated through `executor`. `keep`:
    the cells of the plan to run and record (a rebase runs some teachers on a new checkpoint; default all)."""
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
    if config.screening is not None:  # the paper's task selection: tasks whose teachers do not differ go
        check_screening_here(config, executor)
        kept = {r["task"] for r in screen_tasks(config, tasks, store, precision, engine, log) if r["kept"]}
        tasks = [st for st in tasks if st.name in kept]
    files = [read_files(config, st) for st in tasks]  # a bad rationale file stops the run before any write
    run_generations(plan_generations(config, tasks, students, engine=engine), store, executor, log)
    close_engines(keep={s.fingerprint for s in students})  # this process's teacher engines are done: memory goes
    prepared = [(st, gather_all(config, st, store, log, precision, read, engine))
                for st, read in zip(tasks, files, strict=True)]
    # The config is recorded (a new version when it changed) only once it validated and its data loaded.
    version = store.study.save_study(config.name, config_record(config), versions())
    plans = [(st, student, [c for c in plan_cells(config, st, student, teachers) if keep is None or keep(c)])
             for student in students for st, teachers in prepared]  # student-major: one engine after another
    store.study.save_plan(config.name, [cell.key for _, _, cells in plans for cell in cells])
    contexts = [(_baseline(config, st, student, store, version, run_dir), cells) for st, student, cells in plans]
    queue = [(ctx, cell) for ctx, cells in contexts for cell in cells]
    held: set[str] = set()
    pending = run_cells(executor, queue, held)  # on Ray: every cell at once, placed by Ray
    wait_for_held(pending, held, executor)  # cells another run holds come last, so this run never idles before them
