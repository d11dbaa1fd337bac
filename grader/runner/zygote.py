"""The zygote: a process that imported torch once and forks a fresh worker on each request.

`Zygote` is the grader's handle on it; `zygote_for(device)` gives this process's zygote for a
device (started on first use, started again after it dies); `ForkedWorker` is the subset of
`subprocess.Popen` that `WorkerProcess` uses, for a worker the zygote forked.

Workers that grade an exercise that trains models need `TRAINING_MODULES`: torch imports
`torch._dynamo` on the first optimizer step or meta-device operator (about 1.2 s of CPU, most of a
torch import again). So the zygote imports them once, before forking, instead of every worker that
trains (a worker started again after a timeout, or after a new save in `grade watch`, would pay it
again): a command starts its zygote with `preload_for(exercises)` (`grade all`, `grade exercise
autoencoder`, a batch's agents), and a grading session asks for them when it grades such an
exercise. A zygote started again after it died keeps what it was asked to import.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any

from grader.runner.hygiene import boot_dir, live_lock, live_pids, worker_env

STARTUP_TIMEOUT_S = 120.0
TRAINING_MODULES = ("torch._dynamo",)  # what torch imports on a model's first training step
_ZYGOTE_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from grader.runner.worker import zygote; zygote(sys.argv[2:])"


class Zygote:
    """A process that imported torch once and forks fresh workers on request.

    It never runs student code and never imports the references, so a forked worker starts in
    milliseconds in the same state as a freshly started one. Workers are its children (each
    sandboxes itself after the fork, and dies with it); it reaps them, reports their exit status
    and kills what they leave behind. When this process closes its end of the socket, or dies,
    the zygote kills every worker and exits. If it dies (without a sandbox a student may kill
    it), the next request starts a new one.
    """

    def __init__(self, device: str, preload: tuple[str, ...] = ()) -> None:
        self.device = device
        self.preload = tuple(dict.fromkeys(preload))  # imported before the first fork; later additions before the next
        self.scratch = tempfile.mkdtemp(prefix="cnn-grader-zygote-")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = mine
        with live_lock:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _ZYGOTE_BOOT, str(boot_dir(self.scratch)), str(theirs.fileno()), *self.preload],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=self.scratch, env=worker_env(self.scratch, device),
                start_new_session=True, close_fds=True,
            )
            live_pids.add(self.proc.pid)
        theirs.close()
        self.lock = threading.Lock()
        self._ready = False  # it imports torch meanwhile; the first request waits for it

    def _ask(self, message: dict[str, Any], fds: list[int] = ()) -> dict[str, Any]:
        with self.lock:
            if not self._ready:
                self.sock.settimeout(STARTUP_TIMEOUT_S)
                if self.sock.recv(16) != b"ready":
                    raise OSError("the zygote did not start")
                self.sock.settimeout(30)
                self._ready = True
            socket.send_fds(self.sock, [json.dumps(message).encode()], list(fds))
            reply = self.sock.recv(4096)
        if not reply:
            raise OSError("the zygote is gone")
        return json.loads(reply)

    def fork(self, fds: list[int], work_dir: str, memory_bytes: int) -> int:
        message = {"op": "fork", "cwd": work_dir, "memory": memory_bytes, "import": list(self.preload)}
        return int(self._ask(message, fds)["pid"])

    def wait(self, pid: int) -> int | None:
        """Reap a worker that is dead or killed; its exit code (negative: the signal)."""
        return self._ask({"op": "wait", "pid": pid})["code"]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            with live_lock:
                live_pids.discard(self.proc.pid)
            shutil.rmtree(self.scratch, ignore_errors=True)


def preload_for(exercises: Iterable[Any]) -> tuple[str, ...]:
    """What the zygote of workers that grade `exercises` (catalogue entries) imports before its
    first fork: `TRAINING_MODULES` when one of them trains models, else nothing."""
    return TRAINING_MODULES if any(e.trains for e in exercises) else ()


_zygotes: dict[str, Zygote] = {}
_zygotes_lock = threading.Lock()


def zygote_for(device: str, preload: tuple[str, ...] = ()) -> Zygote | None:
    """This process's zygote for `device` (started on first use), which imports the modules of
    `preload` before its next fork, as well as those of earlier calls (also when it is started
    again after it died); None where forking is not available, so workers are then started as
    fresh processes."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "send_fds"):
        return None
    with _zygotes_lock:
        zyg = _zygotes.get(device)
        if zyg is not None and not zyg.alive:
            zyg.close()
            preload, zyg = zyg.preload + preload, None
        if zyg is None:
            try:
                zyg = _zygotes[device] = Zygote(device, preload)
            except OSError:
                return None
        zyg.preload += tuple(m for m in dict.fromkeys(preload) if m not in zyg.preload)
        return zyg


def prestart(device: str, preload: tuple[str, ...] = ()) -> None:
    """Start this process's zygote for `device` now, before anything else is imported, so that
    its torch import overlaps the grader's own (a grading command calls this first); it imports
    the modules of `preload` too before its first fork."""
    from grader.runner.hygiene import become_subreaper

    become_subreaper()  # as a worker's start does: before there are descendants to adopt
    zygote_for(device, preload)


def shutdown_zygotes() -> None:
    """Stop this process's zygotes (also done at exit)."""
    with _zygotes_lock:
        for zyg in _zygotes.values():
            zyg.close()
        _zygotes.clear()


atexit.register(shutdown_zygotes)


class ForkedWorker:
    """The subset of `subprocess.Popen` the WorkerProcess uses, for a worker forked by the zygote."""

    def __init__(self, zygote: Zygote, pid: int, stdout_fd: int) -> None:
        self.zygote, self.pid = zygote, pid
        self.stdout = os.fdopen(stdout_fd, "rb")
        self.returncode: int | None = None

    def _dead(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as fh:
                return fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            return True

    def _reap(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self.zygote.wait(self.pid)
            except (OSError, ValueError):
                try:  # the zygote died: its orphans are ours now (subreaper)
                    _, status = os.waitpid(self.pid, 0)
                    self.returncode = os.waitstatus_to_exitcode(status)
                except ChildProcessError:
                    self.returncode = -signal.SIGKILL
            if self.returncode is None:
                self.returncode = -signal.SIGKILL
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        return self._reap() if self._dead() else None

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._dead():
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("worker", timeout)
            time.sleep(0.005)
        return self._reap()

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
