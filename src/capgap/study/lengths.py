"""How long the students' answers are before distillation: the token limit a fair baseline needs.

A baseline cut at `evaluation.max_new_tokens` is not the student as it was (the report then gives no
verdict); an answer that loops to any limit is (`evaluation.metrics.looped`), and is counted apart.
`capgap plan --lengths N` and `capgap validate --lengths N` generate the student's answers to N test items
(spread evenly over the test set) with the study's prompt, engine and precision but a limit four times the
config's, and propose a limit at the 99th-percentile length of the answers that end. The probe runs in a
scratch store: it never adds rows to the results store.

    capgap plan study.yaml --lengths 32
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from capgap.config import StudyConfig
from capgap.evaluation import evaluate
from capgap.evaluation.metrics import looped
from capgap.models.backends import ModelRef
from capgap.models.engines import engine_name
from capgap.models.generation import Decoding
from capgap.store import Store
from capgap.study.data import prepare_task

HEADROOM = 4  # the probe's limit: this many times the config's
ROUND_TO = 16  # the proposed limit is rounded up to a multiple of this


def sample(items: list, n: int) -> list:
    """n items spread evenly over the list (all of them when it is shorter)."""
    if n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def propose(lengths: list[int], probe_limit: int) -> tuple[int | None, float]:
    """(the proposed max_new_tokens, the share of answers that reached the probe's own limit); None when
    more than 1% did, so the 99th percentile is beyond what the probe saw. Loops are left out by the caller."""
    cut = float(np.mean([n >= probe_limit for n in lengths])) if lengths else 0.0
    if not lengths or cut > 0.01:
        return None, cut
    p99 = float(np.percentile(lengths, 99))
    return ROUND_TO * math.ceil((p99 + 1) / ROUND_TO), cut


def _line(label: str, rows: list[dict], limit: int, probe_limit: int) -> str:
    """What the probe found for one task and student, and the limit it proposes."""
    lengths = [row["n_new_tokens"] for row in rows]
    loops = [row["n_new_tokens"] >= probe_limit and looped(row["generation"] or "") for row in rows]
    cut_now = float(np.mean([x >= limit and not loop for x, loop in zip(lengths, loops, strict=True)]))
    proposed, cut_probe = propose([x for x, loop in zip(lengths, loops, strict=True) if not loop], probe_limit)
    head = (f"{label}: on {len(rows)} test items the answers take {int(np.median(lengths))} tokens (median), "
            f"{int(np.percentile(lengths, 99))} (99th percentile); max_new_tokens {limit} cuts "
            f"{100 * cut_now:.0f}% of them")
    if any(loops):
        head += f", and {100 * np.mean(loops):.0f}% loop past {probe_limit} tokens (no limit ends those: not cut)"
    if all(loops):
        return f"{head}; every answer loops: no limit makes a difference; try another prompt"
    if proposed is None:
        return (f"{head}; {100 * cut_probe:.0f}% ran past {probe_limit} tokens without looping: no limit here "
                "makes a fair baseline; try another prompt")
    verdict = "keep it" if proposed <= limit else f"set evaluation.max_new_tokens: {proposed}"
    return f"{head}; proposed limit {proposed} (99th percentile of the answers that end, rounded up): {verdict}"


def probe_lengths(config: StudyConfig, n: int, *, progress: bool = False) -> list[str]:
    """One line per (task, student): the answer lengths on n test items, the share the config's limit cuts,
    and the proposed limit."""
    limit = config.evaluation.max_new_tokens
    probe_limit = HEADROOM * limit
    prompt = config.evaluation.prompt
    backend = engine_name(config.evaluation.backend)
    lines = []
    with tempfile.TemporaryDirectory() as scratch, Store(Path(scratch) / "lengths.sqlite") as store:
        for index, task_config in enumerate(config.tasks):
            test = prepare_task(task_config, index, config.data_dir).test
            items = sample(test.items, n)
            for student in config.students:
                result = evaluate(ModelRef(student, backend), replace(test, items=items), store, prompt=prompt,
                                  decoding=Decoding(max_new_tokens=probe_limit), dtype=config.evaluation.dtype,
                                  batch_size=config.evaluation.batch_size, progress=progress)
                lines.append(_line(f"{task_config.name} · {student}", result.rows, limit, probe_limit))
    return lines
