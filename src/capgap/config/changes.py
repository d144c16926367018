"""What changed between two versions of a study's config, field by field (the plan's stored progress and the
report's superseded cells both say it this way)."""

from __future__ import annotations


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def config_changes(old: dict, new: dict, limit: int = 6) -> list[str]:
    """What changed from config `old` to `new`, one "field: old → new" per changed field (at most `limit`)."""
    a, b = _flatten(old), _flatten(new)
    changed = [f"{k}: {a.get(k, '(unset)')} → {b.get(k, '(unset)')}" for k in sorted(set(a) | set(b))
               if a.get(k) != b.get(k)]
    return changed[:limit] + ([f"... and {len(changed) - limit} more"] if len(changed) > limit else [])
