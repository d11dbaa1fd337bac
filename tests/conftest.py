"""Shared fixtures: one warm worker and one cache of the references' outputs for the test process,
helpers to grade a source text and to run `grade` in this process, and headless Chromium."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The user's cache folder stays out of the tests: the commands a test runs keep what they keep
# (grading durations, the references' expected values) in one folder of this test process, shared
# by its tests like `reference_oracle`; a test about the cache itself sets its own.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="cnn-grader-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)


# The files that take longest, longest first (seconds in one run, measured 2026-12-02): the two
# test processes take whole groups of files (`XDIST_GROUPS`) in the order collected, so these start first
# and the short files fill the end, where they keep both processes busy. Only the balance depends
# on this list: a file missing from it runs after these, in the usual order.
LONGEST_FIRST = ("test_release.py", "test_batch.py", "test_checks_autoencoder.py", "test_cli.py",
                 "test_exercises.py", "test_checks_nms.py", "test_classroom.py", "test_maint.py",
                 "test_runner_hostile.py", "test_gradescope.py", "test_checks_rpn.py", "test_views_pictures.py")


# The test processes take whole groups of tests (`--dist loadgroup`): a file is a group of its own,
# except where files share what they compute through `reference_oracle`, a cache of one process.
XDIST_GROUPS = {"test_release.py": "autoencoder-at-the-public-seed",  # records it: every check, every known mistake
                "test_checks_autoencoder.py": "autoencoder-at-the-public-seed"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept
    for item in items:
        item.add_marker(pytest.mark.xdist_group(XDIST_GROUPS.get(item.path.name, item.path.name)))


@pytest.fixture(scope="session")
def worker():
    import torch

    from grader.runner.handle import WorkerProcess

    torch.set_num_threads(1)  # as `grade` does: the worker needs the other core

    w = WorkerProcess()
    yield w
    w.stop()


def copy_course(dest: Path) -> Path:
    """A private copy of the course (grader, references, stubs, quizzes, docs) in `dest`: what a test or a
    student's code does to it cannot touch this checkout. Run `grade` there with PYTHONPATH=dest."""
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("grader", "solutions", "exercises", "quizzes", "docs"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    return dest


def reference_source(name: str) -> str:
    return (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8")


def variant(name: str, *edits: tuple[str, str]) -> str:
    """The reference of `name` with textual edits (old, new); each `old` must occur."""
    src = reference_source(name)
    for old, new in edits:
        assert old in src, f"edit target not found in solutions/{name}.py: {old!r}"
        src = src.replace(old, new)
    return src


def with_mistake(name: str, mistake: str) -> str:
    """The reference of `name` with the known mistake `mistake` of its checks put in, as a student
    making it would have written it."""
    return reference_source(name) + (
        "\n\nimport types as _types\n"
        f"import grader.checks.{name} as _checks\n"
        f"_m = next(m for c in _checks.CHECKS for m in c.mistakes if m.name == {mistake!r})\n"
        "globals().update(_m.build(_types.SimpleNamespace(**{k: v for k, v in dict(globals()).items() if not k.startswith('__')})))\n")


_ORACLES: dict[str, Any] = {}


def reference_oracle(name: str) -> Any:
    """The live oracle of exercise `name` behind a cache kept for the whole test process
    (`engine.oracles.CachingOracle`): every session of the `sessions` fixture grades with it and the
    mistake audits (`mistake_matching`) read it, so each reference and each known mistake runs
    once per case and seed."""
    if name not in _ORACLES:
        from grader.engine.oracles import CachingOracle, LiveOracle

        _ORACLES[name] = CachingOracle(LiveOracle(name))
    return _ORACLES[name]


@pytest.fixture(scope="session")
def sessions(worker):
    """sessions(seed, timeout, pictures): grading sessions over the shared worker, kept for the
    whole test run; they take expected values from `reference_oracle`, so that each reference runs
    once per case (as in `grade watch` and batches); `pictures` is the drawing function the session
    passes failing cases to (None: no pictures)."""
    from grader.engine.session import GradingSession

    made: dict[tuple[int, float, Any], GradingSession] = {}

    def session(seed: int = 0, timeout: float = 10.0, pictures: Any = None) -> GradingSession:
        if (seed, timeout, pictures) not in made:
            made[seed, timeout, pictures] = GradingSession(seed=seed, timeout=timeout, worker=worker, pictures=pictures,
                                                           oracle_for=reference_oracle)
        return made[seed, timeout, pictures]

    yield session
    for s in made.values():
        s.close()


@pytest.fixture
def grade(sessions, tmp_path) -> Callable[..., dict]:
    """grade(name, source=None, folder=None, timeout=10.0, seed=0, parts=()) -> schema-1 result dict:
    every check, or only the checks of `parts` (as `grade exercise --part`) when a test looks at
    no other."""

    def _grade(name: str, source: str | None = None, folder: Path | None = None, timeout: float = 10.0,
               seed: int = 0, parts: tuple[str, ...] = ()) -> dict:
        if source is not None:
            folder = tmp_path / "submission"
            folder.mkdir(exist_ok=True)
            (folder / f"{name}.py").write_text(source, encoding="utf-8")
        folder = folder or ROOT / "solutions"
        return sessions(seed, timeout).grade(name, folder / f"{name}.py", parts=parts).to_dict()

    return _grade


@pytest.fixture
def invoke(monkeypatch, tmp_path):
    """invoke(*args, cwd=ROOT, **env) -> click's Result: `grade ARGS` run in this process by click's
    test runner, from `cwd`, with GRADE_HOME in tmp_path unless `env` says otherwise. Grading this
    way forks its worker from this process's zygote, which has imported torch already; a test
    about the console script itself (its exit path, a fresh interpreter) runs `grade` in a process."""
    from click.testing import CliRunner

    from grader.cli import cli

    def run(*args: str, cwd: Path = ROOT, **env: str):
        monkeypatch.chdir(cwd)
        return CliRunner().invoke(cli, list(args), prog_name="grade", env={"GRADE_HOME": str(tmp_path / ".grade-test"), **env})

    return run


def interruptible() -> None:
    """The `preexec_fn` of a process that a test interrupts with SIGINT: its default action back.
    A suite started with SIGINT ignored (a background job of a shell without job control, some CI
    runners) would hand that on, and Python would then install no KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def imported_modules(stderr: str) -> list[str]:
    """The modules a process imported, from its stderr when it ran with PYTHONPROFILEIMPORTTIME=1."""
    return [line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")]


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children...), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    parents[int(entry)] = int(fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def wait_for_descendants(pid: int, count: int, timeout: float) -> list[int]:
    """The processes below `pid` once there are at least `count` of them (asserted within
    `timeout` seconds), read again half a second later so that late children are included."""
    family: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        family = descendants(pid)
        if len(family) >= count:
            break
        time.sleep(0.2)
    assert len(family) >= count, family
    time.sleep(0.5)
    return descendants(pid)


def statuses(result: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in result["checks"]}


def mistakes(result: dict) -> set[str]:
    return {c["mistake"]["name"] for c in result["checks"] if c.get("mistake")}


def assert_statuses(result: dict, expected: dict[str, str]) -> None:
    """Each named check has the expected status; a mismatch shows that check's message."""
    st = statuses(result)
    for check, status in expected.items():
        message = next(c["message"] for c in result["checks"] if c["name"] == check)
        assert st[check] == status, (check, message)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--window-size=1280,2000"]
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="no headless browser: install Debian's `chromium` (.ci/run installs it)")


class Browser:
    """One headless Chromium for the whole test process, driven over the DevTools protocol on a
    pipe (`--remote-debugging-pipe`): `load(url)` opens the page in a tab of its own and returns its
    screenshot and what it reported. One start-up serves every page (a start costs several times
    the CPU of a page load), and each page keeps its own verdict."""

    def __init__(self, profile: Path) -> None:
        import fcntl

        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # Chromium reads commands on fd 3 and writes replies and events on fd 4, NUL-terminated JSON:
        # a Python trampoline moves the pipe ends there (from numbers above 9, which cannot be 3 or 4).
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        trampoline = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
        self.proc = subprocess.Popen([sys.executable, "-c", trampoline, *map(str, ends), shutil.which("chromium"),
                                      *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
                                     pass_fds=ends, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for fd in ends:
            os.close(fd)
        self._buffer, self._next_id, self._events = b"", 0, []

    def _message(self, deadline: float) -> dict:
        import json
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise EOFError(f"Chromium exited (code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        """Send one command and wait for its result; the events that arrive meanwhile are kept."""
        import json

        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}, **({"sessionId": session} if session else {})}
        os.write(self._write, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next_id:
                assert "error" not in message, (method, message["error"])
                return message["result"]
            self._events.append(message)

    def load(self, url: str, timeout: float = 60) -> "LoadedPage":
        """The page at `url` once loaded: its PNG screenshot, its console messages (script errors,
        Content-Security-Policy violations and console calls, one line each) and its HTML as its
        scripts left it."""
        import base64

        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=session)
            self._events = []
            self.call("Page.navigate", {"url": url}, session=session)
            deadline = time.monotonic() + timeout
            while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session for e in self._events):
                self._events.append(self._message(deadline))
            # what the page reported before its HTML is read is in
            html = self.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML"},
                             session=session)["result"]["value"]
            shot = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        finally:
            self.call("Target.closeTarget", {"targetId": target})
        messages = [_console_line(e) for e in self._events if e.get("sessionId") == session and e["method"] in _CONSOLE_EVENTS]
        return LoadedPage(shot, messages, html)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (OSError, EOFError, TimeoutError):
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._write)
        os.close(self._read)


_CONSOLE_EVENTS = ("Log.entryAdded", "Runtime.consoleAPICalled", "Runtime.exceptionThrown")


class LoadedPage(NamedTuple):
    shot: bytes  # PNG
    messages: list[str]
    html: str


def _console_line(event: dict) -> str:
    params = event["params"]
    if event["method"] == "Log.entryAdded":
        return f"{params['entry']['level']}: {params['entry']['text']}"
    if event["method"] == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return f"exception: {details.get('exception', {}).get('description') or details['text']}"
    return f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """The test process's headless Chromium (`Browser`), started on first use."""
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()
