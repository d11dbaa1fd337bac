"""Shared fixtures: one warm worker for the session, helpers to grade a source text, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


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


@pytest.fixture(scope="session")
def sessions(worker):
    """sessions(seed, timeout, pictures): grading sessions over the shared worker, kept for the
    whole test run, so that each reference runs once per case (as in `grade watch` and batches);
    `pictures` is the drawing function the session passes failing cases to (None: no pictures).
    They share one cached source of expected values per exercise (keyed by seed), whatever their
    timeout or drawing function."""
    from grader.engine.oracles import CachingOracle, oracle_for
    from grader.engine.session import GradingSession

    made: dict[tuple[int, float, Any], GradingSession] = {}
    sources: dict[str, CachingOracle] = {}

    def source(name: str) -> CachingOracle:
        if name not in sources:
            sources[name] = CachingOracle(oracle_for(name))
        return sources[name]

    def session(seed: int = 0, timeout: float = 10.0, pictures: Any = None) -> GradingSession:
        if (seed, timeout, pictures) not in made:
            made[seed, timeout, pictures] = GradingSession(seed=seed, timeout=timeout, worker=worker, pictures=pictures,
                                                           oracle_for=source)
        return made[seed, timeout, pictures]

    yield session
    for s in made.values():
        s.close()


@pytest.fixture
def grade(sessions, tmp_path) -> Callable[..., dict]:
    """grade(name, source=None, folder=None, timeout=10.0, seed=0) -> schema-1 result dict."""

    def _grade(name: str, source: str | None = None, folder: Path | None = None, timeout: float = 10.0,
               seed: int = 0) -> dict:
        if source is not None:
            folder = tmp_path / "submission"
            folder.mkdir(exist_ok=True)
            (folder / f"{name}.py").write_text(source, encoding="utf-8")
        folder = folder or ROOT / "solutions"
        return sessions(seed, timeout).grade(name, folder / f"{name}.py").to_dict()

    return _grade


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


def chromium(*args: str, user_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run headless Chromium (Debian's `chromium`) with `args`; its log goes to stderr."""
    return subprocess.run([shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}", *args],
                          capture_output=True, text=True, timeout=timeout)


def console_messages(log: str) -> list[str]:
    """The page's console messages in a Chromium log (a CSP violation or a script error is one)."""
    return [line for line in log.splitlines() if ":CONSOLE" in line]
