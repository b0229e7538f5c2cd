"""The dependency rules of the architecture, read from the source with `ast` (nothing is imported):
no import cycle among module-level imports, a client that imports only what it may, a processing
package that needs nothing else of focoos, and the upper parts (builder, client, training) imported
under focoos/ only lazily, except by the CLI, the composition root."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package it installs as (pyproject.toml's package-dir).
PACKAGES = {"focoos": "focoos", "builder": "focoos.builder", "client": "focoos.client", "training": "focoos.training"}
UPPER = ("focoos.builder", "focoos.client", "focoos.training")
# What the client may import of focoos; focoos.results is the one conversion it shares with local inference,
# and itself imports only ports and processing (checked below), so the client's reach stays as narrow.
CLIENT_MAY_IMPORT = ("focoos.ports", "focoos.errors", "focoos.processing", "focoos.results", "focoos.client")
CLIENT_FORBIDDEN_THIRD_PARTY = ("torch", "torchvision", "timm", "onnx", "onnxruntime")


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@cache
def modules() -> dict[str, Path]:
    """Module name -> source file, for every module of the four folders."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: outside functions and `if TYPE_CHECKING:`."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _imports(name: str, lazy: bool) -> set[str]:
    """Absolute names `name` imports: at module level, or anywhere in it with `lazy`."""
    tree = ast.parse(modules()[name].read_text(), filename=str(modules()[name]))
    nodes = ast.walk(tree) if lazy else _module_level_imports(tree)
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules())
            found.update(submodules)
            if len(submodules) < len(node.names) and base != name:  # names defined in base: base runs
                found.add(base)
    return found


def _edges(lazy: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of the four folders it imports."""
    return {name: {target for target in _imports(name, lazy) if target in modules()} for name in modules()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_four_folders_are_found():
    names = modules()
    assert {"focoos", "focoos.cli", "focoos.client", "focoos.builder", "focoos.training", "focoos.processing"} <= set(
        names)


def test_no_import_cycle_among_module_level_imports():
    assert _cycles(_edges()) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]


@pytest.mark.parametrize("name", sorted(n for n in modules() if _within(n, ("focoos.client",))))
def test_client_imports_only_ports_errors_processing_tritonclient_and_itself(name):
    imported = _imports(name, lazy=True)
    wrong = sorted(i for i in imported if i.split(".")[0] == "focoos" and not _within(i, CLIENT_MAY_IMPORT))
    heavy = sorted(i for i in imported if i.split(".")[0] in CLIENT_FORBIDDEN_THIRD_PARTY)
    assert wrong == [] and heavy == []


def test_what_the_client_shares_with_local_inference_stays_as_narrow():
    imported = {i for i in _imports("focoos.results", lazy=True) if i.split(".")[0] == "focoos"}
    assert all(_within(i, ("focoos.ports", "focoos.processing")) for i in imported), imported


@pytest.mark.parametrize("name", sorted(n for n in modules() if _within(n, ("focoos.processing",))))
def test_processing_imports_nothing_of_focoos_outside_itself(name):
    """It is copied next to each Python-backend model of a repository, where nothing else of focoos is."""
    outside = sorted(i for i in _imports(name, lazy=True)
                     if i.split(".")[0] == "focoos" and not _within(i, ("focoos.processing",)))
    assert outside == []


def test_focoos_imports_builder_client_training_only_lazily_except_the_cli():
    reaching_up = {}
    for name in modules():
        if _within(name, (*UPPER, "focoos.cli")):
            continue
        upward = sorted(i for i in _imports(name, lazy=False) if _within(i, UPPER))
        if upward:
            reaching_up[name] = upward
    assert reaching_up == {}
