"""The exercise commands: `grade list`, `grade exercise NAME` and `grade all`.

Thin click commands over `engine.session.GradingSession` (which grades), `views.terminal` (which
shows) and the progress store (which remembers). Torch is imported only inside `exercise` and
`all`, by the session once its worker is on its way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from grader.catalog import exercise_names, load_catalog
from grader.commands import (EXIT_FAILED, EXIT_OK, SetupFailure, check_device, complete_exercise, complete_part,
                             exercise_folder, exercise_named, grading_options, last_results, record)
from grader.paths import exercises_in, kept_values_dir

if TYPE_CHECKING:
    from grader.engine.results import ExerciseResult, GradingRun


def _output_options(f):  # noqa: ANN001, ANN202 - a click decorator
    f = click.option("--verbose", "-v", is_flag=True, help="Full messages and everything your code printed.")(f)
    return click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Also write the result as JSON (schema 1, see README).")(f)


@click.command("list")
def list_cmd() -> None:
    """List every exercise with its notes section, parts, points and your last result."""
    from grader.paths import PROGRESS_DB_ENV, find_course_root, progress_db

    in_course = find_course_root() is not None or bool(os.environ.get("GRADE_HOME") or os.environ.get(PROGRESS_DB_ENV))
    last = {}
    if in_course and progress_db().is_file():  # nothing stored yet: neither SQLite nor the store is imported
        from grader.store import StoreError

        try:
            last = last_results()
        except StoreError as exc:
            click.echo(click.style(f"note: your results are not shown: {exc}", fg="yellow"), err=True)
    for i, ex in enumerate(load_catalog(), 1):
        prev = last.get(ex.name)
        status = "" if not in_course else f"  last: {prev.score:g}/{prev.max_score:g}" if prev else "  not graded yet"
        click.echo(f"{i:2d}. {click.style(ex.name, bold=True)} - {ex.title}  [{ex.max_points} pts, notes: {ex.section}]{status}")
        for part in ex.parts:
            click.echo(f"      {part.name} ({part.points} pts): {part.summary}")
    if not in_course:
        click.echo(f"\nYou are not inside a course folder ({Path.cwd()}), so your results are not shown. "
                   "Run `grade list` in the course (the folder that holds exercises/), or make one with `grade init DIR`.")


def _durations_file() -> Path:
    from grader.paths import cache_dir

    return cache_dir() / "grading-durations.json"


def grading_durations() -> dict[str, float]:
    """How long each exercise took to grade last time on this machine, whatever file was graded
    ({} when unknown): `grade all` starts the longest first. Only the order depends on it."""
    try:
        data = json.loads(_durations_file().read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, RuntimeError, ValueError, TypeError):
        return {}


def remember_durations(durations: dict[str, float]) -> None:
    """Best effort: durations that cannot be written only cost a worse order next time."""
    from grader.engine.results import write_text_atomic

    try:
        target = _durations_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps({**grading_durations(), **durations}))
    except (OSError, RuntimeError):
        pass


def side_by_side_units(names: list[str], folder: Path, parts: tuple[str, ...], jobs: int,
                       last: dict[str, float]) -> list[tuple[str, Path, tuple[str, ...]]]:
    """What `jobs` side-by-side jobs grade, longest first by `last` (`grading_durations`): each
    exercise whole, or, for one that took more than half a job's share of the whole last time,
    each of its parts, so that several jobs share it instead of all waiting for the one grading it
    (the autoencoder trains two models, in two parts). Only `parts` when given, never split."""
    from grader.catalog import get_exercise

    total = sum(last.get(n, 0.0) for n in names)
    units = []
    for name in sorted(names, key=lambda n: -last.get(n, 0.0)):
        file = folder / f"{name}.py"
        if jobs > 1 and not parts and last.get(name, 0.0) > total / (2 * jobs):
            units += [(name, file, (part.name,)) for part in get_exercise(name).parts]
        else:
            units.append((name, file, parts))
    return units


def grade_files(names: list[str], folder: Path, *, seed: int, timeout: float, device: str,
                parts: tuple[str, ...] = (), jobs: int = 1) -> GradingRun:
    """Grade `folder/NAME.py` for each of `names` (only the checks of `parts`, if given), `jobs`
    exercises side by side (`side_by_side_units`), the results in the order of
    `names`; setup errors and tampering become `SetupFailure` (exit code 2). Says so, in one line,
    when no sandbox confined the student's code."""
    from grader.engine.oracles import SetupError
    from grader.engine.results import GradingRun
    from grader.engine.session import grade_side_by_side
    from grader.views.pictures import draw  # the first failing case of each part, for --html and progress

    check_device(device)
    units = side_by_side_units(names, folder, parts, jobs, grading_durations() if jobs > 1 else {})
    try:
        results, untouched = grade_side_by_side(units, jobs=jobs, seed=seed, timeout=timeout, device=device,
                                                pictures=draw, keep=kept_values_dir())
    except SetupError as exc:
        raise SetupFailure(str(exc)) from None
    if not untouched:
        raise SetupFailure(
            "The grader's own files or the references changed while grading ran, so these results "
            "cannot be trusted and were not saved. Restore the course files (e.g. `git checkout grader solutions`) and grade again.")
    if not parts:
        remember_durations({r.exercise: r.duration_s for r in results})
    by_name = {r.exercise: r for r in results}
    run = GradingRun([by_name[n] for n in names])
    if any(r.sandbox == "none" for r in run.exercises):
        from grader.runner.sandbox import describe

        click.echo(click.style("note: ", fg="yellow") + describe("none"), err=True)
    return run


