"""Mixture teachers (Mix-Distillation: Li et al. 2025, "Small Models Struggle to Learn from Strong Reasoners",
arXiv 2502.12143): every training question's rationales come from one of the mixture's parts, other teachers
of the study, drawn per question in the parts' shares. A 1:4 mixture of a long- and a short-CoT teacher
(Mix-Long) thus trains on about 20% long and 80% short rationales, on the same questions as either alone.

The draw is a hash of the parts (names and shares), the `draw` number and the question's id: the same in
every run and on every machine, independent of the pool's order, and the same for two mixtures of the same
parts (one at the study's budget, one at a published budget train on the same questions' rationales; another
`draw` gives another assignment). Protocols then filter the mixture like any teacher
(own-correct: the drawn part's correct rationales; intersection: the questions every teacher of the study
answered right), so the shares a protocol trains on can drift from the ones asked for; `realized_shares`
measures them, and the study states them beside the teacher.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict

from capgap.tasks.base import Item
from capgap.teachers.base import Rationale, TeacherRationales


def drawn_part(draw: int, item_id: str, shares: list[tuple[str, float]]) -> str:
    """The part (a teacher's name) that gives question `item_id` its rationales."""
    key = json.dumps([[teacher, share] for teacher, share in shares] + [draw, item_id])
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    reached = 0.0
    for teacher, share in shares:
        reached += share
        if u < reached:
            return teacher
    return shares[-1][0]


def mixture_rationales(name: str, parts: list[tuple[TeacherRationales, float]], pool: list[Item],
                       draw: int = 0) -> TeacherRationales:
    """The mixture's rationales: for each pool question, those of the part drawn for it (none when that part
    has none for the question, as with any teacher that does not cover a question)."""
    shares = [(t.teacher, share) for t, share in parts]
    of_part: dict[str, dict[str, list[Rationale]]] = {t.teacher: defaultdict(list) for t, _ in parts}
    for t, _ in parts:
        for r in t.rationales:
            of_part[t.teacher][r.item_id].append(r)
    drawn = {it.id: drawn_part(draw, it.id, shares) for it in pool}
    rationales = [r for it in pool for r in of_part[drawn[it.id]].get(it.id, [])]
    counts = Counter(drawn.values())
    said = ", ".join(f"{teacher} {counts[teacher]} ({100 * share:.0f}% asked)" for teacher, share in shares)
    notes = [f"mixture: questions drawn per part: {said}, of {len(pool)}"]
    return TeacherRationales(name, rationales, len(pool), None, notes, drawn=drawn)


def realized_shares(item_ids: list[str], drawn: dict[str, str], parts: list[str]) -> dict[str, float]:
    """The share of the training examples (their question ids) each part gave."""
    counts = Counter(drawn[i] for i in item_ids)
    return {p: counts[p] / len(item_ids) if item_ids else 0.0 for p in parts}
