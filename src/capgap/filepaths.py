"""Paths the user names for files capgap writes (the results store, a report), checked before any work."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from capgap.errors import CapgapError


def check_file_path(path: Path, what: str, flag: str, example: str) -> None:
    """`path` can become a file: it is not a folder, and no file stands where one of its folders would be.
    Messages name the path as `what`, the option that sets it (`flag`) and an `example` file name."""
    if path.is_dir():
        raise CapgapError(f"{what} {path} is a folder; pass {flag} with a file path such as {path / example}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CapgapError(f"{what} {path}: {parent} is a file, not a folder; pass {flag} with a path "
                                  "inside a folder")
            return


def folder_name(name: str) -> str:
    """A folder's safe spelling of a name: the name itself when it is plain ASCII, else its ASCII letters
    (accents dropped: "tïny" → "tiny"), '_' for every other character, and a short digest of the name, so
    that two names never share a folder ("tïny-研究" → "tiny-__-" + 8 hex digits)."""
    if name.isascii():
        return name
    spelled = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_"
                      for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return f"{spelled.lstrip('.')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


DEFAULT_STORE = Path("capgap-results") / "store.sqlite"  # every command's results store unless told otherwise
