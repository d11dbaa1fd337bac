"""Grading from a notebook (Jupyter, Colab, VS Code): `grader.check("conv")` and the magics.

`check` grades with the same engine and isolated worker as `grade exercise` and returns a
`NotebookResult`, which a notebook shows as HTML (`_repr_html_`) and a console as text. `%load_ext
grader` registers `%grade NAME [--path DIR] [--seed N]` and `%hint NAME [PART]`. IPython is imported
only by `register_magics`, which IPython itself calls.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.catalog import get_exercise


@dataclass(frozen=True)
class NotebookResult:
    """One exercise's result as a notebook shows it; `result` is the schema-1 dict."""

    result: dict[str, Any]
    title: str = ""

    @property
    def score(self) -> float:
        return self.result["score"]

    @property
    def max_score(self) -> int:
        return self.result["max_score"]

    @property
    def checks(self) -> list[dict[str, Any]]:
        return self.result["checks"]

    def __repr__(self) -> str:
        import click

        from grader.views.terminal import exercise_report

        return click.unstyle(exercise_report(self.result, title=self.title))

    def _repr_html_(self) -> str:
        from grader.views.html import exercise_html

        return exercise_html(self.result, title=self.title)


def check(name: str, path: str | Path | None = None, *, seed: int = 0, timeout: float = 10.0) -> NotebookResult:
    """Grade exercise `name` from `path` (a folder; default: the course's `exercises/`).

    Raises `ValueError` with a message saying what to do for an unknown exercise, a folder that is
    not there, or grading that cannot start."""
    from grader.paths import CourseError, course_root

    try:
        exercise = get_exercise(name)
    except KeyError:
        raise ValueError(f"Unknown exercise {name!r}. The exercises are listed by `grade list`.") from None
    try:
        folder = Path(path) if path is not None else course_root() / "exercises"
    except CourseError as exc:
        raise ValueError(f"{exc} Or pass the folder of your exercise files: check({name!r}, path=...).") from None
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder. Pass the folder that holds {name}.py.")
    from grader.engine import session
    from grader.runner.handle import WorkerProcess
    from grader.views.pictures import draw

    with WorkerProcess() as worker:
        try:
            result = session.grade_exercise(name, folder / f"{name}.py", worker=worker, seed=seed, timeout=timeout,
                                            pictures=draw)  # shown under each failed part by `_repr_html_`
        except session.SetupError as exc:
            raise ValueError(str(exc)) from None
    return NotebookResult(result.to_dict(), exercise.title)


def _grade_magic(line: str) -> NotebookResult | None:
    """%grade NAME [--path DIR] [--seed N] [--timeout S]"""
    import argparse

    parser = argparse.ArgumentParser(prog="%grade", add_help=False)
    parser.add_argument("name")
    parser.add_argument("--path", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    try:
        args = parser.parse_args(shlex.split(line))
    except SystemExit:
        print(f"usage: {parser.format_usage().strip().removeprefix('usage: ')}")
        return None
    try:
        return check(args.name, args.path, seed=args.seed, timeout=args.timeout)
    except ValueError as exc:
        print(exc)
        return None


def _hint_magic(line: str) -> None:
    """%hint NAME [PART]: the next hint, as `grade hint` shows it."""
    import click

    from grader.commands.study import hint_cmd

    try:
        hint_cmd.main(shlex.split(line), prog_name="%hint", standalone_mode=False)
    except click.ClickException as exc:
        print(exc.format_message())


def register_magics(ipython: Any) -> None:
    """Called by `%load_ext grader`."""
    ipython.register_magic_function(_grade_magic, magic_kind="line", magic_name="grade")
    ipython.register_magic_function(_hint_magic, magic_kind="line", magic_name="hint")
