"""Maintainer tools for the course, run from a checkout (`python -m grader.maint COMMAND`):

- `stubs [NAME ...]` rewrites `exercises/<name>.py` from `solutions/<name>.py` (`grader.stubs`),
  so stubs and references never drift;
- `new NAME [--title T] [--section S] [--part P] [--points N]` scaffolds an exercise that already
  grades: a reference, its stub, a catalogue entry, a hints file, a checks module and a test
  module. Then edit four files by hand (the reference, the checks, the catalogue entry and the
  hints; README, "Adding an exercise") and run `stubs NAME` again;
- `check` validates the whole course, without running student code: the catalogue, the hints and
  the quiz bank load without a problem; every exercise has its reference, stub, checks, hints and
  test module; every stub is exactly the stub of its reference; the checks' points add up to the
  catalogue's per part; names are unique (exercises, checks, mistakes per check, statements).
  It prints each problem and exits 1 when there is one.

Commands exit 2 for usage errors (an unknown command, a name already taken, no checkout).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from grader.catalog import Exercise
from grader.stubs import generated_stubs, stub_source

_TEMPLATES = {  # file (relative to the checkout) -> its text; {name}, {title}, {section}, {part}, {points}
    "solutions/{name}.py": '''\
"""{title}: the reference solution.

TODO: what this exercise teaches and the notes' context ({section}). The stub in
exercises/{name}.py is made from this file (`python -m grader.maint stubs {name}`): every public
function keeps its signature and docstring, so the docstrings are the student's contract.
"""

from __future__ import annotations

import torch


def {name}(x: torch.Tensor) -> torch.Tensor:
    """TODO: what `{name}` computes (here, as a placeholder: the positive part of `x`).

    Args:
        x (Tensor[N, C, H, W]): the input.

    Returns:
        Tensor[N, C, H, W]: the result, with the dtype and device of `x`.
    """
    return x.clamp_min(0)  # (N, C, H, W)
''',
    "grader/checks/{name}.py": '''\
"""Hidden checks for `{name}`: TODO say what they test.

