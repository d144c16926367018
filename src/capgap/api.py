"""One function per `capgap` command, taking what its flags give and returning data; the command line
(`capgap.cli`) parses flags, calls these and prints. `report` is `capgap.api.report` (the package root's
`capgap.report` is the renderers' package).

    from capgap import api
    result = api.run()                                  # capgap run: the embedded quickstart
    result.study["recommendations"], result.reports     # the study's analysis and the report files
    api.validate("study.yaml").problems                 # capgap validate
    api.plan("study.yaml", detect="5pp").detection      # capgap plan --detect 5pp
    api.report("capgap-results/quickstart", format="md")   # capgap report: the file written
    api.predict("study.yaml")                           # capgap predict: one row per teacher and protocol
    api.screen("study.yaml", min_gap=30)                # capgap screen: per task, teachers' gap, kept or not
    api.select("study.yaml", budget="30%")              # capgap select: the selection's record
    api.rebase("study.yaml", to="/models/prod-v2")      # capgap rebase: the study on a lineage's next checkpoint
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from capgap.errors import CapgapError
from capgap.filepaths import DEFAULT_STORE, folder_name

RUN_RECORD = "capgap-run.json"  # in a run folder: where its store is (relative to the folder) and the study


@dataclass
class RunResult:
    study: dict  # the study's analysis as report.json holds it: cells, verdicts, recommendations
    reports: list[Path]  # report.html, report.md, report.json in the run folder
    run_dir: Path


@dataclass
class PlanResult:
    work: str  # what a run does, what the store holds, what it costs
    detection: str | None = None  # with detect: test items x seeds needed, from a pilot
    lengths: list[str] = field(default_factory=list)  # with lengths: the answer-length probe


@dataclass
class ValidateResult:
    problems: list[str]  # every problem found (nothing else is done when there is one)
    plan: list[str]  # the plan's summary when there is no problem
    lengths: list[str] = field(default_factory=list)


def config_path(config: str | Path | None) -> Path:
    """A study YAML, or the embedded quickstart when none is given."""
    if config:
        return Path(config)
    from importlib.resources import files

    return Path(str(files("capgap") / "recipes" / "quickstart.yaml"))


@contextmanager
def _session(config: str | Path | None, data_dir: str | None, store: Path, run_dir: Path | None,
             executor: str, ray_address: str | None, cpus_per_job: float, gpus_per_job: float | None):
    """(the study's config, its store open, its run folder: default beside the store, its executor), all
    closed afterwards: what `run` and `select` share."""
    from capgap.config import load_config
    from capgap.store import Store
    from capgap.study.executors import Resources, make_executor

    loaded = load_config(config_path(config), data_dir)
    run_dir = Path(run_dir) if run_dir else Path(store).parent / folder_name(loaded.name)
    jobs = make_executor(executor, ray_address, Resources(cpus_per_job, gpus_per_job))
    try:
        with Store(Path(store)) as opened:
            yield loaded, opened, run_dir, jobs
    finally:
        jobs.close()


def run(config: str | Path | None = None, *, store: Path = DEFAULT_STORE, run_dir: Path | None = None,
        data_dir: str | None = None, executor: str = "local", ray_address: str | None = None,
        cpus_per_job: float = 1.0, gpus_per_job: float | None = None) -> RunResult:
    """Run a study (resuming what the store holds) and write its reports into the run folder."""
    from capgap.study.runner import run_study

    with _session(config, data_dir, store, run_dir, executor, ray_address, cpus_per_job, gpus_per_job) as (
            study, opened, run_dir, jobs):
        record_run_folder(run_dir, Path(store), study.name)
        run_study(study, opened, run_dir.resolve() if executor != "local" else run_dir, jobs)
        return RunResult(*_reported(opened, study.name, run_dir), run_dir)


def _reported(store, study: str, run_dir: Path) -> tuple[dict, list[Path]]:
    """The study's analysis (as report.json holds it) and its reports written into the run folder: one reading
    of the store for the printed table and the report."""
    from capgap.analysis import analyse_store, public
    from capgap.report import write_files

    analysis = analyse_store(store, study)
    paths = write_files(analysis, {fmt: run_dir / f"report.{fmt}" for fmt in ("html", "md", "json")})
    return public(analysis["studies"][0]), paths


@dataclass
class RebaseResult(RunResult):
    rebase: object = None  # `selection.rebase.Rebase`: the lineage, both checkpoints, the teachers re-run and why
    config_edit: str | None = None  # what to write in the config so that `capgap run` keeps the new checkpoint


def rebase(config: str | Path, *, to: str, from_: str | None = None, budget: str | None = None,
           store: Path = DEFAULT_STORE, run_dir: Path | None = None, data_dir: str | None = None,
           executor: str = "local", ray_address: str | None = None, cpus_per_job: float = 1.0,
           gpus_per_job: float | None = None) -> RebaseResult:
    """Re-base a finished study on a lineage's new checkpoint `to` (all teachers, or within `budget` the
    leader and the teachers predicted to move), reusing what the store holds; write its reports."""
    from capgap.logs import log
    from capgap.selection.predict import predict_study
    from capgap.selection.rebase import config_edit, rebase_study
    from capgap.selection.select import parse_budget

    share = parse_budget(budget) if budget is not None else None
    with _session(config, data_dir, store, run_dir, executor, ray_address, cpus_per_job, gpus_per_job) as (
            study, opened, run_dir, jobs):
        record_run_folder(run_dir, Path(store), study.name)
        done = rebase_study(study, opened, run_dir.resolve() if executor != "local" else run_dir, jobs, to, from_,
                            share, lambda grown: predict_study(grown, opened, log=log), log)
        return RebaseResult(*_reported(opened, study.name, run_dir), run_dir, done, config_edit(study, done))


def _lengths(config, lengths: int, progress: bool) -> list[str]:
    if not lengths:
        return []
    from capgap.study.lengths import probe_lengths

    return probe_lengths(config, lengths, progress=progress)


def check_lengths(lengths: int) -> None:
    if lengths < 0:
        raise CapgapError(f"--lengths must be a number of test items (0: none), got {lengths}")


def plan(config: str | Path, *, store: Path = DEFAULT_STORE, detect: str | None = None, study: str | None = None,
         data_dir: str | None = None, train_tflops: float | None = None, generate_tflops: float | None = None,
         lengths: int = 0, progress: bool = False) -> PlanResult:
    """What a run of the config does and costs; with `detect`, the design that detects that gain; with
    `lengths`, the answer lengths of the students on that many test items."""
    from capgap.analysis.plan import parse_detect
    from capgap.analysis.plan import plan as detection_plan
    from capgap.config import load_config
    from capgap.study.workplan import GENERATE_TFLOPS, TRAIN_TFLOPS, render

    check_lengths(lengths)
    if detect is not None:
        parse_detect(detect)  # a bad detect fails before the config is read
    rates = (TRAIN_TFLOPS if train_tflops is None else train_tflops,
             GENERATE_TFLOPS if generate_tflops is None else generate_tflops)
    for flag, value in zip(("--train-tflops", "--generate-tflops"), rates, strict=True):
        if not 0 < value < 1e6:
            raise CapgapError(f"{flag} must be a positive rate in TFLOP/s, got {value}")
    loaded = load_config(Path(config), data_dir)
    result = PlanResult(render(loaded, Path(store), rates))
    if detect is not None:
        result.detection = detection_plan(loaded, detect, Path(store), study)
    result.lengths = _lengths(loaded, lengths, progress)
    return result


def validate(config: str | Path, *, data_dir: str | None = None, lengths: int = 0,
             progress: bool = False) -> ValidateResult:
    """Every problem of a study YAML and its data; with none, the plan's summary (and the length probe)."""
    from capgap.config import load_config
    from capgap.study.validate import check_file

    check_lengths(lengths)
    checked = check_file(Path(config), data_dir)
    result = ValidateResult(checked.problems, checked.plan)
    if not checked.problems:
        result.lengths = _lengths(load_config(Path(config), data_dir), lengths, progress)
    return result


