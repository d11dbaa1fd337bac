"""The self-study commands: `grade init`, `reset`, `hint`, `watch`, `progress` and `solution`.

Thin click commands over `workspace` (working copy, stubs, backups), `hints`, `watch`, `progress`
and `solution`. Only `grade watch` imports torch (when it starts grading); the others start at once.
Exit codes as everywhere (`grader.commands`): usage and setup errors (an unreadable progress
database or hint file included) exit with 2; `grade solution` refuses with 1 until you have passed.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from grader.commands import (SetupFailure, check_device, complete_exercise, complete_part, device_option,
                             exercise_folder, exercise_named, last_results, path_option, record, seed_option,
                             timeout_option)
from grader.views.terminal import notes_pointer


@contextmanager
def _store_errors() -> Iterator[None]:
    """Errors of the progress store turned into a setup failure (exit code 2), never a traceback."""
    from grader.store import StoreError

    try:
        yield
    except StoreError as exc:
        raise SetupFailure(str(exc)) from None


@contextmanager
def _store() -> Iterator[Any]:
    """The progress store, its errors turned into a setup failure (exit code 2)."""
    from grader.store import Store

    with _store_errors(), Store.open() as store:
        yield store


def _require_course() -> None:
    """Refuse to run outside a course (progress would land in a stray `.grade/` of the working
    directory) unless GRADE_HOME or GRADE_PROGRESS_DB says where progress lives."""
    from grader.paths import PROGRESS_DB_ENV, CourseError, course_root

    if os.environ.get("GRADE_HOME") or os.environ.get(PROGRESS_DB_ENV):
        return
    try:
        course_root()
    except CourseError as exc:
        raise click.UsageError(str(exc)) from None


def _width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


# --- grade init / grade reset -------------------------------------------------------------------
@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path), metavar="DIR")
def init_cmd(directory: Path) -> None:
    """Create a working copy of the exercises in DIR: every stub, a short README and .grade/.

    For learners who installed cnn-grader instead of cloning the course. DIR may exist, but an
    existing non-empty DIR/exercises is never overwritten.
    """
    from grader.study.workspace import WorkspaceError, init_course

    try:
        report = init_course(directory)
    except WorkspaceError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"Created {report.root}: {len(report.copied)} exercise stubs in exercises/, "
               + ("README.md, " if report.readme else "")
               + ".grade/ (your progress).")
    if report.readme is None:
        click.echo("README.md was already there and was kept.")
    if report.missing:
        click.echo(f"note: this copy of cnn-grader has no stub for {', '.join(report.missing)}.")
    click.echo(f"Next: cd {directory}, then `grade list`, and `grade watch` to start with {report.copied[0]}.")


@click.command("reset")
@click.argument("name", shell_complete=complete_exercise)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@path_option
def reset_cmd(name: str, yes: bool, path: Path | None) -> None:
    """Restore the stub of exercise NAME. Your file is first copied to .grade/backups/."""
    from datetime import datetime

    from grader.paths import progress_dir
    from grader.study.workspace import BACKUPS_DIRNAME, WorkspaceError, plan_reset, reset_exercise

    exercise_named(name)
    folder = exercise_folder(path)
    try:
        plan = plan_reset(name, folder)
    except WorkspaceError as exc:
        raise SetupFailure(str(exc)) from None
    if plan.state == "unchanged":
        click.echo(f"{plan.path} is already the untouched stub; nothing to do.")
        return
    backups = progress_dir(folder) / BACKUPS_DIRNAME
    if plan.state == "modified" and not yes:
        click.confirm(f"Replace {plan.path} with a fresh stub? Your file will be kept in {backups}/", abort=True)
    try:
        backup = reset_exercise(plan, backups, datetime.now())
    except WorkspaceError as exc:
        raise SetupFailure(str(exc)) from None
    if backup is not None:
        click.echo(f"Your file was saved as {backup}.")
    click.echo(f"Restored the stub of {name} in {plan.path}.")


# --- grade hint ---------------------------------------------------------------------------------
@click.command("hint")
@click.argument("name", shell_complete=complete_exercise)
@click.argument("part", required=False, shell_complete=complete_part)
@click.option("--list", "list_only", is_flag=True, help="List the parts and how many of their hints you have seen.")
def hint_cmd(name: str, part: str | None, list_only: bool) -> None:
    """Show the next hint for PART of exercise NAME (default: the first part you have not passed).

    Hints go from a nudge to the key idea, each with the notes' section to reread; the next one
    is shown only after the previous one. Hints you have seen are shown again above the new one.
    """
    from grader.store import StoreError
    from grader.study.hints import HintError, HintLog, first_open_part, load_hints, next_hint

    exercise = exercise_named(name)
    _require_course()
    try:
        hints = load_hints(name)
    except HintError as exc:
        raise SetupFailure(f"The hints of {name} cannot be read:\n{exc}") from None
    log = HintLog.default()
    if list_only:
        with _store_errors():
            for p in exercise.parts:
                click.echo(f"{p.name}: {log.shown(name, p.name)}/{len(hints.part(p.name))} hints seen  ({p.summary})")
        return
    if part is None:
        with _store_errors():
            part = first_open_part(exercise, last_results().get(name))
        if part is None:
            click.echo(f"You have passed every part of {name}. Compare your code with the reference: "
                       f"`grade solution {name}`. (Hints of one part: `grade hint {name} PART`.)")
            return
    elif part not in hints.parts:
        raise click.UsageError(f"{name} has no part {part!r}; its parts are {', '.join(p.name for p in exercise.parts)}.")
    with _store_errors():
        seen, new = next_hint(hints, part, log)
    count = len(hints.part(part))
    width = min(_width(), 100)
    click.echo(click.style(f"{name} / {part}", bold=True) + f"  ({exercise.part(part).summary})")
    for hint in seen + ([new] if new else []):
        is_new = hint is new
        head = f"  {hint.level}/{count} {hint.label(count)}  [notes: {hint.section}]"
        click.echo(click.style(head, bold=is_new, dim=not is_new))
        body = textwrap.fill(hint.text, width=width, initial_indent="     ", subsequent_indent="     ")
        click.echo(body if is_new else click.style(body, dim=True))
    if new is None:
        click.echo(f"No more hints for {part}: reread the notes' section {notes_pointer(seen[-1].section)}, "
                   f"and run `grade exercise {name} -v` for every check's full message.")
        return
    try:
        log.record(name, part, new.level)
    except StoreError as exc:
        click.echo(f"note: could not remember that this hint was shown ({exc}).", err=True)
    left = count - new.level
    if left:
        click.echo(f"{left} more hint(s) for {part}: run `grade hint {name} {part}` again once you have tried this one.")
    else:
        click.echo(f"That was the last hint for {part}.")


# --- grade watch --------------------------------------------------------------------------------
@click.command("watch")
@click.argument("name", required=False, shell_complete=complete_exercise)
@click.option("--manual", is_flag=True, help="Grade when you press Enter instead of on every save "
              "(for file systems where watching files fails).")
@click.option("--poll", is_flag=True, help="Look at the file every 0.3 s instead of waiting for the system's file "
              "events (for network drives and other file systems whose events do not reach this machine).")
@click.option("--stay", is_flag=True, help="Keep watching NAME once it is complete instead of moving on.")
@path_option
@seed_option()
@timeout_option
@device_option
@click.option("--interval", type=click.FloatRange(min=0.01), default=None, hidden=True,
              help="Seconds between two looks at the file.")
@click.option("--max-cycles", type=click.IntRange(min=1), default=None, hidden=True,
              help="Stop after this many polls or key presses (for tests and scripts).")
def watch_cmd(name: str | None, manual: bool, poll: bool, stay: bool, path: Path | None, seed: int, timeout: float,
              device: str, interval: float | None, max_cycles: int | None) -> None:
    """Re-grade exercise NAME each time you save it, showing only what changed.

    Without NAME, starts with the first exercise you have not passed. When an exercise is
    complete, moves on to the next one. One worker process stays warm, so a re-grade takes a
    fraction of a cold `grade exercise`. Press q to quit, also while a slow run is graded (r
    grades at once); saving again while grading grades the new version.
    """
    from grader.study.watch import DEFAULT_INTERVAL_S, WatchConfig, Watcher

    if name is not None:
        exercise_named(name)
    folder = exercise_folder(path)
    if name is not None and not (folder / f"{name}.py").is_file():
        raise click.UsageError(f"{folder / (name + '.py')} does not exist. Run `grade reset {name}` to get its stub, "
                               "or pass the folder that holds it with --path.")
    check_device(device)
    with _store_errors():
        done = {n for n, r in last_results().items() if r.complete}
    config = WatchConfig(folder=folder, seed=seed, timeout=timeout, device=device,
                         interval=interval or DEFAULT_INTERVAL_S, manual=manual, poll=poll, stay=stay, max_cycles=max_cycles)
    status = Watcher(config, record=record, done=done).run(name)
    raise SystemExit(status)


# --- grade progress -----------------------------------------------------------------------------
@click.command("progress")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a personal report to FILE (HTML).")
def progress_cmd(html_path: Path | None) -> None:
    """Exercises passed, partial and not started; quiz mastery per topic; what is due; what next."""
    from grader.study.progress import collect, progress_lines, render_html
    from grader.store import StoreError

    if html_path is not None and not html_path.parent.is_dir():
        raise click.UsageError(f"Cannot write {html_path}: the folder {html_path.parent} does not exist. Create it or choose another path.")
    _require_course()
    try:
        progress = collect()
    except StoreError as exc:
        raise SetupFailure(str(exc)) from None
    for line in progress_lines(progress, style=click.style):
        click.echo(line)
    if html_path is not None:
        tmp = html_path.with_name(html_path.name + ".tmp")
        try:
            from grader.paths import find_course_root

            tmp.write_text(render_html(progress, where=str(find_course_root() or Path.cwd())), encoding="utf-8")
            tmp.replace(html_path)
        except OSError as exc:
            raise SetupFailure(f"Cannot write {html_path}: {exc.strerror or exc}. Choose another path.") from None
        click.echo(f"\nWrote your report to {html_path}.")


# --- grade solution -----------------------------------------------------------------------------
@click.command("solution")
@click.argument("name", shell_complete=complete_exercise)
@click.option("--force", is_flag=True, help="Show it even though you have not passed (you will learn less).")
@path_option
@click.option("--layout", type=click.Choice(["auto", "side", "diff"]), default="auto", show_default=True,
              help="Side by side, line against line (auto: when the terminal is wide enough), or a unified diff.")
def solution_cmd(name: str, force: bool, path: Path | None, layout: str) -> None:
    """Show the reference solution of NAME against your own code, once you have passed NAME."""
    from grader.engine.results import typed_results
    from grader.study.solution import diff_colour, fits_side_by_side, side_by_side, unified_diff
    from grader.study.workspace import WorkspaceError, reference_source

    exercise_named(name)
    _require_course()
    with _store() as store:
        prev = typed_results(store.last_exercise_results()).get(name)
    if prev is None or not prev.complete:
        where = f"your last result is {prev.score:g}/{prev.max_score:g}" if prev else "it was never graded"
        if not force:
            raise click.ClickException(
                f"You have not passed {name} yet ({where}). The reference is shown once every check passes: "
                f"keep going with `grade watch {name}`, or ask for `grade hint {name}`. "
                f"To see it anyway: `grade solution {name} --force`.")
        click.echo(click.style(f"warning: you have not passed {name} ({where}); reading the reference now "
                               "spoils the exercise.", fg="yellow"), err=True)
    try:
        reference = reference_source(name)
    except WorkspaceError as exc:
        raise SetupFailure(str(exc)) from None
    try:
        mine_path = exercise_folder(path) / f"{name}.py"
        mine = mine_path.read_text(encoding="utf-8", errors="replace")
    except click.UsageError:
        mine_path, mine = Path(f"{name}.py"), "(no course folder here, so your file was not found: pass --path)"
    except OSError:
        mine = f"(your file {mine_path} was not found)"
    left, right = f"your code: {mine_path}", f"reference: solutions/{name}.py"
    width = _width()
    if layout == "side" or (layout == "auto" and fits_side_by_side(mine, reference, width)):
        longest = max(len(line.expandtabs(4)) for line in (mine + "\n" + reference).splitlines())
        click.echo(side_by_side(left, mine, right, reference, max(width, 2 * longest + 3)))
    else:
        for line in unified_diff(left, mine, right, reference).splitlines():
            click.echo(click.style(line, fg=diff_colour(line)))
