"""A study's cells as typed specs with complete keys, planned before anything runs.

A cell trains one student on one teacher's rationales under one protocol and seed, then evaluates the result
exactly as the student's baseline was evaluated. Two keys identify it:

- `train_key`: everything that determines the trained weights (student weights and tokenizer, the training
  examples in order and how they are prompted, the training config, the seed, the training precision and
  device, the recipe version). Cells that share it share one checkpoint.
- `cell_key`: the training key plus everything that determines the post-distillation evaluation (test
  items, prompt, decoding, resolved dtype and device, the engine and its settings unless hf, extraction
  version). Change any of them and the cell is new: its stored checkpoint is evaluated again instead of an
  old result being reused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from capgap.config import StudyConfig, TrainingConfig
from capgap.config.schema import training_of
from capgap.digests import digest
from capgap.evaluation.keys import post_evaluation_spec
from capgap.evaluation.prompts import uses_chat
from capgap.models import Precision, decide, resolve
from capgap.models.backends import ModelRef, engine_key
from capgap.models.engines import engine_name
from capgap.models.generation import Decoding
from capgap.models.loading import checkpoint_dir, count_parameters
from capgap.study.data import Example, StudyTask, training_examples
from capgap.teachers import TeacherRationales
from capgap.training import TRAINING_VERSION


class Student:
    """What a cell needs of its student: base checkpoint, tokenizer, how it is prompted, and the precision
    every evaluation and training run of this study uses (decided once, in `models.precision`)."""

    def __init__(self, spec: str, config: StudyConfig, precision: Precision | None = None,
                 backend: str | None = None):
        from transformers import AutoTokenizer

        self.spec, self.source = spec, resolve(spec)
        self.fingerprint = self.source.fingerprint()
        self.base_dir = checkpoint_dir(self.source)
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_dir)
        self.params = count_parameters(self.source)
        self.prompt = config.evaluation.prompt
        self.decoding = Decoding(max_new_tokens=config.evaluation.max_new_tokens)
        self.precision = precision or decide(config.evaluation.dtype)  # a run passes its executor's decision
        self.chat = uses_chat(self.prompt, self.tokenizer)
        # the engine of its baseline and of every post-distillation evaluation (a run passes its decision)
        self.backend = backend or engine_name(config.evaluation.backend)


@dataclass(frozen=True)
class CellSpec:
    task: str
    student: str
    teacher: str
    protocol: str
    seed: int
    examples: tuple[Example, ...]
    train_key: str
    evaluation: dict  # the post-evaluation spec (shared with the baseline but for the model)
    key: str
    training: TrainingConfig  # the study's, or the teacher's own budget over it (`config.schema.training_of`)

    @property
    def label(self) -> str:
        return f"{self.student} <- {self.teacher} ({self.protocol}, seed {self.seed})"


def evaluation_spec(st: StudyTask, student: Student) -> dict:
    """What determines the cells' post-distillation evaluations of this task and student (`evaluation.keys`)."""
    engine = engine_key(ModelRef(student.spec, student.backend), student.precision)
    return post_evaluation_spec(st.task, st.test.items, student.prompt, student.decoding, student.precision, engine)


def training_key(training: TrainingConfig) -> dict:
    """The training config as keys hash it: `processes` only when above 1 (one process trains as before)."""
    fields = asdict(training)
    if fields.get("processes") == 1:
        del fields["processes"]
    if not fields.get("padding_free"):  # padded batches train as before the knob existed
        fields.pop("padding_free", None)
    return fields


def train_key(training: TrainingConfig, st: StudyTask, student: Student, examples: list[Example], seed: int) -> str:
    return digest({
        "student": student.fingerprint, "task_definition": st.task.definition, "prompt": student.prompt.key(),
        "chat": student.chat, "examples": [(e.item_id, e.rationale) for e in examples],
        "training": training_key(training), "seed": seed, "precision": student.precision.train,
        "device": student.precision.device, "training_version": TRAINING_VERSION})


def plan_cells(config: StudyConfig, st: StudyTask, student: Student,
               teachers: list[TeacherRationales]) -> list[CellSpec]:
    """Every cell of one task x student, seed-major: a whole pass over teachers x protocols comes before extra
    seeds, so an interrupted study already compares every teacher."""
    evaluation = evaluation_spec(st, student)
    trainings = {t.name: training_of(config, t) for t in config.teachers}
    cells = []
    for seed in config.seeds:
        for protocol in config.protocols:
            for teacher in teachers:
                examples = training_examples(protocol, teacher, teachers)
                training = trainings[teacher.teacher]
                tkey = train_key(training, st, student, examples, seed)
                key = digest({"study": config.name, "task": st.name, "student": student.spec,
                              "teacher": teacher.teacher, "protocol": protocol, "seed": seed, "train_key": tkey,
                              "evaluation": evaluation})
                cells.append(CellSpec(st.name, student.spec, teacher.teacher, protocol, seed, tuple(examples), tkey,
                                      evaluation, key, training))
    return cells
