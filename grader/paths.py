"""Where things live: the course root, the progress folder and the course's data folders.

The course root is the nearest folder, from the working directory upward, that holds an
`exercises/` folder and either a `pyproject.toml` of cnn-grader or a `.grade/` folder (made by
`grade init`). The data folders (`exercises`, `solutions`, `quizzes`, and `docs` with the exercise
contract and the study notes) come from the checkout when the package runs from one, else from the
copy installed inside the package (`grader/_data/`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROGRESS_DIRNAME = ".grade"
PROGRESS_DB_ENV = "GRADE_PROGRESS_DB"
PROGRESS_DB_NAME = "progress.db"
DATA_KINDS = ("exercises", "solutions", "quizzes", "docs")


class CourseError(Exception):
    """A problem with the course folder that the user can fix (message says how)."""


def _is_course_root(path: Path) -> bool:
    if not (path / "exercises").is_dir():
        return False
    if (path / PROGRESS_DIRNAME).is_dir():
        return True
    pyproject = path / "pyproject.toml"
    if pyproject.is_file():
        try:
            return 'name = "cnn-grader"' in pyproject.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    return False


def find_course_root(start: Path | None = None) -> Path | None:
    """The nearest course root at or above `start` (default: the working directory), or None."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if _is_course_root(candidate):
            return candidate
    return None


def course_root(start: Path | None = None) -> Path:
    """Like `find_course_root`, but raises `CourseError` with advice when there is none."""
    root = find_course_root(start)
    if root is None:
        raise CourseError(
            f"No course folder found at or above {Path(start or Path.cwd()).resolve()}. "
            "Run this command inside the course (the folder that holds exercises/), "
            "or create a working copy with `grade init DIR` and run it there."
        )
    return root


def checkout_root() -> Path | None:
    """The repository the package runs from, if it runs from a checkout (editable or in place)."""
    root = PACKAGE_DIR.parent
    if (root / "solutions").is_dir() and (root / "exercises").is_dir():
        return root
    return None


def exercises_in(folder: Path, names: Iterable[str]) -> list[str]:
    """Those of the exercise `names` whose file (`<name>.py`) is in `folder`, in the order given."""
    return [name for name in names if (folder / f"{name}.py").is_file()]


def data_dir(kind: str) -> Path:
    """The folder of `kind` (one of DATA_KINDS): the checkout's, else the installed copy."""
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data folder {kind!r}; expected one of {DATA_KINDS}")
    root = checkout_root()
    if root is not None:
        return root / kind
    return PACKAGE_DIR / "_data" / kind


def section_slug(section: str) -> str:
    """A section of the course in file-name form: "GlobalAvgPooling" -> "global-avg-pooling".

    Its study notes are `docs/notes/<slug>.md`, and `grade notes <slug>` shows them.
    """
    return "-".join(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", section).lower().split())


def cache_dir() -> Path:
    """The user's cache folder for cnn-grader: `$XDG_CACHE_HOME/cnn-grader`, else
    `~/.cache/cnn-grader` (`RuntimeError` when there is no home folder). Only speed depends on it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnn-grader"


def kept_values_dir() -> Path | None:
    """Where the learner's commands keep the references' expected values for the public seed
    between runs (`engine.oracles.KeptValues`); None when there is no cache folder."""
    try:
        return cache_dir() / "expected"
    except RuntimeError:
        return None


def progress_dir(start: Path | None = None) -> Path:
    """The `.grade/` folder of the course (created on demand by the store, not here)."""
    override = os.environ.get("GRADE_HOME")
    if override:
        return Path(override)
    root = find_course_root(start)
    return (root if root is not None else Path.cwd()) / PROGRESS_DIRNAME


def progress_db() -> Path:
    """Where the progress store lives: `$GRADE_PROGRESS_DB`, else `<course>/.grade/progress.db`.
    (Here rather than in `store`, so that a command can see that nothing is stored yet without
    importing SQLite.)"""
    env = os.environ.get(PROGRESS_DB_ENV)
    if env:
        return Path(env).expanduser()
    return progress_dir() / PROGRESS_DB_NAME
