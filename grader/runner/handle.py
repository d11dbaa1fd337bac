"""The grader's handle on one worker: start, feed, watch and stop the process that runs student code.

Limits are enforced from here, where student code cannot reach them: a wall-clock deadline per
request, a memory watchdog on the worker's resident size (on top of the address-space limit the
worker sets on itself), bounded captured output, and a sweep of every process the worker left
behind (`hygiene`). Workers are forked from a zygote where possible (`zygote`), else started as
fresh processes. Each worker gets its sandbox policy (`sandbox.worker_policy`) as the first frame
on its request pipe and reports what it applied in its ready message (`WorkerProcess.sandbox`).

The worker's output (stdout and stderr, one pipe) is read while a reply is awaited, and the
worker flushes its streams before it replies, so `take_output` after a reply returns what was
printed while that request ran: the output of one check, not of the next.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.runner import protocol
from grader.runner.hygiene import (become_subreaper, boot_dir, describe_exit, live_lock, live_pids, rss_bytes,
                                   sweep_orphans, worker_env)
from grader.runner.sandbox import worker_policy
from grader.runner.zygote import STARTUP_TIMEOUT_S, ForkedWorker, zygote_for

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_BYTES = 4 * 1024**3
OUTPUT_LIMIT_BYTES = 64 * 1024

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from grader.runner.worker import main; main(sys.argv[2:])"


@dataclass
class Outcome:
    """What came of one request: a decoded reply, or how the worker failed to give one."""

    kind: str  # "reply", "timeout", "crashed", "protocol"
    reply: dict[str, Any] | None = None
    detail: str = ""


@dataclass
class WorkerProcess:
    """One worker process, started on demand and restarted after it dies.

    `protect` names paths the worker must not reach besides the standard ones (a batch's results
    and submissions); with `require_sandbox`, a worker that cannot apply the sandbox `sandbox.plan()`
    promises refuses to start rather than run student code without it. `sandbox` is what the
    running worker applied ("landlock-abi-N", "uid" or "none"; None before it is ready).
    """

    memory_bytes: int = DEFAULT_MEMORY_BYTES
    device: str = "cpu"
    protect: tuple[str, ...] = ()
    require_sandbox: bool = False
    sandbox: str | None = None
    proc: subprocess.Popen | None = None
    _req_w: int = -1
    _resp_r: int = -1
    _scratch: str = ""
    _ready: bool = False
    _output: bytearray = field(default_factory=bytearray)
    _output_total: int = 0
    _out_fd: int = -1  # the read end of the worker's output pipe (-1: none, or closed at its end)
    _deferred: bool = False  # started, but not forked from the zygote yet

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker. With a zygote, only make sure one is on its way (it imports torch
        while this process does the same); the worker is forked when first needed."""
        become_subreaper()
        if zygote_for(self.device) is not None:
            self._deferred = True
            return
        self._launch()

    def _launch(self) -> None:
        self._deferred = False
        self._scratch = tempfile.mkdtemp(prefix="cnn-grader-")
        work_dir = Path(self._scratch) / "work"
        work_dir.mkdir()
        policy = worker_policy(work_dir, device=self.device, protect=self.protect, required=self.require_sandbox)
        if policy.mode == "uid":  # the unprivileged worker must reach and own its folder, nothing else here
            os.chmod(self._scratch, 0o711)
            os.chown(work_dir, policy.uid, policy.gid)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        zygote = zygote_for(self.device)
        forked = None
        if zygote is not None:
            out_r, out_w = os.pipe()
            try:
                with live_lock:
                    pid = zygote.fork([req_r, resp_w, out_w], str(work_dir), self.memory_bytes)
                    forked = ForkedWorker(zygote, pid, out_r)
                    live_pids.add(pid)
            except (OSError, ValueError):
                os.close(out_r)
            finally:
                os.close(out_w)
        if forked is not None:
            self.proc = forked
        else:
            with live_lock:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-c", _BOOT, str(boot_dir(self._scratch)), str(req_r), str(resp_w),
                     str(self.memory_bytes)],
                    pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, cwd=work_dir, env=worker_env(str(work_dir), self.device),
                    start_new_session=True, close_fds=True,
                )
                live_pids.add(self.proc.pid)
        os.close(req_r)
        os.close(resp_w)
        self._req_w, self._resp_r = req_w, resp_r
        try:
            protocol.write_frame(req_w, protocol.encode_request({"op": "sandbox", "policy": policy.to_dict()}))
        except BrokenPipeError:
            pass  # the worker died already: the wait for its ready message says so
        os.set_blocking(self._req_w, False)
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        self._ready = False
        self.sandbox = None

    def _read_output(self, limit: int = 1 << 20) -> None:
        """Read what the worker printed and is waiting in the pipe (at most `limit` bytes, so a
        worker that never stops printing cannot hold the grader here); keep the first
        OUTPUT_LIMIT_BYTES, count all."""
        taken = 0
        while self._out_fd >= 0 and taken < limit:
            try:
                chunk = os.read(self._out_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._out_fd = -1  # the worker closed its end (it exited); the file is closed in `stop`
                return
            taken += len(chunk)
            self._output_total += len(chunk)
            room = OUTPUT_LIMIT_BYTES - len(self._output)
            if room > 0:
                self._output += chunk[:room]

    def take_output(self) -> tuple[str, int]:
        """What the worker printed since the last call (bounded) and how many bytes it printed."""
        self._read_output()
        text, total = bytes(self._output).decode(errors="replace"), self._output_total
        self._output.clear()
        self._output_total = 0
        return text, total

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the worker, its process group and anything it left behind."""
        self._deferred = False
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            proc.wait()
            with live_lock:
                live_pids.discard(proc.pid)
        sweep_orphans()
        self._out_fd = -1
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        for fd in (self._req_w, self._resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._resp_r = -1
        self.proc = None
        self.sandbox = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = ""

    def kill(self) -> None:
        """Kill the worker's process group now, from any thread, without touching its pipes: the
        thread waiting on the worker sees it die and cleans up (`stop`); the next request starts
        a fresh worker."""
        proc = self.proc
        if proc is None or proc.returncode is not None:  # none, or already reaped (its pid may be reused)
            return
        for kill in (os.killpg, os.kill):  # the group, and the worker itself if it has no group of its own yet
            try:
                kill(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------
    def _fail(self, kind: str, detail: str) -> Outcome:
        self.stop()
        return Outcome(kind, detail=detail)

    def _wait_readable(self, deadline: float) -> str | None:
        """Wait until a reply can be read, reading the worker's output meanwhile; returns a
        failure kind, or None when readable."""
        while True:
            left = deadline - time.monotonic()
            watched = [self._resp_r] + ([self._out_fd] if self._out_fd >= 0 else [])
            ready, _, _ = select.select(watched, [], [], min(max(left, 0.0), 0.05))
            if self._out_fd in ready:
                self._read_output()
            if self._resp_r in ready:
                self._read_output()  # the worker flushed before replying: its output is all here
                return None  # a reply that is already there is read, even at the deadline
            if left <= 0:
                return "timeout"
            if not self.alive:
                ready, _, _ = select.select([self._resp_r], [], [], 0)
                return None if ready else "crashed"
            if rss_bytes(self.proc.pid) > self.memory_bytes:
                return "memory"

    def _read_reply(self, deadline: float) -> Outcome:
        failure = self._wait_readable(deadline)
        if failure == "timeout":
            return self._fail("timeout", "")
        if failure == "memory":
            return self._fail("crashed", f"the worker went over its memory cap ({self.memory_bytes / 1024**3:.1f} GiB) and was stopped")
        if failure == "crashed":
            self.proc.wait()
            return self._fail("crashed", describe_exit(self.proc.returncode))
        try:
            reply = protocol.decode_reply(protocol.read_frame(self._resp_r))
        except EOFError:
            self.proc.wait(timeout=5)
            return self._fail("crashed", describe_exit(self.proc.returncode))
        except (protocol.ProtocolError, OSError) as exc:
            return self._fail("protocol", f"the worker's channel was corrupted ({exc})")
        return Outcome("reply", reply=reply)

    def ensure_ready(self) -> Outcome | None:
        """Start the worker if it is not running and wait until it has imported torch.

        Start-up time never counts against a check's timeout."""
        if not self._deferred and not self.alive:
            if self.proc is not None:
                self.stop()
            self.start()
        if self._deferred:
            self._launch()
        if not self._ready:
            ready = self._read_reply(time.monotonic() + STARTUP_TIMEOUT_S)
            if ready.kind == "reply" and ready.reply.get("kind") == "fatal":
                self.stop()
                return Outcome("crashed", detail=f"the worker refused to start: {ready.reply.get('message')}")
            if ready.kind != "reply":
                return Outcome("crashed", detail=f"the worker could not start: {ready.detail or ready.kind}")
            self._ready = True
            self.sandbox = str(ready.reply.get("sandbox", "none"))
        return None

    def send(self, message: dict[str, Any], deadline: float) -> Outcome | None:
        """Send one request (starting the worker if needed); None when sent, else the failure."""
        failure = self.ensure_ready()
        if failure is not None:
            return failure
        payload = protocol.encode_request(message)
        data = memoryview(protocol.frame(payload))
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._fail("timeout", "")
            _, writable, _ = select.select([], [self._req_w], [], min(left, 0.05))
            if not self.alive:
                return self._fail("crashed", describe_exit(self.proc.poll()))
            if writable:
                try:
                    n = os.write(self._req_w, data)
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    self.proc.wait(timeout=5)
                    return self._fail("crashed", describe_exit(self.proc.returncode))
                data = data[n:]
        return None

    def receive(self, deadline: float) -> Outcome:
        """Wait for the reply to the request sent last."""
        return self._read_reply(deadline)

    def request(self, message: dict[str, Any], deadline: float) -> Outcome:
        """Send one request and wait for its reply until `deadline` (time.monotonic())."""
        failure = self.send(message, deadline)
        return failure if failure is not None else self.receive(deadline)
