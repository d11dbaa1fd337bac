"""Grading from a notebook (Jupyter, Colab, VS Code): `grader.check("conv")` and the magics.

`check` grades with the same engine as `grade exercise` (one `GradingSession`, its sandboxed worker
and tamper check) and returns a `NotebookResult`, which a notebook shows as HTML (`_repr_html_`, with the picture of
each failing part) and a console as text. The `%grade` and `%hint` magics over it are front ends, in
`grader.commands.notebook`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.catalog import get_exercise

if TYPE_CHECKING:
    from grader.engine.results import CheckResult, ExerciseResult


@dataclass(frozen=True)
class NotebookResult:
    """One exercise's result as a notebook shows it; `result` is the typed record."""

    result: ExerciseResult
    title: str = ""

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def max_score(self) -> int:
        return self.result.max_score

    @property
    def checks(self) -> list[CheckResult]:
        return self.result.checks

    def __repr__(self) -> str:
        import click

        from grader.views.terminal import exercise_report

        return click.unstyle(exercise_report(self.result, title=self.title))

    def _repr_html_(self) -> str:
        from grader.views.html import exercise_html

        return exercise_html(self.result, title=self.title)


def check(name: str, path: str | Path | None = None, *, seed: int = 0, timeout: float = 10.0,
          parts: tuple[str, ...] = ()) -> NotebookResult:
    """Grade exercise `name` from `path` (a folder; default: the course's `exercises/`): every
    check, or only those of `parts`.

    Raises `ValueError` with a message saying what to do for an unknown exercise or part, a folder
    that is not there, grading that cannot start, or the grader's files changing meanwhile."""
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
    from grader.engine.session import GradingSession
    from grader.paths import kept_values_dir
    from grader.views.pictures import draw  # shown under each failed part by `_repr_html_`

    with GradingSession(seed=seed, timeout=timeout, pictures=draw, keep=kept_values_dir()) as session:
        from grader.engine.oracles import SetupError

        try:
            result = session.grade(name, folder / f"{name}.py", tuple(parts))
        except SetupError as exc:
            raise ValueError(str(exc)) from None
        if not session.untouched():
            raise ValueError("The grader's own files or the references changed while grading ran, so this result "
                             "cannot be trusted. Restore the course files and grade again.")
    return NotebookResult(result, exercise.title)
