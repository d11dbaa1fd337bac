"""The learner's working copy: create one (`grade init`), restore a stub (`grade reset`), and find
the pristine stubs and references that both need. No torch here.

Where the untouched stub of an exercise comes from: in a checkout of the course the stubs folder
*is* the learner's working folder, so the stub is rebuilt from the reference with
`grader.stubs.stub_source` (a test proves the two are identical); after an install the packaged
copy (`data_dir("exercises")`) is used. A student edition without references still has the latter.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.catalog import exercise_names
from grader.paths import PROGRESS_DIRNAME, checkout_root, data_dir

BACKUPS_DIRNAME = "backups"
README_TEMPLATE = "init_readme.md.j2"


class WorkspaceError(Exception):
    """Something the learner can fix; the message says what and how."""


# --- stubs and references -----------------------------------------------------------------------
def pristine_stub(name: str) -> str:
    """The untouched stub of exercise `name`, as text; `WorkspaceError` if this course has none."""
    if checkout_root() is not None:
        reference = data_dir("solutions") / f"{name}.py"
        if reference.is_file():
            from grader.stubs import stub_source

            return stub_source(reference.read_text(encoding="utf-8"))
    stub = data_dir("exercises") / f"{name}.py"
    if stub.is_file():
        return stub.read_text(encoding="utf-8")
    raise WorkspaceError(
        f"This copy of cnn-grader has no stub for {name!r} (looked for {stub}). "
        "Reinstall the package, or check the exercise name with `grade list`."
    )


def reference_source(name: str) -> str:
    """The reference solution of `name`; `WorkspaceError` when this edition has none."""
    path = data_dir("solutions") / f"{name}.py"
    if not path.is_file():
        raise WorkspaceError(
            f"This edition of the course has no reference solution for {name!r} ({path} does not exist): "
            "your instructor publishes the solutions separately."
        )
    return path.read_text(encoding="utf-8")


# --- grade init ---------------------------------------------------------------------------------
@dataclass
class InitReport:
    """What `init_course` made."""

    root: Path
    copied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # catalogue exercises with no stub here
    readme: Path | None = None  # None when a README.md was already there and was kept


def init_course(target: Path) -> InitReport:
    """Create a working copy in `target`: `exercises/` with every stub, a README and `.grade/`.

    Refuses (`WorkspaceError`) when `target` is a file or already has a non-empty `exercises/`,
    so that nobody's work is ever overwritten.
    """
    target = Path(target).expanduser()
    if target.exists() and not target.is_dir():
        raise WorkspaceError(f"{target} exists and is not a folder. Choose a new folder name, e.g. `grade init cnn-course`.")
    exercises = target / "exercises"
    if exercises.exists() and (not exercises.is_dir() or any(exercises.iterdir())):
        raise WorkspaceError(
            f"{exercises} already exists and is not empty, so `grade init` will not touch it (your work "
            f"would be overwritten). Choose a new folder, or restore single exercises with `grade reset NAME`."
        )
    stubs: dict[str, str] = {}
    missing: list[str] = []
    for name in exercise_names():
        try:
            stubs[name] = pristine_stub(name)
        except WorkspaceError:
            missing.append(name)
    if not stubs:
        raise WorkspaceError("This copy of cnn-grader has no exercise stubs to copy. Reinstall the package.")
    try:
        exercises.mkdir(parents=True, exist_ok=True)
        (target / PROGRESS_DIRNAME).mkdir(exist_ok=True)
        for name, text in stubs.items():
            (exercises / f"{name}.py").write_text(text, encoding="utf-8")
        readme = target / "README.md"
        wrote_readme = not readme.exists()
        if wrote_readme:
            readme.write_text(_readme(list(stubs)), encoding="utf-8")
    except OSError as exc:
        raise WorkspaceError(f"Cannot write the working copy in {target}: {exc.strerror or exc}. Choose a folder you can write to.") from exc
    return InitReport(target.resolve(), list(stubs), missing, readme if wrote_readme else None)


def _readme(names: list[str]) -> str:
    from grader.instructor.report import render_text

    return render_text(README_TEMPLATE, exercises=names)


# --- grade reset --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResetPlan:
    """What `reset_exercise` would do: `state` is 'missing', 'unchanged' or 'modified'."""

    name: str
    path: Path
    stub: str
    state: str


def plan_reset(name: str, folder: Path) -> ResetPlan:
    """Look before leaping: the learner's file and whether it differs from the stub."""
    path = Path(folder) / f"{name}.py"
    stub = pristine_stub(name)
    if not path.exists():
        state = "missing"
    elif not path.is_file():
        raise WorkspaceError(f"{path} is not a file. Move it aside, then run `grade reset {name}` again.")
    else:
        try:
            state = "unchanged" if path.read_text(encoding="utf-8", errors="replace") == stub else "modified"
        except OSError as exc:
            raise WorkspaceError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    return ResetPlan(name, path, stub, state)


def backup_path(backups: Path, name: str, now: datetime) -> Path:
    """`backups/NAME-YYYYmmdd-HHMMSS.py`, with `-2`, `-3`... when that name is taken."""
    stem = f"{name}-{now:%Y%m%d-%H%M%S}"
    candidate = backups / f"{stem}.py"
    n = 2
    while candidate.exists():
        candidate = backups / f"{stem}-{n}.py"
        n += 1
    return candidate


def reset_exercise(plan: ResetPlan, backups: Path, now: datetime | None = None) -> Path | None:
    """Restore the stub of `plan`; the old file is first copied to `backups` (returned).

    The copy is verified before the stub replaces the file, and the stub is written to a
    temporary file renamed into place, so at every moment one of the two copies is complete.
    """
    backup = None
    try:
        if plan.state == "modified":
            backups.mkdir(parents=True, exist_ok=True)
            backup = backup_path(backups, plan.name, now or datetime.now())
            shutil.copy2(plan.path, backup)
            if not filecmp.cmp(plan.path, backup, shallow=False):
                raise WorkspaceError(f"The backup {backup} does not match {plan.path}; nothing was changed. Copy your file aside by hand.")
        plan.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = plan.path.with_name(f".{plan.path.name}.{os.getpid()}.tmp")
        tmp.write_text(plan.stub, encoding="utf-8")
        tmp.replace(plan.path)
    except OSError as exc:
        raise WorkspaceError(f"Cannot restore {plan.path}: {exc.strerror or exc}. Your file was not changed"
                             + (f" (a backup is in {backup})" if backup and backup.exists() else "") + ".") from exc
    return backup
