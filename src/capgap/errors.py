"""User-facing errors.

A `CapgapError` is a problem the user can fix (a bad config, data file, model path or server reply). Its
message names the problem *and* the fix; the CLI prints it as one line with no traceback. Anything else
escaping is a bug in capgap.
"""

from __future__ import annotations


class CapgapError(Exception):
    """A problem with the user's input, reported as one line: what is wrong and how to fix it."""


def did_you_mean(name: str, valid: list[str]) -> str:
    """The tail of an 'unknown name' message: the valid names, closest first when one is close."""
    import difflib

    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; valid names: {', '.join(sorted(valid))}"


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, cut at `limit` characters ("" when it has none): what an
    error line quotes of a library's failure."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else ""
