"""The package's layers hold: every import of capgap's own code (deferred imports inside functions included,
`if TYPE_CHECKING:` blocks not) points to a lower layer of the order written in `capgap/__init__.py`'s
docstring, so the package graph has no cycle. Read from the source with `ast`: nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "capgap"
MAX_LINES = 400


def layer_order(docstring: str) -> list[set[str]]:
    """The layers, top first, from the indented block under "Layers, top to bottom" (one layer per line)."""
    lines = docstring.split("Layers, top to bottom", 1)[1].splitlines()[1:]
    block = [line for line in lines if line.startswith("    ")]
    start = lines.index(block[0])
    layers = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        layers.append(set(line.split("#", 1)[0].split()))
    return layers


def unit_of(module: str) -> str:
    """The layered unit of a module: its package or single-file module under capgap (the root is `capgap`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "capgap"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return inside


def imports_of(source: str, module: str) -> list[tuple[str, int]]:
    """(capgap module imported, line) for every import in `source`, deferred ones too, TYPE_CHECKING not."""
    tree = ast.parse(source)
    skip = _type_checking_nodes(tree)
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: resolved against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            names = [f"{target}.{a.name}" for a in node.names] if target == "capgap" else [target]
            found += [(t, node.lineno) for t in names]
    return [(t, line) for t, line in found if t == "capgap" or t.startswith("capgap.")]


def violations(source: str, module: str, layers: list[set[str]]) -> list[str]:
    """Imports of `module` that point up the order or sideways within a layer."""
    index = {unit: i for i, layer in enumerate(layers) for unit in layer}
    unit = unit_of(module)
    out = []
    for target, line in imports_of(source, module):
        other = unit_of(target)
        if other == unit:
            continue
        if other not in index:
            out.append(f"{module}:{line} imports {target}: '{other}' is in no layer of capgap/__init__.py")
        elif index[other] <= index[unit]:
            out.append(f"{module}:{line} imports {target}: '{other}' is not below '{unit}'")
    return out


LAYERS = layer_order(ast.get_docstring(ast.parse((SRC / "__init__.py").read_text())))
MODULES = sorted(SRC.rglob("*.py"))


def test_the_layer_order_names_every_package_and_module_once():
    units = [u for layer in LAYERS for u in layer]
    assert len(units) == len(set(units))
    present = {unit_of(module_name(p)) for p in MODULES}
    assert present == set(units), f"unplaced: {present - set(units)}; gone: {set(units) - present}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_run_down_the_layers(path: Path):
    assert violations(path.read_text(), module_name(path), LAYERS) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_over_the_line_limit(path: Path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_check_catches_upward_deferred_and_sideways_imports():
    layers = [{"report"}, {"analysis"}, {"tasks", "models"}, {"errors"}]
    upward = "def f():\n    from capgap.report import render\n"  # deferred, inside a function
    assert violations(upward, "capgap.analysis.cells", layers) == [
        "capgap.analysis.cells:2 imports capgap.report: 'report' is not below 'analysis'"]
    assert violations("import capgap.models.loading\n", "capgap.tasks.base", layers) == [
        "capgap.tasks.base:1 imports capgap.models.loading: 'models' is not below 'tasks'"]
    assert violations("from capgap import analysis\n", "capgap.tasks", layers) == [
        "capgap.tasks:1 imports capgap.analysis: 'analysis' is not below 'tasks'"]
    assert violations("from ..report import html\n", "capgap.analysis.cells", layers) == [
        "capgap.analysis.cells:1 imports capgap.report: 'report' is not below 'analysis'"]
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from capgap.report import x\n"
    assert violations(typed, "capgap.analysis.cells", layers) == []
    assert violations("from capgap.errors import CapgapError\n", "capgap.report.html", layers) == []
    assert violations("from capgap.gadgets import x\n", "capgap.report.html", layers) == [
        "capgap.report.html:1 imports capgap.gadgets: 'gadgets' is in no layer of capgap/__init__.py"]
