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
    encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    results: list[Generation | None] = [None] * len(prompts)
    eos = _eos_ids(model, tokenizer)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in indices]}, return_tensors="pt")
        batch = {k: v.to(model.device) for k, v in batch.items()}
        if decoding.greedy:
            rows = greedy_shrinking(model, tokenizer, batch, decoding.max_new_tokens, eos, stop)
        else:
            rows = _sample(model, tokenizer, batch, decoding, eos, stop, seed=decoding.seed + start)
        generations = [_decode(row, tokenizer, eos, stop) for row in rows]
        for i, g in zip(indices, generations, strict=True):
            results[i] = g
        if on_batch:
            on_batch(indices, generations)
    return results  # type: ignore[return-value]


def _sample(model, tokenizer, batch: dict, decoding: Decoding, eos: list[int], stop: tuple[str, ...],
            seed: int) -> list[list[int]]:
    import torch

    kwargs = dict(max_new_tokens=decoding.max_new_tokens, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos,
                  do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p)
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(**batch, **kwargs)
    return out[:, batch["input_ids"].shape[1] :].tolist()


def greedy_shrinking(model, tokenizer, batch: dict, max_new_tokens: int, eos: list[int],
                     stop: tuple[str, ...]) -> list[list[int]]:
    """Greedy decoding in which finished rows leave the batch.

    `model.generate` keeps computing every row until the longest one ends; small models often loop to the
    token limit, so a batch pays `max_new_tokens` steps at full width. Here a row that emits an end token
    or completes a stop string is dropped from the batch and its KV cache. Positions and masks follow
    `generate`'s left-padding convention, so the tokens are the same as its greedy output (tests check it).
    """
    import torch

    mask = batch["attention_mask"]
    with torch.inference_mode():
        out = model(input_ids=batch["input_ids"], attention_mask=mask,
                    position_ids=(mask.long().cumsum(-1) - 1).clamp(min=0), use_cache=True, logits_to_keep=1)
        cache, token = out.past_key_values, out.logits[:, -1].argmax(-1)
        rows = list(range(mask.shape[0]))
        tokens: list[list[int]] = [[] for _ in rows]
        eos_set = set(eos)
        for step in range(max_new_tokens):
            keep = []
            for k, (row, t) in enumerate(zip(rows, token.tolist(), strict=True)):
                tokens[row].append(t)
                if t not in eos_set and not _ends_with_stop(tokens[row], tokenizer, stop):
                    keep.append(k)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(rows):
                index = torch.tensor(keep, device=mask.device)
                cache.batch_select_indices(index)
                mask, token, rows = mask[index], token[index], [rows[k] for k in keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
            out = model(input_ids=token[:, None], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                        past_key_values=cache, use_cache=True)
            token = out.logits[:, -1].argmax(-1)
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
    return Generation(_cut(text, stop).strip(), n)
