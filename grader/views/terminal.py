"""Terminal rendering of results: part by part, what passed, what failed and why. No torch."""

from __future__ import annotations

from typing import Any

import click

from grader.paths import section_slug

_MARKS = {
    "passed": ("PASS", "green"),
    "failed": ("FAIL", "red"),
    "error": ("ERROR", "red"),
    "timeout": ("TIMEOUT", "yellow"),
    "crashed": ("CRASH", "magenta"),
    "not_implemented": ("TODO", "blue"),
    "forbidden": ("FORBIDDEN", "red"),
}


def _fmt_points(x: float) -> str:
    return f"{x:g}"


def notes_pointer(section: str, subsection: str = "") -> str:
    """Where to read about a section (and one of its subsections): its name and the command that shows it."""
    where = f'{section}, "{subsection}"' if subsection else section
    return f"{where} (`grade notes {section_slug(section)}`)"


def exercise_report(result: dict[str, Any], *, verbose: bool = False, title: str = "", section: str = "") -> str:
    """The per-part report of one exercise result (schema-1 dict)."""
    lines = []
    head = f"{result['exercise']}" + (f": {title}" if title else "")
    lines.append(click.style(head, bold=True) + f"  ({_fmt_points(result['score'])}/{result['max_score']} points)")
    for notice in result.get("notices", []):
        if notice.startswith("output during") and not verbose:
            continue
        lines.append(click.style("  note: ", fg="yellow") + notice.replace("\n", "\n        "))
    parts: dict[str, list[dict]] = {}
    for check in result["checks"]:
        parts.setdefault(check["part"], []).append(check)
    for part, checks in parts.items():
        got = sum(c["points"] for c in checks)
        total = sum(c["max_points"] for c in checks)
        lines.append(f"\n  {click.style(part, bold=True)}  {_fmt_points(got)}/{total}")
        for c in checks:
            mark, colour = _MARKS[c["status"]]
            lines.append(f"    {click.style(mark.ljust(9), fg=colour)} {c['name']} ({_fmt_points(c['points'])}/{c['max_points']})")
            if c["status"] == "not_implemented" and not verbose:
                continue
            if c["message"] and c["status"] != "passed":
                msg = c["message"] if verbose else _trim(c["message"], 14)
                lines.append("              " + msg.replace("\n", "\n              "))
            if c.get("mistake"):
                m = c["mistake"]
                lines.append(click.style(f"              likely mistake: {m['name']}", fg="cyan") +
                             f"\n              {m['explanation']}\n              revisit the notes: "
                             + notes_pointer(m["section"], m.get("subsection", "")))
    if all(c["status"] == "not_implemented" for c in result["checks"]):
        lines.append(f"\n  Nothing implemented yet: open {result['path']} and replace the stubs."
                     + (f" The notes' section: {notes_pointer(section)}." if section else ""))
    elif result["score"] == result["max_score"]:
        lines.append(click.style("\n  All checks passed.", fg="green"))
    return "\n".join(lines)


def _trim(text: str, max_lines: int) -> str:
    rows = text.splitlines()
    if len(rows) <= max_lines:
        return text
    return "\n".join(rows[:max_lines] + [f"... ({len(rows) - max_lines} more lines with --verbose)"])


def summary_table(results: list[dict[str, Any]]) -> str:
    """One line per exercise and a total, for `grade all`."""
    width = max((len(r["exercise"]) for r in results), default=8)
    lines = [f"{'exercise'.ljust(width)}  score      passed  status"]
    for r in results:
        n = len(r["checks"])
        ok = sum(c["status"] == "passed" for c in r["checks"])
        state = "complete" if ok == n and n else ("not started" if all(c["status"] == "not_implemented" for c in r["checks"]) else "in progress")
        lines.append(f"{r['exercise'].ljust(width)}  {(_fmt_points(r['score']) + '/' + str(r['max_score'])).ljust(9)}  {f'{ok}/{n}'.ljust(6)}  {state}")
    total = sum(r["score"] for r in results)
    total_max = sum(r["max_score"] for r in results)
    lines.append(f"{'total'.ljust(width)}  {_fmt_points(total)}/{total_max}")
    return "\n".join(lines)
