"""`grade solution`: the reference of an exercise beside the learner's own code, once passed.

`has_passed` is the gate (the store's last result of the exercise has every point);
`side_by_side` and `stacked` lay out the two files for the terminal. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

GUTTER = " | "
MIN_COLUMN = 60  # narrower columns than this make code unreadable: then one file after the other


def has_passed(name: str, last_results: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when the last stored result of `name` has score == max_score (and max_score > 0)."""
    result = last_results.get(name)
    return bool(result) and float(result["max_score"]) > 0 and float(result["score"]) >= float(result["max_score"])


def _lines(text: str) -> list[str]:
    return [line.expandtabs(4) for line in text.splitlines()]


def fits_side_by_side(left: str, right: str, width: int) -> bool:
    """Whether both files fit, unwrapped, in two columns of a `width`-wide terminal."""
    column = (width - len(GUTTER)) // 2
    longest = max((len(line) for line in _lines(left) + _lines(right)), default=0)
    return column >= MIN_COLUMN and longest <= column


def side_by_side(left_title: str, left: str, right_title: str, right: str, width: int) -> str:
    """Two columns with their titles; lines are assumed to fit (see `fits_side_by_side`)."""
    column = (width - len(GUTTER)) // 2
    rows = [f"{left_title[:column].ljust(column)}{GUTTER}{right_title[:column]}",
            f"{'-' * column}{GUTTER}{'-' * column}"]
    for a, b in zip_longest(_lines(left), _lines(right), fillvalue=""):
        rows.append(f"{a.ljust(column)}{GUTTER}{b}".rstrip())
    return "\n".join(rows)


def stacked(left_title: str, left: str, right_title: str, right: str, width: int = 80) -> str:
    """One file after the other, each under a ruled header."""
    rule = "=" * min(width, 100)
    return "\n".join([rule, left_title, rule, left.rstrip("\n"), "", rule, right_title, rule, right.rstrip("\n")])
