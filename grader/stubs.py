"""Stubs from references: the one rule that turns a reference solution into the student's stub.

Every public function and method (and `__init__`) keeps its signature and docstring, and its body
becomes one marker line plus `raise NotImplementedError(...)`, so "not attempted" and "wrong" are
different outcomes. Private helpers (`_name`) are kept as they are, so references must put no
solution logic in them. `python -m grader.maint stubs` writes `exercises/` with it,
`grader.study.workspace` rebuilds a pristine stub with it, and `tests/test_exercises.py` proves
that the committed stubs are exactly what it produces. `grade release` and
`grade gradescope-autograder` ship stubs made here (`generated_stubs`), never the working
`exercises/`, in which someone may have solved an exercise (`edited_stubs` names those). Stdlib only.
"""

from __future__ import annotations

import ast
from pathlib import Path

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


def generated_stubs(solutions: Path, names: list[str] | None = None) -> dict[str, str]:
    """Exercise name -> the stub made from `solutions/<name>.py` (every reference, or `names`)."""
    return {ref.stem: stub_source(ref.read_text(encoding="utf-8")) for ref in sorted(Path(solutions).glob("*.py"))
            if not ref.name.startswith("_") and (not names or ref.stem in names)}


def edited_stubs(root: Path) -> list[str]:
    """The exercises whose `root/exercises/<name>.py` is not the stub its reference makes (someone
    worked in it, or it is missing): what a release must not ship, and should warn about."""
    edited = []
    for name, text in generated_stubs(root / "solutions").items():
        path = root / "exercises" / f"{name}.py"
        try:
            if path.read_text(encoding="utf-8") != text:
                edited.append(name)
        except (OSError, UnicodeDecodeError):
            edited.append(name)
    return edited