def report(source: str | Path = DEFAULT_STORE, *, format: str = "html", output: Path | None = None,
           study: str | None = None) -> Path:
    """Write the report of a store, its folder or a study's run folder; the file written."""
    from capgap.report import write_reports
    from capgap.store import Store

    store_path, recorded, folder = report_source(Path(source))
    output = Path(output) if output else folder / f"report.{format}"
    with Store.for_reading(store_path) as store:  # a report only reads: a read-only store is fine
        write_reports(store, {format: output}, study or recorded)
    return output


def screen(config: str | Path, *, store: Path = DEFAULT_STORE, data_dir: str | None = None,
           min_gap: float | None = None, sample: int | None = None) -> list[dict]:
    """Every task's teachers' accuracies, its largest teacher gap with a CI, and whether the gap keeps it (the
    config's `screening`, else 30 points and 100 sampled pool questions); recorded in the store."""
    from capgap.config import load_config
    from capgap.logs import log
    from capgap.models.engines import engine_name
    from capgap.models.precision import decide
    from capgap.store import Store
    from capgap.study.data import prepare_task
    from capgap.study.screening import screen_tasks

    loaded = load_config(Path(config), data_dir)
    tasks = [prepare_task(t, i, loaded.data_dir) for i, t in enumerate(loaded.tasks)]
    with Store(Path(store)) as opened:
        return screen_tasks(loaded, tasks, opened, decide(loaded.evaluation.dtype), engine_name("auto"), log,
                            sample, min_gap)


