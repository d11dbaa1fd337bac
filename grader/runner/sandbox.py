"""Least privilege for student code: a Landlock sandbox, or an unprivileged user, in every worker.

Two halves, both free of torch:

- the grader's side: `plan()` says what a worker started on this machine gets; `worker_policy`
  lists what that worker may touch: read (and map and execute) the Python installation and the
  system libraries; read and write its scratch folder; `/dev/null`, `/dev/urandom`, its own
  `/proc/self`, `/sys/devices/system/cpu`, and on `--device cuda` the NVIDIA device and driver
  files. Protected paths (the course, the references and the package holding them, recordings,
  results, submissions, the home folder) are never granted, even when they lie inside a folder
  that is: that folder is then granted entry by entry around them, and may be listed, not read;
- the worker's side: `apply(policy)`, called in the worker once everything trusted is imported
  and before any student code loads, enforces the policy and returns what it applied.

What a worker gets, best first (the strings are the `"sandbox"` field of every result):

- `"landlock-abi-N"`: Linux Landlock at ABI N, the best the kernel offers. File access as
  above; from ABI 4 no TCP bind or connect; from ABI 6 no signal to a process outside the
  sandbox and no abstract unix socket. Rights a kernel does not know are left out (best effort,
  as the kernel documentation describes), so an older kernel gives a weaker but valid sandbox.
  Landlock is reached with ctypes through its three system calls (444, 445, 446 on x86_64 and
  aarch64): the calls take two integers and two packed structs, which does not justify a
  dependency;
- `"uid"`: where Landlock is missing and the grader runs as root (a Gradescope container), the
  worker drops to the unprivileged user `nobody` with no supplementary groups, so it reads only
  what every user may read; the grader must then keep the protected paths private to root
  (`exposed_paths` lists the ones that are not);
- `"none"`: neither. A learner's grading still works; `grade batch` and the Gradescope
  autograder refuse it unless told otherwise.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import platform
import pwd
import site
import stat
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

# --- Landlock's user-space interface (include/uapi/linux/landlock.h) ---------------------------
_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}  # create_ruleset, add_rule, restrict_self
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_CHAR, FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
FS_MAKE_REG, FS_MAKE_SOCK, FS_MAKE_FIFO, FS_MAKE_BLOCK, FS_MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # the rights a file can carry
READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
LIST = FS_READ_DIR
DEVICE = FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV
WRITE = (1 << 16) - 1  # everything, in the scratch folder

_SYSTEM_LIBS = ("/lib", "/lib64", "/lib32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/local/lib",
                "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
_KERNEL_INFO = ("/dev/urandom", "/dev/random", "/proc/self", "/sys/devices/system/cpu", "/proc/cpuinfo",
                "/proc/meminfo")
_CUDA_INFO = ("/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices", "/sys/module/nvidia", "/usr/share/nvidia",
              "/etc/nvidia")
_CUDA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia[0-9]*", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                 "/dev/nvidia-modeset", "/dev/nvidia-caps/*")


class SandboxError(Exception):
    """A sandbox was required and could not be applied."""


@dataclass(frozen=True)
class Policy:
    """What one worker may touch, and how that is enforced.

    `mode` is "landlock", "uid" or "none"; the path lists matter for "landlock" only (under
    "uid" the file permissions decide). With `required`, `apply` raises rather than run
    student code with less than `mode`.
    """

    mode: str
    read: tuple[str, ...] = ()  # read, map and execute, files and folders beneath
    list_only: tuple[str, ...] = ()  # folders whose entries may be listed, not read
    write: tuple[str, ...] = ()  # read, write, create and remove beneath
    devices: tuple[str, ...] = ()  # device files: read, write and ioctl
    uid: int = 65534
    gid: int = 65534
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Policy":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# --- what this machine offers -------------------------------------------------------------------
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


@functools.cache
def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers; 0 where there is none (not Linux, an
    architecture whose system call numbers are not known here, a kernel without Landlock or
    with Landlock disabled)."""
    numbers = _SYSCALLS.get(platform.machine()) if sys.platform.startswith("linux") else None
    if numbers is None:
        return 0
    try:
        version = _libc().syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def unprivileged_ids() -> tuple[int, int]:
    """The uid and gid of `nobody` (65534 where the name is unknown)."""
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def plan() -> str:
    """What a worker started now gets: "landlock-abi-N", "uid" (root without Landlock) or "none"."""
    abi = landlock_abi()
    if abi:
        return f"landlock-abi-{abi}"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "uid"
    return "none"


