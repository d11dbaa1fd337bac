"""`grade solution`: the reference of an exercise against the learner's own code, once passed.

The gate is the last stored result's `complete` (`engine.results.ExerciseResult`). The two files
are laid out for the terminal either `side_by_side`, aligned line for line the way `diff -y` aligns
them (shared lines on one row, the learner's lines beside the reference lines that replace them), or
as a `unified_diff` when the terminal is too narrow for two columns. No torch here.
"""

from __future__ import annotations

import difflib
from itertools import zip_longest

MIN_COLUMN = 60  # narrower columns than this make code unreadable: then a unified diff
# The gutter between the two columns, as `diff -y` marks rows: the same line, a changed line,
# a line only in the learner's code, a line only in the reference.
SAME, CHANGED, LEFT_ONLY, RIGHT_ONLY = "   ", " | ", " < ", " > "


def _lines(text: str) -> list[str]:
    return [line.expandtabs(4) for line in text.splitlines()]


def fits_side_by_side(left: str, right: str, width: int) -> bool:
    """Whether both files fit, unwrapped, in two columns of a `width`-wide terminal."""
    column = (width - len(SAME)) // 2
    longest = max((len(line) for line in _lines(left) + _lines(right)), default=0)
    return column >= MIN_COLUMN and longest <= column


def aligned_rows(left: str, right: str) -> list[tuple[str, str, str]]:
    """(left line, gutter mark, right line) per row: equal lines share a row, a replaced block is
    paired line by line, and a line that only one side has faces an empty cell."""
    a, b = _lines(left), _lines(right)
    rows: list[tuple[str, str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [(line, SAME, line) for line in a[i1:i2]]
            continue
        for x, y in zip_longest(a[i1:i2], b[j1:j2]):
            mark = CHANGED if x is not None and y is not None else (LEFT_ONLY if y is None else RIGHT_ONLY)
            rows.append((x or "", mark, y or ""))
    return rows


def side_by_side(left_title: str, left: str, right_title: str, right: str, width: int) -> str:
    """Two aligned columns under their titles (see `aligned_rows`); lines are assumed to fit."""
    column = (width - len(SAME)) // 2
    out = [f"{left_title[:column].ljust(column)}{SAME}{right_title[:column]}",
           f"{'-' * column}{SAME}{'-' * column}"]
    out += [f"{a.ljust(column)}{mark}{b}".rstrip() for a, mark, b in aligned_rows(left, right)]
    return "\n".join(out)


def unified_diff(left_title: str, left: str, right_title: str, right: str, context: int = 3) -> str:
    """What turns the learner's code into the reference, as a unified diff ("-" yours, "+" the reference's)."""
    diff = list(difflib.unified_diff(_lines(left), _lines(right), fromfile=left_title, tofile=right_title,
                                     n=context, lineterm=""))
    return "\n".join(diff) if diff else f"{left_title} and {right_title} are the same."


def diff_colour(line: str) -> str | None:
    """The terminal colour of a line of `unified_diff`: red for yours, green for the reference's."""
    if line.startswith(("---", "+++")):
        return None
    return "red" if line.startswith("-") else "green" if line.startswith("+") else None
