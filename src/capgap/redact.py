"""Secrets never reach the store, a log line or a report.

capgap takes credentials only from the environment: a config names an environment variable, never holds a
key. `secret_kind` recognises what looks like a credential (API keys of the common providers, a URL with a
user and password, a secret-named field); configs holding one are refused, and `redact` masks any that
reaches an error or log line anyway (a URL on the command line, a server's reply).
"""

from __future__ import annotations

import re

_PATTERNS = {
    # OpenAI / Anthropic (sk-, sk-proj-, sk-ant-...), Hugging Face, GitHub, AWS, Slack, Google: a run of 20+
    # letters and digits after the prefix, so hyphenated words such as "sk-learn-baseline" are not keys.
    "an API key": re.compile(r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_]{20,}|\bhf_[A-Za-z0-9]{20,}"
                             r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b|\bxox[abprs]-[0-9]{6,}-[A-Za-z0-9-]+"
                             r"|\bAIza[0-9A-Za-z_-]{35}\b"),
    "a bearer token": re.compile(r"(?i)\bbearer\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}"),
    "a URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
}
# Fields that hold credentials by name. An `..._env` field names an environment variable instead: allowed.
_SECRET_FIELD = re.compile(r"(?i)(api[_-]?key|access[_-]?(key|token)|secret([_-]?key)?|passw(or)?d|(auth[_-]?)?token"
                           r"|credentials?)(_env)?")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
MASK = "<redacted>"
HOW = ("capgap takes credentials only from environment variables: keep the key in the environment of the "
       "process, never in a config file or on the command line")


def secret_kind(text: str) -> str | None:
    """What kind of credential `text` holds ("an API key", ...), or None."""
    return next((kind for kind, pattern in _PATTERNS.items() if pattern.search(text)), None)


def field_secret_kind(name: str, value: object) -> str | None:
    """A credential held by a config field: by its value, or by a secret-named field holding a value that is
    not the name of an environment variable."""
    if isinstance(value, str) and (kind := secret_kind(value)):
        return kind
    if isinstance(value, str) and _SECRET_FIELD.fullmatch(name):
        if name.lower().endswith("_env") and _ENV_NAME.fullmatch(value):
            return None
        return f"a secret (field '{name}')"
    return None


def redact(text: str) -> str:
    """`text` with every credential it holds masked (a URL keeps its host, losing its user and password)."""
    text = _PATTERNS["a URL with a password"].sub(lambda m: m.group(0).split("://")[0] + f"://{MASK}@", text)
    for kind in ("an API key", "a bearer token"):
        text = _PATTERNS[kind].sub(MASK, text)
    return text


def scan(data: object, path: str = "") -> tuple[object, list[tuple[str, str]]]:
    """(data with every secret value masked, [(where, kind)]) for a parsed YAML/JSON value."""
    found: list[tuple[str, str]] = []

    def walk(value: object, where: str, name: str) -> object:
        if isinstance(value, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k), str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{where}[{i}]", name) for i, v in enumerate(value)]
        kind = field_secret_kind(name, value)
        if kind:
            found.append((where, kind))
            return MASK
        return value

    return walk(data, path, ""), found
