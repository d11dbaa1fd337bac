"""`grade quiz`: the thin command line over the quiz library (bank, scheduler, session, export).

`grade quiz [TOPIC]... [OPTIONS]` runs the quiz (a hidden default command, `run`), and
`grade quiz export ...` exports the bank; `QuizGroup` routes anything that is not a subcommand
name to the default command. User errors raise `QuizError` (exit code 2) with what to do.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from grader.commands import SetupFailure, complete_topic
from grader.quiz.bank import Bank, BankError, Statement, load_bank
from grader.quiz.export import FORMATS, export_bank
from grader.quiz.scheduler import select
from grader.store import ENV_VAR, Store, StoreError

if TYPE_CHECKING:
    from grader.quiz.session import SessionReport


class QuizError(SetupFailure):
    """A problem the student can fix (bad bank, bad database, bad path); exit code 2."""


class IsoTime(click.ParamType):
    """A moment in ISO 8601 (`2025-03-01T09:00`, local time unless it says otherwise)."""

    name = "ISO-TIME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time such as 2025-03-01T09:00", param, ctx)
        return (moment if moment.tzinfo else moment.astimezone()).astimezone(timezone.utc)


class _DefaultContext(click.Context):
    """The default command's context answers to its group's name, so that usage lines and
    hints read `grade quiz ...`, not `grade quiz run ...`."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class _DefaultCommand(click.Command):
    context_class = _DefaultContext


