"""The exercise commands: `grade list`, `grade exercise NAME` and `grade all`.

Thin click commands: they parse options and call library code (`engine.session`, `views.terminal`, `store`).
Torch is imported only inside `exercise` and `all`, after the worker has been started, so the
worker's and the grader's torch imports overlap on a multi-core machine.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import click

from grader.catalog import exercise_names, get_exercise, load_catalog
from grader.commands import complete_exercise, complete_part
from grader.paths import CourseError, course_root

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _unknown_exercise(name: str) -> click.UsageError:
    close = difflib.get_close_matches(name, exercise_names(), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return click.UsageError(f"Unknown exercise {name!r}.{hint} `grade list` shows them all.")


def _last_results() -> dict[str, dict]:
    try:
        from grader.store import Store

        with Store.open() as store:
            return store.last_exercise_results()
    except Exception:  # noqa: BLE001 - the list still works without a readable store
        return {}


def _record(result: dict) -> None:
    try:
        from grader.store import Store

        with Store.open() as store:
            store.record_exercise_result(result)
    except Exception as exc:  # noqa: BLE001
        click.echo(click.style(f"note: the result was not saved to your progress store ({exc})", fg="yellow"), err=True)


@click.command("list")
def list_cmd() -> None:
    """List every exercise with its notes section, parts, points and your last result."""
    last = _last_results()
    for i, ex in enumerate(load_catalog(), 1):
        prev = last.get(ex.name)
        status = f"last: {prev['score']:g}/{prev['max_score']:g}" if prev else "not graded yet"
        click.echo(f"{i:2d}. {click.style(ex.name, bold=True)} - {ex.title}  [{ex.max_points} pts, notes: {ex.section}]  {status}")
        for part in ex.parts:
            click.echo(f"      {part.name} ({part.points} pts): {part.summary}")


def _grading_options(f: Any) -> Any:
    for option in reversed([
        click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Folder holding the exercise files (default: the course's exercises/)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Base seed of the hidden inputs."),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                     help="Wall-clock seconds allowed per check."),
        click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
        click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write the result as JSON (schema 1, see README)."),
        click.option("--verbose", "-v", is_flag=True, help="Full messages and captured output."),
    ]):
        f = option(f)
    return f


def _resolve_folder(path: Path | None) -> Path:
    if path is not None:
        if not path.is_dir():
            raise click.UsageError(f"--path {path} is not a folder. Pass the folder that holds your exercise files.")
        return path
    try:
        return course_root() / "exercises"
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--device cuda: no CUDA device is available here. Use --device cpu.")


def run_grading(names: list[str], folder: Path, seed: int, timeout: float, device: str,
                parts: tuple[str, ...] = ()) -> list[dict]:
    """Grade `names` from `folder` with one worker; returns schema-1 dicts. Raises ClickException."""
    from grader.runner.handle import WorkerProcess

    worker = WorkerProcess(device=device)
    worker.start()  # starts importing torch in the worker while this process imports it too
    try:
        from grader.engine import session as grading  # LiveOracle keeps this process to one thread
        from grader.views.pictures import draw

        _check_device(device)
        before = grading.integrity_snapshot()
        results = []
        for name in names:
            try:
                result = grading.grade_exercise(name, folder / f"{name}.py", worker=worker, seed=seed,
                                                timeout=timeout, device=device, parts=parts, pictures=draw)
            except grading.SetupError as exc:
                raise click.ClickException(str(exc)) from None
            results.append(result.to_dict())
        if grading.integrity_snapshot() != before:
            raise click.ClickException(
                "The grader's own files or the references changed while grading ran, so these results "
                "cannot be trusted and were not saved. Restore the course files (e.g. `git checkout grader solutions`) and grade again.")
        if any(r["sandbox"] == "none" for r in results):
            from grader.runner.sandbox import describe

            click.echo(click.style("note: ", fg="yellow") + describe("none"), err=True)
        return results
    finally:
        worker.stop()


@click.command("exercise")
@click.argument("name", shell_complete=complete_exercise)
@click.option("--part", "parts", multiple=True, metavar="PART", shell_complete=complete_part,
              help="Grade only this part (repeatable); the result is not saved to your progress.")
@_grading_options
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as one HTML page, with a picture of each failing part.")
def exercise_cmd(name: str, parts: tuple[str, ...], path: Path | None, seed: int, timeout: float, device: str,
                 json_path: Path | None, verbose: bool, html_path: Path | None) -> None:
    """Grade exercises/NAME.py and explain every check, part by part.

    Exit code 0 when every check passed, 1 when any did not, 2 for usage or setup errors.
    """
    try:
        ex = get_exercise(name)
    except KeyError:
        raise _unknown_exercise(name) from None
    unknown = [p for p in parts if p not in {part.name for part in ex.parts}]
    if unknown:
        raise click.UsageError(f"{name} has no part {', '.join(map(repr, unknown))}. Its parts are: "
                               f"{', '.join(part.name for part in ex.parts)}.")
    folder = _resolve_folder(path)
    (result,) = run_grading([name], folder, seed, timeout, device, parts)
    from grader.views.terminal import exercise_report

    click.echo(exercise_report(result, verbose=verbose, title=ex.title, section=ex.section))
    if json_path is not None:
        from grader.engine.results import write_json

        write_json(json_path, result)
    if html_path is not None:
        write_page(html_path, result, ex.title)
    if not parts:
        _record(result)
    raise SystemExit(EXIT_OK if result["score"] == result["max_score"] else EXIT_FAILED)


def write_page(path: Path, result: dict, title: str) -> None:
    """Write the HTML page of `result` (pictures included) to `path`, and say where it is."""
    from grader.engine.results import write_text_atomic
    from grader.views.html import exercise_page, has_pictures

    try:
        write_text_atomic(path, exercise_page(result, title=title))
    except OSError as exc:
        raise click.ClickException(f"Could not write {path}: {exc.strerror or exc}. Pass a file in a folder you can write to.") from None
    what = "with a picture of each failing part" if has_pictures(result) else "no picture: nothing failed that has one"
    click.echo(f"wrote {path} ({what})")


@click.command("all")
@_grading_options
def all_cmd(path: Path | None, seed: int, timeout: float, device: str, json_path: Path | None, verbose: bool) -> None:
    """Grade every exercise and print one summary table."""
    folder = _resolve_folder(path)
    names = [n for n in exercise_names() if (folder / f"{n}.py").is_file()]
    missing = [n for n in exercise_names() if n not in names]
    if not names:
        raise click.UsageError(f"No exercise files in {folder}. Pass the folder that holds them with --path.")
    results = run_grading(names, folder, seed, timeout, device)
    from grader.views.terminal import exercise_report, summary_table

    if verbose:
        for r in results:
            click.echo(exercise_report(r, verbose=True, section=get_exercise(r["exercise"]).section) + "\n")
    click.echo(summary_table(results))
    if missing:
        click.echo(f"not found in {folder}: {', '.join(missing)}")
    if json_path is not None:
        from grader.engine.results import write_json

        write_json(json_path, {"schema": 1, "score": sum(r["score"] for r in results),
                               "max_score": sum(r["max_score"] for r in results), "exercises": results})
    for r in results:
        _record(r)
    raise SystemExit(EXIT_OK if all(r["score"] == r["max_score"] for r in results) else EXIT_FAILED)
