"""torch's own Python implementations of operators, refused with the operators (worker side).

torch keeps, for many operators, a Python function that computes the same result out of other
operators (`torch._decomp.decompositions.max_pool2d_with_indices`, `im2col`...), registered in
`torch._decomp`'s tables, and private helpers that do the work for them
(`_max_pool_nd_with_indices`). Called directly, they compute a forbidden operator without ever
reaching it in the dispatcher. `refuse` gives each of them, for the operators refused, the code of a
function that only calls the guard's refusal, until `Swapped.restore`: every reference to them
(the tables, the module, a `__wrapped__`) then refuses.

A helper is refused with them when it is a private function of the same module that only they
use; helpers that other operators' implementations share are left alone.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

_REFUSED = compile("def refused(*args, _cnn_grader_refusal, **kwargs):\n    _cnn_grader_refusal()\n",
                   "<refused by the grader>", "exec")
_REFUSED_CODE = next(c for c in _REFUSED.co_consts if isinstance(c, types.CodeType))


@dataclass
class Swapped:
    """The functions whose code was replaced, with what to put back."""

    originals: list[tuple[types.FunctionType, types.CodeType, Any, Any]] = field(default_factory=list)

    def restore(self) -> None:
        for fn, code, defaults, kwdefaults in reversed(self.originals):
            fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
        self.originals.clear()


def _innermost(fn: Any) -> Iterator[types.FunctionType]:
    """`fn` and the functions it wraps (`__wrapped__`), outermost first."""
    seen: set[int] = set()
    while isinstance(fn, types.FunctionType) and id(fn) not in seen:
        seen.add(id(fn))
        yield fn
        fn = getattr(fn, "__wrapped__", None)


def _names_used(code: types.CodeType) -> set[str]:
    """The global names `code` and the functions nested in it refer to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


def _module_functions(module: types.ModuleType) -> list[types.FunctionType]:
    """The functions a module defines, those its functions wrap included."""
    found: dict[int, types.FunctionType] = {}
    for value in list(vars(module).values()):
        for fn in _innermost(value):
            if fn.__module__ == module.__name__:
                found[id(fn)] = fn
    return list(found.values())


def implementations(operators: Iterable[str]) -> list[types.FunctionType]:
    """torch's Python implementations of the operators named `operators` (names without namespace),
    with the private helpers of their module that only they use."""
    decomp = sys.modules.get("torch._decomp")
    if decomp is None or not hasattr(decomp, "global_decomposition_table"):
        return []
    wanted = set(operators)
    chosen: dict[int, types.FunctionType] = {}
    for kind, table in decomp.global_decomposition_table.items():
        if kind == "meta":  # shapes only: no values to compute
            continue
        for op, fn in list(table.items()):
            packet = getattr(op, "_overloadpacket", None)
            if packet is not None and packet.__name__ in wanted:
                chosen.update((id(f), f) for f in _innermost(fn))
    for module_name in {f.__module__ for f in chosen.values()}:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        functions = _module_functions(module)
        outside = set().union(*(_names_used(f.__code__) for f in functions if id(f) not in chosen))
        for fn in list(chosen.values()):
            if fn.__module__ != module_name:
                continue
            for name in _names_used(fn.__code__):
                helper = vars(module).get(name)
                if (isinstance(helper, types.FunctionType) and name.startswith("_") and name not in outside
                        and helper.__module__ == module_name):
                    chosen[id(helper)] = helper
    return list(chosen.values())


def refuse(functions: Iterable[types.FunctionType], refusal_for: Callable[[types.FunctionType], Callable[[], None]]) -> Swapped:
    """Give each of `functions` the code of a function that calls `refusal_for(it)()` (which
    raises). A function that closes over variables keeps its code (a new one must keep its
    closure): the wrappers among them call one that is refused."""
    swapped = Swapped()
    for fn in functions:
        if fn.__code__.co_freevars:
            continue
        swapped.originals.append((fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__))
        fn.__code__, fn.__defaults__ = _REFUSED_CODE, None
        fn.__kwdefaults__ = {"_cnn_grader_refusal": refusal_for(fn)}
    return swapped
