"""The worker: the only process that runs student code. It loads modules and runs probes.

Forked by the zygote (`zygote`, below), or started by `handle.WorkerProcess` as `python -I -c BOOT`
where there is none, in a scratch folder with a minimal environment, closed stdin and captured
output. The first frame on its request pipe is its sandbox policy; once everything trusted is
imported (torch, the guard, the probes and the checks' modules), it applies that policy
(`sandbox.apply`) and only then says it is ready, so no student code ever runs outside it. It
reads pickled requests from one pipe and writes replies as `torch.save` frames to another (see
`protocol`). The student's source arrives in each request: the worker never opens the student's
file, nor anything of the grader's. It never imports the references: `solutions` and the
package's copy of them are refused. Nothing it says decides a verdict on its own: the grader
compares the returned tensors with its own expected values.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import resource
import signal
import sys
import traceback
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from grader.runner import sandbox
from grader.runner.hygiene import become_subreaper, children_of, die_with_parent

_BLOCKED_PREFIXES = ("solutions", "grader._data.solutions")


class _RefuseReferences:
    """A meta-path finder that refuses to import the reference solutions."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if any(name == p or name.startswith(p + ".") for p in _BLOCKED_PREFIXES):
            raise ImportError(f"importing {name!r} is not allowed while grading: write your own code")
        return None


def _limit(memory_bytes: int) -> None:
    for res, value in (
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 64 * 1024 * 1024),
    ):
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass


