"""`grade batch`: grade a class's submissions in parallel, one result JSON per student, resumable.

The batch process never runs student code, nor grades in itself: it supervises up to `jobs`
grading agents (`grader.instructor.agent`, one process each) and hands each one student at a time;
an agent is started when its slot first meets a submission with code to grade (one with no
exercise file, or a refused one, needs none: its result is written without any). The batch
itself imports neither the checks nor torch: what it needs of the checks (the placeholder result
of what was not graded, a student's time limit) comes with its first agent's "ready" message,
and is made here only when a placeholder is needed before any agent is ready. A
student's code runs in a worker that the agent starts for that student alone, under the worker's
limits (time per check, memory, output) and in its sandbox (`runner.sandbox`): with Landlock,
student code cannot read the course, the references, the submissions or the results, cannot
write outside its scratch folder, signal a process outside its sandbox or open a TCP connection.
The batch refuses to start when no sandbox is available (`allow_unsandboxed` overrides). What a
submission can still do, it does to its own grade only:

- it kills or stops its worker, or (without a sandbox) the agent: the batch sees the agent die,
  or the student's time limit pass; the checks graded so far are kept, the rest count as
  crashed, and a new agent takes the next student. Processes left behind are swept (the batch
  is a subreaper, the zygotes too); agents die with the batch;
- it changes the grader's or the references' files (possible only without a sandbox): the batch
  compares a digest of them after every student (`engine.session.integrity_snapshot`); on a
  change it stops, keeps no result of the students being graded at that moment (the suspects)
  and says what to do;
- a zip that escapes its folder, or is too large, is refused before anything runs.

Results are written only by this process, atomically, as `OUT/<student>.json` (see `classdata`);
the agents send them over their pipes. `OUT/_batch.json`, the manifest, keeps the settings, the
sandbox and the SHA-256 of every result written; all are checked again when the batch ends (and
before it resumes), and `grade report` checks them too, so a result rewritten by anyone else is
named, never accepted. An interrupted batch resumes where it stopped: a student's result is kept
when it was graded from the same submission content (`Submission.digest`), by this grader
version, for the same exercises, and recorded in the manifest, and graded again otherwise
(`BatchSummary.regraded` says why). Results of another seed are never mixed into one folder:
`OUT/_batch.json` keeps the settings, and a batch with another seed is refused unless `force`
(which grades everyone again). Files the batch keeps in OUT start with `_`; student ids never do.
Worker and zygote folders live in one private folder of the batch, removed when it ends, even on
Ctrl-C, after every process it started is killed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from grader import __version__
from grader.paths import PACKAGE_DIR
from grader.instructor import agent as agent_mod
from grader.instructor.classdata import (MANIFEST, read_manifest, result_digest, student_document, validate_exercise,
                                         validate_result, verify_results)
from grader.instructor.submissions import Limits, Submission, SubmissionError, unpack
from grader.engine.results import write_json, write_text_atomic
from grader.runner import sandbox
from grader.runner.hygiene import become_subreaper, describe_exit

BATCH_FILE = MANIFEST
AGENT_STARTUP_S = 300.0  # torch, the checks and the references' cases, on a loaded machine


class BatchError(Exception):
    """The batch cannot go on (the message says why and what to do)."""


class ForgedResultsError(BatchError):
    """Result files changed after the batch wrote them."""

    def __init__(self, message: str, students: list[str]) -> None:
        super().__init__(message)
        self.students = students


class TamperingError(BatchError):
    """The grader's or the references' files changed during the batch."""

    def __init__(self, message: str, suspects: list[str]) -> None:
        super().__init__(message)
        self.suspects = suspects


@dataclass(frozen=True)
class BatchOptions:
    out: Path
    jobs: int = max(1, os.cpu_count() or 1)
    seed: int = 0
    timeout: float = 10.0  # per check, as in `grade exercise`
    exercises: tuple[str, ...] = ()  # empty: every exercise of the catalogue
    force: bool = False
    device: str = "cpu"
    memory_bytes: int = 4 * 1024**3
    limits: Limits = Limits()
    student_timeout: float | None = None  # wall-clock for one student in all; None: from the checks
    allow_unsandboxed: bool = False  # grade even where student code would run with the grader's rights
    protect: tuple[Path, ...] = ()  # more paths student code must not reach (and, as root without Landlock, read)


@dataclass
class Event:
    """One student finished (or was skipped): what the progress display shows."""

    student: str
    document: dict[str, Any] | None
    outcome: str  # "graded", "refused", "crashed", "skipped"


@dataclass
class BatchSummary:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # kept: graded before from the same submission and settings
    regraded: dict[str, list[str]] = field(default_factory=dict)  # why -> students whose result was stale
    refused: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)  # graded, with at least one crashed or timed-out check
    elapsed_s: float = 0.0
    sandbox: str = "none"  # what confined student code in this run (see runner.sandbox)


# --- placeholders for what could not be graded --------------------------------------------------
def placeholder_result(name: str, checks: list[list[Any]], status: str, message: str, seed: int,
                       sandbox_state: str) -> dict[str, Any]:
    """A schema-1 exercise result whose every check (`checks`: the exercise's entry of
    `agent.checks_outline`) has `status` and `message`, zero points."""
    from grader.engine.results import CheckResult, ExerciseResult

    result = ExerciseResult(exercise=name, path="", seed=seed, grader_version=__version__,
                            started_at=_now(), sandbox=sandbox_state)
    for check, part, points in checks:
        result.checks.append(CheckResult(check, part, 0, points, status, message))
    return result.to_dict()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")



def student_limit(outline: dict[str, list[list[Any]]], timeout: float) -> float:
    """Generous wall-clock seconds for one student: every check of `outline` (`agent.checks_outline`)
    timing out, with worker restarts."""
    return 120.0 + sum(max(timeout, 30.0) + len(checks) * (timeout + 10.0) for checks in outline.values())


def _valid_outline(outline: Any, exercises: list[str]) -> bool:
    return (isinstance(outline, dict) and sorted(outline) == sorted(exercises)
            and all(isinstance(checks, list) and checks and all(
                isinstance(c, list) and len(c) == 3 and isinstance(c[0], str) and isinstance(c[1], str)
                and type(c[2]) is int and c[2] >= 0 for c in checks) for checks in outline.values()))


# --- one agent process --------------------------------------------------------------------------
def _agent_env(scratch: Path) -> dict[str, str]:
    """This process's environment for an agent, less the shell's working folders and any PYTHONPATH
    entry inside a protected path (the agent finds the grader through its stdin, and the course's
    path stays off the environment). TMPDIR: the agent's zygotes and workers make their folders in
    the batch's scratch folder."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
               TMPDIR=str(scratch))
    for name in ("PWD", "OLDPWD"):  # the shell's working folders: the course's, often
        env.pop(name, None)
    protected = sandbox.protected_paths()
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
            if p and not any(Path(p).resolve().is_relative_to(q) for q in protected)]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    return env


