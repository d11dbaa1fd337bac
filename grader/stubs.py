"""Stubs from references: the one rule that turns a reference solution into the student's stub.

Every public function and method (and `__init__`) keeps its signature and docstring, and its body
becomes one marker line plus `raise NotImplementedError(...)`, so "not attempted" and "wrong" are
different outcomes. Private helpers (`_name`) are kept as they are, so references must put no
solution logic in them. `python -m grader.maint stubs` writes `exercises/` with it,
`grader.study.workspace` rebuilds a pristine stub with it, and `tests/test_exercises.py` proves
that the committed stubs are exactly what it produces. Stdlib only.
"""

from __future__ import annotations

import ast

MARKER = "# TODO: your code here"


def _stub_targets(tree: ast.Module) -> list[ast.FunctionDef]:
    targets: list[ast.FunctionDef] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            targets.append(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and (item.name == "__init__" or not item.name.startswith("_")):
                    targets.append(item)
    return targets


def stub_source(reference: str) -> str:
    """The stub text for a reference module's source text."""
    tree = ast.parse(reference)
    lines = reference.splitlines(keepends=True)
    # Replace bodies from the bottom up so earlier line numbers stay valid.
    for fn in sorted(_stub_targets(tree), key=lambda f: f.lineno, reverse=True):
        body = fn.body
        has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str)
        first = body[1] if has_doc and len(body) > 1 else (None if has_doc else body[0])
        if first is None:
            continue
        start = first.lineno - 1
        end = body[-1].end_lineno
        indent = " " * first.col_offset
        replacement = [f"{indent}{MARKER}\n", f'{indent}raise NotImplementedError("{fn.name}")\n']
        lines[start:end] = replacement
    return "".join(lines)
