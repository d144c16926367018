"""Model teachers: k sampled rationales per training question from any model `capgap eval` loads.

Each sample is an evaluation of the teacher on the training pool with seeded sampling, so rationales land in
the store, resume after an interruption, and are scored by the same checker as every other answer.
"""

from __future__ import annotations

from dataclasses import replace

from capgap.config import TeacherConfig
from capgap.evaluation import PromptConfig, evaluate
from capgap.models.backends import ModelRef
from capgap.models.engines import AUTO
from capgap.models.generation import Decoding
from capgap.models.loading import count_parameters
from capgap.models.precision import Precision
from capgap.models.sources import resolve
from capgap.store import Store
from capgap.tasks.base import Task
from capgap.teachers.base import TeacherRationales, hedge_note, normalize_rationale, scored


def teacher_ref(config: TeacherConfig, engine: str | None = None) -> ModelRef:
    """The teacher's model on its backend (an openai teacher's `model` is the name its server serves it by);
    `engine`: what `auto` runs on in this run (decided where its jobs run), else decided here."""
    endpoint = None
    if config.backend == "openai" and config.endpoint is not None:
        endpoint = replace(config.endpoint, model=config.model)
    backend = engine if config.backend == AUTO and engine else config.backend
    return ModelRef(config.model, backend, endpoint)


def teacher_samples(config: TeacherConfig) -> list[tuple[PromptConfig, Decoding]]:
    """The prompt and decoding of each sample: sample k is an evaluation on the pool with seed k."""
    prompt = config.prompt
    return [(prompt, Decoding(max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=sample))
            for sample in range(config.samples)]


def model_rationales(config: TeacherConfig, pool_task: Task, store: Store, *, dtype: str = "auto",
                     precision: Precision | None = None, batch_size: int = 32, progress: bool = False,
                     engine: str | None = None) -> TeacherRationales:
    rationales, eval_keys = [], []
    for sample, (prompt, decoding) in enumerate(teacher_samples(config)):
        result = evaluate(teacher_ref(config, engine), pool_task, store, prompt=prompt, decoding=decoding, dtype=dtype,
                          precision=precision, batch_size=batch_size, progress=progress)
        eval_keys.append(result.eval_key)
        for item, row in zip(pool_task.items, result.rows, strict=True):
            normalized = normalize_rationale(row["generation"], pool_task, item=item)
            if normalized.text:
                rationales.append(scored(item, normalized, pool_task, sample))
    params = int(config.params) if config.params else None
    if params is None and config.backend != "openai":  # a served model's size is the user's to declare
        params = count_parameters(resolve(config.model))
    notes = [f"{config.samples} sample(s) per question at temperature {config.temperature}",
             f"generations in evaluations {', '.join(eval_keys)}", *hedge_note(rationales)]
    return TeacherRationales(config.name, rationales, len(pool_task.items), params, notes)
