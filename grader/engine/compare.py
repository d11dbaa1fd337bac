"""Comparing a student's result with the expected one, and saying exactly what differed.

Results are plain data as produced by `runner.probes.sanitize`: wrapped tensors, numbers,
strings, None and containers. Tolerances depend on the dtype (explicit, never torch's defaults);
a check may override them. A mismatch is described for a person: shape, dtype or device, NaN/inf,
the number of wrong elements, the largest absolute and relative errors with their indices, and a
few values got vs expected.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import torch

from grader.engine.spec import DTYPE_TOLERANCES
from grader.runner.probes import TENSOR_KEY, UNSUPPORTED_KEY

# dtype -> (rtol, atol)
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {getattr(torch, name): tol for name, tol in DTYPE_TOLERANCES.items()}
FLOAT_TOLERANCE = (1e-6, 1e-9)  # python floats


def is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and TENSOR_KEY in value


def describe(value: Any) -> str:
    """A short description of a result value for messages."""
    if is_tensor(value):
        t = value[TENSOR_KEY]
        return f"a tensor of shape {tuple(t.shape)} and dtype {_dtype_name(t.dtype)}"
    if isinstance(value, dict) and UNSUPPORTED_KEY in value:
        return f"an object of type {value[UNSUPPORTED_KEY]}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:120]


def _fmt_index(flat: int, shape: tuple[int, ...]) -> str:
    idx = []
    for size in reversed(shape):
        idx.append(flat % size if size else 0)
        flat //= size if size else 1
    return str(tuple(reversed(idx)))


def _num(x: float) -> str:
    return f"{x:.6g}"


def compare_tensors(got: torch.Tensor, exp: torch.Tensor, where: str, rtol: float | None, atol: float | None) -> str | None:
    if tuple(got.shape) != tuple(exp.shape):
        return f"{where}: shape {tuple(got.shape)}, expected {tuple(exp.shape)}"
    if got.dtype != exp.dtype:
        why = ("the output dtype must follow the input's" if exp.is_floating_point() or exp.is_complex() else
               "a mask is bool" if exp.dtype == torch.bool else
               f"indices and labels are {_dtype_name(exp.dtype)} whatever the input's dtype")
        return f"{where}: dtype {_dtype_name(got.dtype)}, expected {_dtype_name(exp.dtype)} ({why})"
    if not exp.is_floating_point() and not exp.is_complex():
        wrong = got != exp
        if not bool(wrong.any()):
            return None
        flat = int(wrong.flatten().nonzero()[0])
        return (f"{where}: {int(wrong.sum())} of {exp.numel()} values differ; first at index "
                f"{_fmt_index(flat, tuple(exp.shape))}: got {got.flatten()[flat].item()}, expected {exp.flatten()[flat].item()}"
                + _few(got, exp))
    d_rtol, d_atol = TOLERANCES.get(exp.dtype, (1e-5, 1e-8))
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    g, e = got.double(), exp.double()
    if bool(torch.isfinite(g).all()) and bool(torch.isfinite(e).all()) and bool(((g - e).abs() <= atol + rtol * e.abs()).all()):
        return None  # the common case, finite and close, in few operations; the rest explains a difference
    for label, bad in (("NaN", torch.isnan), ("infinite", torch.isinf)):
        extra = bad(g) & ~bad(e)
        if bool(extra.any()):
            flat = int(extra.flatten().nonzero()[0])
            return f"{where}: {int(extra.sum())} {label} value(s) where the expected values are finite, first at index {_fmt_index(flat, tuple(exp.shape))}"
    same_special = (torch.isnan(g) & torch.isnan(e)) | (torch.isinf(g) & torch.isinf(e) & (g == e))
    err = (g - e).abs().masked_fill(same_special, 0.0).nan_to_num(nan=math.inf)
    allowed = atol + rtol * e.abs().nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)
    wrong = err > allowed
    if not bool(wrong.any()):
        return None
    shape = tuple(exp.shape)
    worst = int(err.flatten().argmax())
    first = int(wrong.flatten().nonzero()[0])
    gf, ef = g.flatten(), e.flatten()
    return (
        f"{where}: {int(wrong.sum())} of {exp.numel()} elements differ (rtol {rtol:g}, atol {atol:g})\n"
        f"  first wrong element at {_fmt_index(first, shape)}: got {_num(gf[first].item())}, expected {_num(ef[first].item())}\n"
        f"  largest absolute error {_num(err.flatten()[worst].item())} at {_fmt_index(worst, shape)}\n"
        + _relative_line(err, e, wrong, shape)
        + _few(got, exp)
    )


def _relative_line(err: torch.Tensor, e: torch.Tensor, wrong: torch.Tensor, shape: tuple[int, ...]) -> str:
    """The largest relative error among the wrong elements whose expected value is not 0 (a
    relative error means nothing where the expected value is 0)."""
    defined = wrong & (e != 0) & e.isfinite()
    if not bool(defined.any()):
        return "  no relative error: every wrong element is expected to be 0"
    rel = (err / e.abs()).masked_fill(~defined, 0.0)
    worst_rel = int(rel.flatten().argmax())
    return f"  largest relative error {_num(rel.flatten()[worst_rel].item())} at {_fmt_index(worst_rel, shape)}"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _few(got: torch.Tensor, exp: torch.Tensor, n: int = 6) -> str:
    g = [_num(v) if isinstance(v, float) else str(v) for v in got.flatten()[:n].tolist()]
    e = [_num(v) if isinstance(v, float) else str(v) for v in exp.flatten()[:n].tolist()]
    more = ", ..." if exp.numel() > n else ""
    return f"\n  got      [{', '.join(g)}{more}]\n  expected [{', '.join(e)}{more}]"


def _is_number(value: Any, kind: type) -> bool:
    """A number of `kind` by value (numpy scalars included), never a bool; tensors are not numbers:
    where the contract asks for a Python number, a tensor is refused."""
    return isinstance(value, kind) and not isinstance(value, bool)


def compare(got: Any, expected: Any, where: str = "result", rtol: float | None = None,
            atol: float | None = None, device: str | None = None) -> str | None:
    """None when `got` matches `expected`, else a message saying what differed and where."""
    if is_tensor(expected):
        if not is_tensor(got):
            return f"{where}: got {describe(got)}, expected {describe(expected)}"
        if device is not None and got["device"].split(":")[0] != device.split(":")[0]:
            return f"{where}: on device {got['device']}, expected {device} (outputs stay on the input's device)"
        return compare_tensors(got[TENSOR_KEY], expected[TENSOR_KEY], where, rtol, atol)
    if isinstance(expected, dict) and UNSUPPORTED_KEY not in expected:
        if not isinstance(got, dict) or is_tensor(got) or UNSUPPORTED_KEY in got:
            return f"{where}: got {describe(got)}, expected a mapping"
        if set(got) != set(expected):
            return f"{where}: keys {sorted(got)}, expected {sorted(expected)}"
        for key in expected:
            msg = compare(got[key], expected[key], f"{where}[{key!r}]", rtol, atol, device)
            if msg:
                return msg
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{where}: got {describe(got)}, expected {describe(expected)}"
        if len(got) != len(expected):
            return f"{where}: {len(got)} items, expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare(g, e, f"{where}[{i}]", rtol, atol, device)
            if msg:
                return msg
        return None
    if isinstance(expected, bool):
        if not isinstance(got, bool) or got != expected:
            return f"{where}: got {describe(got)}, expected bool {expected!r}"
        return None
    if isinstance(expected, int):
        if not _is_number(got, numbers.Integral) or got != expected:
            return f"{where}: got {describe(got)}, expected int {expected!r}"
        return None
    if isinstance(expected, float):
        if not _is_number(got, numbers.Real):
            return f"{where}: got {describe(got)}, expected float {expected!r}"
        r, a = FLOAT_TOLERANCE if rtol is None else (rtol, atol or 0.0)
        if math.isnan(expected) and math.isnan(got):
            return None
        if not (abs(got - expected) <= a + r * abs(expected)):
            return f"{where}: got {got!r}, expected {expected!r} (error {abs(got - expected):.3g})"
        return None
    if got != expected:
        return f"{where}: got {describe(got)}, expected {describe(expected)}"
    return None


def pretty_where(message: str, arg_names: list[str]) -> str:
    """A `compare` message with its locations in words: `result['out']` -> "output",
    `result['grads']['arg1']` -> "gradient w.r.t. weight" (from the function's parameter names)."""
    message = message.replace("result['out']", "output").replace("result['grads']", "gradient w.r.t.")

    def arg(m: re.Match) -> str:
        i = int(m.group(1))
        return "gradient w.r.t. " + (arg_names[i] if i < len(arg_names) else f"argument {i}")

    message = re.sub(r"gradient w\.r\.t\.\['arg(\d+)'\]", arg, message)
    message = re.sub(r"gradient w\.r\.t\.\['param:([^']+)'\]", r"gradient w.r.t. parameter \1", message)
    return re.sub(r"gradient w\.r\.t\.\['(\w+)'\]", r"gradient w.r.t. \1", message)
