"""The house: each wing is a folder, the top of `grader/` stays small, imports go one way (a room
imports only rooms below it, never one beside or above it) and there is no import cycle.

The functions of `grader/__init__.py` are the package's notebook entry points (`grader.check`,
`load_ipython_extension`), which Python and IPython look up on the package itself. Like `cli`,
they are front ends: their imports count as those of the node ENTRY_POINTS in the front room,
while the module's own imports stay in the base room."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "grader"
MAX_TOP_MODULES = 10
ENTRY_POINTS = "grader:entry-points"  # what the functions of grader/__init__.py import

# Rooms from the bottom up. A module belongs to the first room with a matching prefix.
ROOMS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "base", ("grader.paths", "grader.datafile", "grader.store", "grader.catalog", "grader.stubs")),
    (1, "runner", ("grader.runner",)),
    (2, "vocabulary", ("grader.engine.spec", "grader.engine.compare", "grader.checks")),
    (3, "engine", ("grader.engine",)),
    (4, "views", ("grader.views",)),
    (4, "quiz", ("grader.quiz",)),
    (5, "instructor", ("grader.instructor",)),
    (6, "study", ("grader.study",)),
    (7, "front", ("grader.commands", "grader.cli", "grader.maint")),
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> tuple[int, str]:
    if module == ENTRY_POINTS:
        return ROOMS[-1][0], ROOMS[-1][1]
    if module == "grader":
        return 0, "base"
    for rank, name, prefixes in ROOMS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank, name
    raise AssertionError(f"{module} belongs to no room: add it to ROOMS")


@functools.cache
def _imports() -> dict[str, set[str]]:
    """Every module of the package -> the package's modules it imports (top level or in functions);
    parsed once for both tests, which only read it."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py") if "_data" not in p.parts}
    edges: dict[str, set[str]] = {m: set() for m in [*modules, ENTRY_POINTS]}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if module == "grader":
            functions = [f for f in tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
            tree.body = [s for s in tree.body if s not in functions]
            edges[ENTRY_POINTS] = {n.module for f in functions for n in ast.walk(f)
                                   if isinstance(n, ast.ImportFrom) and n.module in modules}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges[module].update(t for t in targets if t in modules and t != module)
    return edges


def test_the_top_of_the_package_is_small_and_each_wing_is_a_folder():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_MODULES, top
    for wing in ("engine", "runner", "checks", "quiz", "study", "instructor", "views", "commands"):
        assert (PACKAGE / wing / "__init__.py").is_file(), wing


def test_no_room_imports_a_room_beside_or_above_it():
    wrong = []
    for module, targets in _imports().items():
        rank, room = _room(module)
        for target in sorted(targets):
            t_rank, t_room = _room(target)
            if t_rank > rank or (t_rank == rank and t_room != room):
                wrong.append(f"{module} ({room}) imports {target} ({t_room})")
    assert wrong == [], "\n".join(wrong)


def test_there_is_no_import_cycle():
    edges = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)
