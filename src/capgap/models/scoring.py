"""The student's view of given text: per-token negative log-likelihood and rank, in batched forward passes.

    scored = score_rows(loaded, rows, batch_size=8, rank_clip=100)   # one TokenScores per row

A row is what training sees (`training.sft.tokenize_examples`): `input_ids` and `labels` with -100 where
the loss is off (the prompt). For every position whose label is kept, the model's distribution over the next
token gives the token's NLL, -log p(token), and its rank, 1 + the number of vocabulary entries with a larger
logit (1: the student's own first choice), clipped at `rank_clip`. Rows are padded on the right, so every
row's positions stay where they are without padding and no position attends to padding.

Only the model in this process scores (backend hf, on whatever device its precision chose): a
chat-completions server returns the log-probabilities of what it generates, not of text it is given.
Logits are taken as the output projection gives them (with Gemma 2's final soft-capping); a model whose
causal-LM head rescales logits otherwise (Cohere's logit_scale, Granite's logits_scaling) is not handled.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from capgap.errors import CapgapError


@dataclass(frozen=True)
class TokenScores:
    nll: np.ndarray  # -log p of each scored token (natural log)
    rank: np.ndarray  # its rank under the model, 1-based, clipped at rank_clip


CHUNK = 512  # scored positions projected onto the vocabulary at once: bounds memory for large vocabularies


def _token_scores(model, hidden, targets, rank_clip: int) -> tuple[np.ndarray, np.ndarray]:
    """NLL and clipped rank of `targets` from the hidden states that predict them."""
    import torch

    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)  # Gemma 2 squashes its logits
    if cap:
        logits = torch.tanh(logits / cap) * cap
    chosen = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    nll = torch.logsumexp(logits, dim=-1) - chosen
    rank = ((logits > chosen.unsqueeze(-1)).sum(dim=-1) + 1).clamp(max=rank_clip)
    return nll.cpu().numpy().astype(np.float64), rank.cpu().numpy().astype(np.float64)


def _batch_scores(model, rows: list[dict], pad: int, rank_clip: int) -> list[TokenScores]:
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
    device = next(model.parameters()).device
    target = labels[:, 1:]
    keep = target != -100
    with torch.inference_mode():  # the vocabulary projection only where a token is scored: most are prompt
        hidden = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                  use_cache=False).last_hidden_state[:, :-1][keep.to(device)]
        targets = target[keep].to(device)
        parts = [_token_scores(model, hidden[i:i + CHUNK], targets[i:i + CHUNK], rank_clip)
                 for i in range(0, len(targets), CHUNK)]
    nll = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    rank = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    counts = keep.sum(dim=1).tolist()
    bounds = np.cumsum([0, *counts])
    return [TokenScores(nll[a:b], rank[a:b]) for a, b in itertools.pairwise(bounds)]


def score_rows(loaded, rows: list[dict], batch_size: int = 8, rank_clip: int = 100,
               on_batch=None) -> list[TokenScores]:
    """Each row's scored tokens (see the module docstring), in batches of similar length (less padding);
    `on_batch(n)` after each batch of n rows."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    scored: dict[int, TokenScores] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        try:
            found = _batch_scores(loaded.model, [rows[i] for i in chunk], pad, rank_clip)
        except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
            if not isinstance(e, MemoryError) and "out of memory" not in str(e).lower():
                raise
            raise CapgapError(f"scoring {len(chunk)} rows at once ran out of memory; lower --batch-size "
                              f"(now {batch_size})") from None
        for i, s in zip(chunk, found, strict=True):
            scored[i] = s
        if on_batch:
            on_batch(len(chunk))
    return [scored[i] for i in range(len(rows))]
