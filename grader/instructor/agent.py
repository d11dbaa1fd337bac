"""A grading agent of `grade batch`: one grader process that grades students one after another.

`batch.py` starts `jobs` agents and hands each one student at a time. An agent is one
`GradingSession` over every student: it imports torch, the checks and the references once, and
its cache keeps every expected value (all students are graded with the same seed, so the
references run once per agent, not once per student). It draws the picture of each part's first
failing case, for the class report's picture per frequent mistake. Each student gets a fresh worker (student
code never shares a process with another student's), forked from the agent's zygote (which imported
torch once, and what training needs when an exercise `trains`) and sandboxed with the batch's results and
submissions among the protected paths; the next student's worker is started while the current
one is graded, so its start-up overlaps the grading.

Messages are JSON lines. The batch writes to the agent's stdin: first the folder to import the
grader from, then the settings `{"exercises", "seed", "timeout", "device", "memory_bytes",
"protect", "require_sandbox", "parent"}`, then one task per student `{"student", "files":
{exercise: path}, "prestart": bool}` (prestart: start the next student's worker now; false for
the last one). So neither the seed nor where the references are appears on the agent's command
line or in its environment, where other processes could read them. The agent answers on stdout:
`{"kind": "ready", "outline"}` once (`checks_outline`: what the batch needs of the checks, so that
its own process imports neither them nor torch); per task, `{"kind": "exercise", "student", "result"}` after each
exercise (so when a student's code kills this process, the batch keeps what was graded before)
and `{"kind": "done", "student"}`; or `{"kind": "fatal", "message"}` before exiting when grading
cannot start (a missing reference, a seed the student edition lacks). The agent writes no file:
only the batch writes results.

The agent dies with the batch (`hygiene.die_with_parent`: a batch killed with SIGKILL leaves no
agent grading on), and makes itself non-dumpable, so processes of the same user cannot read its
memory or open its file descriptors through /proc.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from grader.runner.hygiene import die_with_parent, make_not_dumpable

# Ctrl-C is the batch's to handle (it kills every agent): an agent in the terminal's process group
# ignores it from its first line, rather than dying half-started or mid-student.
BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); import sys; "
        "sys.path.insert(0, sys.stdin.readline().rstrip('\\n')); from grader.instructor.agent import main; main()")


def checks_outline(exercises: list[str]) -> dict[str, list[list[Any]]]:
    """{exercise: [[check name, part, points], ...]} in the checks' order: all that a batch needs of
    the checks (the placeholder result of what was not graded, a student's time limit). Importing
    the checks imports torch: the batch takes this from its first agent, and makes it only when no
    agent is ready yet."""
    from grader.engine.spec import load_checks

    return {name: [[c.name, c.part, c.points] for c in load_checks(name)] for name in exercises}


def _say(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class Agent:
    """One grading session for every student of the batch this agent is given."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from grader.engine.session import GradingSession
        from grader.views.pictures import draw  # the class report shows one per frequent mistake

        self.exercises: list[str] = list(settings["exercises"])
        self.session = GradingSession(seed=int(settings["seed"]), timeout=float(settings["timeout"]),
                                      device=str(settings["device"]), memory_bytes=int(settings["memory_bytes"]),
                                      protect=tuple(settings["protect"]),
                                      require_sandbox=bool(settings["require_sandbox"]), pictures=draw)
        self.session.prepare(self.exercises)  # refuses a seed the student edition lacks, now

    def grade(self, task: dict[str, Any], out: TextIO) -> None:
        """Grade one student, sending each exercise's result to the batch as soon as it is known."""
        self.session.use_fresh_worker(prestart_next=task.get("prestart", True))
        try:
            for name in self.exercises:
                path = task["files"].get(name)
                if path is None:
                    continue
                result = self.session.grade(name, Path(path))
                _say(out, {"kind": "exercise", "student": task["student"], "result": result.to_dict()})
        finally:
            self.session.worker.stop()  # nothing of this student's runs on while the next waits

    def close(self) -> None:
        self.session.close()


def main() -> None:
    make_not_dumpable()
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed by accident must not corrupt the message channel
    settings = json.loads(sys.stdin.readline() or "null")
    if not settings or not die_with_parent(int(settings["parent"])):
        raise SystemExit(3)  # the batch is gone already
    from grader.catalog import get_exercise
    from grader.runner.zygote import preload_for, prestart

    # a worker per student: what training needs is imported once, in the zygote
    prestart(str(settings["device"]), preload_for(get_exercise(name) for name in settings["exercises"]))
    from grader.engine.oracles import SetupError

    try:
        agent = Agent(settings)
    except SetupError as exc:
        _say(out, {"kind": "fatal", "message": str(exc)})
        raise SystemExit(3) from None
    _say(out, {"kind": "ready", "outline": checks_outline(agent.exercises)})
    try:
        for line in sys.stdin:
            task = json.loads(line)
            try:
                agent.grade(task, out)
            except SetupError as exc:
                _say(out, {"kind": "fatal", "message": str(exc)})
                raise SystemExit(3) from None
            _say(out, {"kind": "done", "student": task["student"]})
    finally:
        agent.close()