Each check builds seeded cases from the generator it is given; each `Mistake` rebuilds a common
wrong answer from the reference, so that the report names it (when it explains every case).
"""

from __future__ import annotations

from grader.checks import call, randn
from grader.engine.spec import Check, Mistake

_SECTION = "{section}"
_SHAPES = [(2, 3, 4, 4), (1, 1, 5, 7), (3, 2, 1, 1), (2, 4, 6, 3)]  # (N, C, H, W)


def _cases(g, ref):
    return [call("{name}", randn(g, *shape), grad=i % 2 == 1, label=f"x {{shape}}") for i, shape in enumerate(_SHAPES)]


def _absolute_value(ref):
    def {name}(x):
        return x.abs()

    return {{"{name}": {name}}}


MISTAKES = (
    Mistake("absolute-value", "TODO: what a student making this mistake did, and why it is wrong.", _absolute_value, _SECTION),
)

CHECKS = [
    Check("{part}_values", "{part}", {points}, _cases, MISTAKES, "TODO: what this check tests"),
]
''',
    "grader/study/hints/{name}.yaml": '''\
# Hints for `grade hint {name} PART`: from a nudge to the key idea, never the solution code.
# Each part has 2 to 4 hints; `section` is the notes' section to reread (see grader/study/hints.py).
version: 1
exercise: {name}
parts:
  {part}:
    - section: {section}
      text: >-
        TODO: a nudge: what to look at first.
    - section: {section}
      text: >-
        TODO: the key idea, in words.
''',
    "tests/test_checks_{name}.py": '''\
"""`{name}`: every known mistake of its checks, put into the reference, loses points and is named.
(`tests/test_exercises.py` covers the rest: full marks for the reference, zero for the stub.)"""

from __future__ import annotations

import pytest

from conftest import with_mistake
from grader.engine.spec import load_checks

N = "{name}"
MISTAKES = [(c.name, m.name) for c in load_checks(N) for m in c.mistakes]


@pytest.mark.parametrize("check, mistake", MISTAKES, ids=[m for _, m in MISTAKES])
def test_a_known_mistake_loses_points_and_is_named(grade, check, mistake):
    result = grade(N, source=with_mistake(N, mistake))
    graded = next(c for c in result["checks"] if c["name"] == check)
    assert graded["status"] == "failed", graded["message"]
    assert graded["mistake"] and graded["mistake"]["name"] == mistake
''',
}
_CATALOG_ENTRY = '''
  - name: {name}
    title: {title}
    section: {section}
    parts:
      {part}: {{points: {points}, summary: "TODO: what this part asks"}}
    forbidden: []
    forbidden_ops: []
'''


class MaintError(Exception):
    """A maintainer command cannot run (the message says why)."""


def _checkout() -> Path:
    from grader.paths import checkout_root

    root = checkout_root()
    if root is None:
        raise MaintError("grader.maint works on a checkout of the course (solutions/ beside grader/); none here.")
    return root


# --- stubs --------------------------------------------------------------------------------------
def write_stubs(root: Path, names: list[str] | None = None) -> list[Path]:
    """Rewrite the stubs of `names` (default: every reference) from the references."""
    written = []
    for name, text in generated_stubs(root / "solutions", names).items():
        out = root / "exercises" / f"{name}.py"
        out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


# --- new ----------------------------------------------------------------------------------------
def new_exercise(root: Path, name: str, *, title: str = "", section: str = "", part: str = "",
                 points: int = 4) -> list[Path]:
    """Scaffold exercise `name` in the checkout `root`; returns the files written (catalogue included)."""
    from grader.catalog import CATALOG_PATH, read_catalog

    catalog = read_catalog(CATALOG_PATH)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise MaintError(f"{name!r} cannot name an exercise: use a lowercase Python name (it names the files).")
    if name in {e.name for e in catalog.exercises}:
        raise MaintError(f"there is already an exercise {name!r} in {CATALOG_PATH}.")
    section = section or catalog.sections[-1]
    if section not in catalog.sections:
        raise MaintError(f"{section!r} is not a section of the course; choose one of {', '.join(catalog.sections)}.")
    if points < 1:
        raise MaintError(f"--points must be at least 1, got {points}.")
    values = {"name": name, "title": title or name.replace("_", " ").capitalize(), "section": section,
              "part": part or name, "points": points}
    targets = {(root / rel.format(**values)): text.format(**values) for rel, text in _TEMPLATES.items()}
    taken = [str(p) for p in targets if p.exists()]
    if taken:
        raise MaintError(f"these files exist already: {', '.join(taken)}")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    stub = write_stubs(root, [name])
    CATALOG_PATH.write_text(CATALOG_PATH.read_text(encoding="utf-8").rstrip("\n") + "\n"
                            + _CATALOG_ENTRY.format(**values), encoding="utf-8")
    read_catalog(CATALOG_PATH)  # the entry parses
    return [*targets, *stub, CATALOG_PATH]


# --- check --------------------------------------------------------------------------------------
def check_course(root: Path) -> list[str]:
    """Every problem of the course in the checkout `root` (none: it is consistent)."""
    from grader.catalog import CatalogError, read_catalog
    from grader.study.hints import validate_all

    problems: list[str] = []
    try:
        catalog = read_catalog()
    except CatalogError as exc:
        return [str(p) for p in exc.problems]  # everything else hangs on the catalogue
    problems += [str(p) for p in validate_all()]
    problems += _bank_problems()
    for exercise in catalog.exercises:
        problems += _exercise_problems(root, exercise)
    known = {e.name for e in catalog.exercises}
    for folder in ("solutions", "exercises", "grader/checks"):
        problems += [f"{root / folder / f.name}: no exercise {f.stem!r} in the catalogue (remove the file or add the exercise)"
                     for f in sorted((root / folder).glob("*.py")) if not f.name.startswith("_") and f.stem not in known]
    return problems


def _bank_problems() -> list[str]:
    from grader.quiz.bank import BankError, load_bank

    try:
        load_bank(use_cache=False)
    except BankError as exc:
        return [str(p) for p in exc.problems]
    return []


def _exercise_problems(root: Path, exercise: Exercise) -> list[str]:
    name = exercise.name
    problems = []
    reference, stub = root / "solutions" / f"{name}.py", root / "exercises" / f"{name}.py"
    test = root / "tests" / f"test_checks_{name}.py"
    missing = [str(p) for p in (reference, stub) if not p.is_file()]
    if (root / "tests").is_dir() and not test.is_file():
        missing.append(str(test))
    problems += [f"{path}: missing (exercise {name!r} of the catalogue)" for path in missing]
    if reference.is_file() and stub.is_file() and stub.read_text(encoding="utf-8") != stub_source(reference.read_text(encoding="utf-8")):
        problems.append(f"{stub}: is not the stub of {reference} (it drifted, or the reference changed): "
                        f"run `python -m grader.maint stubs {name}`")
    try:
        checks = list(importlib.import_module(f"grader.checks.{name}").CHECKS)
    except (ImportError, AttributeError) as exc:
        return [*problems, f"grader/checks/{name}.py: cannot be loaded as a checks module with CHECKS ({exc})"]
    where = f"grader/checks/{name}.py"
    names = [c.name for c in checks]
    problems += [f"{where}: check name {n!r} is used more than once" for n in sorted({n for n in names if names.count(n) > 1})]
    for check in checks:
        mistakes = [m.name for m in check.mistakes]
        problems += [f"{where}: check {check.name!r} names mistake {m!r} more than once"
                     for m in sorted({m for m in mistakes if mistakes.count(m) > 1})]
    parts = {p.name: p.points for p in exercise.parts}
    for check in checks:
        if check.part not in parts:
            problems.append(f"{where}: check {check.name!r} is for part {check.part!r}, which the catalogue's {name} does not have")
    for part, points in parts.items():
        total = sum(c.points for c in checks if c.part == part)
        if total != points:
            problems.append(f"{where}: the checks of part {part!r} give {total} points, the catalogue says {points}")
    return problems


# --- command line -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.maint", description="Maintainer tools for the course.")
    commands = parser.add_subparsers(dest="command", required=True)
    stubs = commands.add_parser("stubs", help="rewrite exercises/NAME.py from solutions/NAME.py")
    stubs.add_argument("names", nargs="*", metavar="NAME", help="default: every exercise")
    new = commands.add_parser("new", help="scaffold a new exercise that already grades")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--title", default="", help="default: NAME in words")
    new.add_argument("--section", default="", help="a section of the notes (default: the last one)")
    new.add_argument("--part", default="", help="the first part's name (default: NAME)")
    new.add_argument("--points", type=int, default=4, help="the first part's points (default: 4)")
    commands.add_parser("check", help="validate the whole course; exit 1 on any problem")
    args = parser.parse_args(argv)
    try:
        root = _checkout()
        if args.command == "stubs":
            for path in write_stubs(root, args.names or None):
                print(f"wrote {path}")
        elif args.command == "new":
            for path in new_exercise(root, args.name, title=args.title, section=args.section, part=args.part,
                                     points=args.points):
                print(f"wrote {path}")
            print(f"next: edit solutions/{args.name}.py, grader/checks/{args.name}.py, its entry in grader/catalog.yaml "
                  f"and grader/study/hints/{args.name}.yaml; then `python -m grader.maint stubs {args.name}` and "
                  "`python -m grader.maint check`.")
        else:
            problems = check_course(root)
            for problem in problems:
                print(problem)
            print(f"{len(problems)} problem(s)" if problems else "the course is consistent")
            return 1 if problems else 0
    except MaintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
