"""The click commands of `grade`, thin layers over the library: `exercise` (list, exercise, all),
`study` (init, reset, hint, watch, progress, solution), `quiz` and `instructor` (batch, report,
gradescope-autograder, github-classroom, release), and `notebook`, the IPython magics. `grader.cli`
loads each module only when its command runs.

This module holds what they share: the exit codes, the options `--path`, `--seed`, `--timeout`
and `--device` (declared once here), the shell completion of exercise names, parts and quiz
topics (click's; see README "Shell completion"), and the helpers that turn a name or a folder into
an exercise or a usage error. It imports click only.

Exit codes, the same for every command: 0 when everything asked for succeeded (for grading: every
check passed), 1 when grading found checks that did not pass (or `grade solution` refuses because
the exercise is not passed yet), 2 for usage and setup errors: an unknown name, a wrong path, a
missing exercise file, an unusable progress database or data file, a course that cannot grade.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from grader.catalog import Exercise, exercise_names, get_exercise, load_catalog

if TYPE_CHECKING:
    from grader.engine.results import ExerciseResult

EXIT_OK, EXIT_FAILED, EXIT_SETUP = 0, 1, 2


class SetupFailure(click.ClickException):
    """Something the user must fix before the command can work (a missing file, a corrupt progress
    database, an unusable data file...): the message says what, and the exit code is 2."""

    exit_code = EXIT_SETUP


# --- shared options -----------------------------------------------------------------------------
def path_option(f: Callable) -> Callable:
    return click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Folder holding the exercise files (default: the course's exercises/).")(f)


def seed_option(help: str = "Base seed of the hidden inputs.") -> Callable[[Callable], Callable]:
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def timeout_option(f: Callable) -> Callable:
    return click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                        help="Wall-clock seconds allowed per check.")(f)


def device_option(f: Callable) -> Callable:
    return click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                        help="Where the hidden checks run your code.")(f)


def grading_options(f: Callable) -> Callable:
    """`--path`, `--seed`, `--timeout` and `--device`, in that order in `--help`."""
    return path_option(seed_option()(timeout_option(device_option(f))))


# --- shell completion ---------------------------------------------------------------------------
def complete_exercise(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Exercise names from the catalogue, with their titles."""
    return [CompletionItem(ex.name, help=ex.title) for ex in load_catalog() if ex.name.startswith(incomplete)]


def complete_part(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The parts of the exercise named earlier on the command line."""
    # While an option still waits for its value, click leaves the arguments unparsed in ctx.args.
    name = ctx.params.get("name") or next((a for a in ctx.args if a in exercise_names()), "")
    try:
        exercise = get_exercise(name)
    except KeyError:
        return []
    return [CompletionItem(p.name, help=p.summary) for p in exercise.parts if p.name.startswith(incomplete)]


def complete_topic(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Quiz topics: the bank's file names (no file is parsed)."""
    from grader.paths import data_dir

    return [CompletionItem(f.stem) for f in sorted(data_dir("quizzes").glob("*.yaml")) if f.stem.startswith(incomplete)]


# --- names, folders, devices --------------------------------------------------------------------
def exercise_named(name: str) -> Exercise:
    """The catalogue's exercise `name`, or a usage error suggesting the close names (if any)."""
    try:
        return get_exercise(name)
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, exercise_names(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise click.UsageError(f"Unknown exercise {name!r}.{hint} `grade list` shows them all.") from None


def exercise_folder(path: Path | None) -> Path:
    """The folder of the exercise files: `--path`, else the course's `exercises/` (usage errors
    when `--path` is not a folder or there is no course here)."""
    from grader.paths import CourseError, course_root

    if path is not None:
        if not path.is_dir():
            raise click.UsageError(f"--path {path} is not a folder. Pass the folder that holds your exercise files.")
        return path
    try:
        return course_root() / "exercises"
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None


def check_device(device: str) -> None:
    """A usage error for `--device cuda` where no CUDA device is available (imports torch)."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--device cuda: no CUDA device is available here. Use --device cpu.")


# --- the progress store -------------------------------------------------------------------------
def last_results() -> dict[str, ExerciseResult]:
    """The last stored result of each exercise ({} when nothing is stored yet: then neither SQLite
    nor the store is imported, and no empty database is made); `grader.store.StoreError` when the
    store cannot be read."""
    from grader.paths import progress_db

    if not progress_db().is_file():
        return {}
    from grader.engine.results import typed_results
    from grader.store import Store

    with Store.open() as store:
        return typed_results(store.last_exercise_results())


def record(*results: ExerciseResult) -> None:
    """Store the graded results of the course's own exercise files; files graded from elsewhere
    (`--path`) are not the learner's work in this course and leave the record alone (one note
    says so). A store that cannot be written costs a note, not the results."""
    from grader.paths import find_course_root
    from grader.store import Store, StoreError

    root = find_course_root()
    exercises = (root / "exercises").resolve() if root is not None else None
    own: list[ExerciseResult] = []
    elsewhere: set[str] = set()  # the folders of the others
    for result in results:
        if Path(result.path).resolve().parent == exercises:
            own.append(result)
        else:
            elsewhere.add(str(Path(result.path).parent))
    if elsewhere:
        what = f"{Path(results[0].path).name} is" if len(results) == 1 else "these files are"
        click.echo(f"note: {what} not in the course's exercises/ folder ({', '.join(sorted(elsewhere))}), so "
                   f"{'this result was' if len(results) == 1 else 'their results were'} not saved to your progress.", err=True)
    if not own:
        return
    try:
        with Store.open() as store:
            for result in own:
                store.record_exercise_result(result.to_dict())
    except (StoreError, OSError, ValueError) as exc:
        click.echo(click.style(f"note: the results were not saved to your progress store ({exc})", fg="yellow"), err=True)

