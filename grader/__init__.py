"""cnn-grader: self-grading PyTorch exercises and true/false quizzes for learning CNNs.

The package is split into wings (see README, "Architecture"): the catalogue (`catalog`), the
hidden checks (`checks/`), the grading engine (`engine/`), the isolated runner (`runner/`), how
results are shown (`views/`), the self-study loop (`study/`), quizzes (`quiz/`), instructor tools
(`instructor/`), the progress store (`store`) and the click commands (`commands/`, loaded lazily
by `cli`). Nothing here imports torch at module level: `grade --help`, `grade list` and `grade
quiz` stay fast. The two functions below are the package's notebook entry points, which Python
and IPython look up on the package itself (`grader.check`, `%load_ext grader`); like `cli`, they
reach the wings only when called.
"""

from __future__ import annotations

__version__ = "0.1.0"


def check(name: str, path: str | None = None, **options: object) -> object:
    """Grade exercise `name` from a notebook; see `grader.study.notebook.check`."""
    from grader.study.notebook import check as _check

    return _check(name, path, **options)


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext grader`: registers the `%grade` and `%hint` magics."""
    from grader.commands.notebook import register_magics

    register_magics(ipython)
