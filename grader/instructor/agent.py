"""A grading agent of `grade batch`: one grader process that grades students one after another.

`batch.py` starts `jobs` agents and hands each one student at a time. An agent is one
`GradingSession` over every student: it imports torch, the checks and the references once, and
its cache keeps every expected value (all students are graded with the same seed, so the
references run once per agent, not once per student). Each student gets a fresh worker (student
code never shares a process with another student's); the next student's worker is started while
the current one is graded, so its start-up overlaps the grading.

Messages are JSON lines: the batch writes to the agent's stdin, first the settings
`{"exercises", "seed", "timeout", "device", "memory_bytes"}`, then one task per student
`{"student", "files": {exercise: path}, "result": path, "prestart": bool}` (prestart: start the
next student's worker now; false for the last one). The agent answers on stdout:
`{"kind": "ready"}` once, `{"kind": "done", "student"}` per task, or `{"kind": "fatal", "message"}`
before exiting when grading cannot start (a missing reference, a seed the student edition lacks).
After each exercise it rewrites `result` (`{"exercises": [...]}`) atomically, so when a student's
code kills this process, the batch knows what was graded before.

The agent makes itself non-dumpable, so processes of the same user (student code) cannot read its
memory or open its file descriptors through /proc; they can still signal it, which the batch handles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from grader.runner.hygiene import make_not_dumpable

BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from grader.instructor.agent import main; main()"


def _say(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class Agent:
    """One grading session for every student of the batch this agent is given."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from grader.engine.session import GradingSession

        self.exercises: list[str] = list(settings["exercises"])
        self.session = GradingSession(seed=int(settings["seed"]), timeout=float(settings["timeout"]),
                                      device=str(settings["device"]), memory_bytes=int(settings["memory_bytes"]))
        self.session.prepare(self.exercises)  # refuses a seed the student edition lacks, now

    def grade(self, task: dict[str, Any]) -> None:
        from grader.engine.results import write_json

        self.session.use_fresh_worker(prestart_next=task.get("prestart", True))
        results: list[dict[str, Any]] = []
        try:
            for name in self.exercises:
                path = task["files"].get(name)
                if path is None:
                    continue
                results.append(self.session.grade(name, Path(path)).to_dict())
                write_json(Path(task["result"]), {"exercises": results})
            write_json(Path(task["result"]), {"exercises": results})
        finally:
            self.session.worker.stop()  # nothing of this student's runs on while the next waits

    def close(self) -> None:
        self.session.close()


def main() -> None:
    make_not_dumpable()
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed by accident must not corrupt the message channel
    settings = json.loads(sys.stdin.readline())
    from grader.engine.oracles import SetupError

    try:
        agent = Agent(settings)
    except SetupError as exc:
        _say(out, {"kind": "fatal", "message": str(exc)})
        raise SystemExit(3) from None
    _say(out, {"kind": "ready"})
    try:
        for line in sys.stdin:
            task = json.loads(line)
            try:
                agent.grade(task)
            except SetupError as exc:
                _say(out, {"kind": "fatal", "message": str(exc)})
                raise SystemExit(3) from None
            _say(out, {"kind": "done", "student": task["student"]})
    finally:
        agent.close()
