"""The terminal quiz: one statement at a time, the verdict and the why right after each answer.

Keys: `t`/`y`/`1` true, `f`/`n`/`0` false, `s` skip, `u` undo (back to the previous statement:
the revision schedule takes the new answer, the stored log keeps the first), `q` quit, `?` help. On a terminal a single key answers; when stdin
is not a terminal (a pipe, a file, a test) one answer is read per line, and the words `true`,
`false`, `yes`, `no`, `skip`, `undo`, `quit` work too. End of input and Ctrl-C quit like `q`.

Every answer is committed to the store (with the statement's new Leitner state) before its
feedback is printed, so killing the quiz loses nothing already answered.

A statement's id is shown only after it is answered: ids are written for maintainers
(`conv-not-translation-invariant`) and would often give the answer away.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol, TextIO

import click

from grader.quiz.bank import Statement
from grader.quiz.scheduler import CardState, is_due, next_state
from grader.store import QuizAnswer, Store

WIDTH = 78


class Action(Enum):
    TRUE = "true"
    FALSE = "false"
    SKIP = "skip"
    UNDO = "undo"
    QUIT = "quit"
    HELP = "help"


_KEYS = {
    "t": Action.TRUE, "y": Action.TRUE, "1": Action.TRUE,
    "f": Action.FALSE, "n": Action.FALSE, "0": Action.FALSE,
    "s": Action.SKIP, "u": Action.UNDO, "q": Action.QUIT, "?": Action.HELP, "h": Action.HELP,
}
_WORDS = {
    "true": Action.TRUE, "yes": Action.TRUE, "false": Action.FALSE, "no": Action.FALSE,
    "skip": Action.SKIP, "undo": Action.UNDO, "quit": Action.QUIT, "exit": Action.QUIT,
    "help": Action.HELP,
}
PROMPT = "  true or false? [t/f] (s skip, u undo, q quit, ? help) > "
HELP = (
    "  t, y or 1: true   f, n or 0: false   s: skip   u: undo the last answer   q: quit (answers are saved)"
)


def parse_answer(raw: str) -> Action | None:
    """The action a key or a line stands for, or None when it means nothing."""
    word = raw.strip().lower()
    return _KEYS.get(word) or _WORDS.get(word)


class Reader(Protocol):
    def read(self) -> str | None:
        """The next key or line, or None at the end of input."""


class LineReader:
    """One answer per line from a text stream (stdin when it is not a terminal)."""

    line_mode = True

    def __init__(self, stream: TextIO):
        self._stream = stream

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def read(self) -> str | None:
        line = self._stream.readline()
        return None if line == "" else line.rstrip("\r\n")


class KeyReader:
    """Single keys from a terminal in cbreak mode; restores the terminal on exit (a context manager)."""

    line_mode = False

    def __init__(self, fd: int):
        self._fd = fd
        self._saved: list | None = None

    def __enter__(self) -> KeyReader:
        import termios
        import tty

        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)  # keys arrive one by one, unechoed; Ctrl-C still interrupts
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def read(self) -> str | None:
        import select

        data = os.read(self._fd, 1)
        if data in (b"", b"\x04"):  # end of file, Ctrl-D
            return None
        if data == b"\x1b":  # an arrow or function key: swallow the rest of its sequence
            while select.select([self._fd], [], [], 0.02)[0]:
                os.read(self._fd, 16)
            return ""
        return data.decode("utf-8", errors="replace")


def open_reader(stdin: TextIO | None = None) -> LineReader | KeyReader:
    """A KeyReader when stdin is a terminal (and termios exists), else a LineReader."""
    stream = stdin if stdin is not None else sys.stdin
    try:
        interactive = stream.isatty()
        fd = stream.fileno()
        import termios  # noqa: F401  (absent on Windows: answer per line there)
    except (AttributeError, ValueError, OSError, ImportError):
        interactive = False
    return KeyReader(fd) if interactive else LineReader(stream)


@dataclass
class Turn:
    """What happened to one planned statement."""

    statement: Statement
    given: bool | None  # None: skipped
    answer_id: int | None = None
    previous: CardState | None = None  # the state an undo puts back

    @property
    def correct(self) -> bool:
        return self.given is not None and self.given == self.statement.answer


@dataclass
class SessionReport:
    """The outcome of one quiz session."""

    session_id: int
    planned: list[Statement]
    turns: list[Turn] = field(default_factory=list)
    quit_early: bool = False

    @property
    def answered(self) -> list[Turn]:
        return [t for t in self.turns if t.given is not None]

    @property
    def skipped(self) -> list[Turn]:
        return [t for t in self.turns if t.given is None]

    @property
    def correct(self) -> int:
        return sum(t.correct for t in self.answered)

    @property
    def missed(self) -> list[Turn]:
        return [t for t in self.answered if not t.correct]


def run_quiz(
    statements: Sequence[Statement],
    *,
    store: Store,
    session_id: int,
    states: dict[str, CardState],
    reader: LineReader | KeyReader,
    now: Callable[[], datetime],
    titles: dict[str, str] | None = None,
) -> SessionReport:
    """Ask `statements` in order, storing each answer at once; `states` is updated in place."""
    report = SessionReport(session_id=session_id, planned=list(statements))
    titles = titles or {}
    i = 0
    while i < len(statements):
        statement = statements[i]
        _show(statement, i + 1, len(statements), titles.get(statement.topic, statement.topic))
        started = time.monotonic()
        action = _ask(reader)
        if action is Action.QUIT:
            report.quit_early = True
            break
        if action is Action.UNDO:
            if not report.turns:
                click.echo("  Nothing to undo yet.")
                continue
            turn = report.turns.pop()
            if turn.answer_id is not None:
                store.undo_quiz_answer(turn.answer_id, turn.previous, now())
                _restore(states, turn.statement.id, turn.previous)
                click.echo("  Undone: answer it again. Your revision schedule takes the new answer; "
                           "the log keeps the first.")
            else:
                click.echo("  Back to the statement you skipped.")
            i -= 1
            continue
        if action is Action.SKIP:
            report.turns.append(Turn(statement, None))
            click.echo("  Skipped.")
            i += 1
            continue
        given = action is Action.TRUE
        moment = now()
        previous = states.get(statement.id)
        state = next_state(previous, given == statement.answer, moment)
        answer = QuizAnswer(
            session_id=session_id, statement_id=statement.id, topic=statement.topic, given=given,
            key=statement.answer, answered_at=moment, text_hash=statement.text_hash,
            response_ms=int((time.monotonic() - started) * 1000),
        )
        answer_id = store.record_quiz_answer(answer, state)  # committed before the feedback
        states[statement.id] = state
        report.turns.append(Turn(statement, given, answer_id, previous))
        for line in feedback_lines(statement, given):
            click.echo(line)
        i += 1
    return report


def _restore(states: dict[str, CardState], statement_id: str, previous: CardState | None) -> None:
    if previous is None:
        states.pop(statement_id, None)
    else:
        states[statement_id] = previous


def _show(statement: Statement, number: int, total: int, title: str) -> None:
    click.echo("")
    click.echo(click.style(f"[{number}/{total}] {title}", bold=True))  # no id: it could give the answer away
    for line in _wrap(statement.text, "  "):
        click.echo(click.style(line, bold=True))


def _ask(reader: LineReader | KeyReader) -> Action:
    """Prompt until a meaningful key or line arrives; end of input and Ctrl-C mean quit."""
    while True:
        click.echo(PROMPT, nl=False)
        try:
            raw = reader.read()
        except KeyboardInterrupt:
            click.echo("")
            return Action.QUIT
        if raw is None:
            click.echo("")
            return Action.QUIT
        action = parse_answer(raw)
        click.echo(raw if raw.isprintable() else "")  # keys are not echoed by the terminal, pipes never
        if action is Action.HELP:
            click.echo(HELP)
        elif action is None:
            if raw.strip():
                click.echo(f"  {raw.strip()!r} is not an answer. {HELP.strip()}")
        else:
            return action


def feedback_lines(statement: Statement, given: bool) -> list[str]:
    """The verdict and the statement's id, the explanation and its source, and what the notes say
    where they differ."""
    right = given == statement.answer
    verdict = click.style("RIGHT", fg="green", bold=True) if right else click.style("WRONG", fg="red", bold=True)
    lines = [f"  {verdict}: you said {_word(given)}; the statement is {_word(statement.answer).upper()}."
             + click.style(f"  [{statement.id}]", dim=True)]
    lines += _wrap("Why: " + statement.explanation, "  ")
    if statement.source:
        lines += [click.style(line, dim=True) for line in _wrap("Source: " + statement.source, "  ")]
    if statement.notes_flag is not None:
        flag = f"!! {statement.notes_flag}; the answer above follows the sources (see Why)."
        lines += [click.style(line, fg="yellow", bold=True) for line in _wrap(flag, "  ")]
    elif statement.from_notes:
        reworded = ", reworded" if statement.notes_text else ""
        lines.append(click.style(f"  (From the notes' True/False list{reworded}; the notes agree.)", dim=True))
    return lines



def summary_lines(report: SessionReport, states: dict[str, CardState], scope: Sequence[Statement],
                  now: datetime, titles: dict[str, str]) -> list[str]:
    """Score, per-topic results, the statements missed and what is due next."""
    answered = report.answered
    lines = [""]
    if report.quit_early:
        lines.append(f"Stopped after {len(report.turns)} of {len(report.planned)} statements; every answer is saved.")
    if not answered:
        lines.append(f"No answers this time ({len(report.skipped)} skipped).")
    else:
        pct = round(100 * report.correct / len(answered))
        lines.append(click.style(f"Score: {report.correct}/{len(answered)} right ({pct}%)", bold=True)
                     + (f", {len(report.skipped)} skipped." if report.skipped else "."))
        lines.append("By topic:")
        by_topic: dict[str, list[Turn]] = {}
        for turn in answered:
            by_topic.setdefault(turn.statement.topic, []).append(turn)
        width = max(len(titles.get(topic, topic)) for topic in by_topic)
        for topic, turns in by_topic.items():
            ok = sum(t.correct for t in turns)
            lines.append(f"  {titles.get(topic, topic):<{width}}  {ok:>3}/{len(turns):<3} {round(100 * ok / len(turns)):>3}%")
    if report.missed:
        lines.append("Missed (revisit them with `grade quiz --mistakes`):")
        for turn in report.missed:
            s = turn.statement
            lines += _wrap(f"- {s.text} -> {_word(s.answer).upper()}  [{s.id}]", "  ", "    ")
    lines.append(due_line(states, scope, now))
    return lines


def due_line(states: dict[str, CardState], scope: Sequence[Statement], now: datetime) -> str:
    """One line saying what is due now and when the next statement falls due."""
    seen = [states[s.id] for s in scope if s.id in states]
    due_now = sum(is_due(st, now) for st in seen)
    unseen = len(scope) - len(seen)
    later = sorted(st.due_at for st in seen if st.due_at > now)
    parts = [f"{due_now} due now" if due_now else "nothing due now"]
    if later:
        parts.append(f"the next {when(later[0], now)} ({later[0]:%Y-%m-%d %H:%M} UTC)")
    if unseen:
        parts.append(f"{unseen} never answered")
    hint = " Run `grade quiz --review` to revise what is due." if due_now else ""
    return "Next: " + "; ".join(parts) + "." + hint


def when(moment: datetime, now: datetime) -> str:
    """'now', 'in 5 h', 'in 3 days'."""
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "now"
    if seconds < 3600:
        return f"in {max(1, round(seconds / 60))} min"
    if seconds < 36 * 3600:
        return f"in {round(seconds / 3600)} h"
    return f"in {round(seconds / 86400)} days"


def _word(value: bool) -> str:
    return "true" if value else "false"


def _wrap(text: str, indent: str, subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent,
                         subsequent_indent=subsequent if subsequent is not None else indent) or [indent]
