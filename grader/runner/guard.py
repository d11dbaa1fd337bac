"""Forbidden built-ins: a static scan of the student's file and a run-time guard in the worker.

The catalogue lists, per exercise, dotted names or fnmatch patterns (`torch.nn.functional.*pool*`)
and the operators behind them. The static scan (grader side, no torch) resolves import aliases and
`getattr(obj, "name")` with a constant name, and reports each use with its line. The run-time guard
(worker side) wraps every matching callable, in every namespace torch exposes it under, and
refuses the operators in torch's dispatcher itself: a kernel that raises is registered over each
of their kernels (every overload, every dispatch key), so a call is caught however it is reached,
at no cost to any other operator; torch's own Python implementations of them (`torch._decomp`)
are refused too (`decompositions`). An operator of a library the student may load later, such as
torchvision's `nms`, is refused ahead of its definition when the catalogue names its namespace,
and otherwise watched through a dispatch mode, which sees every operator of any namespace. A
refused call raises `ForbiddenCall`, a `BaseException`, so `except Exception` cannot swallow it,
and it is recorded even if the student catches it.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
from typing import Any, Iterable

_INTERNAL_ROUTE = "(reached through an internal route)"


@dataclass(frozen=True)
class StaticFinding:
    line: int
    name: str  # the resolved dotted name, e.g. "torch.nn.functional.conv2d"


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    root = aliases.get(node.id)
    if root is None:
        return None
    return ".".join([root, *reversed(parts)])


def static_scan(source: str, patterns: Iterable[str]) -> list[StaticFinding]:
    """Uses of forbidden names in `source`, resolved through import aliases. Syntax errors: []."""
    patterns = tuple(patterns)
    if not patterns:
        return []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    aliases: dict[str, str] = {}
    findings: set[StaticFinding] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
                if _matches(alias.name, patterns):
                    findings.add(StaticFinding(node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                aliases[alias.asname or alias.name] = full
                if _matches(full, patterns):
                    findings.add(StaticFinding(node.lineno, full))
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            name = _dotted(node, aliases)
        elif isinstance(node, ast.Name) and node.id in aliases and "." in aliases[node.id]:
            name = aliases[node.id]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            base = _dotted(node.args[0], aliases)
            if base:
                name = f"{base}.{node.args[1].value}"
        if name and _matches(name, patterns):
            findings.add(StaticFinding(node.lineno, name))
    return sorted(findings, key=lambda f: (f.line, f.name))


class ForbiddenCall(BaseException):
    """Raised in the worker when student code calls a forbidden built-in."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is forbidden in this exercise")
        self.name = name


