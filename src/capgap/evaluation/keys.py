"""What determines an evaluation, in one place for both of its uses:

- `evaluation_key`: the key of one model's evaluation on a task (its rows in the store): the task's data, the
  model's weights, the prompt, the decoding, the resolved dtype and device, and the engine with its
  numerics-changing settings. Extraction is not in it (rows record the extraction version that scored them).
- `post_evaluation_spec`: what a study cell's post-distillation evaluation must share with the student's
  baseline, besides the weights: the same fields, plus the test items it pairs on and the extraction version,
  since a cell's verdict is a comparison of two such evaluations. It goes into the cell's key (`study.cells`).
"""

from __future__ import annotations

from capgap.digests import digest
from capgap.evaluation.prompts import PromptConfig
from capgap.models.generation import Decoding
from capgap.models.precision import Precision
from capgap.tasks import Item, Task
from capgap.tasks.extraction import EXTRACTION_VERSION
from capgap.tasks.items import items_fingerprint


def evaluation_key(task: Task, fingerprint: str, prompt: PromptConfig, decoding: Decoding,
                   precision: Precision, backend: str = "hf", engine: dict | None = None) -> tuple[str, dict]:
    """The key of an evaluation and the spec it hashes: everything that determines its generations, the engine
    and its numerics-changing settings included (`models.backends.engine_key`). The item subset is not in it
    (a larger --limit reuses the rows of a smaller one); whoever pairs rows names the items it pairs."""
    if backend == "auto":
        raise ValueError("resolve an auto backend before keying (models.backends.resolved)")
    spec = {"task": task.name, "task_definition": task.definition, "answer_type": task.answer_type.value,
            "model_fingerprint": fingerprint, "prompt": prompt.key(), "decoding": decoding.key(),
            "dtype": precision.dtype, "device": precision.device}
    if backend != "hf":  # hf keys predate backends: stores keep finding their rows
        spec["backend"] = backend
    if engine is not None:
        spec["engine"] = engine
    return digest(spec), spec


def post_evaluation_spec(task: Task, test_items: list[Item], prompt: PromptConfig, decoding: Decoding,
                         precision: Precision, engine: dict | None) -> dict:
    """What determines a post-distillation evaluation besides the model's weights (the engine too, but for hf,
    whose cells predate engines)."""
    spec = {"task_definition": task.definition, "test_items": items_fingerprint(test_items),
            "n_test": len(test_items), "prompt": prompt.key(), "decoding": decoding.key(),
            "dtype": precision.dtype, "device": precision.device, "extraction": EXTRACTION_VERSION}
    if engine is not None:
        spec["engine"] = engine
    return spec
