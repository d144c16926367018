"""Cheap predictors of how much distilling from a teacher will help a student: no training, one forward pass.

For a teacher's training rationales under a protocol, scored by the student exactly as training tokenizes
them (prompt, rationale, end token; `models.scoring`), with s_t = -log p(token t) and r_t its rank (1-based,
clipped at R = 100):

- teacher_accuracy: share of pool questions the teacher answered right (the "strongest teacher" rule).
- usable: rationales the protocol trains on (quantity).
- mean_tokens: mean rationale length in the student's tokens. Lower is taken as better: small students
  learn less from long chains (Li et al. 2025, "Small Models Struggle to Learn from Strong Reasoners",
  arXiv 2502.12143).
- nll: the student's mean NLL per rationale token, sum_t s_t / T over all sampled rationales ("global
  naturalness", the likelihood rule that arXiv 2510.03988 and 2601.14249 compare against); lower = more
  natural to the student. Its perplexity, exp(nll), is shown beside it and ranks teachers identically.
- rsr: the Rank-Surprisal Ratio (Yang et al. 2026, arXiv 2601.14249): per rationale,
  RSR = mean_t min(r_t, R) / mean_t s_t = sum_t min(r_t, R) / sum_t s_t, which is the surprisal-weighted
  mean of the token ratios r_t / s_t; a teacher's RSR is the mean over its rationales. Lower is better:
  informative (surprising) tokens that the student still ranks high.
- local_naturalness: (Just et al. 2025, arXiv 2510.03988) the rationale is cut into steps (sentences and
  lines); step j is scored given only the W = 1 step before it (after a start token), as the student's
  mean log-probability of the step's tokens, LN = mean_j mean_{t in step j} log p(t | step j-1); a
  teacher's LN is the mean over its rationales. Higher is better. (capgap's reading of the paper: steps
  are sentences, and the window holds no question, which also keeps its cost near one pass per rationale.)

Each predictor has a direction (+1: higher predicts a larger gain), used to rank teachers and to orient the
validation against realized gains (`analysis.predictive`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from capgap.errors import CapgapError
from capgap.models.scoring import TokenScores

PREDICTOR_VERSION = 1  # part of every prediction's key: bump when a formula changes
RANK_CLIP = 100
WINDOW = 1  # steps of context before the scored one, for local naturalness


@dataclass(frozen=True)
class Predictor:
    direction: int  # +1: higher predicts a larger gain; -1: lower does
    summary: str


PREDICTORS = {
    "rsr": Predictor(-1, "rank-surprisal ratio, mean rank / mean NLL (arXiv 2601.14249)"),
    "local_naturalness": Predictor(+1, "mean step log-prob given a one-step window (arXiv 2510.03988)"),
    "nll": Predictor(-1, "student mean NLL per rationale token (global naturalness)"),
    "teacher_accuracy": Predictor(+1, "teacher accuracy on the pool"),
    "usable": Predictor(+1, "rationales the protocol trains on"),
    "mean_tokens": Predictor(-1, "mean rationale length in student tokens (arXiv 2502.12143)"),
}


def predictor(name: str) -> Predictor:
    if name not in PREDICTORS:
        raise CapgapError(f"unknown predictor '{name}'; valid: {', '.join(PREDICTORS)}")
    return PREDICTORS[name]


def steps_of(text: str) -> list[str]:
    """A rationale's steps: its sentences and lines, in order, without empty ones."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def local_rows(tokenizer, text: str, chat: bool) -> list[dict]:
    """One scoring row per step: a start token and the previous WINDOW step(s) unscored, then the step."""
    steps, lead = steps_of(text), "" if chat else " "  # how training starts the completion (sft)
    start = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
    rows = []
    for j, step in enumerate(steps):
        first = max(0, j - WINDOW)
        before = " ".join(steps[first:j])
        context = tokenizer((lead if first == 0 else " ") + before, add_special_tokens=False)["input_ids"] \
            if before else []
        target = tokenizer((lead if j == 0 else " ") + step, add_special_tokens=False)["input_ids"]
        if target:
            rows.append({"input_ids": start + context + target, "labels": [-100] * (1 + len(context)) + target})
    return rows


def rationale_scores(whole: TokenScores, steps: list[TokenScores]) -> dict:
    """One rationale's numbers: tokens, summed NLL and clipped rank, RSR, local naturalness."""
    nll_sum, rank_sum = float(whole.nll.sum()), float(whole.rank.sum())
    step_means = [-float(s.nll.mean()) for s in steps if len(s.nll)]
    return {"tokens": len(whole.nll), "nll_sum": nll_sum, "rank_sum": rank_sum,
            "rsr": rank_sum / nll_sum if nll_sum > 0 else float("nan"),
            "local_naturalness": float(np.mean(step_means)) if step_means else float("nan")}


def teacher_scores(per_rationale: list[dict]) -> dict:
    """A teacher's student-side predictors from its sampled rationales' numbers (see the module docstring)."""
    if not per_rationale:
        return {"nll": None, "perplexity": None, "rsr": None, "local_naturalness": None, "mean_tokens": None}
    tokens = sum(r["tokens"] for r in per_rationale)
    nll = sum(r["nll_sum"] for r in per_rationale) / max(tokens, 1)
    return {"nll": nll, "perplexity": float(np.exp(nll)),
            "rsr": float(np.nanmean([r["rsr"] for r in per_rationale])),
            "local_naturalness": float(np.nanmean([r["local_naturalness"] for r in per_rationale])),
            "mean_tokens": tokens / len(per_rationale)}


def ranked(rows: list[dict], by: str) -> list[dict]:
    """Rows (one per teacher) best first by predictor `by`; rows without a value last."""
    sign = predictor(by).direction
    return sorted(rows, key=lambda r: (r.get(by) is None, -sign * (r.get(by) or 0.0)))
