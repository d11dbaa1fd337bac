"""The sandbox layer on its own: a forked child applies a policy, then tries each boundary.

Every boundary is tried twice where it matters: what must fail fails, and the neighbouring thing
that must keep working (the scratch folder, Python's own files, the worker's own processes) works.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT
from grader.runner import sandbox

ABI = sandbox.landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="this kernel offers no Landlock (Linux 5.13+, enabled at boot)")
needs_abi4 = pytest.mark.skipif(ABI < 4, reason=f"TCP rules need Landlock ABI 4; this kernel offers {ABI}")
needs_abi6 = pytest.mark.skipif(ABI < 6, reason=f"signal scoping needs Landlock ABI 6; this kernel offers {ABI}")
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="dropping to another user needs root")


def _outcome(action: Callable[[], Any]) -> str:
    try:
        action()
    except PermissionError:
        return "denied"
    except OSError as exc:
        return f"failed: {exc}"
    return "allowed"


def in_sandbox(policy: sandbox.Policy, probes: dict[str, Callable[[], Any]]) -> dict[str, str]:
    """Fork, apply `policy` in the child, run each probe there; {"state": ..., name: outcome}."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(r)
            report = {"state": sandbox.apply(policy)}
            report.update({name: _outcome(action) for name, action in probes.items()})
            data = json.dumps(report)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            data = json.dumps({"state": f"error: {exc!r}"})
        os.write(w, data.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.fixture
def scratch(tmp_path) -> Path:
    work = tmp_path / "scratch" / "work"
    work.mkdir(parents=True)
    return work


@pytest.fixture
def open_dir() -> Path:
    """A folder that every user can reach (pytest's own temporary folders are private to their user)."""
    path = Path(tempfile.mkdtemp(prefix="cnn-grader-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _read(path: Path | str) -> Callable[[], bytes]:
    return lambda: Path(path).read_bytes()


def _write(path: Path) -> Callable[[], int]:
    return lambda: path.write_text("written from the sandbox")


# --- Landlock -------------------------------------------------------------------------------------
@needs_landlock
def test_files_outside_the_policy_are_out_of_reach(scratch, tmp_path):
    policy = sandbox.worker_policy(scratch)
    outside, planted = tmp_path / "outside.txt", ROOT / "exercises" / "planted.py"
    try:
        report = in_sandbox(policy, {
            "reference": _read(ROOT / "solutions" / "conv.py"),
            "reference_via_proc": _read(f"/proc/self/root{ROOT}/solutions/conv.py"),
            "package_copy": _read(ROOT / "grader" / "checks" / "conv.py"),
            "list_course": lambda: os.listdir(ROOT),
            "list_solutions": lambda: os.listdir(ROOT / "solutions"),
            "write_outside": _write(outside),
            "write_course": _write(planted),
            "parent_cmdline": _read(f"/proc/{os.getpid()}/cmdline"),
            "init_environ": _read("/proc/1/environ"),
            "home": lambda: os.listdir(Path.home()),
            # what must keep working
            "write_scratch": _write(scratch / "notes.txt"),
            "read_scratch": _read(scratch / "notes.txt"),
            "stdlib": _read(os.__file__),
            "import": lambda: __import__("colorsys"),
            "own_proc": _read("/proc/self/status"),
            "cpus": _read("/sys/devices/system/cpu/online"),
            "urandom": lambda: open("/dev/urandom", "rb").read(8),
            "devnull": lambda: open("/dev/null", "w").write("x"),
        })
        assert not outside.exists() and not planted.exists()
    finally:
        planted.unlink(missing_ok=True)  # only a broken sandbox lets it be written
    assert report["state"] == f"landlock-abi-{ABI}"
    for boundary in ("reference", "reference_via_proc", "package_copy", "list_course", "list_solutions", "write_outside", "write_course",
                     "parent_cmdline", "init_environ", "home"):
        assert report[boundary] == "denied", (boundary, report)
    for allowed in ("write_scratch", "read_scratch", "stdlib", "import", "own_proc", "cpus", "urandom", "devnull"):
        assert report[allowed] == "allowed", (allowed, report)


@needs_landlock
@needs_abi4
def test_no_tcp_connection_or_listener(scratch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        report = in_sandbox(sandbox.worker_policy(scratch), {
            "connect": lambda: socket.create_connection(("127.0.0.1", port), timeout=2),
            "bind": lambda: socket.socket().bind(("127.0.0.1", 0)),
        })
    finally:
        listener.close()
    assert report["connect"] == "denied" and report["bind"] == "denied", report


@needs_landlock
@needs_abi6
def test_no_signal_outside_the_sandbox(scratch):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def kill_own_child() -> None:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    try:
        report = in_sandbox(sandbox.worker_policy(scratch), {
            "bystander": lambda: os.kill(bystander.pid, signal.SIGKILL),
            "parent": lambda: os.kill(os.getppid(), 0),
            "own_child": kill_own_child,
        })
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    assert report["bystander"] == "denied" and report["parent"] == "denied", report
    assert report["own_child"] == "allowed", report


@needs_landlock
def test_a_protected_folder_inside_a_granted_one_is_carved_out(tmp_path, scratch):
    root = tmp_path / "prefix"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "module.py").write_text("ok")
    (root / "pkg" / "_data" / "solutions").mkdir(parents=True)
    (root / "pkg" / "_data" / "solutions" / "conv.py").write_text("secret")
    (root / "pkg" / "checks.py").write_text("ok")
    secret = root / "pkg" / "_data"
    read: list[str] = []
    listed: list[str] = []
    sandbox._carve(root, [secret], read, listed, set())
    assert sorted(listed) == [str(root), str(root / "pkg")]
    assert sorted(read) == [str(root / "lib"), str(root / "pkg" / "checks.py")]
    policy = sandbox.Policy(mode="landlock", read=tuple(read), list_only=tuple(listed), write=(str(scratch),))
    report = in_sandbox(policy, {
        "granted": _read(root / "lib" / "module.py"),
        "sibling": _read(root / "pkg" / "checks.py"),
        "list_around": lambda: os.listdir(root / "pkg"),
        "secret": _read(secret / "solutions" / "conv.py"),
    })
    assert report["granted"] == report["sibling"] == report["list_around"] == "allowed", report
    assert report["secret"] == "denied", report


def test_the_policy_never_grants_a_protected_path(scratch, tmp_path):
    policy = sandbox.worker_policy(scratch, protect=[tmp_path / "results"])
    protected = sandbox.protected_paths([tmp_path / "results"])
    assert ROOT.resolve() in protected and (ROOT / "grader").resolve() in protected
    granted = [Path(p) for p in (*policy.read, *policy.write, *policy.devices)]
    for path in granted:
        for secret in protected:
            assert not (path == secret or secret.is_relative_to(path)), (path, secret)


@needs_landlock
def test_a_required_sandbox_that_cannot_be_applied_refuses(scratch):
    import threading

    policy = sandbox.Policy(mode="landlock", write=(str(scratch),), required=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()  # a second thread: Landlock would confine one only
        try:
            sandbox.apply(policy)
            os.write(w, b"applied")
        except sandbox.SandboxError as exc:
            os.write(w, str(exc).encode())
        stop.set()
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        message = fh.read().decode()
    os.waitpid(pid, 0)
    assert "several threads" in message


# --- the unprivileged user ------------------------------------------------------------------------
@needs_root
def test_the_uid_fallback_keeps_root_files_and_processes_out_of_reach(open_dir):
    uid, gid = sandbox.unprivileged_ids()
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    (private / "seed.json").write_text('{"seed": 1234}')
    secret_file = open_dir / "references.py"
    secret_file.write_text("secret")
    secret_file.chmod(0o600)
    work = open_dir / "work"
    work.mkdir()
    os.chown(work, uid, gid)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        report = in_sandbox(sandbox.Policy(mode="uid", write=(str(work),), uid=uid, gid=gid), {
            "private_folder": _read(private / "seed.json"),
            "private_file": _read(secret_file),
            "root_process": lambda: os.kill(bystander.pid, signal.SIGKILL),
            "root_environ": _read(f"/proc/{os.getpid()}/environ"),
            "write_scratch": _write(work / "notes.txt"),
            "own_proc": _read("/proc/self/status"),
        })
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    assert report["state"] == "uid"
    for boundary in ("private_folder", "private_file", "root_process", "root_environ"):
        assert report[boundary] == "denied", (boundary, report)
    assert report["write_scratch"] == "allowed" and report["own_proc"] == "allowed", report
    assert sandbox.exposed_paths([private / "seed.json", secret_file, work]) == [work.resolve()]


def test_no_sandbox_is_refused_when_required(scratch):
    with pytest.raises(sandbox.SandboxError, match="no sandbox"):
        sandbox.apply(sandbox.Policy(mode="none", required=True))
    assert sandbox.apply(sandbox.Policy(mode="none")) == "none"


def test_the_plan_matches_the_kernel():
    state = sandbox.plan()
    if ABI:
        assert state == f"landlock-abi-{ABI}"
    else:
        assert state == ("uid" if os.geteuid() == 0 else "none")
    assert sandbox.describe(state)
    assert "no sandbox" in sandbox.describe("none")


def test_exposed_paths_reads_the_permission_bits(open_dir):
    open_file = open_dir / "open.json"
    open_file.write_text("{}")
    open_file.chmod(0o644)
    closed = open_dir / "closed.json"
    closed.write_text("{}")
    closed.chmod(0o600)
    assert sandbox.exposed_paths([open_file, closed]) == [open_file.resolve()]
    open_dir.chmod(0o700)
    assert sandbox.exposed_paths([open_file]) == []
