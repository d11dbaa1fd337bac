"""Shared helpers of the quiz and store tests: an isolated environment, a small bank, CLI runners.

Every test that touches the progress database or the bank cache uses `quiz_env`, which points
`GRADE_PROGRESS_DB` and `XDG_CACHE_HOME` into the test's temporary folder.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent
BANK = ROOT / "quizzes"

# Two topics, answers known, one statement where the notes disagree, special characters included.
MINI_BANK = {
    "alpha.yaml": """\
title: Alpha topic
order: 1
statements:
  - id: alpha-true
    text: "Alpha is true: {braces} # hash ~ tilde = equals \\\\ back <b>&amp;"
    answer: true
    explanation: Because alpha, "quoted", with a comma.
    section: Convolution
    from_notes: true
  - id: alpha-false
    text: Alpha is false.
    answer: false
    notes_answer: true
    explanation: The notes are wrong here.
    section: Convolution
    tags: [alpha, notes-error]
    exercise: conv
    related: [alpha-true]
  - id: alpha-third
    text: Alpha third is true.
    answer: true
    explanation: Third reason.
    section: Convolution
    source: Third et al. (2020), sec. 1
""",
    "beta.yaml": """\
title: Beta topic
order: 2
statements:
  - id: beta-one
    text: Beta one is false.
    answer: false
    explanation: Beta one reason.
    section: GANs
  - id: beta-two
    text: Beta two is true.
    answer: true
    explanation: Beta two reason.
    section: GANs
""",
}


def write_bank(folder: Path, files: dict[str, str]) -> Path:
    """Write `files` (name -> YAML text) into `folder` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def quiz_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Progress database and bank cache inside tmp_path; returns their paths and a mini bank."""
    db = tmp_path / "progress.db"
    monkeypatch.setenv("GRADE_PROGRESS_DB", str(db))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADE_STUDENT", raising=False)
    monkeypatch.delenv("GRADE_HOME", raising=False)
    bank = write_bank(tmp_path / "bank", MINI_BANK)
    return {"db": db, "bank": bank, "tmp": tmp_path}


def run_quiz_cli(args: list[str], input: str | None = None) -> Result:
    """`grade quiz ARGS` through click's test runner (stdin is not a terminal: line mode)."""
    from grader.cli import cli

    return CliRunner().invoke(cli, ["quiz", *args], input=input, catch_exceptions=False)


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """The environment for running `python -m grader.cli` in a child process."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        GRADE_PROGRESS_DB=str(tmp_path / "progress.db"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
        TERM="dumb",
    )
    return env


def read_until(fd: int, marker: bytes, buffer: bytearray, timeout: float = 20.0) -> bytes:
    """Read from `fd` into `buffer` until `marker` appears after what was already consumed.

    Returns the text read up to and including the marker; fails the test after `timeout`
    seconds or at end of file, showing what was read.
    """
    deadline = time.monotonic() + timeout
    while marker not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out waiting for {marker!r}; output so far:\n{buffer.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # a pseudo-terminal whose child exited reads EIO
            chunk = b""
        if not chunk:
            pytest.fail(f"end of output before {marker!r}; output so far:\n{buffer.decode(errors='replace')}")
        buffer.extend(chunk)
    end = buffer.index(marker) + len(marker)
    text = bytes(buffer[:end])
    del buffer[:end]
    return text


def python_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader.cli", *args]


def run_python(code: str, env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