def predict(config: str | Path | None = None, *, store: Path = DEFAULT_STORE, data_dir: str | None = None,
            sample: int | None = None, batch_size: int = 8) -> list[dict]:
    """The cheap predictors of every teacher, protocol, task and student (computed once, then read)."""
    from capgap.config import load_config
    from capgap.logs import log
    from capgap.selection.predict import DEFAULT_SAMPLE, predict_study
    from capgap.store import Store

    sample = DEFAULT_SAMPLE if sample is None else sample
    if not 1 <= sample <= 100_000 or not 1 <= batch_size <= 4096:
        raise CapgapError("--sample and --batch-size must be positive (at most 100000 and 4096)")
    loaded = load_config(config_path(config), data_dir)
    with Store(Path(store)) as opened:
        return predict_study(loaded, opened, sample=sample, batch_size=batch_size, log=log)


def select(config: str | Path | None = None, *, budget: str = "30%", prune: str | None = None, keep: int = 4,
           store: Path = DEFAULT_STORE, run_dir: Path | None = None, data_dir: str | None = None,
           executor: str = "local", ray_address: str | None = None, cpus_per_job: float = 1.0,
           gpus_per_job: float | None = None) -> dict:
    """Choose a teacher by successive halving over pilot fine-tunes within `budget` of the grid's compute."""
    from capgap.logs import log
    from capgap.selection.predict import predict_study
    from capgap.selection.select import parse_budget, select_study

    share = parse_budget(budget)
    if keep < 2:
        raise CapgapError(f"--keep must be at least 2 (one teacher leaves nothing to choose), got {keep}")
    with _session(config, data_dir, store, run_dir, executor, ray_address, cpus_per_job, gpus_per_job) as (
            study, opened, run_dir, jobs):
        return select_study(study, opened, run_dir, share, jobs, (prune, keep) if prune else None,
                            lambda: predict_study(study, opened, log=log))


def record_run_folder(run_dir: Path, store: Path, study: str) -> None:
    """Write where the run folder's store is, so `capgap report RUN_DIR` finds it wherever it lives (a path
    relative to the folder: a results folder copied or moved whole keeps the link)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(store.resolve(), run_dir.resolve())
    (run_dir / RUN_RECORD).write_text(json.dumps({"store": relative, "study": study}) + "\n")


def _recorded_source(source: Path) -> tuple[Path, str | None, Path] | None:
    try:
        record = json.loads((source / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    store = (source / record["store"]).resolve()
    if not store.is_file():
        raise CapgapError(f"run folder {source} records its store at {store}, which is not there; pass the store "
                          "file itself to `capgap report`")
    return store, record.get("study"), source


def report_source(source: Path) -> tuple[Path, str | None, Path]:
    """(store file, study or None, default output folder) for a store, its folder, or a study's run folder."""
    if source.is_file():
        return source, None, source.parent
    if source.is_dir() and (recorded := _recorded_source(source)):
        return recorded
    if (source / DEFAULT_STORE.name).is_file():
        return source / DEFAULT_STORE.name, None, source
    if (source.parent / DEFAULT_STORE.name).is_file() and source.is_dir():
        return source.parent / DEFAULT_STORE.name, source.name, source
    raise CapgapError(f"{source} is not a capgap results store, the folder of one, or a study's run folder; pass "
                      f"the store file (default {DEFAULT_STORE}) written by `capgap run`")
