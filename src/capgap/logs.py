"""Progress lines of long work (a study's stages, its cells, a selection's rounds): on stderr, redacted, one per
event, so a terminal shows progress and a log file or CI stays readable (no bars, no colours)."""

from __future__ import annotations

import sys

from capgap.redact import redact


def log(message: str) -> None:
    print(redact(message), file=sys.stderr, flush=True)
