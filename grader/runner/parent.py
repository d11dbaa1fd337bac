"""The grader's side of the runner: start, feed, watch and stop the worker process.

Limits are enforced from here, where student code cannot reach them: a wall-clock deadline per
check, a memory watchdog on the worker's resident size (on top of the address-space limit the
worker sets on itself), bounded captured output, and a sweep that kills every process the worker
left behind, including those that started their own session (this process becomes their
"subreaper", so orphans are re-parented to it and found).
"""

from __future__ import annotations

import atexit
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


_ZYGOTE_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from grader.runner.worker import zygote; zygote(sys.argv[2:])"


def _worker_env(work_dir: str, device: str) -> dict[str, str]:
    """The minimal environment of a worker (and of the zygote that forks workers)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work_dir, "TMPDIR": work_dir,
           "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "CNN_GRADER_WORKER": "1"}
    env.update({k: os.environ[k] for k in _ENV_PASSTHROUGH if k in os.environ})
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _boot_dir(scratch: str) -> Path:
    """A folder whose only entry is a link to this package: the worker's whole sys.path addition."""
    boot = Path(scratch) / "boot"
    boot.mkdir()
    (boot / "grader").symlink_to(PACKAGE_DIR, target_is_directory=True)
    return boot


class _Zygote:
    """A process that imported torch once and forks fresh workers on request.

    It never runs student code and never imports the references, so a forked worker starts in
    milliseconds in the same state as a freshly started one. Workers are its children; it reaps
    them and reports their exit status. If it dies (a student may kill it), the next request
    starts a new one.
    """

    def __init__(self, device: str) -> None:
        import socket

        self.device = device
        self.scratch = tempfile.mkdtemp(prefix="cnn-grader-zygote-")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = mine
        with _live_lock:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _ZYGOTE_BOOT, str(_boot_dir(self.scratch)), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=self.scratch, env=_worker_env(self.scratch, device),
                start_new_session=True, close_fds=True,
            )
            _live_pids.add(self.proc.pid)
        theirs.close()
        self.lock = threading.Lock()
        self._ready = False  # it imports torch meanwhile; the first request waits for it

    def _ask(self, message: dict[str, Any], fds: list[int] = ()) -> dict[str, Any]:
        import json
        import socket

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
        return int(self._ask({"op": "fork", "cwd": work_dir, "memory": memory_bytes}, fds)["pid"])

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
            with _live_lock:
                _live_pids.discard(self.proc.pid)
            shutil.rmtree(self.scratch, ignore_errors=True)


_zygotes: dict[str, _Zygote] = {}
_zygotes_lock = threading.Lock()


def _zygote(device: str) -> _Zygote | None:
    """This process's zygote for `device` (started on first use); None where forking is not
    available, so workers are then started as fresh processes."""
    if not sys.platform.startswith("linux") or not hasattr(__import__("socket"), "send_fds"):
        return None
    with _zygotes_lock:
        zyg = _zygotes.get(device)
        if zyg is not None and not zyg.alive:
            zyg.close()
            zyg = None
        if zyg is None:
            try:
                zyg = _zygotes[device] = _Zygote(device)
            except OSError:
                return None
        return zyg


def shutdown_zygotes() -> None:
    """Stop this process's zygotes (also done at exit)."""
    with _zygotes_lock:
        for zyg in _zygotes.values():
            zyg.close()
        _zygotes.clear()


atexit.register(shutdown_zygotes)


class _ForkedWorker:
    """The subset of `subprocess.Popen` the Worker uses, for a worker forked by the zygote."""

    def __init__(self, zygote: _Zygote, pid: int, stdout_fd: int) -> None:
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
    _deferred: bool = False  # started, but not forked from the zygote yet

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker. With a zygote, only make sure one is on its way (it imports torch
        while this process does the same); the worker is forked when first needed."""
        _become_subreaper()
        if _zygote(self.device) is not None:
            self._deferred = True
            return
        self._launch()

    def _launch(self) -> None:
        self._deferred = False
        self._scratch = tempfile.mkdtemp(prefix="cnn-grader-")
        work_dir = Path(self._scratch) / "work"
        work_dir.mkdir()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        zygote = _zygote(self.device)
        forked = None
        if zygote is not None:
            out_r, out_w = os.pipe()
            try:
                with _live_lock:
                    pid = zygote.fork([req_r, resp_w, out_w], str(work_dir), self.memory_bytes)
                    forked = _ForkedWorker(zygote, pid, out_r)
                    _live_pids.add(pid)
            except (OSError, ValueError):
                os.close(out_r)
            finally:
                os.close(out_w)
        if forked is not None:
            self.proc = forked
        else:
            with _live_lock:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-c", _BOOT, str(_boot_dir(self._scratch)), str(req_r), str(resp_w),
                     str(self.memory_bytes)],
                    pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, cwd=work_dir, env=_worker_env(str(work_dir), self.device),
                    start_new_session=True, close_fds=True,
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
        if not self._deferred and not self.alive:
            if self.proc is not None:
                self.stop()
            self.start()
        if self._deferred:
            self._launch()
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
