"""Terminal rendering of results: part by part, what passed, what failed and why. No torch.

Under each check: its message, the named mistake (explained, with the notes' section) and the
diagnosis. What several checks of one part share (the same mistake, the same diagnosis) is
explained once, after the part's checks ("the same in 3 checks"), not once per check.
"""

from __future__ import annotations

import textwrap
from typing import Any

import click

from grader.paths import section_slug

_MARKS = {
    "passed": ("PASS", "green"),
    "failed": ("FAIL", "red"),
    "error": ("ERROR", "red"),
    "timeout": ("TIMEOUT", "yellow"),
    "crashed": ("CRASH", "magenta"),
    "not_implemented": ("TODO", None),  # dim: not attempted is not an error
    "forbidden": ("FORBIDDEN", "red"),
}


_INDENT = " " * 14
_KIND_LABELS = {"across_cases": "across cases"}


def _fmt_points(x: float) -> str:
    return f"{x:g}"


def notes_pointer(section: str, subsection: str = "") -> str:
    """Where to read about a section (and one of its subsections): its name and the command that shows it."""
    where = f'{section}, "{subsection}"' if subsection else section
    return f"{where} (`grade notes {section_slug(section)}`)"


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False)


def _diagnosis_line(d: dict[str, str], indent: str) -> str:
    head = f"diagnosis ({_KIND_LABELS.get(d['kind'], d['kind'])}): "
    wrapped = _wrap(head + d["text"], indent)
    return click.style(wrapped[:len(indent) + len(head)], fg="yellow") + wrapped[len(indent) + len(head):]


def _mistake_lines(m: dict[str, str], indent: str) -> list[str]:
    return [click.style(f"{indent}likely mistake: {m['name']}", fg="yellow"), _wrap(m["explanation"], indent),
            f"{indent}revisit the notes: " + notes_pointer(m["section"], m.get("subsection", ""))]


def _shared(checks: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """What two or more checks of a part have in common, grouped by the checks that share it:
    {check names: {"mistake": the mistake or None, "diagnosis": [diagnoses]}}."""
    owners: dict[Any, list[str]] = {}
    for c in checks:
        if c.get("mistake"):
            owners.setdefault(("mistake", c["mistake"]["name"]), []).append(c["name"])
        for d in c.get("diagnosis") or []:
            owners.setdefault(("diagnosis", d["kind"], d["text"]), []).append(c["name"])
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for key, names in owners.items():
        if len(names) < 2:
            continue
        group = groups.setdefault(tuple(names), {"mistake": None, "diagnosis": []})
        if key[0] == "mistake":
            group["mistake"] = next(c["mistake"] for c in checks if c.get("mistake") and c["mistake"]["name"] == key[1])
        else:
            group["diagnosis"].append({"kind": key[1], "text": key[2]})
    return groups


def exercise_report(result: dict[str, Any], *, verbose: bool = False, title: str = "", section: str = "") -> str:
    """The per-part report of one exercise result (schema-1 dict)."""
    lines = []
    head = f"{result['exercise']}" + (f": {title}" if title else "")
    lines.append(click.style(head, bold=True) + f"  ({_fmt_points(result['score'])}/{result['max_score']} points)")
    for notice in result.get("notices", []):
        if notice.startswith("output during") and not verbose:
            continue
        lines.append(click.style("  note: ", fg="yellow") + notice.replace("\n", "\n        "))
    if verbose:
        lines.append(f"  sandbox: {result.get('sandbox', 'unknown')}")
    parts: dict[str, list[dict]] = {}
    for check in result["checks"]:
        parts.setdefault(check["part"], []).append(check)
    for part, checks in parts.items():
        got = sum(c["points"] for c in checks)
        total = sum(c["max_points"] for c in checks)
        lines.append(f"\n  {click.style(part, bold=True)}  {_fmt_points(got)}/{total}")
        groups = _shared(checks)
        shared_mistakes = {g["mistake"]["name"]: len(names) for names, g in groups.items() if g["mistake"]}
        shared_diagnoses = {(d["kind"], d["text"]) for g in groups.values() for d in g["diagnosis"]}
        for c in checks:
            mark, colour = _MARKS[c["status"]]
            lines.append(f"    {click.style(mark.ljust(9), fg=colour, dim=colour is None)} {c['name']} ({_fmt_points(c['points'])}/{c['max_points']})")
            if c["status"] == "not_implemented" and not verbose:
                continue
            if c["message"] and c["status"] != "passed":
                msg = c["message"] if verbose else _trim(c["message"], 14)
                lines.append("              " + msg.replace("\n", "\n              "))
            m = c.get("mistake")
            if m and m["name"] in shared_mistakes:
                lines.append(click.style(f"{_INDENT}likely mistake: {m['name']}", fg="yellow") +
                             f" (the same in {shared_mistakes[m['name']]} checks: see below)")
            elif m:
                lines += _mistake_lines(m, _INDENT)
            for d in c.get("diagnosis") or []:
                if (d["kind"], d["text"]) not in shared_diagnoses:
                    lines.append(_diagnosis_line(d, _INDENT))
        for names, group in groups.items():
            lines.append(f"    the same in {len(names)} checks ({', '.join(names)}):")
            if group["mistake"]:
                lines += _mistake_lines(group["mistake"], "      ")
            for d in group["diagnosis"]:
                lines.append(_diagnosis_line(d, "      "))
            if not group["mistake"] and section:
                lines.append(f"      revisit the notes: {notes_pointer(section)}")
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