def _strength(state: str) -> int:
    if state.startswith("landlock-abi-"):
        return 1 + int(state.rsplit("-", 1)[1])
    return 1 if state == "uid" else 0


def weakest(states: Iterable[str]) -> str:
    """The weakest of several sandbox states (what a run with several workers can claim)."""
    return min(states, key=_strength)


def describe(state: str) -> str:
    """One line for a person: what the sandbox state means."""
    if state.startswith("landlock"):
        return f"sandbox: {state} (Linux Landlock: student code reads only Python and its scratch folder)"
    if state == "uid":
        return "sandbox: uid (student code ran as the unprivileged user nobody)"
    return ("no sandbox: student code ran with this user's rights (it could read the course and the references); "
            "Linux 5.13+ with Landlock enabled, or grading as root, gives one")


# --- the grader's side: what a worker may touch -------------------------------------------------
def protected_paths(extra: Iterable[str | Path] = ()) -> list[Path]:
    """The paths no worker may reach: this package (and the references inside it), the course
    it runs from and the one around the working folder, the home folder, the cache folder (the
    references' expected values are kept there), and `extra` (a batch's results and submissions, say)."""
    from grader.paths import PACKAGE_DIR, checkout_root, find_course_root, kept_values_dir

    candidates: list[Path | None] = [PACKAGE_DIR, checkout_root(), find_course_root(), Path.home(),
                                     kept_values_dir(), *map(Path, extra)]
    try:
        candidates.append(Path(pwd.getpwuid(os.geteuid()).pw_dir))
    except (KeyError, AttributeError):
        pass
    out: list[Path] = []
    for path in candidates:
        if path is None:
            continue
        resolved = path.resolve()
        if resolved != Path("/") and resolved not in out:
            out.append(resolved)
    return out


def _python_roots() -> list[str]:
    """The folders the interpreter reads: its standard library, extension modules and site-packages."""
    paths = sysconfig.get_paths()
    roots = [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths]
    roots += site.getsitepackages()
    roots += [p for p in sys.path if p.endswith(".zip") or "site-packages" in p or "dist-packages" in p]
    return roots


def _carve(root: Path, protected: list[Path], read: list[str], listed: list[str], seen: set[Path]) -> None:
    """Grant `root` for reading, or, when a protected path lies inside it, its entries one by one
    (the folder itself may then only be listed). A protected path itself is never granted."""
    if root in seen or not root.exists():
        return
    seen.add(root)
    if root in protected:
        return
    inside = [p for p in protected if p != root and p.is_relative_to(root)]
    if not inside:
        read.append(str(root))
        return
    listed.append(str(root))
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        _carve(entry.resolve(), protected, read, listed, seen)


def worker_policy(work_dir: str | Path, *, device: str = "cpu", protect: Iterable[str | Path] = (),
                  required: bool = False) -> Policy:
    """The policy of one worker whose scratch folder is `work_dir`.

    `protect` adds paths to `protected_paths()`; `required` makes the worker refuse to serve
    without the sandbox `plan()` promises."""
    state = plan()
    mode = "landlock" if state.startswith("landlock") else state
    uid, gid = unprivileged_ids()
    if mode != "landlock":
        return Policy(mode=mode, write=(str(work_dir),), uid=uid, gid=gid, required=required)
    protected = protected_paths(protect)
    wanted = [*_python_roots(), *_SYSTEM_LIBS, *_KERNEL_INFO]
    wanted += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    devices: list[str] = []
    if device == "cuda":
        wanted += _CUDA_INFO
        devices = sorted({p for pattern in _CUDA_DEVICES for p in glob.glob(pattern)})
    read: list[str] = []
    listed: list[str] = []
    seen: set[Path] = set()
    for path in wanted:
        # /proc/self must stay a link: it names the worker only when the worker opens it.
        if path == "/proc/self":
            read.append(path)
            continue
        _carve(Path(path).resolve(), protected, read, listed, seen)
    return Policy(mode=mode, read=tuple(read), list_only=tuple(listed), write=(str(work_dir),),
                  devices=("/dev/null", *devices), uid=uid, gid=gid, required=required)


