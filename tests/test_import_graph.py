"""The package's import graph: no circles (run-time imports), and the core never imports the plugin."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import attribkit

ROOT = Path(attribkit.__file__).resolve().parent


def run_time_imports() -> dict[str, set[str]]:
    """Module -> attribkit modules it imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    graph: dict[str, set[str]] = defaultdict(set)

    class Visitor(ast.NodeVisitor):
        def __init__(self, module: str) -> None:
            self.module = module

        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.module.startswith("attribkit"):
                graph[self.module].add(node.module)

        def visit_Import(self, node: ast.Import) -> None:
            graph[self.module].update(a.name for a in node.names if a.name.startswith("attribkit"))

    for file in ROOT.rglob("*.py"):
        module = ".".join(("attribkit", *file.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
        Visitor(module).visit(ast.parse(file.read_text(encoding="utf-8")))
    return graph


def test_no_import_circles_below_the_package_root():
    graph = run_time_imports()
    circles = set()
    for start in graph:
        if start == "attribkit":  # the root re-exports everything lazily; it is not part of a circle
            continue
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.add(frozenset(path))
                elif nxt not in path and nxt != "attribkit":
                    stack.append((nxt, (*path, nxt)))
    assert not circles, [sorted(c) for c in circles]


def test_the_core_never_imports_the_distillation_plugin():
    offenders = {
        m for m, targets in run_time_imports().items() if any(t.startswith("attribkit_distill") for t in targets)
    }
    assert not offenders


def test_the_plugin_uses_only_the_cores_public_names():
    """attribkit_distill imports ``from attribkit import <public name>`` (or ``import attribkit``), nothing deeper."""
    import attribkit_distill

    public = set(attribkit.__all__)
    offenders = []
    for file in Path(attribkit_distill.__file__).resolve().parent.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "attribkit.deprecation":
                continue  # the old module paths (train.py, trainer.py) forward to their new names through it
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attribkit."):
                offenders.append(f"{file.name}: from {node.module} import ...")
            elif isinstance(node, ast.ImportFrom) and node.module == "attribkit":
                offenders += [f"{file.name}: {a.name} is not public" for a in node.names if a.name not in public]
            elif isinstance(node, ast.Import):
                offenders += [f"{file.name}: import {a.name}" for a in node.names if a.name.startswith("attribkit.")]
    assert not offenders, offenders
