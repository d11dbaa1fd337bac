"""The study notes: one Markdown page per section of the course, and `grade notes [SECTION]`.

The pages live in `docs/notes/<slug>.md` (`grader.paths.section_slug`; installed as
`grader/_data/docs/notes/`). Each opens with a `# ` title and is divided into `## ` subsections,
which the hidden checks' named mistakes may point to. `grade notes SECTION` shows one page as plain
text (paged when it is longer than the terminal), followed by the exercises and quiz topics that
practise it; `grade notes` alone lists the sections. Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import click

from grader.catalog import load_catalog, sections  # the sections of the course, in order
from grader.paths import data_dir, section_slug

_BOLD = "\x01"  # stands for `**` while a paragraph is wrapped; never in the notes' text
_FENCE = "```"
_LIST_ITEM = re.compile(r"^(\s*)(-|\d+\.) (.*)$")
_CODE_SPAN = re.compile(r"(`[^`]*`)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_EMPHASIS = re.compile(r"(?<![*\w])\*(?!\*)([^*]+?)\*(?![*\w])")


class NotesError(click.ClickException):
    """The notes of a section cannot be read (a broken installation); exit code 2, as for setup errors."""

    exit_code = 2


@dataclass(frozen=True)
class NotesPage:
    """One section's notes: the course's name for the section, the page's title and its subsections."""

    section: str  # as the catalogue and the quiz bank spell it, e.g. "GlobalAvgPooling"
    title: str  # the page's `# ` heading
    subsections: tuple[str, ...]  # its `## ` headings, in order
    path: Path
    text: str


@dataclass(frozen=True)
class Practice:
    """What practises a section: the exercises of the catalogue and the quiz topics, with counts."""

    exercises: tuple[str, ...]
    quiz_topics: tuple[tuple[str, int], ...]  # (topic, statements of this section), most first
    quiz_problem: str = ""  # why the quiz topics are missing, when the bank cannot be read


def notes_dir() -> Path:
    """The folder of the notes: the checkout's `docs/notes/`, else the installed copy."""
    return data_dir("docs") / "notes"


def notes_path(section: str) -> Path:
    return notes_dir() / f"{section_slug(section)}.md"


def load_page(section: str) -> NotesPage:
    """The notes of `section`; `NotesError` when the page is missing or has no `# ` title."""
    path = notes_path(section)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NotesError(f"The notes of {section} cannot be read ({path}: {exc.strerror or exc}). "
                         "Reinstall cnn-grader, or restore docs/notes/ in the course checkout.") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise NotesError(f"{path}:1: the notes of {section} must open with a '# ' title line.")
    subsections = tuple(line[3:].strip() for line in _outside_code(lines) if line.startswith("## "))
    return NotesPage(section, lines[0][2:].strip(), subsections, path, text)


def _outside_code(lines: list[str]) -> list[str]:
    """The lines that are not inside a fenced code block."""
    kept, in_code = [], False
    for line in lines:
        if line.startswith(_FENCE):
            in_code = not in_code
        elif not in_code:
            kept.append(line)
    return kept


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def resolve_section(word: str) -> str:
    """The section a learner means by `word`: a section's name, its file name or its title, any
    case and spacing, an exercise's name (`unet`), a unique part of a name (`detection`), or a
    close misspelling. Raises `click.UsageError` listing the sections otherwise."""
    names: dict[str, str] = {}  # normalised name -> section
    for section in sections():
        names[_key(section)] = section
        names[_key(section_slug(section))] = section
    for exercise in load_catalog():
        names.setdefault(_key(exercise.name), exercise.section)
    key = _key(word)
    if key in names:
        return names[key]
    if len(key) >= 3:
        found = {section for name, section in names.items() if key in name}
        if len(found) == 1:
            return found.pop()
    close = {names[n] for n in difflib.get_close_matches(key, list(names), n=3, cutoff=0.75)}
    if len(close) == 1:
        return close.pop()
    hint = f" Did you mean {' or '.join(sorted(close))}?" if close else ""
    raise click.UsageError(f"No notes section {word!r}.{hint} The sections are: {', '.join(sections())} "
                           "(any case; an exercise's name also works). `grade notes` lists them with "
                           "their exercises and quiz topics.")


def practice() -> dict[str, Practice]:
    """Per section, the exercises and the quiz topics that practise it."""
    exercises: dict[str, list[str]] = {s: [] for s in sections()}
    for exercise in load_catalog():
        exercises.setdefault(exercise.section, []).append(exercise.name)
    counts: dict[str, dict[str, int]] = {s: {} for s in exercises}
    problem = ""
    from grader.quiz.bank import BankError, load_bank

    try:
        bank = load_bank()
    except BankError as exc:
        problem = f"the quiz bank cannot be read ({len(exc.problems)} problem(s); `grade quiz --check` lists them)"
    else:
        for statement in bank.statements:
            topics = counts.setdefault(statement.section, {})
            topics[statement.topic] = topics.get(statement.topic, 0) + 1
    return {
        s: Practice(tuple(exercises.get(s, ())),
                    tuple(sorted(counts.get(s, {}).items(), key=lambda item: (-item[1], item[0]))), problem)
        for s in exercises
    }