class _AgentProcess:
    """The batch's handle on one agent: start, send a line, read a line with a deadline, kill."""

    def __init__(self, settings: dict[str, Any], scratch: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", agent_mod.BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=_agent_env(scratch), cwd=scratch, close_fds=True)
        self._buffer = b""
        self.log: deque[bytes] = deque(maxlen=64)
        threading.Thread(target=self._drain, daemon=True).start()
        try:  # where the grader is, then the settings: over the pipe, never on a command line
            self.proc.stdin.write((str(PACKAGE_DIR.parent) + "\n").encode())
        except (BrokenPipeError, OSError):
            pass
        self.send(settings)

    def _drain(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self.log.append(line[:500])

    def send(self, message: dict[str, Any]) -> bool:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def read(self, deadline: float, stop: threading.Event) -> dict[str, Any] | str:
        """The next message, or "timeout", "dead", "stopped" or "garbage"."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            if stop.is_set():
                return "stopped"
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            ready, _, _ = select.select([fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return "dead"
                self._buffer += chunk
                if len(self._buffer) > 1 << 20:
                    return "garbage"
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            return "garbage"
        return message if isinstance(message, dict) else "garbage"

    def exit_description(self) -> str:
        try:
            code = self.proc.wait(timeout=2)  # its output ended: it is exiting, or already gone
        except subprocess.TimeoutExpired:
            code = None
        return describe_exit(code, "the grading process")

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def close(self, wait_s: float = 20.0) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


# --- the batch ----------------------------------------------------------------------------------
class _Batch:
    def __init__(self, submissions: list[Submission], options: BatchOptions, exercises: list[str],
                 digests: dict[str, str], scratch: Path, sandbox_state: str, protect: list[Path]) -> None:
        self.options, self.exercises, self.digests, self.scratch = options, exercises, digests, scratch
        self.sandbox = sandbox_state
        self.agents: set[_AgentProcess] = set()  # every agent started, to kill at once on Ctrl-C
        self.todo: queue.Queue[Submission] = queue.Queue()
        for s in submissions:
            self.todo.put(s)
        self.events: queue.Queue[Event] = queue.Queue()
        self.stop = threading.Event()
        self.interrupted = threading.Event()  # Ctrl-C: an agent that dies now was killed by it, not by a student
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()
        self.failure: BatchError | None = None
        self.prepared = threading.Event()  # set once the baseline is taken; no task is sent before
        self.baseline = ""
        self._outline: dict[str, list[list[Any]]] | None = None  # see `outline`
        self._outline_lock = threading.Lock()
        self.integrity: Callable[[], str] = lambda: ""
        self.settings = {"exercises": exercises, "seed": options.seed, "timeout": options.timeout,
                         "device": options.device, "memory_bytes": options.memory_bytes}
        self.manifest: dict[str, Any] = {**self.settings, "grader_version": __version__, "started_at": _now(),
                                         "submissions": 0, "sandbox": sandbox_state, "results": {}}
        self.agent_settings = {**self.settings, "protect": [str(p) for p in protect], "parent": os.getpid(),
                               "require_sandbox": not options.allow_unsandboxed}

    # -- agents ------------------------------------------------------------------------------
    def _start_agent(self) -> _AgentProcess:
        with self.lock:
            if self.stop.is_set():
                raise BatchError("stopped")
            agent = _AgentProcess(self.agent_settings, self.scratch)
            self.agents.add(agent)
        message = agent.read(time.monotonic() + AGENT_STARTUP_S, self.stop)
        if isinstance(message, dict) and message.get("kind") == "ready":
            self._learn_outline(message.get("outline"))
            return agent
        agent.kill()
        if isinstance(message, dict) and message.get("kind") == "fatal":
            raise BatchError(str(message.get("message")))
        if message == "stopped":
            raise BatchError("stopped")
        log = b"".join(agent.log).decode(errors="replace")[-3000:]
        raise BatchError(f"a grading process could not start ({message}):\n{log}")

    def _fail(self, error: BatchError) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = error
        self.stop.set()

    def prepare(self) -> None:
        """Take the integrity baseline (while the first agents start)."""
        from grader.engine.session import integrity_snapshot

        self.integrity = integrity_snapshot
        self.baseline = integrity_snapshot()
        self.prepared.set()

    # -- the checks, as far as the batch needs them ---------------------------------------------
    def _learn_outline(self, outline: Any) -> None:
        """Keep the first agent's `agent.checks_outline` (well formed, for these exercises)."""
        if _valid_outline(outline, self.exercises):
            with self._outline_lock:
                if self._outline is None:
                    self._outline = outline

    def outline(self) -> dict[str, list[list[Any]]]:
        """The checks of the exercises (`agent.checks_outline`): from an agent when one is ready,
        else made here (importing the checks and torch, which this process otherwise never does)."""
        with self._outline_lock:
            if self._outline is None:
                self._outline = agent_mod.checks_outline(self.exercises)
            return self._outline

    def student_limit(self) -> float:
        return self.options.student_timeout or student_limit(self.outline(), self.options.timeout)

    def _wait_prepared(self) -> bool:
        """Wait for `prepare` (no student code runs, and no result is kept, before the baseline is
        taken); False when the batch stops first."""
        while not self.prepared.wait(0.1):
            if self.stop.is_set():
                return False
        return True

    def run_slot(self) -> None:
        agent: _AgentProcess | None = None
        try:
            while not self.stop.is_set():
                try:
                    sub = self.todo.get_nowait()
                except queue.Empty:
                    break
                with self.lock:
                    self.in_flight.add(sub.student)
                try:
                    agent, document = self._grade(sub, agent)
                except BatchError as exc:
                    self._fail(exc)
                    break
                except Exception as exc:  # noqa: BLE001 - a bug here must stop the batch loudly, not lose a student
                    self._fail(BatchError(f"grading {sub.student} failed inside the batch itself: {exc!r}"))
                    break
                if not self._wait_prepared():
                    break
                with self.lock:
                    changed = self.integrity() != self.baseline
                    if changed and self.failure is None:
                        suspects = sorted(self.in_flight)
                        self.failure = TamperingError(_tamper_message(suspects), suspects)
                        self.stop.set()
                    self.in_flight.discard(sub.student)
                    keep = (document is not None and not isinstance(self.failure, TamperingError)
                            and not self.interrupted.is_set())
                if keep:
                    self.keep(sub.student, document)
                    self.events.put(Event(sub.student, document, _outcome(document)))
        finally:
            if agent is not None:
                if self.stop.is_set():
                    agent.kill()
                else:
                    agent.close()
            from grader.runner.hygiene import sweep_orphans

            sweep_orphans()

    def kill_agents(self) -> None:
        """Stop at once: kill every agent (their workers and zygotes are then swept as orphans);
        each slot sees its agent die and closes its handle."""
        self.interrupted.set()
        self.stop.set()
        with self.lock:
            agents = list(self.agents)
        for agent in agents:
            try:
                agent.proc.kill()
            except ProcessLookupError:
                pass

    def keep(self, student: str, document: dict[str, Any]) -> None:
        """Write a student's result and record its digest in the manifest (both atomically)."""
        text = json.dumps(document, indent=2) + "\n"
        write_text_atomic(self.options.out / f"{student}.json", text)
        with self.lock:
            self.manifest["results"][student] = result_digest(text.encode("utf-8"))
            write_json(self.options.out / BATCH_FILE, self.manifest)

    def _grade(self, sub: Submission, agent: _AgentProcess | None) -> tuple[_AgentProcess | None, dict | None]:
        """Grade one student; returns the agent to reuse (None when it had to go) and the document."""
        seed, state = self.options.seed, self.sandbox
        scratch = Path(tempfile.mkdtemp(prefix="student-", dir=self.scratch))
        try:
            try:
                found = unpack(sub, scratch / "submission", self.exercises, self.options.limits)
            except SubmissionError as exc:
                message = f"the submission was refused: {exc}"
                exercises = [placeholder_result(n, self.outline()[n], "error", message, seed, state) for n in self.exercises]
                return agent, self._document(sub, exercises, None, [message])
            partial: dict[str, dict[str, Any]] = {}
            reason = ""
            if found.files:
                if agent is None or agent.proc.poll() is not None:
                    agent = self._start_agent()  # the first one overlaps with `prepare` in the main thread
                if not self._wait_prepared():
                    return agent, None
                sent = agent.send({"student": sub.student, "files": {k: str(v) for k, v in found.files.items()},
                                   "prestart": not self.todo.empty()})
                limit = self.student_limit()
                deadline = time.monotonic() + limit
                message: dict[str, Any] | str = "dead"
                while sent:
                    message = agent.read(deadline, self.stop)
                    if not (isinstance(message, dict) and message.get("kind") == "exercise"):
                        break
                    result = message.get("result")
                    if validate_exercise(result) is None and result["exercise"] in found.files:
                        partial[result["exercise"]] = result
                if isinstance(message, dict) and message.get("kind") == "fatal":
                    raise BatchError(str(message.get("message")))
                if message == "stopped":
                    agent.kill()
                    return None, None
                if not (isinstance(message, dict) and message.get("kind") == "done"):
                    reason = (f"grading this submission took more than {limit:g} s in all and was stopped"
                              if message == "timeout" else agent.exit_description() + " while grading this submission"
                              " (did the code kill or stop its parent process?)")
                    agent.kill()
                    agent = None
                    from grader.runner.hygiene import sweep_orphans

                    sweep_orphans()
            exercises = []
            for name in self.exercises:
                if name in partial:
                    exercises.append(_relative_paths(partial[name], found.root, sub))
                elif name not in found.files:
                    exercises.append(placeholder_result(name, self.outline()[name], "not_implemented",
                                                        f"{name}.py was not found in the submission", seed, state))
                else:
                    exercises.append(placeholder_result(name, self.outline()[name], "crashed", reason or "not graded",
                                                        seed, state))
            return agent, self._document(sub, exercises, found.quiz, found.problems)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _document(self, sub: Submission, exercises: list[dict], quiz: dict | None, problems: list[str]) -> dict:
        state = sandbox.weakest(str(e.get("sandbox", "none")) for e in exercises)
        return student_document(sub.student, sub.name, exercises, seed=self.options.seed,
                                grader_version=__version__, graded_at=_now(), sandbox=state, quiz=quiz,
                                problems=problems, submission_digest=self.digests[sub.student])


def _relative_paths(result: dict[str, Any], root: Path, sub: Submission) -> dict[str, Any]:
    try:
        result["path"] = sub.origin(Path(result["path"]).resolve().relative_to(root.resolve()).as_posix())
    except (ValueError, OSError):
        result["path"] = sub.name
    return result


def _outcome(document: dict[str, Any]) -> str:
    checks = [c for e in document["exercises"] for c in e["checks"]]
    if any(c["status"] == "error" and c["message"].startswith("the submission was refused") for c in checks):
        return "refused"
    if any(c["status"] in ("crashed", "timeout") for c in checks):
        return "crashed"
    return "graded"


def _tamper_message(suspects: list[str]) -> str:
    return ("The grader's own files or the references changed during the batch, while grading "
            f"{', '.join(suspects)}: their code probably tampered with them. The batch was stopped and "
            "no result was kept for these students. Inspect their submissions, restore the course files "
            "(e.g. `git checkout grader solutions`) and run the batch again: students already graded are skipped.")


def _seeds_in(out: Path) -> dict[Any, list[str]]:
    """Seed -> the files in `out` graded with it (the manifest's and the students' results)."""
    seeds: dict[Any, list[str]] = {}
    for path in sorted(out.glob("*.json")):
        if path.name.startswith(".") or (path.name.startswith("_") and path.name != BATCH_FILE):
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "seed" in doc:
            seeds.setdefault(doc["seed"], []).append(path.name)
    return seeds


def _stale(path: Path, digest: str, exercises: list[str]) -> str | None:
    """Why the result at `path` must be graded again; None when it is current (the seed is checked apart)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unreadable result"
    if not isinstance(doc, dict) or validate_result(doc):
        return "unreadable result"
    if doc.get("submission_digest") != digest:
        return "changed submission"
    if doc.get("grader_version") != __version__:
        return "another grader version"
    if [e["exercise"] for e in doc["exercises"]] != exercises:
        return "other exercises"
    return None


def _refuse_other_seeds(out: Path, seed: int) -> None:
    others = {s: files for s, files in _seeds_in(out).items() if s != seed}
    if others:
        found = "; ".join(f"seed {s!r} in {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
                          for s, files in others.items())
        raise BatchError(f"{out} holds results graded with another seed than {seed} ({found}). One folder holds "
                         "one seed, so that the class report compares the same tests: use another --out folder, "
                         "or --force to grade everyone again with this seed.")


def check_sandbox(options: BatchOptions, secrets: list[Path]) -> str:
    """The sandbox student code will get here; raises `BatchError` when it does not keep `secrets`
    out of reach, unless `options.allow_unsandboxed`."""
    state = sandbox.plan()
    if options.allow_unsandboxed:
        return state
    if state == "none":
        raise BatchError(
            "No sandbox is available here, so student code would run with your rights: it could read the "
            "references and the seed, and rewrite other students' results. A sandbox needs Linux 5.13+ with "
            "Landlock enabled, or grading as root (workers then run as the unprivileged user nobody). "
            "Grade where one is available, or pass --allow-unsandboxed if you trust every submission.")
    exposed = sandbox.exposed_paths(secrets) if state == "uid" else []
    if exposed:
        listed = "\n".join(f"  {p}" for p in exposed[:10]) + (f"\n  ... and {len(exposed) - 10} more" if len(exposed) > 10 else "")
        raise BatchError(
            "Landlock is missing here, so student code runs as the unprivileged user nobody, who can still "
            f"read these (the references, submissions or results):\n{listed}\nMake them private to root "
            "(chmod -R go-rwx on each) and run the batch again, or pass --allow-unsandboxed.")
    return state


def _secrets(out: Path, submissions: list[Submission], options: BatchOptions) -> list[Path]:
    """What student code must neither reach nor, under the uid fallback, be able to read."""
    from grader.paths import data_dir

    others = {s.source for s in submissions} if len(submissions) > 1 else set()  # a student may read their own
    return [*sorted(data_dir("solutions").glob("*.py")), out, *others, *options.protect]


def _forged_message(out: Path, problems: list[str]) -> str:
    return (f"Results in {out} changed after the batch wrote them:\n" + "\n".join(f"  {p}" for p in problems) +
            "\nSomething other than the batch wrote there: do not use these grades. Delete these files and run "
            "the batch again (it grades them again and keeps the others).")


def _forged(out: Path, recorded: dict[str, str]) -> ForgedResultsError | None:
    problems = verify_results(out, recorded, others=False)
    if not problems:
        return None
    return ForgedResultsError(_forged_message(out, problems), [line.split(":", 1)[0] for line in problems])


def run_batch(submissions: list[Submission], options: BatchOptions,
              on_event: Callable[[Event, int, int], None] | None = None) -> BatchSummary:
    """Grade `submissions` into `options.out`; `on_event(event, done, total)` after each student.

    Raises `BatchError` when the batch cannot start without a sandbox or had to stop
    (`TamperingError`), and `ForgedResultsError` when results changed after a batch wrote them
    (checked before resuming and when it ends); results written so far stay."""
    from grader.catalog import exercise_names

    started = time.monotonic()
    known = exercise_names()
    unknown = [n for n in options.exercises if n not in known]
    if unknown:
        raise BatchError(f"unknown exercise(s) {', '.join(unknown)}; `grade list` shows them all")
    exercises = [n for n in known if not options.exercises or n in options.exercises]
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    if not options.force:
        _refuse_other_seeds(out, options.seed)
    recorded = {student: digest for student, digest in (read_manifest(out) or {"results": {}})["results"].items()
                if (out / f"{student}.json").is_file()}  # a result deleted since is graded again
    forged = None if options.force else _forged(out, recorded)
    if forged is not None:
        raise forged
    summary = BatchSummary(sandbox=sandbox.plan())
    digests = {sub.student: sub.digest(options.limits) for sub in submissions}
    todo = []
    for sub in submissions:
        path = out / f"{sub.student}.json"
        if not path.is_file():
            todo.append(sub)
            continue
        why = ("asked with --force" if options.force else "not recorded in the manifest"
               if sub.student not in recorded else _stale(path, digests[sub.student], exercises))
        if why is None:
            summary.skipped.append(sub.student)
        else:
            summary.regraded.setdefault(why, []).append(sub.student)
            todo.append(sub)
    if not todo:
        summary.elapsed_s = time.monotonic() - started
        return summary
    if summary.sandbox == "uid":  # the unprivileged workers must not read the results
        out.chmod(0o700)
    summary.sandbox = check_sandbox(options, _secrets(out, submissions, options))
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-batch-"))
    if summary.sandbox == "uid":  # the workers' own folders are inside: let them through, not in
        scratch.chmod(0o711)
    batch = _Batch(todo, options, exercises, digests, scratch, summary.sandbox,
                   [out, *{s.source.parent for s in submissions}, *options.protect])
    regraded = {s.student for s in todo}
    batch.manifest["results"] = {k: v for k, v in recorded.items() if k not in regraded}
    batch.manifest["submissions"] = len(submissions)
    write_json(out / BATCH_FILE, batch.manifest)
    become_subreaper()
    threads = [threading.Thread(target=batch.run_slot, name=f"batch-{i}", daemon=True)
               for i in range(max(1, min(options.jobs, len(todo))))]
    done = 0
    try:
        for t in threads:
            t.start()
        batch.prepare()
        while any(t.is_alive() for t in threads) or not batch.events.empty():
            try:
                event = batch.events.get(timeout=0.2)
            except queue.Empty:
                continue
            done += 1
            if event.outcome == "refused":
                summary.refused.append(event.student)
            else:
                summary.graded.append(event.student)
                if event.outcome == "crashed":
                    summary.crashed.append(event.student)
            if on_event is not None:
                on_event(event, done, len(todo))
    except BaseException:  # Ctrl-C above all: nothing may be left running or lying about
        batch.kill_agents()
        raise
    finally:
        for t in threads:
            if t.ident is not None:  # started
                t.join(timeout=30)
        from grader.runner.hygiene import sweep_orphans

        sweep_orphans()
        shutil.rmtree(scratch, ignore_errors=True)
    summary.elapsed_s = time.monotonic() - started
    forged = _forged(out, batch.manifest["results"])
    if forged is not None:
        raise forged
    if batch.failure is not None:
        if isinstance(batch.failure, TamperingError):
            write_json(out / "_tampering.json", {"detected_at": _now(), "suspects": batch.failure.suspects})
        raise batch.failure
    return summary
