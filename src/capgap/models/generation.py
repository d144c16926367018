"""Batched generation with left padding: greedy for evaluation, seeded sampling for teacher rationales."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0  # used only when sampling

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def key(self) -> dict:
        values = asdict(self)
        if self.greedy:  # sampling knobs do not change a greedy decode
            values.update(top_p=1.0, seed=0)
        return values


@dataclass(frozen=True)
class Generation:
    text: str
    n_new_tokens: int


def _cut(text: str, stops: tuple[str, ...]) -> str:
    positions = [text.find(s) for s in stops if s in text]
    return text[: min(positions)] if positions else text


def generate(model, tokenizer, prompts: list[str], decoding: Decoding, *, stop: tuple[str, ...] = (),
             add_special_tokens: bool = False, batch_size: int = 32,
             on_batch: Callable[[list[int], list[Generation]], None] | None = None) -> list[Generation]:
    """Generate for every prompt, longest first so that rows of a batch need little padding.

    `on_batch(indices, generations)` is called after each batch (to store results as they come, so an
    interrupted run loses at most one batch). Chat prompts already hold their special tokens, hence
    `add_special_tokens=False` for them.
    """
    import torch

    encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    results: list[Generation | None] = [None] * len(prompts)
    eos = _eos_ids(model, tokenizer)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in indices]}, return_tensors="pt")
        batch = {k: v.to(model.device) for k, v in batch.items()}
        kwargs = dict(max_new_tokens=decoding.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=eos, do_sample=not decoding.greedy)
        if not decoding.greedy:
            kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p)
            torch.manual_seed(decoding.seed + start)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
        with torch.inference_mode():
            out = model.generate(**batch, **kwargs)
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        generations = [_decode(row, tokenizer, eos, stop) for row in new_tokens.tolist()]
        for i, g in zip(indices, generations, strict=True):
            results[i] = g
        if on_batch:
            on_batch(indices, generations)
    return results  # type: ignore[return-value]


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _decode(row: list[int], tokenizer, eos: list[int], stop: tuple[str, ...]) -> Generation:
    n = next((k + 1 for k, t in enumerate(row) if t in eos), len(row))
    text = tokenizer.decode(row[:n], skip_special_tokens=True)
    return Generation(_cut(text, stop).strip(), n)