def exposed_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Those of `paths` that a user with no relation to their owner could read: every folder above
    is searchable by others, and the path is readable by others (a folder: readable or searchable,
    since its entries' names can be guessed). ACLs are not looked at."""
    exposed = []
    for path in paths:
        path = Path(path).resolve()
        try:
            mode = path.stat().st_mode
            searchable = all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
        except OSError:
            continue
        others = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if searchable and mode & others:
            exposed.append(path)
    return exposed


# --- the worker's side --------------------------------------------------------------------------
def apply(policy: Policy) -> str:
    """Enforce `policy` on this process (and its future children); returns what was applied.

    Landlock confines the calling thread only, so it is refused in a process that runs more than
    one. Raises `SandboxError` when `policy.required` and less than `policy.mode` was applied."""
    failure = "no sandbox is available on this machine"
    if policy.mode == "landlock":
        try:
            return _apply_landlock(policy)
        except OSError as exc:
            failure = f"Landlock could not be applied ({exc})"
    elif policy.mode == "uid":
        try:
            _drop_privileges(policy.uid, policy.gid)
            return "uid"
        except OSError as exc:
            failure = f"the worker could not become an unprivileged user ({exc})"
    if policy.required:
        raise SandboxError(failure)
    return "none"


def _prctl(libc: ctypes.CDLL, option: int, value: int) -> None:
    if libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _handled(abi: int) -> tuple[int, int, int]:
    """The file-system rights, network rights and scopes that ABI `abi` knows."""
    fs = (1 << 13) - 1
    if abi >= 2:
        fs |= FS_REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    if abi >= 5:
        fs |= FS_IOCTL_DEV
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    return fs, net, scoped


def _apply_landlock(policy: Policy) -> str:
    abi = landlock_abi()
    if abi < 1:
        raise OSError("the kernel offers no Landlock")
    if os.path.isdir("/proc/self/task") and len(os.listdir("/proc/self/task")) > 1:
        raise OSError("the worker runs several threads and Landlock would confine only one")
    create, add_rule, restrict = _SYSCALLS[platform.machine()]
    libc = _libc()
    fs, net, scoped = _handled(abi)
    # struct landlock_ruleset_attr grew a field at ABI 4 and at ABI 6: pass the size this kernel knows.
    attr = (fs.to_bytes(8, "little") + net.to_bytes(8, "little") + scoped.to_bytes(8, "little"))[
        : 24 if abi >= 6 else 16 if abi >= 4 else 8]
    ruleset = _check(libc.syscall(create, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)), ctypes.c_uint32(0)),
                     "landlock_create_ruleset")
    try:
        rules = [(p, READ) for p in policy.read] + [(p, LIST) for p in policy.list_only]
        rules += [(p, WRITE) for p in policy.write] + [(p, DEVICE) for p in policy.devices]
        for path, access in rules:
            _add_path_rule(libc, add_rule, ruleset, path, access & fs)
        _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1)
        _check(libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return f"landlock-abi-{abi}"


def _add_path_rule(libc: ctypes.CDLL, add_rule: int, ruleset: int, path: str, access: int) -> None:
    """Allow `access` beneath `path` (a file carries only file rights); a missing path is skipped."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FILE_RIGHTS
        if not access:
            return
        # struct landlock_path_beneath_attr { __u64 allowed_access; __s32 parent_fd; } __attribute__((packed))
        attr = access.to_bytes(8, "little") + fd.to_bytes(4, "little", signed=True)
        _check(libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.c_char_p(attr),
                            ctypes.c_uint32(0)), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _drop_privileges(uid: int, gid: int) -> None:
    """Become `uid`:`gid` with no supplementary groups, for good (root only)."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("the user did not change")
    if sys.platform.startswith("linux"):
        libc = _libc()
        _prctl(libc, _PR_SET_NO_NEW_PRIVS, 1)
        # Changing user made the process undumpable, which hides its own /proc/self from it.
        _prctl(libc, _PR_SET_DUMPABLE, 1)
