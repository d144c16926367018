"""What a run of a study does, what the store already holds of it, and what it costs: `capgap plan CONFIG`.

    capgap plan examples/paper-qwen-math.yaml [--store PATH] [--train-tflops 400] [--generate-tflops 100]

Offline and cheap: it reads the config, local data files and the store; it downloads no model or dataset and
contacts no server. A task read from the Hub is sized by its splits' `first`/`limit` (unknown without them),
a model by its declared `params`, its local config, or the size in its name ("Qwen2.5-7B-Instruct": 7B).

The work comes in the run's two stages: the generations cells depend on (model teachers' rationales on each
pool, each student's baseline on each test split), then the cells (one training run and one evaluation
each). What the store holds is read from the study's records: its teachers and its finished cells, which
count only when the store's latest config of the study is this config (the run checks every key itself).

Cost, as upper bounds: tokens (every generation at max_new_tokens, every training step at max_length),
FLOPs by the usual approximation (2 x parameters per generated token, 6 x parameters per trained token;
Kaplan et al. 2020, "Scaling Laws for Neural Language Models", section 2.1; prompt tokens are not counted),
and GPU-hours at stated effective rates per GPU. The default rates assume H100-class GPUs (989 dense bf16
TFLOP/s): 40% of it in training, 10% in batched generation, which is bound by memory more than compute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from capgap.config import StudyConfig, TrainingConfig
from capgap.config.schema import config_record, training_of
from capgap.errors import CapgapError
from capgap.study.data import hub_datasets, prepare_task

# The cost model, here only: 2N FLOPs per generated token (a forward pass) and 6N per trained one (forward and
# backward; LoRA's frozen weights need no weight gradients, so this is an upper bound), N the parameters.
GENERATE_FLOPS_PER_PARAM, TRAIN_FLOPS_PER_PARAM = 2, 6
TRAIN_TFLOPS, GENERATE_TFLOPS = 400.0, 100.0  # effective per-GPU rates of the estimate (see the docstring)
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*([BbMm])(?![A-Za-z])")


@dataclass
class TaskSize:
    name: str
    pool: int | None  # training questions (None: unknown before the run reads the data)
    test: int | None
    note: str  # where the sizes come from


def task_sizes(config: StudyConfig) -> list[TaskSize]:
    """Each task's pool and test sizes: exact from local data, from the split limits for Hub data."""
    sizes = []
    for i, t in enumerate(config.tasks):
        hub = hub_datasets(t, config.data_dir)
        if hub:
            pool = t.pool.first or t.pool.limit
            sizes.append(TaskSize(t.name, pool, t.test.limit, f"Hub dataset(s) {', '.join(hub)}, read at run time: "
                                  "sizes are the splits' first/limit, at most"))
            continue
        try:
            st = prepare_task(t, i, config.data_dir)
        except CapgapError as e:
            sizes.append(TaskSize(t.name, None, None, f"data not readable here ({e})"))
            continue
        sizes.append(TaskSize(t.name, len(st.pool), len(st.test.items), "local data"))
    return sizes


def model_params(spec: str, declared: float | None = None) -> tuple[float | None, str]:
    """(parameters, how they are known) without downloading: declared, a local model's config, the name."""
    if declared:
        return float(declared), "declared"
    if Path(spec).expanduser().is_dir():
        from capgap.models.loading import count_parameters
        from capgap.models.sources import resolve

        try:
            return float(count_parameters(resolve(spec))), "counted from its config"
        except CapgapError:
            return None, "unknown: declare params"
    sizes = _SIZE.findall(spec.split("/")[-1])  # an alias, a Hub id or a .gguf file's name
    if sizes:
        value, unit = sizes[-1]
        return float(value) * (1e9 if unit in "Bb" else 1e6), "from its name"
    return None, "unknown: declare params"


@dataclass
class Work:
    kind: str  # teacher | evaluation | training
    what: str
    where: str  # "GPUs" (this run's jobs) or "servers" (teachers behind an endpoint)
    tokens: int  # upper bound
    flops: float | None  # None: a model of unknown size
    tflops: float  # effective rate for the GPU-hour estimate

    @property
    def gpu_hours(self) -> float | None:
        return None if self.flops is None else self.flops / (self.tflops * 1e12) / 3600


def _n(value: int | None) -> int:
    return value or 0


def runs_per_student(config: StudyConfig) -> int:
    """The cells of one task x student: teachers x protocols x seeds."""
    return len(config.teachers) * len(config.protocols) * len(config.seeds)


