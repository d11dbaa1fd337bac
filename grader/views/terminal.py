"""Terminal rendering of results: part by part, what passed, what failed and why. No torch.

Under each check: its message, the named mistake (explained, with the notes' section), the
diagnosis and what the student's code printed. What several checks of one part share (the same
mistake, the same diagnosis) is explained once, after the part's checks ("the same in 3
checks"), not once per check. Everything here reads the typed records of `engine.results`;
whether an exercise is complete and the points of each part come from them.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import click

from grader.engine.results import CheckResult, Diagnosis, ExerciseResult, GradingRun, MistakeInfo
from grader.paths import section_slug

MARKS = {
    "passed": ("PASS", "green"),
    "failed": ("FAIL", "red"),
    "error": ("ERROR", "red"),
    "timeout": ("TIMEOUT", "yellow"),
    "crashed": ("CRASH", "magenta"),
    "not_implemented": ("TODO", None),  # dim: not attempted is not an error
    "forbidden": ("FORBIDDEN", "red"),
}
MESSAGE_LINES = 14  # lines of a check's message shown without --verbose
OUTPUT_LINES = 6  # lines of what a check printed shown without --verbose
_INDENT = " " * 14
_KIND_LABELS = {"across_cases": "across cases"}


def notes_pointer(section: str, subsection: str = "") -> str:
    """Where to read about a section (and one of its subsections): its name and the command that shows it."""
    where = f'{section}, "{subsection}"' if subsection else section
    return f"{where} (`grade notes {section_slug(section)}`)"


def status_mark(status: str) -> str:
    """A check status's label, padded to one width, in its colour (TODO dim)."""
    mark, colour = MARKS[status]
    return click.style(mark.ljust(9), fg=colour, dim=colour is None)


def trim(text: str, max_lines: int, more: str = "with --verbose") -> str:
    """`text` cut to `max_lines` lines, saying how many more there are."""
    rows = text.splitlines()
    if len(rows) <= max_lines:
        return text
    return "\n".join(rows[:max_lines] + [f"... ({len(rows) - max_lines} more lines {more})"])


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False)


def diagnosis_line(d: Diagnosis, indent: str) -> str:
    head = f"diagnosis ({_KIND_LABELS.get(d.kind, d.kind)}): "
    wrapped = _wrap(head + d.text, indent)
    return click.style(wrapped[:len(indent) + len(head)], fg="yellow") + wrapped[len(indent) + len(head):]


def mistake_lines(m: MistakeInfo, indent: str) -> list[str]:
    return [click.style(f"{indent}likely mistake: {m.name}", fg="yellow"), _wrap(m.explanation, indent),
            f"{indent}revisit the notes: " + notes_pointer(m.section, m.subsection)]


@dataclass
class _Shared:
    """What a group of checks of one part have in common."""

    mistake: MistakeInfo | None = None
    diagnosis: list[Diagnosis] = field(default_factory=list)


def _shared(checks: list[CheckResult]) -> dict[tuple[str, ...], _Shared]:
    """What two or more checks of a part have in common, grouped by the checks that share it."""
    owners: dict[object, list[str]] = {}
    for c in checks:
        if c.mistake is not None:
            owners.setdefault(c.mistake.name, []).append(c.name)
        for d in c.diagnosis:
            owners.setdefault(d, []).append(c.name)
    groups: dict[tuple[str, ...], _Shared] = {}
    for key, names in owners.items():
        if len(names) < 2:
            continue
        group = groups.setdefault(tuple(names), _Shared())
        if isinstance(key, Diagnosis):
            group.diagnosis.append(key)
        else:
            group.mistake = next(c.mistake for c in checks if c.mistake is not None and c.mistake.name == key)
    return groups


def check_details(c: CheckResult, indent: str, *, verbose: bool = False, more: str = "with --verbose",
                  shared: dict[tuple[str, ...], _Shared] | None = None) -> list[str]:
    """The lines under a check's mark: its message, the named mistake, the diagnosis and what it
    printed; what it shares with other checks (`shared`) is only referred to."""
    lines = []
    if c.message and c.status not in ("passed", "not_implemented"):
        msg = c.message if verbose else trim(c.message, MESSAGE_LINES, more)
        lines.append(indent + msg.replace("\n", "\n" + indent))
    groups = [(names, g) for names, g in (shared or {}).items() if c.name in names]
    shared_mistake = next((len(names) for names, g in groups if g.mistake is not None), 0)
    shared_diagnoses = {d for _, g in groups for d in g.diagnosis}
    if c.mistake is not None and shared_mistake:
        lines.append(click.style(f"{indent}likely mistake: {c.mistake.name}", fg="yellow")
                     + f" (the same in {shared_mistake} checks: see below)")
    elif c.mistake is not None:
        lines += mistake_lines(c.mistake, indent)
    lines += [diagnosis_line(d, indent) for d in c.diagnosis if d not in shared_diagnoses]
    if c.output:
        out = c.output.rstrip("\n") if verbose else trim(c.output.rstrip("\n"), OUTPUT_LINES, more)
        lines.append(click.style(f"{indent}your code printed:", fg="yellow")
                     + f"\n{indent}  " + out.replace("\n", f"\n{indent}  "))
    return lines


def exercise_report(result: ExerciseResult, *, verbose: bool = False, title: str = "", section: str = "") -> str:
    """The per-part report of one exercise result."""
    lines = []
    head = result.exercise + (f": {title}" if title else "")
    lines.append(click.style(head, bold=True) + f"  ({result.score:g}/{result.max_score} points)")
    for notice in result.notices:
        lines.append(click.style("  note: ", fg="yellow") + notice.replace("\n", "\n        "))
    if verbose:
        lines.append(f"  sandbox: {result.sandbox}")
    for part in result.parts:
        checks = [c for c in result.checks if c.part == part.name]
        lines.append(f"\n  {click.style(part.name, bold=True)}  {part.points:g}/{part.max_points:g}")
        groups = _shared(checks)
        for c in checks:
            lines.append(f"    {status_mark(c.status)} {c.name} ({c.points:g}/{c.max_points})")
            lines.extend(check_details(c, _INDENT, verbose=verbose, shared=groups))
        for names, group in groups.items():
            lines.append(f"    the same in {len(names)} checks ({', '.join(names)}):")
            if group.mistake is not None:
                lines += mistake_lines(group.mistake, "      ")
            lines += [diagnosis_line(d, "      ") for d in group.diagnosis]
            if group.mistake is None and section:
                lines.append(f"      revisit the notes: {notes_pointer(section)}")
    if result.not_started:
        lines.append(f"\n  Nothing implemented yet: open {result.path} and replace the stubs."
                     + (f" The notes' section: {notes_pointer(section)}." if section else ""))
    elif result.complete:
        lines.append(click.style("\n  All checks passed.", fg="green"))
    return "\n".join(lines)


def summary_table(run: GradingRun) -> str:
    """One line per exercise and a total, for `grade all`."""
    results = run.exercises
    width = max((len(r.exercise) for r in results), default=8)
    lines = [f"{'exercise'.ljust(width)}  score      passed  status"]
    for r in results:
        ok = sum(c.passed for c in r.checks)
        state = "complete" if r.complete else "not started" if r.not_started else "in progress"
        score = f"{r.score:g}/{r.max_score}"
        lines.append(f"{r.exercise.ljust(width)}  {score.ljust(9)}  {f'{ok}/{len(r.checks)}'.ljust(6)}  {state}")
    lines.append(f"{'total'.ljust(width)}  {run.score:g}/{run.max_score}")
    return "\n".join(lines)
