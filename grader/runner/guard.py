"""Forbidden built-ins: a static scan of the student's file and a run-time guard in the worker.

The catalogue lists, per exercise, dotted names or fnmatch patterns (`torch.nn.functional.*pool*`)
and the aten operators behind them. The static scan (grader side, no torch) resolves import
aliases and `getattr(obj, "name")` with a constant name, and reports each use with its line. The
run-time guard (worker side) wraps every matching callable, in every namespace torch exposes it
under, and watches the aten operators while a request runs, so a call is caught however it is
reached; it raises `ForbiddenCall`, a `BaseException`, so `except Exception` cannot swallow it,
and it records the hit even if the student catches it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Iterable


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
        self.active = tuple(patterns)
        self.active_ops = frozenset(ops)
        self.hits = []
        if self.active:
            self.install(self.active)

    def dispatch_mode(self) -> Any:
        """A context manager that catches the active aten operators (a no-op when there are none)."""
        import contextlib

        if not self.active_ops:
            return contextlib.nullcontext()
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
                name = func._overloadpacket.__name__
                if name in guard.active_ops:
                    qual = f"aten::{name} (reached through an internal route)"
                    guard.hits.append(qual)
                    raise ForbiddenCall(qual)
                return func(*args, **(kwargs or {}))

        return _OpGuard()
