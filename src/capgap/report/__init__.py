"""Reports built from the results store alone: HTML (self-contained, with figures), Markdown, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from capgap.analysis import analyse_store, public
from capgap.errors import CapgapError, did_you_mean
from capgap.filepaths import check_file_path
from capgap.store import Store


def _json(analysis: dict) -> str:
    return json.dumps(public(analysis), indent=1, allow_nan=False) + "\n"


def _markdown(analysis: dict) -> str:
    from capgap.report.markdown import render as render_markdown

    return render_markdown(analysis)


def _html(analysis: dict) -> str:
    from capgap.report.html import render as render_html

    return render_html(analysis)


RENDERERS = {"html": _html, "md": _markdown, "json": _json}


def check_format(fmt: str) -> None:
    if fmt not in RENDERERS:
        raise CapgapError(f"unknown report format '{fmt}'{did_you_mean(fmt, list(RENDERERS))}")


def render(analysis: dict, fmt: str) -> str:
    check_format(fmt)
    return RENDERERS[fmt](analysis)


def write_files(analysis: dict, targets: dict[str, Path]) -> list[Path]:
    """One file per format ({fmt: path}) from an analysis. Each file is written beside its target and renamed
    into place, so a reader never sees half a report."""
    for fmt, path in targets.items():
        check_format(fmt)  # before any work
        check_target(path)
    for fmt, path in targets.items():
        text = render(analysis, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise CapgapError(f"report {path} could not be written ({e.strerror}); free space or pass -o with a "
                              "writable file path, then run `capgap report` again (the store is unchanged)") from None
    return list(targets.values())


def check_target(path: Path) -> None:
    """A report path must name a file: not a folder, not inside a file."""
    check_file_path(path, "report output", "-o", "report.html")


def write_reports(store: Store, targets: dict[str, Path], study: str | None = None) -> list[Path]:
    """Analyse the store once and write one file per format ({fmt: path})."""
    for fmt, path in targets.items():
        check_format(fmt)  # before the analysis, which is the slow part
        check_target(path)
    return write_files(analyse_store(store, study), targets)


__all__ = ["RENDERERS", "check_format", "render", "write_files", "write_reports"]
