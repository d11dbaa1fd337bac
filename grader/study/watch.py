"""`grade watch`: re-grade an exercise each time its file is saved, and move on when it is complete.

Saves are noticed through the kernel's file events (inotify, FSEvents... through `watchfiles`),
within about 10 ms: an event batch that stays quiet for `EVENT_STEP_MS` is a finished save. Where
events are not available (`watchfiles` missing or refused by the system, `--poll`), and as a
safety net for file systems whose events never arrive, the loop also looks at the file's
modification time and size every `interval` seconds, and grades a change once it has stayed the
same for `settle` seconds. Only a change of *content* is graded.

Grading runs in a thread while this loop keeps listening: the learner sees that a slow run is in
progress, `q` stops it at once, and a save with new content stops it and grades the new content
(the session kills the worker; the next run gets a fresh one from the zygote). One
`GradingSession` serves the whole watch: its worker stays warm and it keeps the reference's
outputs, so a re-grade costs the student's code only. Each run grades a snapshot of the file, and
paths in messages are mapped back to the learner's file. After the first full report of an
exercise, only the checks whose report changed are shown (a new status, message, named mistake or
diagnosis). A deleted file is reported once, with `grade reset NAME` to get the stub back.

`--manual` re-grades on a key press instead (for file systems where watching files fails); `q`
quits in both modes. `p` writes the last run's HTML page, with a picture of each failing part, to
`.grade/pictures/NAME.html` and opens it in the browser (`launch`; the path is printed where there
is none). `max_cycles` and `on_event` bound and stop the loop for tests and scripts.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import sys
import tempfile
import threading
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

DEFAULT_INTERVAL_S = 0.3  # the loop's longest sleep: keys without a descriptor and the look at the file
SETTLE_S = 0.1  # with polling, a change must stay the same this long before it is graded
EVENT_STEP_MS = 10  # file events: a batch that stays quiet this long is a finished save
PROGRESS_AFTER_S = 0.5  # a run that takes longer says that it is under way
QUIT_KEYS = ("q", "Q")
PICTURE_KEYS = ("p", "P")
GRADE_KEYS = ("r", "R", "\n", " ")


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
    """The checks of `after` whose report changed since `before` (all when None): a new status or
    message, and also a named mistake or diagnosis that changed while the status and message did not."""
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
        was = "" if ch.before is None else f"  (was {MARKS[ch.before][0]})" if ch.before != ch.after else "  (still " \
            f"{MARKS[ch.before][0]}, explained differently)"
        lines.append(f"  {status_mark(ch.after)} {ch.name} ({ch.points:g}/{ch.max_points:g}){was}")
        lines.extend(check_details(checks[ch.name], " " * 12, more="`grade exercise -v`"))
    lines.extend(click.style("  note: ", fg="yellow") + n for n in after.notices if n not in before.notices)
    return "\n".join(lines)


# --- keys ---------------------------------------------------------------------------------------
class KeySource(Protocol):
    def fileno(self) -> int | None:
        """A descriptor that becomes readable when a key is waiting; None when there is none (then
        `poll(0)` is asked at each wake-up of the loop, at least every `interval` seconds)."""

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

    def fileno(self) -> int | None:
        return self.fd

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

    def fileno(self) -> int | None:
        return None if self._eof else self.fd

    def poll(self, timeout: float) -> str | None:
        if b"\n" not in self._buffer:
            if self.fd is None or self._eof:
                time.sleep(timeout)
                return None
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


# --- noticing saves -----------------------------------------------------------------------------
class FileEvents:
    """The kernel's file events for the `.py` files of one folder, from `watchfiles` in a thread:
    `take()` gives the names of the files changed since the last call, and a byte is written to
    `wake_fd` whenever some arrive. `failure` says why events stopped, if they did."""

    def __init__(self, folder: Path, wake_fd: int) -> None:
        import watchfiles  # noqa: F401 - ImportError here: the caller polls instead

        self.folder, self._wake_fd = folder, wake_fd
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._names: set[str] = set()
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="grade-watch-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from watchfiles import watch

        try:
            for changes in watch(self.folder, watch_filter=lambda change, path: path.endswith(".py"),
                                 step=EVENT_STEP_MS, debounce=500, stop_event=self._stop, rust_timeout=1000,
                                 recursive=False, raise_interrupt=False):
                with self._lock:
                    self._names.update(Path(path).name for _, path in changes)
                self._wake()
        except Exception as exc:  # noqa: BLE001 - e.g. no inotify watches left: the loop's look goes on
            self.failure = f"{type(exc).__name__}: {exc}"
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_fd, b"e")
        except OSError:
            pass

    def take(self) -> set[str]:
        with self._lock:
            names, self._names = self._names, set()
        return names

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _digest(source: bytes) -> str:
    return hashlib.sha256(source).hexdigest()


# --- the loop -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchConfig:
    """How `Watcher` grades and notices saves."""

    folder: Path
    seed: int = 0
    timeout: float = 10.0
    device: str = "cpu"
    interval: float = DEFAULT_INTERVAL_S
    settle: float = SETTLE_S
    manual: bool = False
    poll: bool = False  # only look at the file every `interval` seconds (no file events)
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
    changed_at: float | None = None  # when a look last saw the signature change (None: settled)
    digest: str | None = None  # content graded last
    result: ExerciseResult | None = None
    missing: bool = False  # the file is gone and that was said


@dataclass
class _Run:
    """One grading run, in its own thread; the loop reads its outcome once the thread is done."""

    name: str
    digest: str
    snapshot: Path
    started: float
    stop: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # set before the loop is woken
    thread: threading.Thread | None = None
    step: str = "importing your module"  # where the run is, for the progress line
    announced: bool = False
    result: ExerciseResult | None = None
    setup_error: str | None = None
    failure: BaseException | None = None  # a bug of the grader: raised again in the loop


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
    events: FileEvents | None = None  # file events, while they work (made and closed by `run`)
    cycles: int = 0
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _run: _Run | None = None
    _scratch: str = ""
    _count: int = 0
    _wake: tuple[int, int] = (-1, -1)  # a pipe: the events' and the grading thread's wake-up calls

    def run(self, start: str | None = None) -> int:
        current = start or first_open(self.config.folder, self.done)
        if current is None:
            self.echo(f"Every exercise in {self.config.folder} is complete. `grade progress` shows what to revise.")
            return 0
        from grader.engine.session import GradingSession
        from grader.paths import kept_values_dir
        from grader.views.pictures import draw  # for `p`: the picture of each failing part

        self.session = GradingSession(seed=self.config.seed, timeout=self.config.timeout, device=self.config.device,
                                      worker=self.worker, pictures=draw,  # a worker passed in is left running
                                      keep=kept_values_dir())
        self._scratch = tempfile.mkdtemp(prefix="cnn-grader-watch-")
        self._wake = os.pipe()
        for fd in self._wake:
            os.set_blocking(fd, False)
        keys = self.keys if self.keys is not None else default_keys()
        try:
            self.events = self._start_events()
            with keys:
                return self._loop(current, keys)
        except KeyboardInterrupt:
            self.echo("\nStopped.")
            return 0
        finally:
            self._stop_run()
            if self.events is not None:
                self.events.close()
            self.session.close()
            for fd in self._wake:
                os.close(fd)
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _start_events(self) -> FileEvents | None:
        if self.config.manual or self.config.poll:
            return None
        try:
            return FileEvents(self.config.folder, self._wake[1])
        except ImportError:
            self.echo(f"note: file events are not available (watchfiles is not installed); looking at your file "
                      f"every {self.config.interval:g} s instead.")
            return None

    def _instructions(self) -> str:
        if self.config.manual:
            return "Save your file, then press Enter to grade it; p opens the pictures of what fails; q quits."
        return "Grading each time you save; press r to grade now, p to open the pictures of what fails, q to quit."

    def _loop(self, current: str, keys: Any) -> int:
        self._enter(current)
        while self.config.max_cycles is None or self.cycles < self.config.max_cycles:
            self.cycles += self._run is None  # a cycle is a look or a key press; waiting for a run is not one
            key, ended = self._wait(keys)
            if key in QUIT_KEYS or ended:
                break
            self._check_events()
            run = self._run
            if run is not None and run.finished.is_set():
                event = self._finish(run)
                if event is not None:
                    if self.on_event is not None and self.on_event(event):
                        return 0
                    if event.complete and not self.config.stay:
                        nxt = self._next_after(current)
                        if nxt is None:
                            return 0
                        current = nxt
                        self._enter(current)
                        continue
            elif run is not None:
                self._announce(run)
            if key in PICTURE_KEYS:
                self.show_pictures(current)
            force = key is not None and key not in PICTURE_KEYS and (self.config.manual or key in GRADE_KEYS)
            self._notice(current, force)
        else:
            self.echo(f"Stopped after {self.cycles} cycles.")
        self.echo("Bye. `grade progress` shows where you are.")
        return 0

    def _wait(self, keys: Any) -> tuple[str | None, bool]:
        """Sleep until a key, a file event, the end of a run or the next look at the file;
        returns (the key pressed or None, whether the keys came to an end)."""
        fd = keys.fileno() if hasattr(keys, "fileno") else None
        if self.config.manual and fd is None and self._run is None:
            key = keys.wait()
            return key, key is None
        select.select([self._wake[0]] + ([fd] if fd is not None else []), [], [], self._timeout())
        try:
            while os.read(self._wake[0], 4096):
                pass
        except BlockingIOError:
            pass
        return keys.poll(0), False

    def _timeout(self) -> float:
        """Seconds until the loop must look again: a change settling, a run to announce, the look."""
        now, wait = time.monotonic(), self.config.interval
        for tracked in self._tracked.values():
            if tracked.changed_at is not None:
                wait = min(wait, tracked.changed_at + self.config.settle - now)
        if self._run is not None and not self._run.announced:
            wait = min(wait, self._run.started + PROGRESS_AFTER_S - now)
        return max(wait, 0.0)

    def _check_events(self) -> None:
        if self.events is not None and self.events.failure is not None:
            self.echo(f"note: file events stopped ({self.events.failure}); looking at your file every "
                      f"{self.config.interval:g} s instead.")
            self.events.close()
            self.events = None

    def _enter(self, name: str) -> None:
        """Announce `name` and start grading it in full (or wait for its file)."""
        path = self.config.folder / f"{name}.py"
        ex = get_exercise(name)
        self.echo(click.style(f"\n== {name}: {ex.title} (notes: {ex.section}) ==", bold=True)
                  + f"\nWatching {path}. {self._instructions()}")
        tracked = self._tracked.setdefault(name, _Tracked())
        tracked.signature = _signature(path)
        if tracked.signature is None:
            tracked.missing = True
            self.echo(f"{path} does not exist yet; waiting for it (or run `grade reset {name}`).")
            return
        self._notice(name, force=True)

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

    # -- noticing a save -------------------------------------------------------------------------
    def _notice(self, name: str, force: bool = False) -> None:
        """Grade `name` when its content changed (or `force`): noticed by a file event at once,
        by a look at its signature once it has settled. A new content stops the run under way;
        a deleted file is reported."""
        tracked = self._tracked.setdefault(name, _Tracked())
        path = self.config.folder / f"{name}.py"
        evented = self.events is not None and path.name in self.events.take()
        if self.config.manual and not force:
            return
        sig = _signature(path)
        # A file event is a finished save: graded at once. A change that a look saw is graded once
        # it has settled, and so is a deletion (editors that save by renaming delete for a moment).
        if not force and (not evented or sig is None):
            if sig != tracked.signature:
                tracked.signature, tracked.changed_at = sig, time.monotonic()
                return
            if tracked.changed_at is None or time.monotonic() - tracked.changed_at < self.config.settle:
                return
        tracked.signature, tracked.changed_at = sig, None
        if sig is None:
            if not tracked.missing:
                tracked.missing = True
                self._stop_run()
                self.echo(click.style(f"{path} was deleted (or moved away).", fg="yellow")
                          + f" Save it again to go on, or run `grade reset {name}` to get the stub back.")
            return
        try:
            source = path.read_bytes()
        except OSError as exc:
            self.echo(f"Cannot read {path}: {exc.strerror or exc}; waiting for the next save.")
            return
        tracked.missing = False
        digest = _digest(source)
        graded = self._run.digest if self._run is not None else tracked.digest
        if digest == graded and not force:
            return
        if self._run is not None:
            self._stop_run()
            self.echo(f"{path.name} changed while it was being graded: grading the new version.")
        self._start(name, source, digest)

    # -- grading runs ----------------------------------------------------------------------------
    def _start(self, name: str, source: bytes, digest: str) -> None:
        """Grade a snapshot of `source` in a thread."""
        self._count += 1
        snapshot = Path(self._scratch) / str(self._count) / f"{name}.py"
        snapshot.parent.mkdir()
        snapshot.write_bytes(source)
        run = _Run(name, digest, snapshot, time.monotonic())
        run.thread = threading.Thread(target=self._grade, args=(run,), name="grade-watch-run", daemon=True)
        self._run = run
        run.thread.start()

    def _grade(self, run: _Run) -> None:
        """The run's thread: grade, keep the outcome, wake the loop."""
        from grader.engine.oracles import SetupError
        from grader.engine.session import GradingInterrupted

        def at_check(number: int, count: int, check: str) -> None:
            run.step = f"check {number} of {count}: {check}"

        try:
            run.result = self.session.grade(run.name, run.snapshot, on_check=at_check, stop=run.stop)
        except GradingInterrupted:
            pass
        except SetupError as exc:
            run.setup_error = str(exc)
        except BaseException as exc:  # noqa: BLE001 - raised again in the loop's thread
            run.failure = exc
        finally:
            run.finished.set()
            try:
                os.write(self._wake[1], b"r")
            except OSError:
                pass

    def _stop_run(self) -> None:
        """Stop the run under way at once: the worker is killed (the next run gets a fresh one)."""
        run, self._run = self._run, None
        if run is None:
            return
        run.stop.set()
        while run.thread.is_alive():  # killed again while the thread may still start a worker
            self.session.kill_worker()
            run.thread.join(0.05)
        shutil.rmtree(run.snapshot.parent, ignore_errors=True)

    def _announce(self, run: _Run) -> None:
        """Say once that a slow run is under way, and how to stop it."""
        if run.announced or time.monotonic() - run.started < PROGRESS_AFTER_S:
            return
        run.announced = True
        self.echo(f"[{self.clock():%H:%M:%S}] grading {run.name}.py ({run.step})... "
                  "q stops it; saving again grades the new version.")

    def _finish(self, run: _Run) -> WatchEvent | None:
        """Show the outcome of a finished run: the full report, or only what changed."""
        self._run = None
        run.thread.join()
        shutil.rmtree(run.snapshot.parent, ignore_errors=True)
        if run.failure is not None:
            raise run.failure
        path = self.config.folder / f"{run.name}.py"
        if run.setup_error is not None:
            self.echo(run.setup_error.replace(str(run.snapshot), str(path)))
            return None
        result = run.result
        trusted = self.session.untouched()
        _relabel(result, str(run.snapshot.resolve()), str(path.resolve()))
        tracked = self._tracked[run.name]
        previous = tracked.result
        tracked.digest, tracked.result = run.digest, result
        changes = tuple(diff_checks(previous, result))
        stamp = f"[{self.clock():%H:%M:%S}]"
        if previous is None:
            ex = get_exercise(run.name)
            self.echo(f"{stamp} graded in {result.duration_s:.1f} s\n"
                      + exercise_report(result, title=ex.title, section=ex.section))
        else:
            self.echo(render_changes(previous, result, changes, stamp))
        if not trusted:
            self.echo(click.style("warning: the grader's own files or the references changed since watching started; "
                                  "the result was not saved. Restore them and save your file again.", fg="yellow"))
        elif self.record is not None:
            self.record(result)
        return WatchEvent(run.name, result, previous, changes, result.complete and trusted, self.cycles, trusted)
