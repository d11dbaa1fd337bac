"""The grader's side of the runner: start, feed, watch and stop the worker process.

Limits are enforced from here, where student code cannot reach them: a wall-clock deadline per
check, a memory watchdog on the worker's resident size (on top of the address-space limit the
worker sets on itself), bounded captured output, and a sweep that kills every process the worker
left behind, including those that started their own session (this process becomes their
"subreaper", so orphans are re-parented to it and found).
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.paths import PACKAGE_DIR
from grader.runner import protocol

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_BYTES = 4 * 1024**3
STARTUP_TIMEOUT_S = 120.0
OUTPUT_LIMIT_BYTES = 64 * 1024
_PR_SET_CHILD_SUBREAPER = 36

_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from grader.runner.worker import main; main(sys.argv[2:])"
_ENV_PASSTHROUGH = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT")

_live_lock = threading.Lock()
_live_pids: set[int] = set()
_subreaper_set = False


def _become_subreaper() -> None:
    global _subreaper_set
    if _subreaper_set or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _subreaper_set = True
    except (OSError, AttributeError):
        pass


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def sweep_orphans() -> int:
    """Kill processes re-parented to this one that are not live workers; returns how many."""
    killed = 0
    me = os.getpid()
    for _ in range(50):
        with _live_lock:
            strays = [p for p in _children_of(me) if p not in _live_pids and _is_stray(p)]
        if not strays:
            break
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        time.sleep(0.01)
    return killed


def _is_stray(pid: int) -> bool:
    """A child that came to us as an orphan of a worker: it carries the workers' environment
    marker, or it runs in another session than ours (workers start their own; our own helper
    processes share ours)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            if b"CNN_GRADER_WORKER=1" in fh.read():
                return True
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            session = int(fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[3])
        return session != os.getsid(0)
    except (OSError, ValueError, IndexError):
        return False


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Outcome:
    """What came of one request: a decoded reply, or how the worker failed to give one."""

    kind: str  # "reply", "timeout", "crashed", "protocol"
    reply: dict[str, Any] | None = None
    detail: str = ""


def describe_exit(returncode: int | None, who: str = "the worker") -> str:
    """How a process ended, for a person: "... was killed by signal 11 (SIGSEGV)"."""
    if returncode is None:
        return f"{who} stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"{who} was killed by signal {-returncode} ({name})"
    return f"{who} exited with code {returncode}"


@dataclass
class Worker:
    """One worker process, started on demand and restarted after it dies."""

    memory_bytes: int = DEFAULT_MEMORY_BYTES
    device: str = "cpu"
    proc: subprocess.Popen | None = None
    _req_w: int = -1
    _resp_r: int = -1
    _scratch: str = ""
    _ready: bool = False
    _output: bytearray = field(default_factory=bytearray)
    _output_total: int = 0
    _drain: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        _become_subreaper()
        self._scratch = tempfile.mkdtemp(prefix="cnn-grader-")
        boot_dir = Path(self._scratch) / "boot"
        boot_dir.mkdir()
        (boot_dir / "grader").symlink_to(PACKAGE_DIR, target_is_directory=True)
        work_dir = Path(self._scratch) / "work"
        work_dir.mkdir()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work_dir), "TMPDIR": str(work_dir),
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "CNN_GRADER_WORKER": "1"}
        env.update({k: os.environ[k] for k in _ENV_PASSTHROUGH if k in os.environ})
        if self.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        with _live_lock:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(boot_dir), str(req_r), str(resp_w), str(self.memory_bytes)],
                pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, cwd=work_dir, env=env, start_new_session=True, close_fds=True,
            )
            _live_pids.add(self.proc.pid)
        os.close(req_r)
        os.close(resp_w)
        self._req_w, self._resp_r = req_w, resp_r
        os.set_blocking(self._req_w, False)
        self._ready = False
        self._drain = threading.Thread(target=self._drain_output, args=(self.proc.stdout,), daemon=True)
        self._drain.start()

    def _drain_output(self, stream: Any) -> None:
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                return
            self._output_total += len(chunk)
            room = OUTPUT_LIMIT_BYTES - len(self._output)
            if room > 0:
                self._output += chunk[:room]

    def take_output(self) -> tuple[str, int]:
        """The captured output since the last call (bounded) and how many bytes were produced."""
        text, total = bytes(self._output).decode(errors="replace"), self._output_total
        self._output.clear()
        self._output_total = 0
        return text, total

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the worker, its process group and anything it left behind."""
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
            with _live_lock:
                _live_pids.discard(proc.pid)
        # Orphans first: one that inherited the output pipe keeps the drain thread reading.
        sweep_orphans()
        if proc is not None:
            if self._drain is not None:
                self._drain.join(timeout=2)
            if proc.stdout is not None and (self._drain is None or not self._drain.is_alive()):
                proc.stdout.close()
        for fd in (self._req_w, self._resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._resp_r = -1
        self.proc = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = ""

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests ----------------------------------------------------------------------------
    def _fail(self, kind: str, detail: str) -> Outcome:
        self.stop()
        return Outcome(kind, detail=detail)

    def _wait_readable(self, deadline: float) -> str | None:
        """Wait until a reply can be read; returns a failure kind, or None when readable."""
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._resp_r], [], [], min(max(left, 0.0), 0.05))
            if ready:
                return None  # a reply that is already there is read, even at the deadline
            if left <= 0:
                return "timeout"
            if not self.alive:
                ready, _, _ = select.select([self._resp_r], [], [], 0)
                return None if ready else "crashed"
            if _rss_bytes(self.proc.pid) > self.memory_bytes:
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
        if not self.alive:
            if self.proc is not None:
                self.stop()
            self.start()
        if not self._ready:
            ready = self._read_reply(time.monotonic() + STARTUP_TIMEOUT_S)
            if ready.kind != "reply":
                return Outcome("crashed", detail=f"the worker could not start: {ready.detail or ready.kind}")
            self._ready = True
        return None

    def send(self, message: dict[str, Any], deadline: float) -> Outcome | None:
        """Send one request (starting the worker if needed); None when sent, else the failure."""
        failure = self.ensure_ready()
        if failure is not None:
            return failure
        payload = protocol.encode_request(message)
        data = memoryview(protocol._HEADER.pack(protocol._MAGIC, len(payload)) + payload)
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
