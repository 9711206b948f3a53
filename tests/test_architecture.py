"""The package layout is the architecture: every import points down the layers, none in a circle,
and only the command wing uses Typer or rich.

Layers, lowest first (a module may import its own layer and the ones below, never above)::

    errors, observer, registry, jsonl, optuna_api, candidate_record -> data, features
    -> spaces, models -> train, export, proxies, strategies, scores -> rsa, activations, teacher
    -> evaluate -> search -> experiments -> report -> demo -> cli

Imports inside functions and under ``TYPE_CHECKING`` count too: a lazy upward import is still an
upward arrow.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import tgsage

SRC = Path(tgsage.__file__).parent
LAYERS: list[set[str]] = [
    {"tgsage", "errors", "observer", "registry", "jsonl", "optuna_api", "candidate_record"},
    {"data", "features"},
    {"spaces", "models"},
    {"train", "export", "proxies", "strategies", "scores"},
    {"rsa", "activations", "teacher"},
    {"evaluate"},
    {"search"},
    {"experiments"},
    {"report"},
    {"demo"},
    {"cli", "__main__"},
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}
WING = "cli"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ("tgsage", *path.relative_to(SRC).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _part(module: str) -> str:
    """The top-level part of tgsage a module belongs to (its package, or its own name)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tgsage"


def _target(module: str, name: str | None = None) -> str:
    """The module an import loads: ``from pkg import sub`` is ``pkg.sub`` when that exists."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    while module not in MODULES and "." in module:
        module = module.rsplit(".", 1)[0]
    return module


def _imports(path: Path, *, module_level_only: bool) -> list[tuple[int, str]]:
    """(line, imported tgsage module) of every import in a file."""
    tree = ast.parse(path.read_text())
    if module_level_only:
        nodes = [
            n
            for stmt in tree.body
            if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            for n in ast.walk(stmt)
        ]
    else:
        nodes = list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "tgsage":
                found += [(node.lineno, _target(node.module, a.name)) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, _target(a.name))
                for a in node.names
                if a.name.split(".")[0] == "tgsage"
            ]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_part_of_the_package_has_a_layer() -> None:
    unplaced = sorted({_part(m) for m in MODULES} - set(LAYER))
    assert not unplaced, f"add {unplaced} to LAYERS in {__file__}"


def test_no_import_points_up_a_layer() -> None:
    upward: set[str] = set()
    for module, path in MODULES.items():
        for line, target in _imports(path, module_level_only=False):
            if LAYER[_part(target)] > LAYER[_part(module)]:
                upward.add(f"{path.relative_to(SRC.parent)}:{line} {module} -> {target}")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle_between_modules_or_packages() -> None:
    modules: dict[str, set[str]] = defaultdict(set)
    parts: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for _, target in _imports(path, module_level_only=True):
            modules[module].add(target)
        for _, target in _imports(path, module_level_only=False):
            if _part(target) != _part(module):
                parts[_part(module)].add(_part(target))
    assert _cycles(modules) == [], "modules importing each other at import time"
    assert _cycles(parts) == [], "packages importing each other"


def test_typer_and_rich_only_in_the_command_wing() -> None:
    outside = []
    for module, path in MODULES.items():
        if _part(module) == WING:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] in ("typer", "rich") for n in names):
                outside.append(f"{module}:{node.lineno}")
    assert not outside, f"typer/rich imported outside tgsage.cli: {outside}"


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"a"}}, []),  # a module importing its own package is no cycle
    ],
)
def test_cycle_finder_on_hand_made_graphs(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(graph) == expected
