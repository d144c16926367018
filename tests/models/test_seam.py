"""The generator seam: `capgap.models` knows no tasks, prompts or studies. Every import in its modules, deferred
ones inside functions included, is read from the source; one that reaches up the data flow fails here."""

import ast
from pathlib import Path

import capgap.models

ABOVE = ("capgap.evaluation", "capgap.tasks", "capgap.study", "capgap.config", "capgap.teachers",
         "capgap.analysis", "capgap.report", "capgap.selection", "capgap.training", "capgap.cli")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_models_import_nothing_above_them():
    folder = Path(capgap.models.__file__).parent
    found = {f"{path.name}: {name}" for path in folder.glob("*.py") for name in imported_modules(path)
             if name.startswith(ABOVE)}
    assert not found, sorted(found)
    assert "capgap.evaluation.prompts" in imported_modules(folder.parents[0] / "evaluation" / "runner.py")