class QuizGroup(click.Group):
    """A group whose default command takes any arguments that do not name a subcommand."""

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        asks_help = any(a in ctx.help_option_names for a in args)
        if first not in self.commands and not asks_help:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[TOPIC]... [OPTIONS]")
        formatter.write_usage(ctx.command_path, "export --format FORMAT [TOPIC]... [-o FILE]", prefix="   or: ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.commands[self.default_command].format_options(ctx, formatter)
        self.format_commands(ctx, formatter)


@click.group(cls=QuizGroup)
def quiz() -> None:
    """Answer true/false statements from the course notes, with explanations and spaced revision.

    \b
    Keys: t/y/1 true, f/n/0 false, s skip, u undo the last answer, q quit (answers are saved).
    On a terminal one key answers; from a pipe or a file, one answer per line.

    TOPIC is a file of the bank (convolution, gap, segmentation, detection, metric, autoencoders,
    gans) or a unique prefix of one; without TOPIC every topic is asked. A session asks what is
    due for revision first, then new statements. Every answer is stored at once in the progress
    database; statements move through Leitner boxes (due again after 1, 3, 7, 16, 35 days; a wrong
    answer goes back to 1 day), and a box of 4 or more counts as mastered.

    \b
    Examples:
      grade quiz gap --count 5        five statements on global average pooling
      grade quiz --review             revise what is due, most overdue first
      grade quiz --mistakes           the statements you last got wrong
      grade quiz --stats              mastery per topic and what is due when
      grade quiz --check              validate the bank and count statements per file
      grade quiz export --format gift -o cnn.gift     for Moodle (also moodle-xml, anki-csv, json)
    """


_bank_option = click.option(
    "--bank", "bank_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of the quiz bank (*.yaml).  [default: the course's quizzes/]",
)


@quiz.command("run", hidden=True, cls=_DefaultCommand)
@click.argument("topics", nargs=-1, metavar="[TOPIC]...", shell_complete=complete_topic)
@click.option("-n", "--count", type=click.IntRange(min=1), default=10, show_default=True,
              help="Ask at most N statements.")
@click.option("--review", is_flag=True, help="Ask only what is due for revision, most overdue first.")
@click.option("--mistakes", is_flag=True, help="Ask only the statements whose last answer was wrong.")
@click.option("--seed", type=int, default=None, help="Seed the order, to replay the same session.")
@click.option("--check", is_flag=True, help="Validate the bank, print the counts per file, and exit.")
@click.option("--stats", is_flag=True, help="Show mastery per topic and what is due when, and exit.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write your answers and per-statement results to FILE, in the JSON form "
                   "the instructor report reads (documented in grader/quiz/results.py).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar=ENV_VAR, show_envvar=True,
              default=None, help="Progress database.  [default: .grade/progress.db in the course]")
@_bank_option
@click.option("--now", type=IsoTime(), default=None,
              help="Pretend it is this time (e.g. 2025-03-01T09:00), to try out the schedule. Works on "
                   "a scratch copy of your progress, which is never saved (unless --db names another file).")
def run_cmd(topics: tuple[str, ...], count: int, review: bool, mistakes: bool, seed: int | None,
            check: bool, stats: bool, json_path: Path | None, db: Path | None, bank_dir: Path | None,
            now: datetime | None) -> None:
    """Run the quiz (the default command of `grade quiz`)."""
    if review and mistakes:
        raise click.UsageError("Choose one of --review and --mistakes: they select different statements.")
    bank = _load(bank_dir, strict=check)
    if check:
        _print_check(bank)
        return
    names = _topics(bank, topics)
    clock = _clock(now)
    if json_path is not None:
        _check_json_path(json_path)
    scope = [s for name in names for s in bank.topic(name).statements]
    titles = {t.name: t.title for t in bank.topics}
    with _open_store(db, scratch=now is not None and not _names_another_store(db)) as store:
        states = store.card_states()
        if stats:
            from grader.quiz.stats import stats_lines

            for line in stats_lines(bank, states, names, clock()):
                click.echo(line)
            _write_json(json_path, store, bank, clock(), None)
            return
        from grader.quiz.session import due_line, open_reader, run_quiz, summary_lines

        mode = "review" if review else "mistakes" if mistakes else "mixed"
        chosen = select(scope, states, mode=mode, count=count, now=clock(), rng=random.Random(seed))
        if not chosen:
            click.echo("No statement was answered wrong last time: nothing to revisit." if mistakes
                       else "Nothing is due for revision now.")
            click.echo(due_line(states, scope, clock()))
            _write_json(json_path, store, bank, clock(), None)
            return
        session_id = store.start_quiz_session(mode=mode, topics=names, seed=seed, bank=bank.fingerprint,
                                              started_at=clock())
        reader = open_reader()
        with reader:  # a terminal goes to single-key mode inside, and back afterwards
            report = run_quiz(chosen, store=store, session_id=session_id, states=states, reader=reader,
                              now=clock, titles=titles)
        store.finish_quiz_session(session_id, clock())
        for line in summary_lines(report, states, scope, clock(), titles):
            click.echo(line)
        _write_json(json_path, store, bank, clock(), report)


@quiz.command("export")
@click.argument("topics", nargs=-1, metavar="[TOPIC]...", shell_complete=complete_topic)
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="gift or moodle-xml for Moodle (true/false with feedback), anki-csv for Anki, json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE instead of standard output.")
@_bank_option
def export_cmd(topics: tuple[str, ...], fmt: str, output: Path | None, bank_dir: Path | None) -> None:
    """Write the bank (or some topics) in a format that Moodle or Anki imports."""
    bank = _load(bank_dir, strict=False)
    if not topics and bank.problems:
        raise QuizError(f"{BankError(list(bank.problems))}\nThe export would lack the topics above. Fix the "
                        "file(s), or name the topics to export.")
    text = export_bank(bank, fmt, _topics(bank, topics))
    if output is None:
        click.echo(text, nl=False)
        return
    if not output.parent.is_dir():
        raise QuizError(f"Cannot write {output}: the folder {output.parent} does not exist. Create it or choose another path.")
    from grader.quiz.results import write_text_atomic

    try:
        write_text_atomic(output, text)
    except OSError as exc:
        raise QuizError(f"Cannot write {output}: {exc.strerror or exc}. Choose another path.") from exc
    click.echo(f"Wrote {sum(len(bank.topic(n).statements) for n in _topics(bank, topics))} statements to {output} ({fmt}).", err=True)


def _load(bank_dir: Path | None, strict: bool) -> Bank:
    """The bank; unless `strict` (`--check`, uncached), a broken file only leaves its topic out,
    with a one-line warning on standard error naming the file and line."""
    try:
        bank = load_bank(bank_dir, use_cache=not strict, strict=strict)
    except BankError as exc:
        raise QuizError(f"{exc}\nFix the file(s) named above, then check again with `grade quiz --check`.") from exc
    for name, problems in bank.broken_topics.items():
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        click.echo(f"Warning: {problems[0]}{more}; topic {name!r} is left out until this is fixed "
                   "(`grade quiz --check` lists every problem).", err=True)
    return bank


