"""Tasks screened by teacher gap (the paper's task selection): every teacher's accuracy on a task, the largest
gap between two of them with its CI, and whether the task is kept.

- Model teachers answer a seeded sample of the pool in context, with their own prompt and greedy decoding: an
  evaluation like any other, stored and keyed (a second screening reads it back; an interrupted one resumes).
- Reference and imported teachers: their rationales' accuracy on the whole pool, by capgap's checker.
- Mixtures are drawn from their parts: screened from them when every part's rationales are read from files.
The gap is best minus worst accuracy among the candidate teachers (reference teachers are listed but not
candidates: the dataset's own rationales are right by construction), with Newcombe's hybrid-score 95% CI.
That CI treats the two accuracies as independent proportions; teachers answer the same questions, and when
their correctness correlates positively, as it does, the paired interval would be narrower: this one errs
wide. A task is kept when the gap's point estimate exceeds the threshold, the paper's rule; the CI says
whether that decision is firm.
"""

from __future__ import annotations

import math
import random

from capgap.config import StudyConfig, TeacherConfig
from capgap.config.schema import READ_KINDS
from capgap.errors import CapgapError
from capgap.evaluation import evaluate
from capgap.evaluation.metrics import wilson_interval
from capgap.models.generation import Decoding
from capgap.models.precision import Precision
from capgap.store import Store
from capgap.study.data import StudyTask
from capgap.study.executors import Executor, LocalExecutor
from capgap.study.teachers import read_files
from capgap.tasks.base import Task
from capgap.teachers.mixture import mixture_rationales
from capgap.teachers.model import teacher_ref


def newcombe_interval(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
    """95% CI of p_a - p_b for independent (correct, n) pairs: Newcombe's hybrid score (method 10)."""
    pa, pb = a[0] / a[1], b[0] / b[1]
    (la, ua), (lb, ub) = wilson_interval(*a), wilson_interval(*b)
    d = pa - pb
    return d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2), d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)


def pool_sample(pool_task: Task, n: int) -> Task:
    """The same n pool questions every time (seed 0), in the pool's order."""
    if n >= len(pool_task.items):
        return pool_task
    chosen = set(random.Random(0).sample(range(len(pool_task.items)), n))
    items = [it for i, it in enumerate(pool_task.items) if i in chosen]
    return Task(pool_task.name, items, pool_task.answer_type, pool_task.exemplars, pool_task.definition)


def _score(name: str, kind: str, correct: int, n: int, how: str) -> dict:
    return {"teacher": name, "kind": kind, "correct": correct, "n": n, "accuracy": correct / n if n else None,
            "ci95": list(wilson_interval(correct, n)), "how": how}


def _model_score(t: TeacherConfig, study: StudyConfig, st: StudyTask, store: Store, precision: Precision,
                 engine: str | None, sample: int) -> dict:
    task = pool_sample(st.pool_task, sample)
    result = evaluate(teacher_ref(t, engine), task, store, prompt=t.prompt, precision=precision,
                      decoding=Decoding(max_new_tokens=t.max_new_tokens), batch_size=study.evaluation.batch_size)
    correct = round(result.accuracy * result.n)
    shots = f", {t.prompt.shots} shots" if t.prompt.style == "few-shot-cot" else ""
    return _score(t.name, t.kind, correct, result.n, f"in context ({t.prompt.style}{shots}), greedy, on {result.n} "
                                                     f"sampled pool questions")


def screen_task(study: StudyConfig, st: StudyTask, store: Store, precision: Precision, engine: str | None,
                sample: int, min_gap: float) -> dict:
    """Every teacher's accuracy on the task, the largest gap and its CI, and whether the task is kept."""
    read = read_files(study, st)
    scores = []
    for t in study.teachers:
        if t.kind == "model":
            scores.append(_model_score(t, study, st, store, precision, engine, sample))
        elif t.kind in READ_KINDS:
            scores.append(_score(t.name, t.kind, read[t.name].n_correct, len(st.pool),
                                 f"its rationales on all {len(st.pool)} pool questions"))
        elif all(p.teacher in read for p in t.parts):
            mixed = mixture_rationales(t.name, [(read[p.teacher], p.share) for p in t.parts], st.pool, t.draw)
            scores.append(_score(t.name, t.kind, mixed.n_correct, len(st.pool),
                                 f"its parts' rationales on all {len(st.pool)} pool questions"))
        else:  # a part is a model teacher: its accuracy lies between its parts', which are screened
            scores.append({**_score(t.name, t.kind, 0, 0, "not screened: a mixture with a model part (its "
                                                          "parts are)"), "accuracy": None, "ci95": None})
    return _decide(st.name, scores, min_gap)


def _decide(task: str, scores: list[dict], min_gap: float) -> dict:
    measured = [s for s in scores if s["n"] and s["kind"] != "reference"]
    out = {"task": task, "scores": scores, "min_gap": min_gap}
    if len(measured) < 2:
        return {**out, "gap": None, "gap_ci95": None, "best": None, "worst": None, "kept": True,
                "reason": "fewer than two candidate teachers measured (reference teachers are not candidates): "
                          "nothing to compare, kept"}
    best = max(measured, key=lambda s: s["accuracy"])
    worst = min(measured, key=lambda s: s["accuracy"])
    gap = best["accuracy"] - worst["accuracy"]
    lo, hi = newcombe_interval((best["correct"], best["n"]), (worst["correct"], worst["n"]))
    kept = 100 * gap > min_gap
    firm = (100 * lo > min_gap) if kept else (100 * hi <= min_gap)
    reason = (f"largest gap {100 * gap:.1f} points ({best['teacher']} {100 * best['accuracy']:.1f}% vs "
              f"{worst['teacher']} {100 * worst['accuracy']:.1f}%; 95% CI [{100 * lo:.1f}, {100 * hi:.1f}]) "
              f"{'>' if kept else '<='} {min_gap:g}: {'kept' if kept else 'dropped'}"
              + ("" if firm else f" (the CI reaches across {min_gap:g}: not a firm decision)"))
    return {**out, "gap": gap, "gap_ci95": [lo, hi], "best": best["teacher"], "worst": worst["teacher"],
            "kept": kept, "reason": reason}


def check_screening_here(study: StudyConfig, executor: Executor) -> None:
    """Screening generates in this process: with jobs on a cluster, model teachers other than servers would
    load here, with the cluster's precision; such a run is refused before it writes anything."""
    local = [t.name for t in study.teachers if t.kind == "model" and t.backend != "openai"]
    if local and not isinstance(executor, LocalExecutor):
        raise CapgapError(f"screening runs the model teachers {', '.join(local)} in this process, not on the "
                          "cluster; run `capgap screen CONFIG` where they fit and remove the tasks it drops, or "
                          "serve them (backend openai), or drop screening from the config")


def screen_tasks(study: StudyConfig, tasks: list[StudyTask], store: Store, precision: Precision,
                 engine: str | None, log, sample: int | None = None, min_gap: float | None = None) -> list[dict]:
    """Screen every task (the config's `screening`, or the values given), record each result in the store
    under the study, and say it; the results, in the tasks' order."""
    rule = study.screening
    sample = sample if sample is not None else (rule.sample if rule else 100)
    min_gap = min_gap if min_gap is not None else (rule.min_teacher_gap if rule else 30.0)
    results = []
    for st in tasks:
        result = screen_task(study, st, store, precision, engine, sample, min_gap)
        store.study.save_screening(study.name, st.name, result)
        log(f"screening {st.name}: {result['reason']}")
        results.append(result)
    return results
