"""Config knobs: a dataclass field with its help text, allowed values and rules kept next to its type.

A leaf of the package (it imports nothing of capgap): the study config's sections (`config.schema`), the task
loaders' options (`tasks.arith`) and the command line's flags (`cli.options`) all declare and check their
settings with it, so a range is written once and every message about it is phrased from the same metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field

# A name that becomes a folder: a plain name, never a path.
# Letters of any script ("tïny-研究" is a name); a folder named after one gets `filepaths.folder_name`.
PLAIN_NAME = (r"[\w-][\w.-]*",
              "a plain name: letters (any script), digits, '-', '_' and '.' (not leading), no spaces or '/'")


def describe_range(meta: Mapping) -> str | None:
    """The allowed range of a number, as the help text and the error message both say it."""
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    low = f">= {lo}" if lo is not None else f"> {meta['above']}" if meta.get("above") is not None else None
    high = f"<= {hi}" if hi is not None else f"< {meta['below']}" if meta.get("below") is not None else None
    return " and ".join(p for p in (low, high) if p) or None


def range_problem(value: float, meta: Mapping) -> str | None:
    """Why `value` is outside the range in `meta` (None when it is inside)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    lo, hi, above, below = (meta.get(k) for k in ("min", "max", "above", "below"))
    inside = ((lo is None or value >= lo) and (hi is None or value <= hi) and (above is None or value > above)
              and (below is None or value < below))
    return None if inside else f"{value} is out of range; must be {describe_range(meta)}"


def knob(default=None, help: str = "", choices: tuple | None = None, required: bool = False, *,
         min: float | None = None, max: float | None = None, above: float | None = None,
         below: float | None = None, only: tuple | None = None, requires: str | None = None,
         excludes: str | None = None, unique: bool = False, pattern: tuple[str, str] | None = None,
         internal: bool = False, unless: str | None = None):
    """A config field with its help text, allowed values and rules kept next to its type.

    min/max (inclusive), above/below (exclusive): the range of a number, or of each number of a list.
    only: (field, values, who) - the field may be given only when `field` has one of `values`.
    requires / excludes: another field that must / must not be given with this one.
    unique: no list entry may repeat. pattern: (regex, description) a string must match in full.
    internal: set by capgap from another setting, never by a config (a config naming it gets 'unknown key').
    unless: with required, another field whose presence makes this one optional.
    """
    meta = {"help": help, "choices": choices, "required": required, "min": min, "max": max, "above": above,
            "below": below, "only": only, "requires": requires, "excludes": excludes, "unique": unique,
            "pattern": pattern, "internal": internal, "unless": unless}
    notes = [f"must be {r}" for r in [describe_range(meta)] if r]
    notes += [f"only {only[2]}"] if only else []
    notes += [f"needs {requires}"] if requires else []
    notes += [f"not with {excludes}"] if excludes else []
    notes += [f"unless {unless} is given"] if unless else []
    meta["help"] = f"{help} ({'; '.join(notes)})" if notes else help
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)
