"""The IPython magics: `%load_ext grader` registers `%grade NAME [--part PART] [--path DIR]
[--seed N] [--timeout S]` and `%hint NAME [PART]`.

`%grade` forwards to `grader.study.notebook.check` (the same engine as `grade exercise`), `%hint`
to the `grade hint` command. IPython is imported by neither: IPython itself calls
`register_magics` (through `grader.load_ipython_extension`) and hands over its shell.
"""

from __future__ import annotations

import shlex
from typing import Any

from grader.study.notebook import NotebookResult, check


def _grade_magic(line: str) -> NotebookResult | None:
    """%grade NAME [--part PART]... [--path DIR] [--seed N] [--timeout S]"""
    import argparse

    parser = argparse.ArgumentParser(prog="%grade", add_help=False)
    parser.add_argument("name")
    parser.add_argument("--part", dest="parts", action="append", default=[])
    parser.add_argument("--path", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    try:
        args = parser.parse_args(shlex.split(line))
    except SystemExit:
        print(f"usage: {parser.format_usage().strip().removeprefix('usage: ')}")
        return None
    try:
        return check(args.name, args.path, seed=args.seed, timeout=args.timeout, parts=tuple(args.parts))
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
