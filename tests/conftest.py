"""Shared fixtures: offline Hub, an isolated capgap cache, a tiny model built here (no downloads)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Tests of tiny models pin the in-process engine (a vLLM engine takes 9-20 s to start); the tests of vLLM ask for it
# by name, and the default recipe's test runs `auto` (tests/study/test_default_recipe.py).
os.environ.setdefault("CAPGAP_ENGINE", "hf")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test when the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is absent)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _capgap_cache(tmp_path_factory):
    os.environ["CAPGAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("capgap-cache"))


def build_tiny_model(directory: Path, *, seed: int = 0, chat: bool = True, init_std: float = 0.02,
                     head_dim: int | None = None) -> Path:
    """A randomly initialised 2-layer Llama with a byte-level BPE tokenizer trained on arith text (a larger
    `init_std`: replies that differ from prompt to prompt; `head_dim` 32: a head size vLLM's CPU kernels take)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from capgap.tasks.arith import ArithConfig, generate_items

    corpus = [f"{it.question} {it.rationale}" for it in generate_items(ArithConfig(n=200, seed=99))]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>")
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, tie_word_embeddings=True,
                         initializer_range=init_std, head_dim=head_dim or 32 // 4)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def build_adapter(base: Path, directory: Path, *, seed: int = 1) -> Path:
    """A LoRA checkpoint of `base` as training writes one (the adapter and the tokenizer), with nonzero random
    adapters so that the merged weights differ from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    for name, param in peft_model.named_parameters():  # large enough to move greedy tokens
        if "lora_" in name:
            param.data.normal_(0.0, 0.2)
    peft_model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(base).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"))


@pytest.fixture(scope="session")
def vllm_model(tmp_path_factory) -> Path:
    """The tiny chat model with heads vLLM's CPU attention takes (head size 32), varied replies."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-vllm"), init_std=0.3, head_dim=32)


@pytest.fixture(scope="session")
def vllm_plain_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-vllm-plain"), seed=1, chat=False, init_std=0.3,
                            head_dim=32)


@pytest.fixture(scope="session")
def tiny_plain_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-plain"), seed=1, chat=False)


@pytest.fixture(scope="module")
def filled_store(tiny_model, tmp_path_factory) -> Path:
    """A store holding one real evaluation, written by the CLI: its rows are what bad input must leave alone."""
    import subprocess
    import sys

    store = tmp_path_factory.mktemp("filled") / "store.sqlite"
    ok = subprocess.run([sys.executable, "-m", "capgap", "eval", "--model", str(tiny_model), "--task", "arith", "--n",
                         "2", "--max-new-tokens", "4", "--store", str(store)], capture_output=True, text=True,
                        timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert ok.returncode == 0, ok.stderr
    with contextlib.closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT COUNT(*) FROM eval_items").fetchone()[0] == 2
    return store
