"""Batched generation with left padding: greedy for evaluation, per-row seeded sampling for teacher rationales."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0  # used only when sampling: mixed with each row's identity (see `row_seed`)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def key(self) -> dict:
        values = asdict(self)
        if self.greedy:  # sampling knobs do not change a greedy decode
            values.update(top_p=1.0, seed=0)
        else:  # v2: one generator per row seeded by its identity (v1 seeded a whole batch by its offset)
            values["sampler"] = "per-row-seed-v2"
        return values


@dataclass(frozen=True)
class Request:
    """One rendered prompt, as every generator takes it (generators know no tasks). `text` is the exact prompt
    an in-process model or vLLM tokenizes (and what the store records); `messages`, when given, is the chat a
    server applies its own template to."""

    text: str
    seed: int = 0  # this row's sampling seed (`row_seed`): its draw never depends on its batch
    stop: tuple[str, ...] = ()
    add_special_tokens: bool = False  # chat prompts already hold their special tokens
    messages: tuple[dict, ...] | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    n_new_tokens: int


def cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    """`text` up to the first stop string in it."""
    positions = [text.find(s) for s in stops if s in text]
    return text[: min(positions)] if positions else text


def row_seed(*parts: object) -> int:
    """A 63-bit sampling seed from its parts, e.g. (model fingerprint, decoding seed, item id): each row's
    random stream depends on what it is, never on its batch or on what a resumed run had left to do."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generate(model, tokenizer, prompts: list[str], decoding: Decoding, *, stop: tuple[str, ...] = (),
             add_special_tokens: bool = False, batch_size: int = 32, seeds: list[int] | None = None,
             on_batch: Callable[[list[int], list[Generation]], None] | None = None) -> list[Generation]:
    """Generate for every prompt, longest first so that rows of a batch need little padding.

    Sampling draws each row's tokens from its own generator, seeded by `seeds[i]` (default: row_seed of
    decoding.seed and i), so a row's random numbers do not depend on the batch size or order (its logits can
    still differ by rounding error between batch shapes). `on_batch(indices,
    generations)` is called after each batch (to store results as they come, so an interrupted run loses
    at most one batch). Chat prompts already hold their special tokens, hence `add_special_tokens=False`.
    """
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError("one seed per prompt")
    seeds = seeds if seeds is not None else [row_seed(decoding.seed, i) for i in range(len(prompts))]
    encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    results: list[Generation | None] = [None] * len(prompts)
    eos = _eos_ids(model, tokenizer)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in indices]}, return_tensors="pt")
        batch = {k: v.to(model.device) for k, v in batch.items()}
        rows = decode_shrinking(model, tokenizer, batch, decoding, eos, stop,
                                None if decoding.greedy else [seeds[i] for i in indices])
        generations = [_decode(row, tokenizer, eos, stop) for row in rows]
        for i, g in zip(indices, generations, strict=True):
            results[i] = g
        if on_batch:
            on_batch(indices, generations)
    return results  # type: ignore[return-value]


def _next_tokens(logits, decoding: Decoding, generators: list | None):
    """Greedy argmax, or one temperature / top-p sample per row from that row's own generator."""
    import torch

    if generators is None:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / decoding.temperature, dim=-1)
    if decoding.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > decoding.top_p  # keeps the first token always
        probs = probs.scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    rows = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators, strict=True)]
    return torch.cat(rows)


def greedy_shrinking(model, tokenizer, batch: dict, max_new_tokens: int, eos: list[int],
                     stop: tuple[str, ...]) -> list[list[int]]:
    """Greedy decoding in which finished rows leave the batch (see `decode_shrinking`)."""
    return decode_shrinking(model, tokenizer, batch, Decoding(max_new_tokens=max_new_tokens), eos, stop)


def decode_shrinking(model, tokenizer, batch: dict, decoding: Decoding, eos: list[int], stop: tuple[str, ...],
                     seeds: list[int] | None = None) -> list[list[int]]:
    """Greedy decoding, or seeded sampling (one generator per row from `seeds`), in which finished rows
    leave the batch.

    `model.generate` keeps computing every row until the longest one ends; small models often loop to the
    token limit, so a batch pays `max_new_tokens` steps at full width. Here a row that emits an end token
    or completes a stop string is dropped from the batch and its KV cache. Positions and masks follow
    `generate`'s left-padding convention, so greedy tokens are the same as its output (tests check it).
    """
    import torch

    mask = batch["attention_mask"]
    generators = None
    if seeds is not None:
        generators = [torch.Generator(device=mask.device).manual_seed(s) for s in seeds]
    with torch.inference_mode():
        out = model(input_ids=batch["input_ids"], attention_mask=mask,
                    position_ids=(mask.long().cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1)
        cache, token = out.past_key_values, _next_tokens(out.logits[:, -1], decoding, generators)
        rows = list(range(mask.shape[0]))
        tokens: list[list[int]] = [[] for _ in rows]
        eos_set = set(eos)
        for step in range(decoding.max_new_tokens):
            keep = []
            for k, (row, t) in enumerate(zip(rows, token.tolist(), strict=True)):
                tokens[row].append(t)
                if t not in eos_set and not _ends_with_stop(tokens[row], tokenizer, stop):
                    keep.append(k)
            if not keep or step == decoding.max_new_tokens - 1:
                break
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=mask.device)
                cache.batch_select_indices(index)
                mask, token, rows = mask[index], token[index], [rows[k] for k in keep]
                generators = [generators[k] for k in keep] if generators is not None else None
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                        past_key_values=cache, use_cache=True)
            token = _next_tokens(out.logits[:, -1], decoding, generators)
    return tokens


def _ends_with_stop(tokens: list[int], tokenizer, stop: tuple[str, ...]) -> bool:
    # Stop strings are short: the last few tokens hold any that just completed.
    return bool(stop) and any(s in tokenizer.decode(tokens[-8:]) for s in stop)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _decode(row: list[int], tokenizer, eos: list[int], stop: tuple[str, ...]) -> Generation:
    n = next((k + 1 for k, t in enumerate(row) if t in eos), len(row))
    text = tokenizer.decode(row[:n], skip_special_tokens=True)
    return Generation(cut_at_stops(text, stop).strip(), n)
