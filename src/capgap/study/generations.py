"""Stage one of a study: the generations its cells depend on, planned together and run side by side.

    run_generations(plan_generations(config, tasks, students), store, executor, log)

A cell needs its teachers' rationales (its training data) and its student's baseline (the pre-distillation
rows it is paired with). Both are evaluations: a model teacher sampling rationales on a task's pool, a
student answering a task's test split. They do not depend on one another, so they are planned together
(what the store lacks: `evaluation.runner.plan_evaluation`) and run together: with the local executor one
after another, recorded as their rows come; on Ray side by side, each recorded when it returns. A server's
requests (backend openai) are sent from this process while the Ray jobs run: the server does the work. Each
evaluation is claimed in the store by its key, so runs sharing a store make it once; a run that finds one
claimed waits for it at the end of this stage. Afterwards the study reads all of it from the store.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from capgap.config import StudyConfig
from capgap.evaluation import PromptConfig
from capgap.evaluation.runner import EvalJob, Recorder, plan_evaluation, run_evaluation
from capgap.models.backends import ModelRef
from capgap.models.generation import Decoding
from capgap.models.precision import Precision
from capgap.store import Store
from capgap.study.cells import Student
from capgap.study.data import StudyTask
from capgap.tasks.base import Task
from capgap.teachers.model import teacher_ref, teacher_samples

POLL_SECONDS = 5.0  # how often a run looks again at generations another run is making


@dataclass(frozen=True)
class Needed:
    """One evaluation that cells depend on, as `plan_evaluation` takes it."""

    label: str
    model: ModelRef
    task: Task
    prompt: PromptConfig
    decoding: Decoding
    precision: Precision  # the run's one decision (a server's model ignores it: the server decides)
    batch_size: int

    def plan(self, store: Store) -> EvalJob:
        job, _ = plan_evaluation(self.model, self.task, store, prompt=self.prompt, decoding=self.decoding,
                                 precision=self.precision, batch_size=self.batch_size)
        return job


def plan_generations(config: StudyConfig, tasks: list[StudyTask], students: list[Student],
                     baselines: bool = True, engine: str | None = None) -> list[Needed]:
    """Every model teacher's samples on every pool (an `auto` teacher on `engine`, the run's decision), then
    (unless not `baselines`) every student's baseline on every test split, on the student's engine."""
    batch, precision = config.evaluation.batch_size, students[0].precision
    needed = []
    for st in tasks:
        for t in config.teachers:
            if t.kind != "model":
                continue
            for k, (prompt, decoding) in enumerate(teacher_samples(t)):
                needed.append(Needed(f"teacher {t.name}, sample {k}, on the {st.name} pool", teacher_ref(t, engine),
                                     st.pool_task, prompt, decoding, precision, batch))
        needed += [Needed(f"baseline of {s.spec} on {st.name}", ModelRef(s.spec, s.backend), st.test, s.prompt,
                          s.decoding, s.precision, batch) for s in students if baselines]
    return needed


def _claim(needed: list[Needed], store: Store, log: Callable[[str], None],
           first: bool = True) -> tuple[list[EvalJob], list[Needed]]:
    """(jobs of what the store lacks, claimed by this run; what another live run is generating, named the
    `first` time)."""
    jobs, held, keys = [], [], set()
    for n in needed:
        job = n.plan(store)
        if not job.missing or job.key in keys:  # done, or the same evaluation under another name
            continue
        holder = store.leases.claim(f"eval:{job.key}")
        if holder is not None:
            if first:
                log(f"  [held]   {n.label}: another run ({holder}) is generating it")
            held.append(n)
            continue
        keys.add(job.key)
        log(f"  [generate] {n.label}: {len(job.missing)} item(s) with {job.model.spec} ({job.model.backend})")
        jobs.append(job)
    return jobs, held


def _run(jobs: list[EvalJob], store: Store, executor) -> None:
    """Run the claimed jobs: Ray's submitted first, then this process's, then Ray's recorded as they return."""
    here, remote = [], []
    for job in jobs:
        (here if executor.streams or job.model.backend == "openai" else remote).append(job)
    submitted = [executor.submit(run_evaluation, job) for job in remote]
    for job in sorted(here, key=lambda j: (j.model.backend, j.model.spec)):  # each model's engine starts once
        run_evaluation(job, None, Recorder(store, job).add, progress=sys.stderr.isatty())
        store.leases.release(f"eval:{job.key}")
    for job, rows, error in executor.results(submitted):
        if error is not None:
            raise error
        Recorder(store, job).add(rows)
        store.leases.release(f"eval:{job.key}")


def run_generations(needed: list[Needed], store: Store, executor, log: Callable[[str], None]) -> None:
    """Generate what the store lacks of `needed`; wait for what other runs are generating (taking over what
    a run that died left)."""
    jobs, held = _claim(needed, store, log)
    _run(jobs, store, executor)
    if held:
        log(f"waiting for {len(held)} generation(s) that another run is making")
    while held:
        time.sleep(POLL_SECONDS)
        jobs, held = _claim(held, store, log, first=False)  # what a run that died left is taken over
        _run(jobs, store, executor)