def _topics(bank: Bank, topics: tuple[str, ...]) -> list[str]:
    if not topics:
        return list(bank.topic_names)
    try:
        return bank.resolve_topics(topics)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TOPIC") from exc


def _print_check(bank: Bank) -> None:
    header = f"{'file':<20}{'statements':>11}{'true':>6}{'false':>7}{'true %':>8}{'from notes':>12}{'notes differ':>14}"
    click.echo(header)
    click.echo("-" * len(header))
    for t in bank.topics:
        click.echo(_count_row(t.file.name, t.statements))
    click.echo("-" * len(header))
    click.echo(_count_row("total", bank.statements))
    click.echo(f"The bank in {bank.directory} is valid ({len(bank.topics)} files).")


def _count_row(label: str, statements: Sequence[Statement]) -> str:
    n = len(statements)
    true = sum(s.answer for s in statements)
    notes = sum(s.from_notes for s in statements)
    differ = sum(s.notes_disagree for s in statements)
    return f"{label:<20}{n:>11}{true:>6}{n - true:>7}{round(100 * true / n) if n else 0:>7}%{notes:>12}{differ:>14}"


def _clock(fixed: datetime | None) -> Callable[[], datetime]:
    """The current time, or `fixed` plus the time elapsed since the command started."""
    if fixed is None:
        return lambda: datetime.now(timezone.utc)
    start = time.monotonic()
    return lambda: fixed + timedelta(seconds=time.monotonic() - start)


def _names_another_store(db: Path | None) -> bool:
    """Whether `--db` on the command line names a file other than the real progress store."""
    from grader.store import default_path

    source = click.get_current_context().get_parameter_source("db")
    if db is None or source is not click.core.ParameterSource.COMMANDLINE:
        return False  # the default, or $GRADE_PROGRESS_DB: the real store
    return db.expanduser().resolve() != default_path().expanduser().resolve()


@contextlib.contextmanager
def _open_store(db: Path | None, scratch: bool = False) -> Iterator[Store]:
    """The progress store; outside a course, only where --db, $GRADE_PROGRESS_DB or $GRADE_HOME say.

    `scratch`: a copy of it in a temporary folder, deleted afterwards (`--now` tries out the
    schedule from the real history without writing into it).
    """
    import os
    import tempfile

    from grader.paths import CourseError, course_root

    if db is None and not os.environ.get(ENV_VAR) and not os.environ.get("GRADE_HOME"):
        try:
            course_root()
        except CourseError as exc:
            raise QuizError(f"{exc} To keep your answers elsewhere, pass --db PATH.") from None
    folder = tempfile.TemporaryDirectory(prefix="cnn-grader-now-") if scratch else contextlib.nullcontext()
    with folder as scratch_dir:
        try:
            store = Store.open_copy(db, Path(scratch_dir) / "progress.db") if scratch_dir else Store.open(db)
        except StoreError as exc:
            raise QuizError(str(exc)) from exc
        if scratch_dir:
            click.echo("--now: working on a scratch copy of your progress; nothing from this run is saved.",
                       err=True)
        try:
            yield store
        except StoreError as exc:
            raise QuizError(str(exc)) from exc
        finally:
            store.close()


def _check_json_path(path: Path) -> None:
    from grader.quiz.results import check_writable

    try:
        check_writable(path)
    except ValueError as exc:
        raise QuizError(f"Cannot write the results to {path}: {exc}.") from exc


def _write_json(path: Path | None, store: Store, bank: Bank, now: datetime, report: SessionReport | None) -> None:
    if path is None:
        return
    from grader.quiz.results import build_results, write_results

    try:
        write_results(path, build_results(store, bank, now, report))
    except OSError as exc:
        raise QuizError(f"Cannot write the results to {path}: {exc.strerror or exc}. "
                        "Your answers are saved in the progress database; run again with another --json path.") from exc
    click.echo(f"Wrote your quiz results to {path}.")
