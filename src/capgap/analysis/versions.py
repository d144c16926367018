"""Finished cells that an edit of the study's config superseded: shown beside the report, never hidden.

The report's verdicts use the cells of the study's latest plan. A cell that finished under an earlier config
version (another budget, teacher set, test split, ...) is not silently dropped: the report lists it under the
version it ran with, and names the fields in which that version differs from the latest.
"""

from __future__ import annotations

from collections import defaultdict

from capgap.config.changes import config_changes


def superseded(cells: list[dict], current: list[dict], configs: dict[int, dict], latest: int) -> list[dict]:
    """Finished cells not among the `current` ones, grouped by the config version they ran under."""
    current_keys = {c["cell_key"] for c in current}
    by_version: dict[int | None, list[dict]] = defaultdict(list)
    for cell in cells:
        if cell["status"] == "done" and cell["cell_key"] not in current_keys:
            by_version[cell.get("config_version")].append(cell)
    out = []
    for version, group in sorted(by_version.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        old = configs.get(version) if version is not None else None
        if version == latest:
            why = ["same config version: evaluated under other settings (items, decoding, precision or extraction)"]
        elif old is not None:
            why = config_changes(old, configs[latest])
        else:
            why = ["recorded before config versions were kept"]
        labels = sorted(f"{c['student']} <- {c['teacher']} ({c['protocol']}, seed {c['seed']})" for c in group)
        out.append({"config_version": version, "n_cells": len(group), "changes": why, "cells": labels,
                    "sentence": (f"{len(group)} finished cell(s) ran under config version {version or '?'} and "
                                 f"are not in the latest plan (version {latest}); changed: {'; '.join(why)}")})
    return out
