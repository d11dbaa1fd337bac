"""Maintainer tools: make the student stubs from the references, so the two never drift.

`python -m grader.maint stubs` rewrites `exercises/<name>.py` from `solutions/<name>.py`: every
public function and method (and `__init__`) keeps its signature and docstring, and its body becomes
one marker line plus `raise NotImplementedError(...)`. Private helpers (`_name`) are kept as they
are, so references must put no solution logic in them. `tests/test_exercises.py` proves that the
committed stubs are exactly what this produces. `grade release` and `grade gradescope-autograder`
ship stubs made here (`generated_stubs`), never the working `exercises/`, in which someone may have
solved an exercise (`edited_stubs` names those).
"""

from __future__ import annotations

import sys
from pathlib import Path

from grader.stubs import stub_source

def generated_stubs(solutions: Path, names: list[str] | None = None) -> dict[str, str]:
    """Exercise name -> the stub made from `solutions/<name>.py` (every reference, or `names`)."""
    return {ref.stem: stub_source(ref.read_text(encoding="utf-8")) for ref in sorted(Path(solutions).glob("*.py"))
            if not ref.name.startswith("_") and (not names or ref.stem in names)}


def write_stubs(root: Path, names: list[str] | None = None) -> list[Path]:
    written = []
    for name, text in generated_stubs(root / "solutions", names).items():
        out = root / "exercises" / f"{name}.py"
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


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


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) >= 2 and sys.argv[1] == "stubs":
        for path in write_stubs(Path(__file__).resolve().parent.parent, sys.argv[2:] or None):
            print(f"wrote {path}")
    else:
        print("usage: python -m grader.maint stubs [NAME ...]")
        sys.exit(2)
