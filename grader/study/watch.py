"""`grade watch`: re-grade an exercise each time its file is saved, and move on when it is complete.

The loop polls the file's modification time and size (stdlib only, no watcher dependency) and
re-grades when its *content* changed, after a short settle so that a half-written save is not
graded. One `GradingSession` serves the whole watch: its worker stays warm and it keeps the
reference's outputs, so a re-grade costs the student's code only, not a new process, a torch
import or the references again. Each re-grade grades a snapshot of the file (the content whose
digest was taken; a save during grading waits for the next run), and paths in messages are mapped
back to the learner's file. After the first full report of an exercise, only what changed is shown.

`--manual` re-grades on a key press instead of polling (for file systems where modification
times are unreliable); `q` quits in both modes. `p` writes the last run's HTML page, with a picture
of each failing part, to `.grade/pictures/NAME.html` and opens it in the browser (`launch`; the
path is printed where there is none). `max_cycles` and `on_event` bound and stop the loop for
tests and scripts.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import click

from grader.catalog import exercise_names, get_exercise
from grader.engine.results import Diagnosis, ExerciseResult, MistakeInfo
from grader.views.terminal import MARKS, check_details, exercise_report, status_mark

DEFAULT_INTERVAL_S = 0.3  # a save is noticed within a third of a second; a stat() every 0.3 s costs nothing
SETTLE_S = 0.1  # a save must stay unchanged this long before it is graded (editors write in steps)
QUIT_KEYS = ("q", "Q")
PICTURE_KEYS = ("p", "P")


# --- what changed between two runs --------------------------------------------------------------
@dataclass(frozen=True)
class CheckChange:
    """One check whose status, message, named mistake or diagnosis differs from the previous run
    (before: None = new)."""

    name: str
    part: str
    before: str | None
    after: str
    points_before: float
    points: float
    max_points: float
    message: str
    mistake: MistakeInfo | None = None
    diagnosis: tuple[Diagnosis, ...] = ()


def diff_checks(before: ExerciseResult | None, after: ExerciseResult) -> list[CheckChange]:
    """The checks of `after` whose status, message, named mistake or diagnosis changed since
    `before` (all when None)."""
    old = {c.name: c for c in before.checks} if before is not None else {}
    changes = []
    for c in after.checks:
        prev = old.get(c.name)
        if prev is not None and (prev.status, prev.message, prev.mistake, prev.diagnosis) == (
                c.status, c.message, c.mistake, c.diagnosis):
            continue
        changes.append(CheckChange(c.name, c.part, prev.status if prev else None, c.status,
                                   prev.points if prev else 0.0, c.points, c.max_points, c.message, c.mistake,
                                   tuple(c.diagnosis)))
    return changes


def render_changes(before: ExerciseResult, after: ExerciseResult, changes: Sequence[CheckChange],
                   stamp: str = "") -> str:
    """The short report of a re-grade: the score and only the checks that changed."""
    delta = after.score - before.score
    head = f"{stamp + ' ' if stamp else ''}{after.exercise}: {after.score:g}/{after.max_score}"
    if delta:
        head += click.style(f" ({delta:+g})", fg="green" if delta > 0 else "red")
    head += f"  graded in {after.duration_s:.1f} s"
    if not changes:
        return head + "; no change since the last run"
    lines = [head]
    checks = {c.name: c for c in after.checks}
    for ch in changes:
        was = f"  (was {MARKS[ch.before][0]})" if ch.before else ""
        lines.append(f"  {status_mark(ch.after)} {ch.name} ({ch.points:g}/{ch.max_points:g}){was}")
        lines.extend(check_details(checks[ch.name], " " * 12, more="`grade exercise -v`"))
    lines.extend(click.style("  note: ", fg="yellow") + n for n in after.notices if n not in before.notices)
    return "\n".join(lines)


# --- keys ---------------------------------------------------------------------------------------
class KeySource(Protocol):
    def poll(self, timeout: float) -> str | None:
        """Wait up to `timeout` seconds for a key; None when none came."""

    def wait(self) -> str | None:
        """Wait for the next key (manual mode); None at end of input."""


class TerminalKeys:
    """Single key presses from a terminal (cbreak mode, restored on exit)."""

    def __init__(self, fd: int):
        self.fd = fd
        self._saved: Any = None

    def __enter__(self) -> "TerminalKeys":
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def poll(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 1).decode(errors="replace") if ready else None

    def wait(self) -> str | None:
        key = os.read(self.fd, 1).decode(errors="replace")
        return key or None


class LineKeys:
    """Keys from a pipe, a file or a test's input: one line is one key (its first character, or
    Enter for an empty line). Without a pollable descriptor, `poll` just waits."""

    def __init__(self, stream: Any):
        self.stream = stream
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self._buffer = b""
        self._eof = False

    def __enter__(self) -> "LineKeys":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    @staticmethod
    def _key(line: str) -> str:
        line = line.strip()
        return line[0] if line else "\n"

    def poll(self, timeout: float) -> str | None:
        if self.fd is None or self._eof:
            time.sleep(timeout)
            return None
        if b"\n" not in self._buffer:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 1024)
            if not chunk:
                self._eof = True
                return None
            self._buffer += chunk
        if b"\n" not in self._buffer:
            return None
        line, self._buffer = self._buffer.split(b"\n", 1)
        return self._key(line.decode(errors="replace"))

    def wait(self) -> str | None:
        line = self.stream.readline()
        return self._key(line) if line else None


def default_keys() -> TerminalKeys | LineKeys:
    """Single keys when standard input is a terminal (and termios exists), lines otherwise."""
    stdin = click.get_text_stream("stdin")
    try:
        if stdin.isatty() and sys.platform != "win32":
            return TerminalKeys(stdin.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    return LineKeys(stdin)


# --- the loop -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchConfig:
    """How `Watcher` grades and polls."""

    folder: Path
    seed: int = 0
    timeout: float = 10.0
    device: str = "cpu"
    interval: float = DEFAULT_INTERVAL_S
    settle: float = SETTLE_S
    manual: bool = False
    stay: bool = False  # keep watching a complete exercise instead of moving on (to tidy it up)
    max_cycles: int | None = None  # None: until `q`; a bound for tests and scripts
    pictures: Path | None = None  # where `p` writes the pages; None: `.grade/pictures/` of the course


@dataclass(frozen=True)
class WatchEvent:
    """One grading done by the loop; `previous` is None for an exercise's first run."""

    exercise: str
    result: ExerciseResult
    previous: ExerciseResult | None
    changes: tuple[CheckChange, ...]
    complete: bool
    cycle: int
    trusted: bool = True  # False when the grader's files changed during the run (not recorded)


