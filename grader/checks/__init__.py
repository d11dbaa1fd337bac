"""Hidden checks, one module per exercise, each exporting `CHECKS: list[Check]`.

Helpers here build seeded inputs and the common kinds of cases, so each exercise's module holds
only what is particular to it: its inputs, its parts and its known mistakes.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from grader.engine.compare import TENSOR_KEY, describe, is_tensor
from grader.engine.spec import Case


def randn(g: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal values from the check's generator."""
    return torch.randn(*shape, generator=g, dtype=dtype)


def call(fn: str, *args: Any, grad: bool = False, label: str = "", raises: tuple[str, ...] = (),
         rtol: float | None = None, atol: float | None = None, **kwargs: Any) -> Case:
    """A case that calls the exercise's function `fn` (gradients too with `grad=True`)."""
    if grad:
        kwargs["grad"] = True
    return Case("call", (fn, *args), kwargs, label=label, raises=raises, rtol=rtol, atol=atol)


def probe_outcome(mod: Any, fn: str, *args: Any, device: str = "cpu", seed: int = 0) -> dict:
    """Call `mod.fn(*args)` and say what happened, as data: {"returned": the result} or
    {"raised": [the exception's class name, then its bases' names]}. An error then compares like
    any result, so the known mistakes that raise the wrong error, or none, can be named.
    NotImplementedError (the stub) and MemoryError propagate, as from any probe."""
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    try:
        out = getattr(mod, fn)(*args)
    except (NotImplementedError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the student's error is the result
        return {"raised": [c.__name__ for c in type(exc).__mro__ if c is not object]}
    return {"returned": out}


def assess_outcome(got: Any, expected: Any, *, accept: tuple[str, ...]) -> str | None:
    """Judge a `probe_outcome` result: where the reference raises, an error of a class in `accept`
    (or a subclass); where it returns, any returned result (its value is for the part's other checks)."""
    raised = got.get("raised") if isinstance(got, dict) else None
    if isinstance(expected, dict) and "raised" in expected:
        wanted = " or ".join(accept)
        if raised is None:
            returned = got.get("returned") if isinstance(got, dict) else got
            return f"expected {wanted} to be raised, but it returned {describe(returned)}"
        if not any(name in accept for name in raised):
            return f"expected {wanted}, but it raised {raised[0]}"
        return None
    if raised is not None:
        return f"raised {raised[0]}, but these arguments are valid: expected {describe(expected.get('returned'))}"
    return None


def outcome_case(fn: str, *args: Any, accept: tuple[str, ...], label: str = "") -> Case:
    """A case that calls the exercise's function `fn` through `probe_outcome`: where the reference
    raises, an error of a class in `accept` passes; where it returns, returning passes."""
    return Case("grader.checks:probe_outcome", (fn, *args), label=label,
                assess=functools.partial(assess_outcome, accept=tuple(accept)))


def module_case(cls: str, init_args: tuple, inputs: tuple, state_dict: dict | None, *, grad: bool = False,
                method: str = "forward", label: str = "", rtol: float | None = None,
                atol: float | None = None, trusted: dict[str, str] | None = None) -> Case:
    """A case that builds `cls(*init_args)`, loads `state_dict` and calls `method(*inputs)`;
    `trusted` names other parts replaced by the grader's versions meanwhile ({name: "module:function"})."""
    kwargs: dict[str, Any] = {"init_args": init_args, "inputs": inputs, "state_dict": state_dict,
                              "method": method, "grad": grad}
    if trusted:
        kwargs["trusted"] = dict(trusted)
    return Case("module", (cls,), kwargs, label=label, rtol=rtol, atol=atol)


def reference_state(ref: Any, cls: str, *init_args: Any, dtype: torch.dtype = torch.float32) -> dict:
    """The state_dict of a freshly initialised reference module (seeded by the check's seed)."""
    net = getattr(ref, cls)(*init_args).to(dtype)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def dtype_name(dtype: torch.dtype) -> str:
    """"float32" for torch.float32, for labels."""
    return str(dtype).replace("torch.", "")


def random_boxes(g: torch.Generator, n: int, *, dtype: torch.dtype = torch.float32, extent: float = 100.0,
                 min_size: float = 5.0, max_size: float = 60.0) -> torch.Tensor:
    """`n` boxes (Tensor[n, 4]) with top-left corners in `[0, extent]` and sides in `[min_size, max_size]`."""
    corner = torch.rand(n, 2, generator=g, dtype=torch.float64) * extent
    size = min_size + torch.rand(n, 2, generator=g, dtype=torch.float64) * (max_size - min_size)
    return torch.cat([corner, corner + size], dim=1).to(dtype)  # (n, 4)


def relative_gap(got: Any, expected: Any) -> float:
    """How far apart two results of the same structure are, relative to the expected values: the
    largest `max|got - expected| / max|expected|` over their tensors and numbers (inf where the
    structures, shapes or types differ). A near miss of a training loop is below 1e-3 or so."""
    if is_tensor(expected):
        if not is_tensor(got):
            return math.inf
        g, e = got[TENSOR_KEY], expected[TENSOR_KEY]
        if g.shape != e.shape or not (g.is_floating_point() and e.is_floating_point()):
            return 0.0 if torch.equal(g, e) else math.inf
        if e.numel() == 0:
            return 0.0
        return float((g.double() - e.double()).abs().max() / e.double().abs().max().clamp_min(1e-12))
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return math.inf
        return max((relative_gap(got[k], expected[k]) for k in expected), default=0.0)
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(expected):
            return math.inf
        return max((relative_gap(a, b) for a, b in zip(got, expected)), default=0.0)
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return abs(got - expected) / max(abs(expected), 1e-12)
    return 0.0 if got == expected else math.inf