def cells_text(config: StudyConfig, n_tasks: int) -> str:
    """ "N = T task(s) x S student(s) x ...": the study's cells, said the same way by validate and plan."""
    n = n_tasks * len(config.students) * runs_per_student(config)
    return (f"{n} = {n_tasks} task(s) x {len(config.students)} student(s) x {len(config.teachers)} teacher(s) x "
            f"{len(config.protocols)} protocol(s) x {len(config.seeds)} seed(s)")


def budget_text(config: StudyConfig) -> str:
    t = config.training
    return f"{t.steps} optimizer steps" if t.epochs is None else f"{t.epochs} epoch(s)"


def generation_flops(params: float | None, tokens: float) -> float | None:
    return None if params is None else GENERATE_FLOPS_PER_PARAM * params * tokens


def training_flops(params: float | None, tokens: float) -> float | None:
    return None if params is None else TRAIN_FLOPS_PER_PARAM * params * tokens


def trained_tokens(steps: int, effective_batch: int, max_length: int) -> int:
    """Tokens a run of `steps` trains on at most (every example at max_length)."""
    return steps * effective_batch * max_length


def _generations(config: StudyConfig, sizes: list[TaskSize], rates: tuple[float, float]) -> list[Work]:
    out = []
    for t in (t for t in config.teachers if t.kind == "model"):
        params, _ = model_params(t.model, t.params)
        tokens = sum(t.samples * _n(s.pool) * t.max_new_tokens for s in sizes)
        where = "servers" if t.backend == "openai" else "GPUs"
        what = f"teacher {t.name} ({t.backend}): {t.samples} sample(s) per pool question"
        out.append(Work("teacher", what, where, tokens, generation_flops(params, tokens), rates[1]))
        if config.screening is not None:  # in context, greedy, on a sample of each pool (`study.screening`)
            tokens = sum(min(config.screening.sample, _n(s.pool)) * t.max_new_tokens for s in sizes)
            out.append(Work("teacher", f"screening with {t.name}: {config.screening.sample} pool questions per "
                                       "task", where, tokens, generation_flops(params, tokens), rates[1]))
    ev = config.evaluation
    n_cells = runs_per_student(config)
    for student in config.students:
        params, _ = model_params(student)
        tokens = sum(_n(s.test) for s in sizes) * ev.max_new_tokens
        flops = generation_flops(params, tokens)
        out.append(Work("evaluation", f"baseline of {student}", "GPUs", tokens, flops, rates[1]))
        out.append(Work("evaluation", f"post-distillation evaluations of {student} ({n_cells} per task)", "GPUs",
                        tokens * n_cells, None if flops is None else flops * n_cells, rates[1]))
    return out


def _run_tokens(t: TrainingConfig, sizes: list[TaskSize]) -> int:
    """Tokens one run per task trains on at most: every example at max_length."""
    if t.epochs is None:
        return len(sizes) * trained_tokens(t.steps, t.effective_batch, t.max_length)
    return int(t.epochs * sum(_n(s.pool) for s in sizes) * t.max_length)  # every pool question, every epoch


def _training(config: StudyConfig, sizes: list[TaskSize], rate: float) -> list[Work]:
    runs = len(sizes) * runs_per_student(config)
    per_teacher = len(config.protocols) * len(config.seeds)  # runs of one teacher on one task
    tokens = sum(per_teacher * _run_tokens(training_of(config, teacher), sizes) for teacher in config.teachers)
    out = []
    for student in config.students:
        params, _ = model_params(student)
        out.append(Work("training", f"training {student}: {runs} run(s) ({config.training.method})", "GPUs",
                        tokens, training_flops(params, tokens), rate))
    return out


def estimate(config: StudyConfig, sizes: list[TaskSize], rates: tuple[float, float] = (TRAIN_TFLOPS,
                                                                                       GENERATE_TFLOPS)) -> list[Work]:
    """The run's work as upper bounds: generations (teachers, baselines, post-distillation) and training."""
    return _generations(config, sizes, rates) + _training(config, sizes, rates[0])


def token_totals(works: list[Work]) -> dict[str, int]:
    """Upper-bound tokens by kind of work: teacher (generated), training (trained on), evaluation (generated)."""
    return {kind: sum(w.tokens for w in works if w.kind == kind) for kind in ("teacher", "training", "evaluation")}