@dataclass
class _Tracked:
    signature: tuple[int, int] | None = None  # (mtime_ns, size) last seen
    digest: str | None = None  # content graded last
    result: ExerciseResult | None = None


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _relabel(result: ExerciseResult, old: str, new: str) -> None:
    """Show the learner's path where the snapshot's path appears (in place)."""
    result.path = result.path.replace(old, new)
    result.notices = [n.replace(old, new) for n in result.notices]
    for c in result.checks:
        c.message, c.output = c.message.replace(old, new), c.output.replace(old, new)


def first_open(folder: Path, done: set[str], after: str | None = None) -> str | None:
    """The next exercise in course order (after `after`, wrapping round) whose file is in
    `folder` and which is not in `done`."""
    names = exercise_names()
    if after in names:
        i = names.index(after)
        names = names[i + 1:] + names[:i]
    return next((n for n in names if n not in done and (folder / f"{n}.py").is_file()), None)


@dataclass
class Watcher:
    """The watch loop. `run(name)` returns an exit status; nothing here calls `sys.exit`."""

    config: WatchConfig
    echo: Callable[[str], None] = click.echo
    keys: Any = None  # a KeySource; default: `default_keys()`
    record: Callable[[ExerciseResult], None] | None = None  # stores a trusted result
    on_event: Callable[[WatchEvent], bool | None] | None = None  # True stops the loop
    done: set[str] = field(default_factory=set)  # exercises already complete (from the store)
    clock: Callable[[], datetime] = datetime.now
    worker: Any = None  # a `grader.runner.handle.WorkerProcess` the caller owns; default: the session's own
    session: Any = None  # the `grader.engine.session.GradingSession` of a run (made and closed by `run`)
    launch: Callable[[str], int] = click.launch  # opens a page in the browser; returns non-zero when it cannot
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _scratch: str = ""
    _count: int = 0
    cycles: int = 0

    def run(self, start: str | None = None) -> int:
        current = start or first_open(self.config.folder, self.done)
        if current is None:
            self.echo(f"Every exercise in {self.config.folder} is complete. `grade progress` shows what to revise.")
            return 0
        from grader.engine.session import GradingSession
        from grader.views.pictures import draw  # for `p`: the picture of each failing part

        self.session = GradingSession(seed=self.config.seed, timeout=self.config.timeout, device=self.config.device,
                                      worker=self.worker, pictures=draw)  # a worker passed in is left running
        self._scratch = tempfile.mkdtemp(prefix="cnn-grader-watch-")
        keys = self.keys if self.keys is not None else default_keys()
        try:
            with keys:
                return self._loop(current, keys)
        except KeyboardInterrupt:
            self.echo("\nStopped.")
            return 0
        finally:
            self.session.close()
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _instructions(self) -> str:
        if self.config.manual:
            return "Save your file, then press Enter to grade it; p opens the pictures of what fails; q quits."
        return "Grading each time you save; press r to grade now, p to open the pictures of what fails, q to quit."

    def _loop(self, current: str, keys: Any) -> int:
        current_or_none = self._enter(current)
        if current_or_none is None:
            return 0
        current = current_or_none
        while self.config.max_cycles is None or self.cycles < self.config.max_cycles:
            self.cycles += 1
            if self.config.manual:
                key = keys.wait()
                if key is None or key in QUIT_KEYS:
                    break
                changed = key not in PICTURE_KEYS
            else:
                key = keys.poll(self.config.interval)
                if key in QUIT_KEYS:
                    break
                changed = key in ("r", "R", "\n", " ") or self._changed(current)
            if key in PICTURE_KEYS:
                self.show_pictures(current)
            if not changed:
                continue
            event = self._grade(current)
            if event is None:
                continue
            if self.on_event is not None and self.on_event(event):
                return 0
            if event.complete and not self.config.stay:
                nxt = self._next_after(current)
                entered = self._enter(nxt) if nxt is not None else None
                if entered is None:
                    return 0
                current = entered
        else:
            self.echo(f"Stopped after {self.cycles} cycles.")
        self.echo("Bye. `grade progress` shows where you are.")
        return 0

    def _enter(self, name: str) -> str | None:
        """Announce `name` and grade it in full; move on while what is graded is complete."""
        while True:
            path = self.config.folder / f"{name}.py"
            ex = get_exercise(name)
            self.echo(click.style(f"\n== {name}: {ex.title} (notes: {ex.section}) ==", bold=True)
                      + f"\nWatching {path}. {self._instructions()}")
            self._tracked.setdefault(name, _Tracked())
            if not path.is_file():
                self.echo(f"{path} does not exist yet; waiting for it (or run `grade reset {name}`).")
                return name
            self._changed(name)  # take the file's current signature
            event = self._grade(name)
            if event is not None and self.on_event is not None and self.on_event(event):
                return None
            if event is None or not event.complete or self.config.stay:
                return name
            nxt = self._next_after(name)
            if nxt is None:
                return None
            name = nxt

    def show_pictures(self, name: str) -> Path | None:
        """Write the HTML page of `name`'s last run (a picture of each failing part) and open it."""
        from grader.engine.results import write_text_atomic
        from grader.paths import progress_dir
        from grader.views.html import exercise_page, has_pictures

        result = self._tracked.get(name, _Tracked()).result
        if result is None:
            self.echo(f"{name} has not been graded yet: save it first.")
            return None
        if not has_pictures(result):
            self.echo("No picture: " + ("every check passes." if result.complete else
                                        "what fails has nothing to draw (an error, a timeout or a stub); the report says why."))
            return None
        folder = self.config.pictures or progress_dir() / "pictures"
        page = folder / f"{name}.html"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(page, exercise_page(result, title=get_exercise(name).title))
        except OSError as exc:
            self.echo(f"Could not write {page}: {exc.strerror or exc}.")
            return None
        opened = self.launch(page.resolve().as_uri()) == 0
        self.echo(f"pictures: {page}" + ("" if opened else " (no browser here: open that file in one)"))
        return page

    def _next_after(self, name: str) -> str | None:
        """Mark `name` complete and say what comes next (None: nothing left)."""
        self.done.add(name)
        nxt = first_open(self.config.folder, self.done, after=name)
        if nxt is None:
            self.echo(click.style(f"{name} is complete, and so is every exercise in {self.config.folder}. Well done!", fg="green")
                      + "\n`grade solution NAME` shows a reference beside your code; `grade progress` shows what to revise.")
            return None
        self.echo(click.style(f"{name} is complete.", fg="green") + f" Moving on to {nxt}.")
        return nxt

    def _changed(self, name: str) -> bool:
        """Whether the file's content changed since it was graded (waits for the save to settle)."""
        tracked = self._tracked.setdefault(name, _Tracked())
        path = self.config.folder / f"{name}.py"
        sig = _signature(path)
        if sig == tracked.signature:
            return False
        for _ in range(20):  # wait until two looks `settle` apart agree
            time.sleep(self.config.settle)
            again = _signature(path)
            if again == sig:
                break
            sig = again
        tracked.signature = sig
        if sig is None:
            return False
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return False
        return digest != tracked.digest

    def _grade(self, name: str) -> WatchEvent | None:
        """Grade a snapshot of the file in the session; print the report or the changes."""
        from grader.engine.oracles import SetupError

        tracked = self._tracked.setdefault(name, _Tracked())
        path = self.config.folder / f"{name}.py"
        try:
            source = path.read_bytes()
        except OSError as exc:
            self.echo(f"Cannot read {path}: {exc.strerror or exc}; waiting for the next save.")
            return None
        self._count += 1
        snapshot_dir = Path(self._scratch) / str(self._count)
        snapshot_dir.mkdir()
        snapshot = snapshot_dir / f"{name}.py"
        snapshot.write_bytes(source)
        try:
            result = self.session.grade(name, snapshot)
        except SetupError as exc:
            self.echo(str(exc).replace(str(snapshot), str(path)))
            return None
        finally:
            shutil.rmtree(snapshot_dir, ignore_errors=True)
        trusted = self.session.untouched()
        _relabel(result, str(snapshot.resolve()), str(path.resolve()))
        previous = tracked.result
        tracked.digest = hashlib.sha256(source).hexdigest()
        tracked.result = result
        changes = tuple(diff_checks(previous, result))
        stamp = f"[{self.clock():%H:%M:%S}]"
        if previous is None:
            ex = get_exercise(name)
            self.echo(f"{stamp} graded in {result.duration_s:.1f} s\n"
                      + exercise_report(result, title=ex.title, section=ex.section))
        else:
            self.echo(render_changes(previous, result, changes, stamp))
        if not trusted:
            self.echo(click.style("warning: the grader's own files or the references changed since watching started; "
                                  "the result was not saved. Restore them and save your file again.", fg="yellow"))
        elif self.record is not None:
            self.record(result)
        return WatchEvent(name, result, previous, changes, result.complete and trusted, self.cycles, trusted)
