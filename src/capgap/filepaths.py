"""Paths the user names for files capgap writes (the results store, a report), checked before any work."""

from __future__ import annotations

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


DEFAULT_STORE = Path("capgap-results") / "store.sqlite"  # every command's results store unless told otherwise
