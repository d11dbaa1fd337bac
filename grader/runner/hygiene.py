"""Process hygiene for the runner: who is still alive, who is a stray, how a process ended.

The grader becomes a "subreaper", so processes a worker leaves behind (even ones that started
their own session) are re-parented to it and found by `sweep_orphans`; a zygote does the same for
the workers it forks. `die_with_parent` ties a process's life to its parent's (forked workers,
batch agents). `worker_env` is the minimal environment every worker and zygote starts with, and
`boot_dir` the only folder they add to `sys.path`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from pathlib import Path

from grader.paths import PACKAGE_DIR

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4
_PR_SET_PDEATHSIG = 1
_ENV_PASSTHROUGH = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT")

live_lock = threading.Lock()
live_pids: set[int] = set()  # workers and zygotes of this process: never swept as strays
_subreaper_set = False


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> None:
    """Make orphans of this process's descendants come back to it (Linux), once."""
    global _subreaper_set
    if not _subreaper_set:
        _subreaper_set = _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def make_not_dumpable() -> None:
    """Keep processes of the same user from reading this one's memory or fds through /proc."""
    _prctl(_PR_SET_DUMPABLE, 0)


def die_with_parent(parent: int) -> bool:
    """Be killed (SIGKILL) when the thread that started this process ends (Linux); False when
    `parent` is already gone, so the caller should exit now."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    return os.getppid() == parent


def children_of(pid: int) -> list[int]:
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
        with live_lock:
            strays = [p for p in children_of(me) if p not in live_pids and _is_stray(p)]
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


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def worker_env(work_dir: str, device: str) -> dict[str, str]:
    """The minimal environment of a worker (and of the zygote that forks workers)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work_dir, "TMPDIR": work_dir,
           "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "CNN_GRADER_WORKER": "1"}
    env.update({k: os.environ[k] for k in _ENV_PASSTHROUGH if k in os.environ})
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def boot_dir(scratch: str) -> Path:
    """A folder whose only entry is a link to this package: the worker's whole sys.path addition."""
    boot = Path(scratch) / "boot"
    boot.mkdir()
    (boot / "grader").symlink_to(PACKAGE_DIR, target_is_directory=True)
    return boot


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