def tokens_text(n: float) -> str:
    if n < 1e3:
        return f"{n:.0f}"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def stored_progress(config: StudyConfig, store_path: Path, n_cells: int) -> str:
    """One sentence: what the store holds of this study, read from its records (nothing is written)."""
    from capgap.config.changes import config_changes
    from capgap.store import Store

    if not store_path.is_file():
        return f"store {store_path}: not there yet, so a run does all of it"
    with Store.for_reading(store_path) as store:
        study = next((s for s in store.study.studies() if s["study"] == config.name), None)
        if study is None:
            return f"store {store_path}: holds no study '{config.name}', so a run does all of it"
        planned = store.study.planned(config.name)
        finished = [c for c in store.study.cells(config.name)
                    if c["status"] in ("done", "skipped") and (planned is None or c["cell_key"] in planned)]
        teachers = {t["teacher"] for t in store.study.teachers(config.name)}
    version = study["config_version"]
    current = config_record(config)
    if study["config"] != current:
        changes = "; ".join(config_changes(study["config"], current))
        return (f"store {store_path}: the study's latest config there (version {version}) differs ({changes}): its "
                f"{len(finished)} finished cell(s) do not count for this config; checkpoints whose training data "
                "and settings are unchanged are reused, not retrained")
    skipped = sum(c["status"] == "skipped" for c in finished)
    return (f"store {store_path}: holds this config as version {version}: {len(teachers)} of "
            f"{len(config.teachers)} teachers' rationales and {len(finished)} of {n_cells} cells finished"
            + (f" ({skipped} skipped: no training examples)" if skipped else "")
            + f"; a run does the other {n_cells - len(finished)} (the run checks every key itself)")


def _count(n: int | None) -> str:
    return f"{n:,}" if n is not None else "?"


def _size(params: float | None) -> str:
    return "? " if params is None else f"{params / 1e9:.3g}B " if params >= 1e9 else f"{params / 1e6:.3g}M "


def _hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def _model_lines(config: StudyConfig) -> list[str]:
    lines = []
    for spec in config.students:
        params, how = model_params(spec)
        lines.append(f"student {spec}: {_size(params)}parameters ({how})")
    for t in config.teachers:
        if t.kind == "model":
            params, how = model_params(t.model, t.params)
            served = f", served at {t.endpoint.base_url}" if t.backend == "openai" and t.endpoint else ""
            lines.append(f"teacher {t.name}: {t.model}, {_size(params)}parameters ({how}); backend {t.backend}{served}")
        else:
            lines.append(f"teacher {t.name}: {t.kind} rationales, nothing to generate")
    return lines


def _cost_lines(works: list[Work], rates: tuple[float, float]) -> list[str]:
    width = max(len(w.what) for w in works)
    lines = [f"  {'work':<{width}}  {'on':<7}  {'tokens':>8}  {'GPU-hours':>9}"]
    for w in works:
        hours = _hours(w.gpu_hours) if w.gpu_hours is not None else "?"
        lines.append(f"  {w.what:<{width}}  {w.where:<7}  {tokens_text(w.tokens):>8}  {hours:>9}")
    for where, who in (("GPUs", "this run's GPUs"), ("servers", "the teachers' servers")):
        chosen = [w for w in works if w.where == where]
        if chosen:
            known = sum(w.gpu_hours or 0 for w in chosen)
            unknown = " (more for models of unknown size)" if any(w.gpu_hours is None for w in chosen) else ""
            lines.append(f"  total on {who}: {_hours(known)} GPU-hours{unknown}")
    lines.append(f"  GPU-hours at {rates[0]:g} TFLOP/s in training and {rates[1]:g} TFLOP/s in generation per GPU "
                 "(H100-class effective rates, generation batched as a serving engine does it; transformers' own "
                 "generate is slower; set --train-tflops and --generate-tflops for your GPUs)")
    return lines


def render(config: StudyConfig, store_path: Path, rates: tuple[float, float] = (TRAIN_TFLOPS,
                                                                                 GENERATE_TFLOPS)) -> str:
    """The `capgap plan` text: tasks and models, the two stages, the store's progress, the cost."""
    sizes = task_sizes(config)
    t = config.training
    n_cells = len(sizes) * len(config.students) * runs_per_student(config)
    samples = sum(x.samples for x in config.teachers if x.kind == "model")
    lines = [f"capgap plan {config.name}: what a run does, what the store holds, what it costs", ""]
    lines += [f"task {s.name}: {_count(s.pool)} training questions, {_count(s.test)} test items ({s.note})"
              for s in sizes]
    lines += [
        *_model_lines(config), "",
        f"stage 1, generations (side by side): {samples} teacher sample(s) on each of {len(sizes)} pool(s), "
        f"{len(config.students) * len(sizes)} baseline(s)",
        f"stage 2, cells: {cells_text(config, len(sizes))}; each a training run of {budget_text(config)} "
        f"(effective batch {t.effective_batch}) and an evaluation",
        stored_progress(config, store_path, n_cells), "", "cost (upper bounds):"]
    lines += _cost_lines(estimate(config, sizes, rates), rates)
    if any(s.test is None or s.pool is None for s in sizes):
        lines.append("  tasks of unknown size count as empty here: set their splits' limit to size them")
    return "\n".join(lines) + "\n"