class RuntimeGuard:
    """Worker-side guard: wraps forbidden callables once; `activate` selects the current set."""

    def __init__(self) -> None:
        self.active: tuple[str, ...] = ()
        self.active_ops: frozenset[str] = frozenset()
        self.hits: list[str] = []
        self._wrapped: set[tuple[int, str]] = set()
        self._scanned: dict[tuple[str, int], int] = {}  # (pattern, namespace) -> names when scanned
        self._refused: frozenset[str] = frozenset()  # the operators refused in the dispatcher...
        self._watched: frozenset[str] = frozenset()  # ...and those of them it holds no kernel of
        self._libraries: dict[str, Any] = {}  # namespace -> the torch.library.Library of the refusals
        self._swapped: Any = None  # decompositions.Swapped: torch's Python implementations refused

    def _wrap(self, namespace: Any, attr: str, public_name: str) -> None:
        key = (id(namespace), attr)
        if key in self._wrapped:
            return
        original = getattr(namespace, attr, None)
        if original is None:
            return
        guard = self
        if isinstance(original, type):
            init = original.__init__

            def guarded_init(obj: Any, *args: Any, __init=init, __name=public_name, **kwargs: Any) -> None:
                guard._check(__name)
                __init(obj, *args, **kwargs)

            try:
                original.__init__ = guarded_init  # subclasses inherit the guard too
            except (TypeError, AttributeError):
                return
        elif callable(original):

            def guarded(*args: Any, __orig=original, __name=public_name, **kwargs: Any) -> Any:
                guard._check(__name)
                return __orig(*args, **kwargs)

            try:
                setattr(namespace, attr, guarded)
            except (TypeError, AttributeError):
                return
        self._wrapped.add(key)

    def _check(self, name: str) -> None:
        if self.active and _matches(name, self.active):
            self.hits.append(name)
            raise ForbiddenCall(name)

    def install(self, patterns: Iterable[str]) -> None:
        """Wrap every existing callable that a pattern matches (idempotent)."""
        import importlib

        import torch

        mirrors = [getattr(torch._C, "_VariableFunctions", None), getattr(torch._C, "_nn", None)]
        for pattern in patterns:
            module_name, _, attr_pattern = pattern.rpartition(".")
            try:
                namespace = importlib.import_module(module_name)
            except ImportError:
                continue
            # Runs before every request: rescan a namespace only when it gained or lost names
            # (a module the student created or filled since), since wrapping is idempotent.
            seen = (pattern, id(namespace))
            size = len(vars(namespace))
            if self._scanned.get(seen) == size:
                continue
            self._scanned[seen] = size
            for attr in list(vars(namespace)):
                if attr.startswith("__") or not fnmatchcase(attr, attr_pattern):
                    continue
                public = f"{module_name}.{attr}"
                self._wrap(namespace, attr, public)
                for mirror in mirrors:
                    if mirror is not None and hasattr(mirror, attr):
                        self._wrap(mirror, attr, public)

    def activate(self, patterns: Iterable[str], ops: Iterable[str]) -> None:
        """Select the forbidden names and operators of a request. The operators stay refused until
        a request names another set: between requests, only the student's code runs."""
        self.active = tuple(patterns)
        self.active_ops = frozenset(ops)
        self.hits = []
        if self.active:
            self.install(self.active)
        if self.active_ops != self._refused:
            self._refuse(self.active_ops)

    def _refuse(self, ops: frozenset[str]) -> None:
        """Register a raising kernel over every kernel of every overload of the operators `ops`
        names, in whichever namespace the dispatcher holds one, withdrawing the set refused before.
        An entry is an operator's name, qualified ("torchvision::nms") or not, or an fnmatch pattern
        of names ("*avg_pool*"). A qualified name no library has defined yet is refused ahead of its
        kernels; an unqualified one, or one that could not be refused, is left to the dispatch
        mode; a pattern refuses what it matches now."""
        import warnings

        from grader.runner import decompositions

        for library in self._libraries.values():
            library._destroy()  # the original kernels come back
        self._libraries = {}
        if self._swapped is not None:
            self._swapped.restore()
        self._refused, self._watched, self._swapped = ops, frozenset(), None
        if not ops:
            return
        names = {entry for entry in ops if not _is_pattern(entry)}
        entries = names | _matching(frozenset(ops - names))
        if not _dispatcher_readable():
            watched = {entry.rpartition("::")[2] for entry in ops}  # names and patterns alike
        else:
            watched = set()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Overriding a previously registered kernel": on purpose
                for entry in sorted(entries):
                    namespace, _, name = entry.rpartition("::")
                    overloads = [q for q in overloads_by_name().get(name, ()) if not namespace or q.startswith(f"{namespace}::")]
                    if overloads:
                        refused = all([self._refuse_overload(q) for q in overloads])
                    else:  # not defined yet: refused before any kernel of it, once its library defines it
                        refused = bool(namespace) and self._refuse_before_definition(entry)
                    if not refused:
                        watched.add(name)  # some kernel of it may run: the mode sees every call
        self._watched = frozenset(watched)
        self._swapped = decompositions.refuse(
            decompositions.implementations({entry.rpartition("::")[2] for entry in entries}),
            lambda fn: self._refusal(f"{fn.__module__}.{fn.__qualname__} (torch's own Python implementation of a forbidden operator)"))

    def _refuse_overload(self, qualified: str) -> bool:
        """Register a refusal over every kernel of the overload `qualified` ("aten::conv2d.padding");
        whether none of its kernels can run now (an overload without any kernel cannot run at all)."""
        namespace, _, overload = qualified.partition("::")
        refusal = self._refusal(f"{namespace}::{overload.partition('.')[0]} {_INTERNAL_ROUTE}")
        try:
            for key in _kernel_keys(qualified):
                self._library(namespace).impl(overload, refusal, key)
        except RuntimeError:  # a key this torch cannot register for
            return False
        return True

    def _refuse_before_definition(self, qualified: str) -> bool:
        """Register a refusal of the operator `qualified` ("torchvision::nms"), which no library has
        defined yet, at BackendSelect: every call passes there before the kernel of its device,
        whichever kernels its library registers later. Whether it could be registered."""
        namespace, _, name = qualified.partition("::")
        try:
            self._library(namespace).impl(name, self._refusal(f"{qualified} {_INTERNAL_ROUTE}"), "BackendSelect")
        except RuntimeError:
            return False
        return True

    def _library(self, namespace: str) -> Any:
        """The `torch.library.Library` that holds this guard's refusals in `namespace`."""
        import torch

        if namespace not in self._libraries:
            self._libraries[namespace] = torch.library.Library(namespace, "IMPL")
        return self._libraries[namespace]

    def _refusal(self, name: str) -> Any:
        """A function that refuses the call it stands for: it records `name`, then raises
        `ForbiddenCall`. It serves as a kernel and as torch's Python implementation alike."""
        guard = self

        def refuse(*args: Any, **kwargs: Any) -> None:
            guard.hits.append(name)
            raise ForbiddenCall(name)

        return refuse

    def dispatch_mode(self) -> Any:
        """A context manager that watches the forbidden operators the dispatcher could not refuse
        (a no-op when there are none, or no request is active): each operator that runs passes
        through it. It knows them by name without namespace, or by pattern where this torch
        cannot list its operators."""
        import contextlib

        if not self.active_ops or not self._watched:
            return contextlib.nullcontext()
        names = {w for w in self._watched if not _is_pattern(w)}
        patterns = tuple(w for w in self._watched if _is_pattern(w))

        def watched(name: str) -> bool:
            return name in names or any(fnmatchcase(name, p) for p in patterns)

        from torch.utils._python_dispatch import TorchDispatchMode

        guard = self

        class _OpGuard(TorchDispatchMode):
            @classmethod
            def _should_skip_dynamo(cls) -> bool:
                # Otherwise torch wraps __torch_dispatch__ in `torch._dynamo.disable`, whose first
                # call imports torch._dynamo and sympy (1.4 s, more than torch itself) and which
                # costs on every operator. Nothing is compiled in the worker: there is nothing to skip.
                return False

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                packet = func._overloadpacket
                if watched(packet.__name__):
                    qual = f"{packet._qualified_op_name} {_INTERNAL_ROUTE}"
                    guard.hits.append(qual)
                    raise ForbiddenCall(qual)
                return func(*args, **(kwargs or {}))

        return _OpGuard()