def default_jobs() -> int:
    """The CPUs this process may use, at most 4: `grade all` grades that many exercises side by side."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _name_and_folder(name: str, path: Path | None) -> tuple[str, Path]:
    """NAME may be a path to the exercise file (`exercises/conv.py`, as a shell completes it)."""
    if not (name.endswith(".py") or os.sep in name or "/" in name):
        return exercise_named(name).name, exercise_folder(path)
    file = Path(name)
    if path is not None:
        raise click.UsageError(f"{name} is a path to a file: give either it or --path, not both.")
    if not file.parent.is_dir():
        raise click.UsageError(f"{file.parent} is not a folder, so {name} cannot be graded. Check the path.")
    return exercise_named(file.stem).name, file.parent


@click.command("exercise")
@click.argument("name", shell_complete=complete_exercise)
@click.option("--part", "parts", multiple=True, metavar="PART", shell_complete=complete_part,
              help="Grade only this part (repeatable); the result is not saved to your progress.")
@grading_options
@_output_options
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as one HTML page, with a picture of each failing part.")
def exercise_cmd(name: str, parts: tuple[str, ...], path: Path | None, seed: int, timeout: float, device: str,
                 json_path: Path | None, verbose: bool, html_path: Path | None) -> None:
    """Grade exercises/NAME.py and explain every check, part by part.

    NAME is an exercise (`conv`) or the path to its file (`exercises/conv.py`). Exit code 0 when
    every check passed, 1 when any did not, 2 for usage or setup errors.
    """
    from grader.catalog import get_exercise
    from grader.engine.results import write_json
    from grader.views.terminal import exercise_report

    name, folder = _name_and_folder(name, path)
    (result,) = grade_files([name], folder, seed=seed, timeout=timeout, device=device, parts=parts).exercises
    ex = get_exercise(name)
    click.echo(exercise_report(result, verbose=verbose, title=ex.title, section=ex.section))
    if json_path is not None:
        write_json(json_path, result.to_dict())
    if html_path is not None:
        write_page(html_path, result, ex.title)
    if not parts:
        record(result)
    raise SystemExit(EXIT_OK if result.complete else EXIT_FAILED)


def write_page(path: Path, result: ExerciseResult, title: str) -> None:
    """Write the HTML page of `result` (pictures included) to `path`, and say where it is."""
    from grader.engine.results import write_text_atomic
    from grader.views.html import exercise_page, has_pictures

    try:
        write_text_atomic(path, exercise_page(result, title=title))
    except OSError as exc:
        raise SetupFailure(f"Could not write {path}: {exc.strerror or exc}. Pass a file in a folder you can write to.") from None
    what = "with a picture of each failing part" if has_pictures(result) else "no picture: nothing failed that has one"
    click.echo(f"wrote {path} ({what})")


@click.command("all")
@grading_options
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Exercises graded side by side, each in its own worker (default: the CPUs, at most 4). "
                   "The results do not depend on it.")
@_output_options
def all_cmd(path: Path | None, seed: int, timeout: float, device: str, jobs: int | None, json_path: Path | None,
            verbose: bool) -> None:
    """Grade every exercise and print one summary table."""
    from grader.catalog import get_exercise
    from grader.engine.results import write_json
    from grader.views.terminal import exercise_report, summary_table

    folder = exercise_folder(path)
    names = exercises_in(folder, exercise_names())
    missing = [n for n in exercise_names() if n not in names]
    if not names:
        raise click.UsageError(f"No exercise files in {folder}. Pass the folder that holds them with --path.")
    run = grade_files(names, folder, seed=seed, timeout=timeout, device=device, jobs=jobs or default_jobs())
    if verbose:
        for r in run.exercises:
            click.echo(exercise_report(r, verbose=True, section=get_exercise(r.exercise).section) + "\n")
    click.echo(summary_table(run))
    if missing:
        click.echo(f"not found in {folder}: {', '.join(missing)}")
    if json_path is not None:
        write_json(json_path, run.to_dict())
    record(*run.exercises)
    raise SystemExit(EXIT_OK if run.complete else EXIT_FAILED)

