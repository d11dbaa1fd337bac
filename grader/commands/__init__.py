"""The click commands of `grade`, thin layers over the library: `exercise` (list, exercise, all),
`study` (init, reset, hint, watch, progress, solution), `quiz` and `instructor` (batch, report,
gradescope-autograder, release). `grader.cli` loads each module only when its command runs."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem


# --- shell completion (click's; see README "Shell completion") ----------------------------------
def complete_exercise(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Exercise names from the catalogue, with their titles."""
    from grader.catalog import load_catalog

    return [CompletionItem(ex.name, help=ex.title) for ex in load_catalog() if ex.name.startswith(incomplete)]


def complete_part(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The parts of the exercise named earlier on the command line."""
    from grader.catalog import exercise_names, get_exercise

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