def _student_traceback(exc: BaseException, path: str) -> str:
    """The traceback trimmed to the student's own file, plus the exception line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == path]
    text = "".join(traceback.format_list(frames)) if frames else ""
    return text + "".join(traceback.format_exception_only(type(exc), exc)).strip()


class WorkerLoop:
    """The worker's request loop: load the student's module, run probes, send plain-data replies."""

    def __init__(self, req_fd: int, resp_fd: int) -> None:
        from grader.runner import guard, probes, protocol

        self.req_fd, self.resp_fd = req_fd, resp_fd
        self.guard = guard.RuntimeGuard()
        self.protocol, self.probes, self.guard_mod = protocol, probes, guard
        self.modules: dict[str, ModuleType | dict] = {}

    def send(self, reply: dict[str, Any]) -> None:
        reply.setdefault("forbidden_hits", list(self.guard.hits))
        self.protocol.write_frame(self.resp_fd, self.protocol.encode_reply(reply))

    def _exception_reply(self, exc: BaseException, path: str, phase: str) -> dict[str, Any]:
        if isinstance(exc, self.guard_mod.ForbiddenCall) or self.guard.hits:
            name = exc.name if isinstance(exc, self.guard_mod.ForbiddenCall) else self.guard.hits[0]
            return {"kind": "forbidden", "name": name, "phase": phase, "traceback": _student_traceback(exc, path)}
        return {
            "kind": "exception",
            "phase": phase,
            "type": type(exc).__name__,
            "mro": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc)[:2000],
            "traceback": _student_traceback(exc, path)[-4000:],
        }

    def load(self, exercise: str, path: str, source: bytes) -> ModuleType | dict:
        """Run the student's module (the file `path` holds `source`) once per version of it; a
        failed import is remembered as its error reply."""
        key = f"{exercise}:{path}:{hashlib.sha256(source).hexdigest()}"  # a file saved again is loaded again
        if key in self.modules:
            return self.modules[key]
        name = f"student_{exercise}"
        module = ModuleType(name)
        module.__file__ = path
        # Tracebacks and inspect.getsource find the lines here: the file itself is out of reach.
        linecache.cache[path] = (len(source), None, source.decode("utf-8", "replace").splitlines(True), path)
        try:
            code = compile(source, path, "exec", dont_inherit=True)
            # As Python's import system does: code that looks its own module up while it is
            # executed (@dataclass with postponed annotations, @torch.jit.script) finds it.
            sys.modules[name] = module
            with self.guard.dispatch_mode():
                exec(code, module.__dict__)
            self.modules[key] = module
        except BaseException as exc:  # noqa: BLE001 - SystemExit and ForbiddenCall included
            sys.modules.pop(name, None)
            self.modules[key] = self._exception_reply(exc, path, "import")
        return self.modules[key]

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        path = os.path.abspath(request["path"])
        self.guard.activate(request.get("forbidden", ()), request.get("forbidden_ops", ()))
        module = self.load(request["exercise"], path, request["source"])
        if isinstance(module, dict):
            return dict(module)
        if request["op"] == "load":
            return {"kind": "ok", "value": None}
        probe = self.probes.resolve(request["probe"])
        try:
            with self.guard.dispatch_mode():
                value = probe(module, *request["args"], **request["kwargs"])
        except BaseException as exc:  # noqa: BLE001
            return self._exception_reply(exc, path, "run")
        if self.guard.hits:
            return {"kind": "forbidden", "name": self.guard.hits[0], "phase": "run", "traceback": ""}
        try:
            plain = self.probes.sanitize(value)  # runs the student's __int__/__float__ on number-like results
        except BaseException as exc:  # noqa: BLE001
            return self._exception_reply(exc, path, "run")
        return {"kind": "ok", "value": plain}

    def serve(self, policy: sandbox.Policy, parent: int | None = None) -> None:
        """Apply `policy`, say so, then answer requests until the grader closes the pipe. With
        `parent`, die when that process dies (set after the sandbox: changing user clears it)."""
        try:
            state = sandbox.apply(policy)
        except sandbox.SandboxError as exc:
            self.send({"kind": "fatal", "message": str(exc)})
            return
        if parent is not None and not die_with_parent(parent):
            return
        self.send({"kind": "ready", "pid": os.getpid(), "sandbox": state})
        while True:
            try:
                request = self.protocol.decode_request(self.protocol.read_frame(self.req_fd, limit=1 << 34))
            except EOFError:
                return
            reply = self.handle(request)
            self.guard.active, self.guard.active_ops = (), frozenset()
            _flush_output()  # what the request printed reaches the grader before its reply
            try:
                self.send(reply)
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be saved
                self.send({"kind": "exception", "phase": "reply", "type": type(exc).__name__, "mro": [],
                           "message": f"the result could not be sent back: {exc}"[:2000], "traceback": ""})


def _flush_output() -> None:
    """Flush the standard streams (also those the student's code may have put in their place)."""
    for stream in {id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}.values():
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a stream the student replaced or closed
            pass


def _read_policy(req_fd: int) -> sandbox.Policy:
    """The first frame on the request pipe: the sandbox policy the grader computed for this worker."""
    from grader.runner import protocol

    return sandbox.Policy.from_dict(protocol.decode_request(protocol.read_frame(req_fd))["policy"])


def _prepare() -> None:
    """Import what a worker needs before the sandbox closes the grader's files: torch (warmed up),
    the guard, the probes and every module a probe can name."""
    sys.meta_path.insert(0, _RefuseReferences())
    import torch

    from grader.runner import guard, probes, protocol  # noqa: F401 - imported for the sandboxed worker

    torch.set_num_threads(1)
    _warm_up(torch)
    probes.preload()


def main(argv: list[str]) -> None:
    """A worker started as a fresh process (where no zygote can fork one)."""
    req_fd, resp_fd, memory_bytes = int(argv[0]), int(argv[1]), int(argv[2])
    _limit(memory_bytes)
    policy = _read_policy(req_fd)
    _prepare()
    WorkerLoop(req_fd, resp_fd).serve(policy)


def _warm_up(torch: ModuleType) -> None:
    """Pay torch's lazy first-use costs now, while the grader is still importing torch itself:
    the guard's index of the dispatcher's operators, its dispatch mode, autograd and `torch.save`
    on a tiny input."""
    import io

    from grader.runner.guard import RuntimeGuard

    guard = RuntimeGuard()
    guard.activate((), {"no-such-operator"})  # no kernel to refuse: the dispatch mode watches every operator, forbids none
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    with guard.dispatch_mode():
        y = torch.einsum("nchw,nchw->n", x.unfold(2, 2, 1).sum(-1), x[..., :3, :]).sum()
    torch.autograd.grad(y, [x])
    torch.save({"t": x.detach()}, io.BytesIO())


def zygote(argv: list[str]) -> None:
    """Import torch once (and the modules named after the socket's descriptor in `argv`), then
    fork a fresh worker for each request of the grader.

    Requests arrive on a Unix socket as JSON with three file descriptors (the worker's request
    pipe, reply pipe and output pipe): {"op": "fork", "cwd", "memory", "import"} imports the modules
    of "import" (the grader's own list, `Zygote.preload`) if they are not yet, then answers {"pid"};
    {"op": "wait", "pid"} reaps a dead worker, kills what it left behind, and answers {"code"}.
    The zygote runs no student code; each child sets its own limits, session, folder and sandbox
    before it serves. The zygote is the subreaper of its workers, so what they leave behind comes
    back to it; when the grader's end of the socket closes (the grader exited or was killed), it
    kills every worker and every such leftover, then exits.
    """
    import json
    import socket

    _prepare()
    _preload(argv[1:])  # what every worker of this zygote will need (`zygote.TRAINING_MODULES`)
    become_subreaper()
    sock = socket.socket(fileno=int(argv[0]))
    sock.sendall(b"ready")
    workers: set[int] = set()
    try:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 4096, 3)
            except OSError:
                return
            if not data:
                return
            message = json.loads(data)
            if message["op"] == "fork":
                _preload(message.get("import", ()))
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    sock.close()
                    _serve_forked(fds, message)
                for fd in fds:
                    os.close(fd)
                workers.add(pid)
                sock.sendall(json.dumps({"pid": pid}).encode())
            elif message["op"] == "wait":
                pid = int(message["pid"])
                try:
                    _, status = os.waitpid(pid, 0)
                    code = os.waitstatus_to_exitcode(status)
                except ChildProcessError:
                    code = None
                workers.discard(pid)
                _kill_children(keep=workers)
                sock.sendall(json.dumps({"code": code}).encode())
    finally:
        for pid in workers:
            _kill(pid, group=True)
        _kill_children(keep=set())


def _preload(modules: Iterable[str]) -> None:
    """Import `modules` now, so that no worker forked from here imports them; one that cannot be
    imported is left out (it only saves time: a worker that needs it imports it, or fails itself)."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _kill(pid: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_children(keep: set[int]) -> None:
    """Kill and reap this process's children except `keep`, until no other is left (killing one
    may hand its own children to us)."""
    for _ in range(50):
        others = [pid for pid in children_of(os.getpid()) if pid not in keep]
        if not others:
            return
        for pid in others:
            _kill(pid)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _serve_forked(fds: list[int], message: dict[str, Any]) -> None:
    """In a freshly forked child: become a worker (own session, folder, limits, output, sandbox)
    that dies with the zygote."""
    try:
        zygote_pid = os.getppid()
        req_fd, resp_fd, out_fd = fds
        os.setsid()
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        os.chdir(message["cwd"])
        os.environ["HOME"] = os.environ["TMPDIR"] = message["cwd"]
        _limit(int(message["memory"]))
        WorkerLoop(req_fd, resp_fd).serve(_read_policy(req_fd), parent=zygote_pid)
    finally:
        os._exit(0)