def _practice_lines(p: Practice, indent: str) -> list[str]:
    lines = []
    if p.exercises:
        lines.append(f"{indent}exercises: {', '.join(p.exercises)}")
    if p.quiz_topics:
        topics = ", ".join(f"{t} ({n} statement{'s' if n != 1 else ''})" for t, n in p.quiz_topics)
        lines.append(f"{indent}quiz: {topics}")
    elif p.quiz_problem:
        lines.append(f"{indent}quiz: {p.quiz_problem}")
    return lines


def section_list() -> str:
    """Every section with its page's title, the command that shows it, its exercises and quiz topics."""
    practised = practice()
    lines = ["The study notes, one page per section of the course. Read one with `grade notes SECTION`;",
             "practise it with `grade exercise NAME` and `grade quiz TOPIC`."]
    for i, section in enumerate(sections(), 1):
        try:
            title = load_page(section).title
        except NotesError:
            title = "(its page is missing)"
        label = section if _key(title) == _key(section) else f"{section}: {title}"
        lines.append(f"\n{i:2d}. {click.style(label, bold=True)}  `grade notes {section_slug(section)}`")
        lines.extend(_practice_lines(practised[section], "    "))
    return "\n".join(lines)


def render_page(page: NotesPage, width: int) -> str:
    """A page as terminal text, followed by what practises its section."""
    footer = _practice_lines(practice()[page.section], "  ")
    if not footer:
        return render_markdown(page.text, width)
    return (render_markdown(page.text, width) + "\n\nPractise this section (`grade exercise NAME`, "
            "`grade quiz TOPIC`):\n" + "\n".join(footer))


def render_markdown(text: str, width: int) -> str:
    """The Markdown the notes use, as readable plain text wrapped to `width` columns.

    Headings are bold and underlined, `**strong**` is bold, code spans lose their backticks,
    fenced code blocks are indented as they are, list items and paragraphs are re-wrapped.
    """
    out: list[str] = []
    block: list[str] = []  # the lines of the paragraph or list item being read
    prefix = ""  # the list marker of the item being read ("" for a paragraph)

    def flush() -> None:
        nonlocal block, prefix
        if block:
            out.extend(_wrap(" ".join(line.strip() for line in block), width, prefix))
        block, prefix = [], ""

    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith(_FENCE):
            flush()
            for code in lines:
                if code.startswith(_FENCE):
                    break
                out.append("    " + code)
        elif line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            heading = _inline(line[level:].strip()).replace(_BOLD, "")
            if out and out[-1]:
                out.append("")
            out.append(click.style(heading, bold=True))
            out.append(("=" if level == 1 else "-") * len(heading))
        elif not line.strip():
            flush()
            if out and out[-1]:
                out.append("")
        elif match := _LIST_ITEM.match(line):
            flush()
            prefix = f"{match.group(1)}  {match.group(2)} "
            block = [match.group(3)]
        else:
            block.append(line)
    flush()
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _inline(text: str) -> str:
    """Inline Markdown to plain text, `**` kept as the `_BOLD` marker; code spans are left verbatim."""
    parts = _CODE_SPAN.split(text)
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = part[1:-1]
        else:
            part = _LINK.sub(r"\1 (\2)", part)
            parts[i] = _EMPHASIS.sub(r"\1", part.replace("**", _BOLD))
    return "".join(parts)


def _wrap(text: str, width: int, prefix: str) -> list[str]:
    """Wrap one paragraph or list item, then turn the bold markers into terminal styles."""
    rows = textwrap.wrap(_inline(text), width=max(width, 40), initial_indent=prefix,
                         subsequent_indent=" " * len(prefix), break_on_hyphens=False, break_long_words=False)
    styled, bold = [], False
    for row in rows:
        pieces = row.split(_BOLD)
        out = ""
        for j, piece in enumerate(pieces):
            if j:
                bold = not bold
            out += click.style(piece, bold=True) if bold and piece else piece
        styled.append(out)
    return styled


def _terminal_size() -> tuple[int, int]:
    size = shutil.get_terminal_size((100, 24))
    return size.columns, size.lines


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


@click.command("notes")
@click.argument("section", required=False)
def notes_cmd(section: str | None) -> None:
    """Show the study notes of SECTION, or list the sections with their exercises and quiz topics.

    SECTION is a section's name in any case (`convolution`, `object-detection`, "Object
    Detection") or an exercise's name (`unet` shows Segmentation). A page longer than the
    terminal is shown in a pager.
    """
    if section is None:
        click.echo(section_list())
        return
    page = load_page(resolve_section(section))
    columns, rows = _terminal_size()
    text = render_page(page, min(columns - 1, 100))
    if _stdout_is_terminal() and text.count("\n") + 1 > rows - 1:
        click.echo_via_pager(text)
    else:
        click.echo(text)
