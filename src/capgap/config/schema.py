"""Typed sections of a study config, one per stage. Each field's help text is written once, here.

`capgap validate` and `capgap run` read YAML into these classes through `capgap.config.load`; names in the
YAML map to code only through the registries named in `choices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def knob(default=None, help: str = "", choices: tuple | None = None, required: bool = False):
    """A config field with its help text (and allowed values) kept next to its type."""
    meta = {"help": help, "choices": choices, "required": required}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SplitConfig:
    first: int | None = knob(None, "take the first N items of the task (in the data's order)")
    match_file: str | None = knob(None, "take the items whose question appears in this file (JSON/JSONL)")
    match_field: str = knob("question", "the field of match_file that holds the question text")
    rest: bool = knob(False, "take the items that are not in the training pool (test split only)")
    limit: int | None = knob(None, "keep at most N of the selected items")


@dataclass
class TaskConfig:
    name: str = knob(required=True, help="task name (see `capgap tasks`)")
    options: dict = knob({}, "loader options: data (path relative to data_dir), split, fields, answer_type, "
                             "and for arith n, seed, min_steps, max_steps, max_start, max_operand, max_value")
    pool: SplitConfig = knob(None, "which items are training questions", required=True)
    test: SplitConfig = knob(None, "which items are test items (never trained on)", required=True)


@dataclass
class PromptSection:
    style: str = knob("zero-shot-cot", "zero-shot-cot or few-shot-cot", ("zero-shot-cot", "few-shot-cot"))
    shots: int = knob(4, "worked examples in few-shot-cot (1-8)")
    chat: str = knob("auto", "use the model's chat template: auto, on, off", ("auto", "on", "off"))


@dataclass
class TeacherConfig:
    name: str = knob(required=True, help="label in tables and the store (unique in the study)")
    kind: str = knob(required=True, help="where rationales come from", choices=("reference", "model", "imported"))
    params: float | None = knob(None, "parameter count, for capacity-gap analysis (model teachers: read "
                                      "from the model when not given; imported/API teachers: declare it)")
    # kind: model
    model: str | None = knob(None, "model teacher: any model `capgap eval` loads")
    prompt: PromptSection = knob(None, "model teacher: prompt used to ask for rationales")
    samples: int = knob(1, "model teacher: rationales sampled per training question (more: more chances "
                           "of a correct one, more generation time)")
    temperature: float = knob(0.7, "model teacher: sampling temperature (0 = greedy: samples would repeat)")
    max_new_tokens: int = knob(256, "model teacher: longest rationale")
    # kind: imported
    files: list = knob([], "imported teacher: rationale files (paths relative to data_dir)")
    question_field: str = knob("question", "imported teacher: field holding the question (join key)")
    rationale_field: str = knob("rationale", "imported teacher: field holding the rationale")
    id_field: str | None = knob(None, "imported teacher: join on this id field instead of question text")
    questions_file: str | None = knob(None, "imported teacher: question file aligned by position with files "
                                            "that are plain lists of continuations")
    cut_at: str | None = knob(None, "imported teacher: cut each continuation at this marker")
    strip_prefix: str | None = knob(None, "imported teacher: drop this prefix of each rationale")


@dataclass
class TrainingConfig:
    method: str = knob("lora", "lora: small adapters, fast and gentle; full: all weights, stronger updates "
                                "that can also erase what the student knew", ("lora", "full"))
    steps: int = knob(60, "optimizer steps per cell; the same for every teacher, so teachers compare at "
                          "equal budget (more: better fit, longer runs)")
    epochs: float | None = knob(None, "train this many passes over each teacher's data instead of a fixed "
                                      "step count (budgets then differ between teachers: reported)")
    learning_rate: float = knob(2e-4, "peak learning rate (LoRA tolerates ~1e-4..5e-4; full ~1e-5..5e-5)")
    batch_size: int = knob(8, "examples per micro-batch (memory grows with it)")
    grad_accum: int = knob(1, "micro-batches per optimizer step: effective batch = batch_size x grad_accum")
    max_length: int = knob(384, "tokens per example (prompt + rationale); longer ones are truncated")
    lora_r: int = knob(16, "LoRA rank (capacity of the adapter)")
    lora_alpha: int = knob(32, "LoRA scaling numerator (update scale = alpha / r)")
    warmup_ratio: float = knob(0.1, "share of steps with a rising learning rate")


@dataclass
class EvaluationConfig:
    prompt: PromptSection = knob(None, "prompt of every pre- and post-distillation evaluation")
    max_new_tokens: int = knob(256, "longest answer (shorter: faster, but long rationales get cut)")
    batch_size: int = knob(32, "prompts generated together")
    dtype: str = knob("auto", "auto, float32, bfloat16, float16", ("auto", "float32", "bfloat16", "float16"))


@dataclass
class StudyConfig:
    name: str = knob(required=True, help="names the run directory and the report")
    tasks: list = knob([], "tasks, each with a training pool and a test split", required=True)
    students: list = knob([], "student models (see `capgap models`)", required=True)
    teachers: list = knob([], "candidate teachers", required=True)
    protocols: list = knob(["own-correct"], "training-data protocols: intersection (items every teacher got "
                                            "right: isolates rationale quality), own-correct (each teacher's own "
                                            "correct items: realistic), unfiltered")
    seeds: list = knob([0], "one training run per seed; more seeds, tighter conclusions")
    data_dir: str | None = knob(None, "base folder of relative data paths (overridden by --data-dir or "
                                      "CAPGAP_DATA_DIR)")
    training: TrainingConfig = knob(None, "how students are fine-tuned")
    evaluation: EvaluationConfig = knob(None, "how students are measured before and after")


LIST_ITEM_TYPES = {("StudyConfig", "tasks"): TaskConfig, ("StudyConfig", "teachers"): TeacherConfig,
                   ("StudyConfig", "students"): str, ("StudyConfig", "protocols"): str,
                   ("StudyConfig", "seeds"): int, ("TeacherConfig", "files"): str}
PROTOCOLS = ("intersection", "own-correct", "unfiltered")


def describe_budget(steps: int | None, epochs: float | None, effective_batch: int) -> str:
    """How a study's teachers are budgeted, said the same way in the run log and in the report."""
    if epochs is None:
        return f"{steps} optimizer steps x effective batch {effective_batch} for every teacher (matched)"
    return (f"{epochs} epoch(s) over each teacher's own data, effective batch {effective_batch} "
            "(NOT matched: teachers with more examples get more steps)")
