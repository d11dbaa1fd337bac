"""A grading agent of `grade batch`: one grader process that grades students one after another.

`batch.py` starts `jobs` agents and hands each one student at a time. An agent imports torch,
the checks and the references once, and keeps every expected value it computes (`CachingOracle`:
all students are graded with the same seed, so the references run once per agent, not once per
student). Each student gets a fresh `WorkerProcess` (student code never shares a process with another
student's), sandboxed with the batch's results and submissions among the protected paths; the
next student's worker is started while the current one is graded, so its start-up overlaps the
grading.

Messages are JSON lines. The batch writes to the agent's stdin: first the folder to import the
grader from, then the settings `{"exercises", "seed", "timeout", "device", "memory_bytes",
"protect", "require_sandbox", "parent"}`, then one task per student `{"student", "files":
{exercise: path}, "prestart": bool}` (prestart: start the next student's worker now; false for
the last one). So neither the seed nor where the references are appears on the agent's command
line or in its environment, where other processes could read them. The agent answers on stdout:
`{"kind": "ready"}` once; per task, `{"kind": "exercise", "student", "result"}` after each
exercise (so when a student's code kills this process, the batch keeps what was graded before)
and `{"kind": "done", "student"}`; or `{"kind": "fatal", "message"}` before exiting when grading
cannot start (a missing reference, a seed the student edition lacks, no sandbox where one is
required). The agent writes no file: only the batch writes results.

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

BOOT = "import sys; sys.path.insert(0, sys.stdin.readline().rstrip('\\n')); from grader.instructor.agent import main; main()"


class CachingOracle:
    """An oracle that remembers the cases, expected values and mistakes another oracle gives."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ref = getattr(inner, "ref", None)  # grading reads argument names from it
        self._cases: dict[tuple[str, int], list] = {}
        self._expected: dict[tuple[str, int, int], Any] = {}
        self._mistakes: dict[tuple[str, int, int], dict[str, Any]] = {}

    def cases(self, check: Any, seed: int) -> list:
        key = (check.name, seed)
        if key not in self._cases:
            self._cases[key] = self.inner.cases(check, seed)
        return self._cases[key]

    def expected(self, check: Any, index: int, case: Any) -> Any:
        key = (check.name, index, id(case))  # cases are kept alive in _cases, so ids are stable
        if key not in self._expected:
            self._expected[key] = self.inner.expected(check, index, case)
        return self._expected[key]

    def mistakes(self, check: Any, index: int, case: Any) -> dict[str, Any]:
        key = (check.name, index, id(case))
        if key not in self._mistakes:
            self._mistakes[key] = self.inner.mistakes(check, index, case)
        return self._mistakes[key]


def _say(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class Agent:
    def __init__(self, settings: dict[str, Any]) -> None:
        import torch

        from grader.engine import session as grading
        from grader.runner.handle import WorkerProcess
        from grader.engine.spec import derive_seed

        torch.set_num_threads(1)
        self.grading, self.worker_cls = grading, WorkerProcess
        self.exercises: list[str] = list(settings["exercises"])
        self.seed, self.timeout = int(settings["seed"]), float(settings["timeout"])
        self.device, self.memory = str(settings["device"]), int(settings["memory_bytes"])
        self.protect = tuple(settings["protect"])
        self.require_sandbox = bool(settings["require_sandbox"])
        self.oracles = {}
        for name in self.exercises:
            oracle = CachingOracle(grading.make_oracle(name))
            for check in grading.load_checks(name):  # refuses a seed the student edition lacks, now
                oracle.cases(check, derive_seed(self.seed, name, check.name))
            self.oracles[name] = oracle
        self.spare = self._new_worker()

    def _new_worker(self) -> Any:
        w = self.worker_cls(memory_bytes=self.memory, device=self.device, protect=self.protect,
                            require_sandbox=self.require_sandbox)
        w.start()
        return w

    def grade(self, task: dict[str, Any], out: TextIO) -> None:
        """Grade one student, sending each exercise's result to the batch as soon as it is known."""
        from grader.views.pictures import draw  # the class report shows one per frequent mistake

        worker = self.spare if self.spare is not None else self._new_worker()
        self.spare = self._new_worker() if task.get("prestart", True) else None
        try:
            for name in self.exercises:
                path = task["files"].get(name)
                if path is None:
                    continue
                result = self.grading.grade_exercise(name, Path(path), worker=worker, seed=self.seed,
                                                     timeout=self.timeout, device=self.device,
                                                     oracle=self.oracles[name], pictures=draw)
                _say(out, {"kind": "exercise", "student": task["student"], "result": result.to_dict()})
        finally:
            worker.stop()

    def close(self) -> None:
        if self.spare is not None:
            self.spare.stop()


def main() -> None:
    make_not_dumpable()
    out = sys.stdout
    sys.stdout = sys.stderr  # anything printed by accident must not corrupt the message channel
    settings = json.loads(sys.stdin.readline() or "null")
    if not settings or not die_with_parent(int(settings["parent"])):
        raise SystemExit(3)  # the batch is gone already
    from grader.engine.session import SetupError

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
                agent.grade(task, out)
            except SetupError as exc:
                _say(out, {"kind": "fatal", "message": str(exc)})
                raise SystemExit(3) from None
            _say(out, {"kind": "done", "student": task["student"]})
    finally:
        agent.close()