@functools.cache
def overloads_by_name() -> dict[str, list[str]]:
    """The operator overloads torch's dispatcher holds, by the operator's name without namespace
    ("convolution" -> ["aten::convolution", "aten::convolution.out"]), read once per process: the
    zygote reads them while it warms up, and its workers inherit them."""
    import torch

    overloads: dict[str, list[str]] = {}
    listing = getattr(torch._C, "_dispatch_get_all_op_names", list)  # a torch without it: none known
    for qualified in listing():
        overloads.setdefault(qualified.partition("::")[2].partition(".")[0], []).append(qualified)
    return overloads


def _kernel_keys(qualified: str) -> list[str]:
    """The dispatch keys that hold a kernel of the operator overload `qualified`, as the
    dispatcher's own listing of it names them ("CPU", "Autograd", "CompositeExplicitAutograd")."""
    import torch

    keys: dict[str, None] = {}
    for line in torch._C._dispatch_dump(qualified).splitlines():
        key, sep, rest = line.partition(": registered at ")
        if sep and " :: " in rest:  # a kernel's line ("Meta (inactive)" for one overridden), not the schema's
            keys[key.split(" ")[0].removesuffix("[alias]")] = None
    return list(keys)


def _is_pattern(entry: str) -> bool:
    return any(c in entry for c in "*?[")


@functools.cache
def _matching(patterns: frozenset[str]) -> frozenset[str]:
    """The names of the operators the dispatcher holds that one of the fnmatch `patterns` matches."""
    if not patterns:
        return frozenset()
    import re

    rule = re.compile("|".join(translate(p) for p in sorted(patterns)))
    return frozenset(name for name in overloads_by_name() if rule.match(name))


@functools.cache
def _dispatcher_readable() -> bool:
    """Whether this torch's listing of an operator's kernels reads as `_kernel_keys` expects (it
    finds the CPU kernel of aten::mm); if not, every forbidden operator is left to the dispatch mode."""
    try:
        return "CPU" in _kernel_keys("aten::mm")
    except Exception:  # noqa: BLE001 - a torch without the listing
        return False
