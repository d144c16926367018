"""Key digests: the short hash every key of the store is (evaluations, cells, training runs, predictions), of a
spec's canonical JSON, so equal specs always give equal keys across runs and machines."""

from __future__ import annotations

import hashlib
import json


def digest(spec: object) -> str:
    """24 hex characters of the SHA-256 of `spec` as sorted-key JSON (values JSON cannot hold as their text)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]
