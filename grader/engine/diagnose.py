"""Diagnosis: what kind of wrong a failed result is, said precisely or not at all.

When a case fails its comparison, the grader holds the case's inputs, the expected result and the
student's result. The pure functions here (torch only: no worker, no student code) look in them
for a pattern that explains the difference, and return typed findings, `Diagnosis(kind, text)`,
shown under the check and written to the `diagnosis` field of the result JSON. A pattern is
reported only when it explains the values it speaks of within the comparison's tolerances; there
is never a generic "values differ" (the comparison's message says that already). They run only
after a failure, so passing costs nothing.

The kinds (`grader.engine.results.DIAGNOSIS_KINDS`):
- shape: which dimension differs and by how much, with the output-size formula variant that
  gives the student's size (ceil for floor, padding missing or on one side, stride ignored...);
- layout: the right values with axes permuted (transposed, channels last), reshaped where a
  permute was needed, or flipped;
- arithmetic: a constant factor (the wrong count), a constant offset, a per-axis term (a bias
  missing, doubled or broadcast on the wrong axis), the sign, values only as precise as a lower
  dtype; for numbers, the formula variant that gives the student's number;
- location: only the border wrong, a spatial shift, only some batch items or channels, only where
  windows overlap;
- structure: all zeros, where NaN/inf first appears, the input returned unchanged, the right
  indices in the wrong order, extra or missing indices, a number returned as a tensor;
- across_cases: which case parameters separate the passing cases from the failing ones;
- gradients: the output right but a gradient wrong (for which input) or missing (detached).

Case parameters (stride, padding, kernel, dtype, batch, bias None, ties...) are read from the
case's arguments by parameter name (`CaseFacts`) and from its label, never per exercise.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import torch

from grader.engine.compare import TOLERANCES, compare, is_tensor
from grader.engine.results import Diagnosis
from grader.engine.spec import Case
from grader.runner.probes import TENSOR_KEY, UNSUPPORTED_KEY

_PROBE_OPTIONS = ("grad", "device", "seed")  # probe keywords, not arguments of the student's code
_NCHW = ("batch", "channels", "height", "width")


# --- what a case's arguments say ----------------------------------------------------------------
@dataclass(frozen=True)
class CaseFacts:
    """A case's arguments by parameter name, in call order, and its label.

    Positional arguments take the reference's parameter names (`arg_names`); without them they are
    "argument 0", "argument 1"...; a module case's inputs are "input 0", "input 1"..., followed by
    the weights it loads, by state_dict key ("fc.bias").
    """

    values: dict[str, Any]
    label: str = ""

    @classmethod
    def of(cls, case: Case, arg_names: Sequence[str] = ()) -> CaseFacts:
        if case.probe == "module":
            values = {f"input {i}": v for i, v in enumerate(case.kwargs.get("inputs", ()))}
            values.update(case.kwargs.get("state_dict") or {})
            return cls(values, case.label)
        positional = case.args[1:] if case.probe == "call" else case.args
        values = {(arg_names[i] if i < len(arg_names) else f"argument {i}"): v for i, v in enumerate(positional)}
        values.update({k: v for k, v in case.kwargs.items() if k not in _PROBE_OPTIONS})
        return cls(values, case.label)

    def tensors(self) -> list[tuple[str, torch.Tensor]]:
        return [(k, v) for k, v in self.values.items() if isinstance(v, torch.Tensor)]

    @property
    def main(self) -> torch.Tensor | None:
        """The input: the first tensor argument."""
        return next((t for _, t in self.tensors()), None)

    def gradient_name(self, key: str) -> str:
        """The argument a probe's gradient key ("arg1", "input0", "param:fc.weight") belongs to."""
        if key.startswith("param:"):
            return f"parameter {key[6:]}"
        match = re.fullmatch(r"(arg|input)(\d+)", key)
        if match and match.group(1) == "input":
            return f"input {match.group(2)}"
        if match:
            names = list(self.values)
            i = int(match.group(2))
            return names[i] if i < len(names) else f"argument {i}"
        return key


def _named_tensors(facts: CaseFacts) -> list[tuple[str, torch.Tensor]]:
    """The tensor arguments whose names mean something to the student (not "argument 2")."""
    return [(k, v) for k, v in facts.tensors() if not k.startswith("argument ")]


@dataclass(frozen=True)
class Window:
    """A sliding window along one spatial dimension."""

    kernel: int
    stride: int
    padding: int = 0
    dilation: int = 1
    stride_given: bool = True  # False: stride=None, which means the kernel size (pooling)


def _pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    return None


def windows(facts: CaseFacts) -> tuple[Window, Window] | None:
    """The (height, width) windows of a sliding-window case: the kernel from `kernel_size` or from
    a 4-D `weight` (C, C, kH, kW), and `stride`, `padding`, `dilation` (defaults 1, 0, 1)."""
    v = facts.values
    kernel = _pair(v.get("kernel_size"))
    weight = v.get("weight")
    if kernel is None and isinstance(weight, torch.Tensor) and weight.dim() == 4:
        kernel = (int(weight.shape[2]), int(weight.shape[3]))
    if kernel is None:
        return None
    stride_given = v.get("stride", 1) is not None
    stride = _pair(v.get("stride", 1)) if stride_given else kernel
    padding, dilation = _pair(v.get("padding", 0)), _pair(v.get("dilation", 1))
    if stride is None or padding is None or dilation is None or min(*kernel, *stride, *dilation) < 1:
        return None
    return tuple(Window(kernel[i], stride[i], padding[i], dilation[i], stride_given) for i in (0, 1))  # type: ignore[return-value]


def _span(w: Window) -> int:
    return w.dilation * (w.kernel - 1) + 1


def conv_size(n: int, w: Window) -> int:
    """floor((n + 2p - d(k - 1) - 1) / s) + 1: a convolution's or pooling's output length."""
    return (n + 2 * w.padding - _span(w)) // w.stride + 1


def transposed_size(n: int, w: Window) -> int:
    """(n - 1) s - 2p + d(k - 1) + 1: a transposed convolution's output length."""
    return (n - 1) * w.stride - 2 * w.padding + _span(w)


@dataclass(frozen=True)
class _Variant:
    """A usual way an output length comes out wrong."""

    why: Callable[[Window], str]
    size: Callable[[int, Window], int]
    keeps_values: bool  # the right values stay, only cut or extended at the borders (checked against the values)


_CONV_VARIANTS = (
    _Variant(lambda w: "the division rounds up (ceil) where the formula rounds down (floor): a window that does not fit is dropped",
             lambda n, w: -(-(n + 2 * w.padding - _span(w)) // w.stride) + 1, True),
    _Variant(lambda w: f"the padding ({w.padding} on each side) is not applied", lambda n, w: conv_size(n, replace(w, padding=0)), True),
    _Variant(lambda w: f"the padding counts once (size + {w.padding}) where it pads both sides (size + 2 * {w.padding})",
             lambda n, w: (n + w.padding - _span(w)) // w.stride + 1, False),
    _Variant(lambda w: f"the padding ({w.padding}) is applied twice (padded by hand, then padded again)",
             lambda n, w: conv_size(n, replace(w, padding=2 * w.padding)), True),
    _Variant(lambda w: f"the stride is taken as the kernel size ({w.kernel}) where {w.stride} is given",
             lambda n, w: conv_size(n, replace(w, stride=w.kernel)) if w.stride_given else conv_size(n, w), False),
    _Variant(lambda w: (f"the stride ({w.stride}) is not applied" if w.stride_given else
                        f"stride=None is taken as 1, where it means the kernel size ({w.stride})"),
             lambda n, w: conv_size(n, replace(w, stride=1)), False),
    _Variant(lambda w: "the + 1 of floor((size + 2 * padding - kernel) / stride) + 1 is missing", lambda n, w: conv_size(n, w) - 1, True),
    _Variant(lambda w: f"the dilation ({w.dilation}) is not applied to the kernel's extent",
             lambda n, w: conv_size(n, replace(w, dilation=1)), False),
)
_TRANSPOSED_VARIANTS = (
    _Variant(lambda w: f"the padding is not cropped: a transposed convolution removes {w.padding} row(s)/column(s) from each "
                       "border of the full output", lambda n, w: transposed_size(n, replace(w, padding=0)), True),
    _Variant(lambda w: f"the padding ({w.padding}) is cropped from one side only",
             lambda n, w: (n - 1) * w.stride - w.padding + _span(w), True),
    _Variant(lambda w: f"the padding ({w.padding}) is added instead of cropped",
             lambda n, w: (n - 1) * w.stride + 2 * w.padding + _span(w), False),
    _Variant(lambda w: f"the stride ({w.stride}) is not applied", lambda n, w: transposed_size(n, replace(w, stride=1)), False),
    _Variant(lambda w: "the size uses n * stride where the formula has (n - 1) * stride",
             lambda n, w: n * w.stride - 2 * w.padding + _span(w), False),
)
_FAMILIES = ((conv_size, _CONV_VARIANTS), (transposed_size, _TRANSPOSED_VARIANTS))


def _size_causes(n: int, w: Window, expected: int, got: int, values_kept: bool | None = None) -> list[str]:
    """Why a length came out `got` instead of `expected` for input length `n` and window `w`.
    `values_kept`, when known, keeps only the causes that agree with the values: True when the
    expected values sit inside the result (or it inside them), False when they do not."""
    for formula, variants in _FAMILIES:
        if formula(n, w) == expected:
            return [v.why(w) for v in variants if v.size(n, w) == got and values_kept in (None, v.keeps_values)]
    return []


def _pair_causes(n: int, own: Window, other: Window, first: bool, expected: int, got: int) -> list[str]:
    """The other dimension's stride or padding used for this one: a (h, w) pair read as one value."""
    for formula, _ in _FAMILIES:
        if formula(n, own) != expected:
            continue
        for attrs in (("stride",), ("padding",), ("stride", "padding")):
            changed = {a: getattr(other, a) for a in attrs if getattr(own, a) != getattr(other, a)}
            if len(changed) == len(attrs) and formula(n, replace(own, **changed)) == got:
                which = "first" if first else "second"
                if len(attrs) == 1:
                    return [f"the {which} value of the {attrs[0]} pair is used for both dimensions (it is an (h, w) pair)"]
                return [f"the {which} values of the stride and padding pairs are used for both dimensions (each is an (h, w) pair)"]
        return []
    return []


# --- tolerances and small helpers ---------------------------------------------------------------
def _tolerance(dtype: torch.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    d_rtol, d_atol = TOLERANCES.get(dtype, (1e-5, 1e-8))
    return (d_rtol if rtol is None else rtol), (d_atol if atol is None else atol)


def _close(a: torch.Tensor, b: torch.Tensor, tol: tuple[float, float]) -> bool:
    """`a` equals `b` (`b` as the expected one) within `tol`; shapes must agree; all finite."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.equal(a, b)
    a, b = a.double(), b.double()
    if not (bool(a.isfinite().all()) and bool(b.isfinite().all())):
        return False
    return bool(((a - b).abs() <= tol[1] + tol[0] * b.abs()).all())


def _wrong(g: torch.Tensor, e: torch.Tensor, tol: tuple[float, float]) -> torch.Tensor:
    """The mask of elements outside the tolerance (as `compare` counts them)."""
    return (g - e).abs().nan_to_num(nan=float("inf")) > tol[1] + tol[0] * e.abs()


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _num(x: float) -> str:
    return f"{x:.4g}"


def _dim(d: int, ndim: int) -> str:
    return f"dimension {d} ({_NCHW[d]})" if ndim == 4 else f"dimension {d}"


def _are(values: Sequence[Any]) -> str:
    return "is" if len(values) == 1 else "are"


def _list(values: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


# --- the entry points ---------------------------------------------------------------------------
def diagnose(got: Any, expected: Any, facts: CaseFacts, *, rtol: float | None = None,
             atol: float | None = None) -> list[Diagnosis]:
    """Findings on one failed case; `got` and `expected` are sanitized results as `compare` takes
    them (a probe's {"out", "grads"} or any plain value). Empty when they match or when no pattern
    explains the difference."""
    if compare(got, expected, "result", rtol, atol) is None:
        return []
    if isinstance(expected, dict) and "out" in expected and not is_tensor(expected) and isinstance(got, dict) and "out" in got:
        if compare(got["out"], expected["out"], "output", rtol, atol) is not None:
            return _value(got["out"], expected["out"], facts, rtol, atol, "output")
        zeros = sum(int((t[TENSOR_KEY] == 0).sum()) for t in _tensor_leaves(expected["out"]))
        return _gradients(got.get("grads"), expected.get("grads"), facts, rtol, atol, zeros)
    return _value(got, expected, facts, rtol, atol, "result")


def _first_difference(got: Any, exp: Any, where: str, rtol: float | None, atol: float | None) -> tuple[Any, Any, str]:
    """The innermost pair of values where `got` first differs from `exp`, and its path."""
    if isinstance(exp, dict) and not is_tensor(exp) and UNSUPPORTED_KEY not in exp:
        if isinstance(got, dict) and not is_tensor(got) and set(got) == set(exp):
            for key in exp:
                if compare(got[key], exp[key], "", rtol, atol) is not None:
                    return _first_difference(got[key], exp[key], f"{where}[{key!r}]", rtol, atol)
    elif isinstance(exp, (tuple, list)) and isinstance(got, (tuple, list)) and len(got) == len(exp):
        for i, (g, e) in enumerate(zip(got, exp)):
            if compare(g, e, "", rtol, atol) is not None:
                return _first_difference(g, e, f"{where}[{i}]", rtol, atol)
    return got, exp, where


def _value(got: Any, exp: Any, facts: CaseFacts, rtol: float | None, atol: float | None, root: str,
           context: str = "output", output_zeros: int = 0) -> list[Diagnosis]:
    g, e, where = _first_difference(got, exp, root, rtol, atol)
    if is_tensor(g) and is_tensor(e):
        found = diagnose_tensor(g[TENSOR_KEY], e[TENSOR_KEY], facts, rtol=rtol, atol=atol, context=context,
                                output_zeros=output_zeros)
    else:
        found = _numbers(g, e, facts)
    if where != root:
        found = [Diagnosis(d.kind, f"{where}: {d.text}") for d in found]
    return found


def _tensor_leaves(value: Any) -> list[dict]:
    if is_tensor(value):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensor_leaves(v)]
    if isinstance(value, dict) and UNSUPPORTED_KEY not in value:
        return [t for v in value.values() for t in _tensor_leaves(v)]
    return []


def _gradients(got: Any, exp: Any, facts: CaseFacts, rtol: float | None, atol: float | None,
               output_zeros: int) -> list[Diagnosis]:
    """The output is right: say which gradients are wrong or missing, then what is wrong with the first."""
    if not isinstance(exp, dict):
        return []
    got = got if isinstance(got, dict) else {}
    right, missing, extra, wrong = [], [], [], []
    for key, e in exp.items():
        name, g = facts.gradient_name(key), got.get(key)
        if compare(g, e, "", rtol, atol) is None:
            right.append(name)
        elif g is None and is_tensor(e):
            missing.append(name)
        elif e is None:
            extra.append(name)
        else:
            wrong.append((name, g, e))
    found = []
    if missing:
        found.append(Diagnosis("gradients", (
            f"the output is right, but no gradient reaches {_join(missing)}: the result is cut from the graph "
            "(.detach(), .item(), .data, .numpy(), torch.no_grad(), or a new tensor filled with the values); "
            "build it with differentiable tensor operations")))
    if extra:
        found.append(Diagnosis("gradients", f"a gradient reaches {_join(extra)}, which the expected output does not depend on"))
    if wrong:
        names = [name for name, _, _ in wrong]
        text = f"the output is right, but the gradient w.r.t. {_join(names)} {'is' if len(names) == 1 else 'are'} wrong"
        if right:
            text += f" (w.r.t. {_join(right)} {'it is' if len(right) == 1 else 'they are'} right)"
        found.append(Diagnosis("gradients", text))
        name, g, e = wrong[0]
        found += [Diagnosis(d.kind, f"gradient w.r.t. {name}: {d.text}")
                  for d in _value(g, e, facts, rtol, atol, "gradient", context="gradient", output_zeros=output_zeros)]
    return found


# --- tensors ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pair:
    """A failed tensor comparison: got and expected (float64 copies when floating) and what the case says."""

    got: torch.Tensor
    exp: torch.Tensor
    facts: CaseFacts
    tol: tuple[float, float]
    context: str  # "output" or "gradient"
    dtype: torch.dtype  # the expected result's own dtype
    output_zeros: int = 0  # for a gradient: how many values of the (right) output are exactly 0


def diagnose_tensor(got: torch.Tensor, exp: torch.Tensor, facts: CaseFacts, *, rtol: float | None = None,
                    atol: float | None = None, context: str = "output", output_zeros: int = 0) -> list[Diagnosis]:
    """Findings on a tensor `got` that fails to match `exp` (`context` "gradient" for a gradient,
    with `output_zeros` the number of zeros in the output it is the gradient of)."""
    if got.is_complex() or exp.is_complex():
        return []
    tol = _tolerance(exp.dtype, rtol, atol)
    if tuple(got.shape) != tuple(exp.shape):
        if got.dim() != exp.dim():
            return _rank(tuple(got.shape), tuple(exp.shape)) or _reshaped(got, exp, tol)
        return _reshaped(got, exp, tol) or _index_sets(got, exp, facts) or _shape(got, exp, facts, tol)
    if got.dtype != exp.dtype:
        return _dtype_only(got, exp)
    if not exp.is_floating_point():
        return _index_sets(got, exp, facts)
    pair = _Pair(got.double(), exp.double(), facts, tol, context, exp.dtype, output_zeros)
    if exp.numel() == 1:  # a scalar (a loss): judged as a number
        return _non_finite(pair) or _real(float(got.reshape(-1)[0]), float(exp.reshape(-1)[0]), facts)
    for finder in (_non_finite, _all_zero, _input_returned, _permuted, _flipped, _reshaped_permutation, _reordered,
                   _lower_precision, _scale, _offset, _axis_term, _shift):
        found = finder(pair)
        if found:
            return found
    return _border(pair) + _slices(pair) + _overlap(pair)


# shape ------------------------------------------------------------------------------------------
def _shape(got: torch.Tensor, exp: torch.Tensor, facts: CaseFacts, tol: tuple[float, float]) -> list[Diagnosis]:
    gs, es = tuple(got.shape), tuple(exp.shape)
    ndim = len(es)
    causes: dict[int, list[str]] = {}
    swapped = ""
    placed = _placement(got, exp, tol)
    x, win = facts.main, windows(facts)
    if ndim == 4 and x is not None and x.dim() == 4 and win is not None:
        for i, d in enumerate((2, 3)):
            if gs[d] != es[d]:
                n = int(x.shape[d])
                causes[d] = _size_causes(n, win[i], es[d], gs[d], values_kept=bool(placed))
                if not placed:
                    causes[d] += _pair_causes(n, win[i], win[1 - i], i == 1, es[d], gs[d])
        nh, nw = int(x.shape[2]), int(x.shape[3])
        for formula, _ in _FAMILIES:
            if (formula(nh, win[0]), formula(nw, win[1])) == es[2:]:
                if (formula(nh, win[1]), formula(nw, win[0])) == gs[2:]:
                    swapped = "Both sizes are what the (h, w) pairs give when read as (w, h): height and width are swapped"
                break
    parts = []
    for d in range(ndim):
        if gs[d] == es[d]:
            continue
        text = f"{_dim(d, ndim)} is {gs[d]}, expected {es[d]} ({abs(gs[d] - es[d])} {'more' if gs[d] > es[d] else 'fewer'})"
        why = causes.get(d, []) + _axis_source(d, ndim, gs[d], es[d], facts)
        parts.append(text + (": " + "; or ".join(why) if why else ""))
    sentences = ["; ".join(parts)] + [f"{t[0].upper()}{t[1:]}" for t in (swapped, placed) if t]
    return [Diagnosis("shape", ". ".join(sentences))]


def _rank(gs: tuple[int, ...], es: tuple[int, ...]) -> list[Diagnosis]:
    for i in range(len(es)):
        if len(gs) + 1 == len(es) and es[i] == 1 and es[:i] + es[i + 1:] == gs:
            return [Diagnosis("shape", f"dimension {i} (of size 1) is missing: keep it (keepdim=True in the reduction, or unsqueeze({i}))")]
    for i in range(len(gs)):
        if len(es) + 1 == len(gs) and gs[i] == 1 and gs[:i] + gs[i + 1:] == es:
            return [Diagnosis("shape", f"an extra dimension of size 1 at position {i}: remove it (squeeze({i}), or reduce without keepdim)")]
    return []


def _axis_source(d: int, ndim: int, g: int, e: int, facts: CaseFacts) -> list[str]:
    """The output's channels (dimension 1 of a 4-D or 2-D output) are `g`, one of the first two axes
    of a weight of the same rank, where the other axis (`e`) was expected: the weight's axes are
    read in the wrong order. Only when each size names exactly one of the two axes."""
    if d != 1 or ndim not in (2, 4):
        return []
    for name, t in _named_tensors(facts)[1:]:
        if t.dim() != ndim:
            continue
        axes = range(2)
        from_g = [a for a in axes if t.shape[a] == g]
        from_e = [a for a in axes if t.shape[a] == e]
        if len(from_g) == 1 and len(from_e) == 1:
            return [(f"{g} is {name}.shape[{from_g[0]}] where {name}.shape[{from_e[0]}] = {e} is expected: are the axes of "
                     f"{name} {tuple(t.shape)} read in the wrong order?")]
    return []


def _placement(got: torch.Tensor, exp: torch.Tensor, tol: tuple[float, float]) -> str:
    """Where the expected values sit inside a larger result (or the result inside the expected one)."""
    if got.dim() != exp.dim() or not got.is_floating_point() or got.dtype != exp.dtype:
        return ""
    gs, es = tuple(got.shape), tuple(exp.shape)
    bigger = all(a >= b for a, b in zip(gs, es))
    smaller = all(a <= b for a, b in zip(gs, es))
    if not (bigger or smaller):
        return ""
    outer, inner = (got, exp) if bigger else (exp, got)
    ranges = [range(o - i + 1) for o, i in zip(outer.shape, inner.shape)]
    if any(len(r) > 8 for r in ranges):
        return ""
    for offsets in itertools.product(*ranges):
        window = outer[tuple(slice(o, o + n) for o, n in zip(offsets, inner.shape))]
        if _close(window, inner, tol) if bigger else _close(inner, window, tol):
            pieces = []
            for d, (o, big, small) in enumerate(zip(offsets, outer.shape, inner.shape)):
                if big != small:
                    pieces.append(_edges(d, got.dim(), o, big - small - o))
            return ("your values are the expected ones plus " if bigger else "your values are the expected ones without ") + _join(pieces)
    return ""


def _edges(d: int, ndim: int, before: int, after: int) -> str:
    if ndim >= 2 and d >= ndim - 2:
        unit, first, last = ("row", "top", "bottom") if d == ndim - 2 else ("column", "left", "right")
    else:
        unit, first, last = "entry", "start", "end"
        return _join([f"{n} {'entries' if n > 1 else unit} at the {side} of {_dim(d, ndim)}"
                      for n, side in ((before, first), (after, last)) if n])
    sides = [f"{n} {unit}{'s' if n > 1 else ''} at the {side}" for n, side in ((before, first), (after, last)) if n]
    return _join(sides)


def _reshaped(got: torch.Tensor, exp: torch.Tensor, tol: tuple[float, float]) -> list[Diagnosis]:
    """A different shape holding the same values: axes permuted, or merely reshaped."""
    if got.numel() != exp.numel() or got.numel() < 2 or got.dtype != exp.dtype:
        return []
    found = _permutation_of(got, exp, tol, same_shape=False)
    if found:
        return found
    if _close(got.reshape(-1), exp.reshape(-1), tol):
        return [Diagnosis("layout", f"the right values in the right order, but shaped {tuple(got.shape)} instead of "
                                    f"{tuple(exp.shape)}: reshape (or view) the result to {tuple(exp.shape)}")]
    return []


def _dtype_only(got: torch.Tensor, exp: torch.Tensor) -> list[Diagnosis]:
    if _integral(got) and exp.is_floating_point() and got.numel() and int(got.min()) >= 0:
        return [Diagnosis("structure", f"yours holds {str(got.dtype)[6:]} indices where {str(exp.dtype)[6:]} values are "
                                       "expected: the positions (argmax, .indices) instead of the values (max, .values)?")]
    tol = _tolerance(got.dtype, None, None)
    if got.is_floating_point() and exp.is_floating_point() and _close(got.double(), exp.double(), tol):
        g, e = str(got.dtype)[6:], str(exp.dtype)[6:]
        return [Diagnosis("arithmetic", f"the values are right to {g} precision, but the result is {g} where {e} is expected: "
                                        f"something along the way is {g} (a tensor made with another dtype, or a cast such as "
                                        ".float() or .double()); keep the expected dtype throughout")]
    return []


# layout -----------------------------------------------------------------------------------------
def _axes_names(order: Sequence[int], ndim: int) -> str:
    names = ("N", "C", "H", "W") if ndim == 4 else tuple(str(i) for i in range(ndim))
    return "(" + ", ".join(names[i] for i in order) + ")"


def _permutation_text(perm: tuple[int, ...], ndim: int) -> str:
    text = f"the right values with the axes permuted: yours = expected.permute{perm}"
    if ndim == 2:
        return text + ", the transpose (rows and columns swapped)"
    if ndim == 4:
        named = {(0, 1, 3, 2): "height and width swapped", (0, 2, 3, 1): "channels last",
                 (1, 0, 2, 3): "batch and channels swapped"}.get(perm, "")
        return text + f", the layout {_axes_names(perm, 4)} where (N, C, H, W) is expected" + (f" ({named})" if named else "")
    return text


def _permutation_of(got: torch.Tensor, exp: torch.Tensor, tol: tuple[float, float], *, same_shape: bool) -> list[Diagnosis]:
    ndim = exp.dim()
    if not 2 <= ndim <= 5:
        return []
    for perm in itertools.permutations(range(ndim)):
        if perm == tuple(range(ndim)):
            continue
        candidate = exp.permute(perm)
        if (tuple(candidate.shape) == tuple(exp.shape)) == same_shape and _close(got, candidate, tol):
            return [Diagnosis("layout", _permutation_text(perm, ndim))]
    return []


def _permuted(p: _Pair) -> list[Diagnosis]:
    return _permutation_of(p.got, p.exp, p.tol, same_shape=True)


def _flipped(p: _Pair) -> list[Diagnosis]:
    ndim = p.exp.dim()
    axes = [d for d in range(ndim) if p.exp.shape[d] > 1]
    options = [(d,) for d in axes] + ([tuple(axes[-2:])] if len(axes) >= 2 else [])
    for dims in options:
        if _close(p.got, p.exp.flip(dims), p.tol):
            where = _join([_dim(d, ndim) for d in dims])
            hint = " (upside down)" if ndim == 4 and dims == (2,) else " (mirrored)" if ndim == 4 and dims == (3,) else ""
            return [Diagnosis("layout", f"the right values flipped along {where}{hint}: yours = expected.flip({', '.join(map(str, dims))})")]
    return []


def _reshaped_permutation(p: _Pair) -> list[Diagnosis]:
    """Computed in another layout, then reshaped (view) where a permute was needed."""
    ndim = p.exp.dim()
    if not 2 <= ndim <= 4:
        return []
    for perm in itertools.permutations(range(ndim)):
        laid_out = p.exp.permute(perm)
        if tuple(laid_out.shape) != tuple(p.exp.shape) and _close(p.got, laid_out.reshape(p.exp.shape), p.tol):
            return [Diagnosis("layout", (
                f"the right values in the wrong order: yours is the expected result laid out as {_axes_names(perm, ndim)} "
                f"(shape {tuple(laid_out.shape)}) and then reshaped to {tuple(p.exp.shape)}; a view or reshape never "
                "moves values between axes: reorder the axes with permute (or transpose) first"))]
    return []


def _slice_unit(axis: int, ndim: int) -> str:
    if ndim == 4 and axis == 1:
        return "channels"
    if axis == 0:
        return "rows" if ndim == 2 else "batch items"
    return f"indices along dimension {axis}"


def _runs(mapping: list[int]) -> list[tuple[int, int, int]]:
    """(start, stop, expected start) of the stretches where yours[i] = expected[mapping[i]] consecutively."""
    runs = [[0, 1, mapping[0]]]
    for i in range(1, len(mapping)):
        if mapping[i] == mapping[i - 1] + 1:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, mapping[i]])
    return [tuple(r) for r in runs]  # type: ignore[misc]


def _matching(mine: torch.Tensor, theirs: torch.Tensor, tol: tuple[float, float]) -> list[int] | None:
    """For each row of `mine`, a distinct row of `theirs` that it equals within `tol` (None if any has none).
    Rows are compared by a random projection first, so this costs n log n, not n squared."""
    key = torch.randn(theirs.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    keys = theirs @ key
    order = torch.argsort(keys)
    sorted_keys = keys[order].contiguous()
    slack = float((tol[1] + tol[0] * theirs.abs().max()) * key.abs().sum())  # |key . (a - b)| when a and b match
    lows = torch.searchsorted(sorted_keys, (mine @ key - slack).contiguous())
    used: set[int] = set()
    mapping = []
    for i, k in enumerate((mine @ key).tolist()):
        c, match = int(lows[i]), None
        following = mapping[-1] + 1 if mapping else 0  # equal rows (dead channels) keep a stretch going
        if following < len(order) and following not in used and _close(mine[i], theirs[following], tol):
            match, c = following, len(order)
        while c < len(order) and float(sorted_keys[c]) <= k + slack:
            j = int(order[c])
            if j not in used and _close(mine[i], theirs[j], tol):
                match = j
                break
            c += 1
        if match is None:
            return None
        used.add(match)
        mapping.append(match)
    return mapping


def _reordered(p: _Pair) -> list[Diagnosis]:
    """The right slices along one axis (channels, rows, batch items) in another order."""
    e, g, ndim = p.exp, p.got, p.exp.dim()
    for axis in range(ndim):
        n = e.shape[axis]
        if not 2 <= n <= 4096 or e.numel() == 0:
            continue
        mapping = _matching(g.movedim(axis, 0).reshape(n, -1), e.movedim(axis, 0).reshape(n, -1), p.tol)
        if mapping is None or mapping == list(range(n)):
            continue
        runs = _runs(mapping)
        if len(runs) <= 4:
            pieces = [f"yours {a}-{b - 1} are the expected {j}-{j + b - a - 1}" if b - a > 1 else f"yours {a} is the expected {j}"
                      for a, b, j in runs]
            where = ": " + "; ".join(pieces)
        else:
            where = f" ({len(runs)} stretches)"
        return [Diagnosis("layout", f"the right {_slice_unit(axis, ndim)} in another order{where}: put them in the contract's "
                                    "order (the order of a torch.cat, or of nested loops)")]
    return []


# arithmetic -------------------------------------------------------------------------------------
def _lower_precision(p: _Pair) -> list[Diagnosis]:
    """A float64 result that is only float32-close to the expected one."""
    scale = float(p.exp.abs().max()) if p.exp.numel() else 0.0
    if p.dtype != torch.float64 or scale == 0 or not bool(p.got.isfinite().all()):
        return []
    worst = float((p.got - p.exp).abs().max()) / scale  # relative to the result's size: cancellation makes elementwise errors noisy
    if not 1e-10 <= worst <= 1e-5:
        return []
    if torch.equal(p.got, p.got.float().double()) and not torch.equal(p.exp, p.exp.float().double()):
        origin = ("every value of yours is exactly a float32 number: computed in float32 and cast back to float64? "
                  "Keep the input's dtype throughout (tensors made with dtype=x.dtype, no .float())")
    else:
        origin = ("about float32's precision, where float64 keeps ~1e-16: part of it computed in float32 "
                  "(a tensor made without dtype=, a .float())?")
    return [Diagnosis("arithmetic", f"the relative error is ~{worst:.0e}: {origin}")]


def _counts(facts: CaseFacts) -> dict[str, int]:
    """Counts a result may be divided by, by name: the window's size, the batch, the input's elements."""
    out: dict[str, int] = {}
    win = windows(facts)
    if win is not None:
        kh, kw = win[0].kernel, win[1].kernel
        out.update({"kH*kW": kh * kw, "kH*kH": kh * kh, "kW*kW": kw * kw, "kH": kh, "kW": kw})
    x = facts.main
    if x is not None and x.dim() >= 1:
        out.update({"the batch size": int(x.shape[0]), "the number of elements": int(x.numel())})
    return out




def _named(k: int, counts: dict[str, int]) -> str:
    """"kH*kW = 6" when exactly one count is `k` (and `k` > 2: 2 matches too much by chance), else the number."""
    names = [n for n, v in counts.items() if v == k]
    return f"{names[0]} = {k}" if len(names) == 1 and k > 2 else str(k)


def _scale_text(c: float, facts: CaseFacts, context: str, scalar: bool = False) -> str:
    """yours = c * expected, for a person: the factor as a fraction when it is one, and its usual cause."""
    frac = Fraction(c).limit_denominator(64)
    simple = abs(float(frac) - c) <= 1e-6 * abs(c) and abs(frac.numerator) <= 256
    counts = _counts(facts)
    every, one = ("yours", "the expected value") if scalar else ("every value", "the expected one")
    if simple and frac == -1:
        return (f"{every} has the right size but the wrong sign (yours = -expected): a minus sign too many or too few"
                + (" (ascending where the loss should be minimised?)" if context == "gradient" else ""))
    if c < 0:
        return f"{every} is {_num(c)} times {one}: the sign is flipped and the size is off by a factor {_num(-c)}"
    if simple and frac.denominator == 1:
        k = frac.numerator
        return (f"{every} is {k} times {one}: a sum where the mean over {_named(k, counts)} was needed, "
                f"a term counted {k} times, or a factor 1/{k} missing?")
    if simple and frac.numerator == 1:
        k = frac.denominator
        return f"{every} is 1/{k} of {one}: divided by {_named(k, counts)} once too often (a mean where a sum was needed?)"
    if simple:
        means = ("kH*kW",) if "kH*kW" in counts else ("the batch size", "the number of elements")  # what a mean divides by
        pairs = {(counts[r], w) for r in means if r in counts for w in counts.values()
                 if w != counts[r] and Fraction(counts[r], w) == frac}
        cause = ": a sum divided by the wrong count?"
        if len(pairs) == 1:
            right, wrong = pairs.pop()
            cause = f": divided by {_named(wrong, counts)} instead of {_named(right, counts)}?"
        return f"{every} is {frac.numerator}/{frac.denominator} of {one} ({_num(c)}x){cause}"
    return f"{every} is {_num(c)} times {one}: a constant factor is wrong"


def _scale(p: _Pair) -> list[Diagnosis]:
    g, e = p.got, p.exp
    denom = float((e * e).sum())
    if denom == 0 or not bool(g.isfinite().all()) or not bool(e.isfinite().all()):
        return []
    c = float((g * e).sum()) / denom
    if abs(c - 1) <= 1e-5 or c == 0 or not _close(g, c * e, (p.tol[0] * 4, p.tol[1] * 4)):
        return []
    frac = Fraction(c).limit_denominator(64)
    simple = abs(float(frac) - c) <= 1e-6 * abs(c)
    if not simple and int((e != 0).sum()) < 4:  # an arbitrary factor proves nothing on a handful of values
        return []
    return [Diagnosis("arithmetic", _scale_text(c, p.facts, p.context))]


def _offset(p: _Pair) -> list[Diagnosis]:
    r = p.got - p.exp
    if r.numel() < 2 or not bool(r.isfinite().all()):
        return []
    d = float(r.mean())
    if not _close(p.got, p.exp + d, p.tol) or abs(d) <= p.tol[1]:
        return []
    named = [k for k, v in _scalars(p.facts) if v != 0 and abs(abs(d) - abs(v)) <= max(1e-6 * abs(v), p.tol[1])]
    what = f" ({_join(named)} = {_num(abs(d))})" if named else ""
    return [Diagnosis("arithmetic", f"every value is off by the same {d:+.4g}{what} (yours = expected {'+' if d > 0 else '-'} "
                                    f"{_num(abs(d))}): a constant term is added or missing")]


def _scalars(facts: CaseFacts) -> list[tuple[str, float]]:
    """The case's number arguments, and its one-element float tensors, by name."""
    out = []
    for name, v in facts.values.items():
        if name.startswith("argument "):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((name, float(v)))
        elif isinstance(v, torch.Tensor) and v.numel() == 1 and v.is_floating_point():
            out.append((name, float(v.reshape(-1)[0])))
    return out


def _along(v: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def _axis_term(p: _Pair) -> list[Diagnosis]:
    """yours - expected depends on one axis only: a per-channel term (a bias) missing, doubled or misplaced."""
    g, e = p.got, p.exp
    r = g - e
    ndim = e.dim()
    if ndim < 2 or not bool(r.isfinite().all()):
        return []
    vectors = [(k, t.double()) for k, t in _named_tensors(p.facts) if t.dim() == 1 and t.is_floating_point() and t.numel() > 1]
    for name, b in vectors:  # on the wrong axis: yours = expected - b[a1] + b[a2]
        axes = [a for a in range(ndim) if e.shape[a] == b.numel()]
        for a1, a2 in itertools.permutations(axes, 2):
            if _close(g, e - _along(b, a1, ndim) + _along(b, a2, ndim), p.tol):
                return [Diagnosis("arithmetic", f"{name} is added along {_dim(a2, ndim)} instead of {_dim(a1, ndim)}: "
                                                f"shape it to broadcast along {_dim(a1, ndim)}"
                                                + (" (bias.view(1, -1, 1, 1))" if ndim == 4 and a1 == 1 else ""))]
    for axis in range(ndim):
        if e.shape[axis] < 2:
            continue
        others = [d for d in range(ndim) if d != axis]
        term = r.mean(dim=others, keepdim=True)
        flat = term.reshape(-1)
        if float(flat.max() - flat.min()) <= p.tol[1] or not _close(g, e + term, p.tol):
            continue
        for name, b in vectors:
            if b.numel() == flat.numel() and _close(flat, -b, p.tol):
                return [Diagnosis("arithmetic", f"{name} is missing: yours = expected - {name} along {_dim(axis, ndim)}")]
            if b.numel() == flat.numel() and _close(flat, b, p.tol):
                return [Diagnosis("arithmetic", f"{name} is added twice: yours = expected + {name} along {_dim(axis, ndim)}")]
        return [Diagnosis("arithmetic", f"yours - expected depends only on the index along {_dim(axis, ndim)}: a term per "
                                        f"index of that dimension (like a bias) is missing, extra or wrong")]
    return []


# location ---------------------------------------------------------------------------------------
def _shift(p: _Pair) -> list[Diagnosis]:
    """got[..., i, j] = expected[..., i + dy, j + dx] wherever both exist."""
    g, e = p.got, p.exp
    if e.dim() < 3 or e.shape[-2] < 3 or e.shape[-1] < 3:  # images: (N, H, W) or (N, C, H, W)
        return []
    h, w = e.shape[-2], e.shape[-1]
    for dy, dx in sorted(itertools.product(range(-3, 4), repeat=2), key=lambda s: (abs(s[0]) + abs(s[1]), s)):
        if (dy, dx) == (0, 0) or h - abs(dy) < 2 or w - abs(dx) < 2 or (h - abs(dy)) * (w - abs(dx)) * 4 < h * w:
            continue
        rows, cols = slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx))
        moved_rows, moved_cols = slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx))
        mine, theirs = g[..., rows, cols], e[..., moved_rows, moved_cols]
        if float(theirs.max() - theirs.min()) > p.tol[1] and _close(mine, theirs, p.tol) and not _close(mine, e[..., rows, cols], p.tol):
            moves = [f"{abs(n)} {unit}{'s' if abs(n) > 1 else ''} {dirs[n > 0]}"
                     for n, unit, dirs in ((dy, "row", ("down", "up")), (dx, "column", ("right", "left"))) if n]
            return [Diagnosis("location", (
                f"the values are right but shifted: yours[..., i, j] = expected[..., i {'+' if dy >= 0 else '-'} {abs(dy)}, "
                f"j {'+' if dx >= 0 else '-'} {abs(dx)}] wherever both exist (the expected picture moved {_join(moves)}): "
                "everything is taken from an offset start (padding on one side only, or a start index off by one?)"))]
    return []


def _border(p: _Pair) -> list[Diagnosis]:
    g, e = p.got, p.exp
    if e.dim() < 3:  # images only
        return []
    wrong = _wrong(g, e, p.tol)
    wrong2d = wrong.reshape(-1, *e.shape[-2:]).any(dim=0)
    h, w = wrong2d.shape
    for band in (1, 2, 3):
        if h <= 2 * band + 1 or w <= 2 * band + 1:
            break
        if bool(wrong2d[band:h - band, band:w - band].any()):
            continue
        sides = []
        for side, mask in (("top", wrong2d[:band]), ("bottom", wrong2d[h - band:].flip(0)),
                           ("left", wrong2d[:, :band].T), ("right", wrong2d[:, w - band:].flip(1).T)):
            depth = max((i + 1 for i in range(band) if bool(mask[i].any())), default=0)
            if depth:
                unit = "row" if side in ("top", "bottom") else "column"
                sides.append(f"the {side} {depth} {unit}{'s' if depth > 1 else ''}")
        padding = " (is the padding zeros, on every side?)" if _padded(p.facts) else ""
        return [Diagnosis("location", f"only the border is wrong ({_join(sides)}); everything inside is right: "
                                      f"the windows that reach past the edge are handled wrongly{padding}")]
    return []


def _padded(facts: CaseFacts) -> bool:
    pad = _pair(facts.values.get("padding", 0))
    return pad is not None and max(pad) > 0


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "0-2 and 5" (at most 6 stretches shown)."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    shown = [f"{a}-{b}" if b > a else str(a) for a, b in runs[:6]]
    return _join(shown + (["..."] if len(runs) > 6 else []))


def _slices(p: _Pair) -> list[Diagnosis]:
    """Only some rows (a matrix), batch items or channels (images) are wrong; the others are right."""
    e = p.exp
    ndim = e.dim()
    if ndim < 2:
        return []
    wrong = _wrong(p.got, e, p.tol)
    axes = [(0, "row")] if ndim == 2 else [(0, "batch item")] + ([(1, "channel")] if ndim == 4 else [])
    found = []
    for axis, unit in axes:
        size = e.shape[axis]
        others = [d for d in range(ndim) if d != axis]
        per_index = wrong.float().mean(dim=others)
        bad = [i for i in range(size) if per_index[i] > 0]
        if size < 2 or not bad or len(bad) == size or float(per_index[bad].min()) < 0.25:
            continue
        good = [i for i in range(size) if i not in bad]
        hint = ": does each sample use its own input (no x[0], nothing summed across the batch)?" if unit == "batch item" else ""
        found.append(Diagnosis("location", f"only {unit}{'s' if len(bad) > 1 else ''} {_ranges(bad)} of {size} {_are(bad)} "
                                           f"wrong; {_ranges(good)} {_are(good)} right{hint}"))
    return found


def _coverage(m: int, n: int, w: Window) -> list[int]:
    """How many of `n` windows cover each of `m` positions."""
    counts = [0] * m
    for j in range(n):
        for k in range(w.kernel):
            pos = j * w.stride - w.padding + k * w.dilation
            if 0 <= pos < m:
                counts[pos] += 1
    return counts


def _overlap(p: _Pair) -> list[Diagnosis]:
    """Wrong only where windows overlap (input-shaped gradients, transposed-convolution outputs), or
    only where no window reaches."""
    x, win = p.facts.main, windows(p.facts)
    if x is None or x.dim() != 4 or win is None or p.exp.dim() != 4:
        return []
    cover = []
    for i, d in enumerate((2, 3)):
        m, n_x = int(p.exp.shape[d]), int(x.shape[d])
        if m == n_x and p.context == "gradient":
            cover.append(torch.tensor(_coverage(m, conv_size(n_x, win[i]), win[i])))
        elif m == transposed_size(n_x, win[i]) and m != n_x:
            cover.append(torch.tensor(_coverage(m, n_x, win[i])))
        else:
            return []
    count = cover[0][:, None] * cover[1][None, :]  # (H, W)
    wrong2d = _wrong(p.got, p.exp, p.tol).reshape(-1, *p.exp.shape[-2:]).any(dim=0)
    if int(wrong2d.sum()) < 2:
        return []
    overlapping, uncovered = count > 1, count == 0
    if not bool((wrong2d & ~overlapping).any()) and int((~overlapping).sum()) >= 4:
        s, k = (win[0].stride, win[1].stride), (win[0].kernel, win[1].kernel)
        return [Diagnosis("location", f"wrong only where windows overlap (stride {s} < kernel {k}: positions covered by more "
                                      "than one window); everything else is right: the contributions of overlapping windows must "
                                      "add up (+=), not overwrite one another")]
    if not bool((wrong2d & ~uncovered).any()):
        return [Diagnosis("location", "wrong only at positions no window covers (the remainder that floor mode drops): "
                                      "nothing reaches them, so their gradient is 0")]
    return []


# structure --------------------------------------------------------------------------------------
def _non_finite(p: _Pair) -> list[Diagnosis]:
    g, e = p.got, p.exp
    found = []
    for label, bad in (("NaN", torch.isnan), ("infinite", torch.isinf)):
        extra = bad(g) & ~bad(e)
        if not bool(extra.any()):
            continue
        first = int(extra.reshape(-1).nonzero()[0])
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(first), tuple(e.shape))) if e.dim() else ()
        text = f"{int(extra.sum())} {label} value(s) where the expected values are finite, the first at {index}"
        if p.context == "gradient":
            text = f"the forward values are finite, but the backward pass makes {text}"
        causes = []
        if bool((e[extra] == 0).all()):
            causes.append("exactly where the expected value is 0: a 0/0, or a square root or a norm differentiated at 0? "
                          "(handle 0 separately, or clamp before dividing)")
        elif p.context == "gradient" and p.output_zeros:
            causes.append(f"the output has {p.output_zeros} value(s) exactly 0, where a square root or a norm has an infinite "
                          "derivative: handle 0 separately (torch.where on a clamped input) so that its gradient is 0")
        big = max((float(t.abs().max()) for _, t in p.facts.tensors() if t.is_floating_point() and t.numel()), default=0.0)
        if big >= 1e3:
            causes.append(f"the inputs hold values as large as {big:.0e}: an overflow (exp of a large value, or log of a "
                          "sigmoid that rounds to 0 or 1)? Use a numerically stable form (logsigmoid, softplus, logsumexp, BCE with logits)")
        if causes or p.context == "gradient":
            found.append(Diagnosis("structure", text + (": " + "; ".join(causes) if causes else "")))
        return found
    return []


def _all_zero(p: _Pair) -> list[Diagnosis]:
    if bool((p.got == 0).all()) and not bool((p.exp == 0).all()):
        if p.context == "gradient":
            return [Diagnosis("structure", "every value is 0: the output does not depend on this input through differentiable "
                                           "operations (an argmax, a comparison, round, or values copied into a new tensor)")]
        return [Diagnosis("structure", "every value is 0: is the result ever written (a fresh zeros tensor returned, or "
                                       "everything multiplied by 0)?")]
    return []


def _input_returned(p: _Pair) -> list[Diagnosis]:
    for name, t in _named_tensors(p.facts):
        if t.is_floating_point() and tuple(t.shape) == tuple(p.exp.shape) and _close(p.got, t.double(), p.tol) \
                and not _close(p.exp, t.double(), p.tol):
            return [Diagnosis("structure", f"the result is the input {name}, unchanged: nothing is applied to it")]
    return []


def _integral(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def _scores_for(exp: torch.Tensor, facts: CaseFacts) -> tuple[str, torch.Tensor] | None:
    """A 1-D float argument by which the expected indices are in decreasing order."""
    if exp.numel() == 0:
        return None
    top = int(exp.max())
    for name, t in facts.tensors():
        if t.dim() == 1 and t.is_floating_point() and t.numel() > top and int(exp.min()) >= 0:
            s = t[exp]
            if bool((s[:-1] >= s[1:]).all()):
                return name, t
    return None


def _index_sets(got: torch.Tensor, exp: torch.Tensor, facts: CaseFacts) -> list[Diagnosis]:
    """Integer vectors (indices, labels): the right elements in the wrong order, or extra and missing ones."""
    if got.dim() != 1 or exp.dim() != 1 or not (_integral(got) and _integral(exp)):
        return []
    g, e = [int(v) for v in got.tolist()], [int(v) for v in exp.tolist()]
    if len(set(e)) != len(e):  # labels or counts, not a list of indices: no set to speak of
        return []
    scores = _scores_for(exp, facts)
    if sorted(g) == sorted(e):
        if g == sorted(g):
            order = f" where they must be by decreasing {scores[0]}" if scores else ""
            return [Diagnosis("structure", f"the right elements, but sorted in increasing order{order}")]
        if g == e[::-1]:
            return [Diagnosis("structure", "the right elements in reverse order" + (f" (increasing {scores[0]}?)" if scores else ""))]
        if scores is not None and torch.equal(scores[1][got], scores[1][exp]):
            return [Diagnosis("structure", f"the right elements, by decreasing {scores[0]}, but equal {scores[0]} are in another "
                                           "order: ties keep the lower index first (a stable sort: torch.sort(..., stable=True))")]
        first = next(i for i, (a, b) in enumerate(zip(g, e)) if a != b)
        return [Diagnosis("structure", f"the right elements in another order: the first difference is at position {first} "
                                       f"(got {g[first]}, expected {e[first]})")]
    repeated = sorted({v for v in g if g.count(v) > 1})
    if repeated:
        return [Diagnosis("structure", f"{_list(repeated)} appear{'s' if len(repeated) == 1 else ''} more than once in yours")]
    if len(g) < len(e) and g == e[:len(g)]:
        return [Diagnosis("structure", f"yours is the first {len(g)} of the expected {len(e)}, and the rest is missing "
                                       "(too much suppressed, a cap on the number kept, or a loop that stops early?)")]
    if len(g) > len(e) and g[:len(e)] == e:
        return [Diagnosis("structure", f"the expected {len(e)} come first, then {len(g) - len(e)} more: "
                                       f"{_list(g[len(e):])} should not be there (too little suppressed?)")]
    extra = [v for v in g if v not in e]
    missing = [v for v in e if v not in g]
    parts = ([f"{_list(extra)} in yours {_are(extra)} not expected"] if extra else []) + ([f"{_list(missing)} {_are(missing)} missing"] if missing else [])
    if not parts:
        return []
    count = f"{len(g)} elements where {len(e)} are expected: " if len(g) != len(e) else ""
    return [Diagnosis("structure", count + _join(parts))]


# --- numbers ------------------------------------------------------------------------------------
def _numbers(got: Any, exp: Any, facts: CaseFacts) -> list[Diagnosis]:
    if isinstance(exp, bool) or isinstance(got, bool):
        return []
    if isinstance(exp, (int, float)) and is_tensor(got):
        t = got[TENSOR_KEY]
        if t.numel() == 1 and not t.is_complex() and abs(float(t.reshape(-1)[0]) - exp) <= 1e-6 * max(1.0, abs(exp)):
            kind = "int(...)" if isinstance(exp, int) else "float(...)"
            return [Diagnosis("structure", f"the right value, but as a tensor of shape {tuple(t.shape)}: return a Python number "
                                           f"({kind} or .item())")]
        return []
    if isinstance(exp, int) and isinstance(got, float) and got == exp:
        return [Diagnosis("structure", f"the right value as a float ({got!r}): return an int (// divides integers)")]
    if isinstance(exp, int) and isinstance(got, int):
        return _integer(got, exp, facts)
    if isinstance(exp, float) and isinstance(got, (int, float)):
        return _real(float(got), exp, facts)
    return []


def _integer(got: int, exp: int, facts: CaseFacts) -> list[Diagnosis]:
    v = facts.values
    size, kernel = v.get("size"), v.get("kernel_size")
    if isinstance(size, int) and isinstance(kernel, int):
        params = [v.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))]
        if all(isinstance(x, int) and not isinstance(x, bool) for x in params) and params[0] >= 1 and params[2] >= 1:
            causes = _size_causes(size, Window(kernel, params[0], params[1], params[2]), exp, got)
            if causes:
                return [Diagnosis("arithmetic", f"{got} is what you get when {'; or when '.join(causes)}")]
    if abs(got - exp) == 1:
        return [Diagnosis("arithmetic", f"off by one: {got} is one {'more' if got > exp else 'less'} than {exp}")]
    return []


def _real(got: float, exp: float, facts: CaseFacts) -> list[Diagnosis]:
    if exp == 0 or not math.isfinite(exp) or not math.isfinite(got):
        return []
    c = got / exp
    frac = Fraction(c).limit_denominator(16)
    if c != 0 and abs(float(frac) - c) <= 1e-9 * abs(c) and frac != 1 and abs(frac.numerator) <= 64:
        return [Diagnosis("arithmetic", _scale_text(float(frac), facts, "output", scalar=True))]
    d = got - exp
    for name, value in _scalars(facts):
        if value != 0 and abs(abs(d) - abs(value)) <= 1e-9 * abs(value):
            return [Diagnosis("arithmetic", f"off by {d:+.6g}, exactly {'' if d * value > 0 else 'minus '}{name}: "
                                            f"{name} is {'added' if d > 0 else 'subtracted'} once too often")]
    rel = abs(d) / abs(exp)
    if 1e-10 <= rel <= 1e-5 and any(t.dtype == torch.float64 for _, t in facts.tensors()):
        return [Diagnosis("arithmetic", f"the relative error is ~{rel:.0e}, about float32's precision, where the inputs are float64: "
                                        "part of it computed in float32?")]
    return []


# --- across cases -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Feature:
    """A yes/no property of a case, with how to name each side and what to ask when it separates."""

    on: str
    off: str
    test: Callable[[CaseFacts], bool | None]  # None: not defined for this case
    hint_on: str = ""  # asked when the failing cases are the ones where it holds
    hint_off: str = ""
    both_ways: bool = True  # False: worth saying only when the failing cases are those where it holds


def _value_of(name: str, check: Callable[[Any], bool | None]) -> Callable[[CaseFacts], bool | None]:
    return lambda f: check(f.values[name]) if name in f.values else None


def _pair_test(test: Callable[[tuple[int, int]], bool]) -> Callable[[Any], bool | None]:
    return lambda v: None if _pair(v) is None else test(_pair(v))  # type: ignore[arg-type]


def _kernel_square(f: CaseFacts) -> bool | None:
    win = windows(f)
    return None if win is None else win[0].kernel != win[1].kernel


def _main_test(test: Callable[[torch.Tensor], bool | None]) -> Callable[[CaseFacts], bool | None]:
    return lambda f: None if f.main is None else test(f.main)


def _label(pattern: str) -> Callable[[CaseFacts], bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda f: bool(regex.search(f.label))


def _extreme(f: CaseFacts) -> bool:
    """Values as large as 1e4: the inputs that test overflow (coordinates reach 1e3 on their own)."""
    return max((float(t.abs().max()) for _, t in f.tensors() if t.is_floating_point() and t.numel()), default=0.0) >= 1e4


_FEATURES = (
    _Feature("bias=None", "a bias", _value_of("bias", lambda v: v is None),
             "is bias=None handled (nothing added)?", "is the bias added once, to its own output channel (bias.view(1, -1, 1, 1))?"),
    _Feature("stride=None", "an explicit stride", _value_of("stride", lambda v: v is None),
             "stride=None means stride = kernel_size"),
    _Feature("stride > 1", "stride 1", _value_of("stride", _pair_test(lambda s: max(s) > 1)),
             "is the stride applied (window i starts at i * stride, and the output size divides by it)?"),
    _Feature("padding > 0", "no padding", _value_of("padding", _pair_test(lambda s: max(s) > 0)),
             "is the padding applied, with zeros, on every side?"),
    _Feature("a non-square kernel", "a square kernel", _kernel_square,
             "is each of kH and kW used where it belongs (kH for rows, kW for columns)?"),
    _Feature("a (h, w) stride pair with h != w", "the same stride along h and w", _value_of("stride", _pair_test(lambda s: s[0] != s[1])),
             "are both values of the pair used, rows first?"),
    _Feature("a (h, w) padding pair with h != w", "the same padding along h and w", _value_of("padding", _pair_test(lambda s: s[0] != s[1])),
             "are both values of the pair used, rows first?"),
    _Feature("a value exactly at the threshold", "no value exactly at the threshold",
             _label(r"exactly [^;:]*threshold|= the threshold|at the threshold"),
             "is the comparison strict or not as the contract says (> against >=, < against <=)?", both_ways=False),
    _Feature("ties (equal scores or distances)", "no ties", _label(r"\bties?\b|equal scores|same score|equidistant|scores from"),
             "ties go to the lower index: a stable sort (torch.sort(..., stable=True)), or a strict comparison that keeps the first", both_ways=False),
    _Feature("empty inputs", "non-empty inputs", lambda f: any(t.numel() == 0 for _, t in f.tensors()) if f.tensors() else None,
             "is the empty case handled up front, with the right shape and dtype?", both_ways=False),
    _Feature("zero areas or distances", "no zero area or distance", _label(r"zero-area|zero distances?|distance 0|d = 0"),
             "a division by a zero area or norm, or a square root differentiated at 0?", both_ways=False),
    _Feature("inputs as large as 1e4", "moderate inputs", lambda f: _extreme(f) if f.tensors() else None,
             "an overflow: use a numerically stable form (logsigmoid, softplus, logsumexp, BCE with logits) instead of exp or log(sigmoid)", both_ways=False),
    _Feature("negative values", "no negative values", _label(r"negative"), "are negative values handled (no offsets or logs that assume >= 0)?", both_ways=False),
    _Feature("float64 inputs", "float32 inputs", _main_test(lambda t: t.dtype == torch.float64 if t.is_floating_point() else None),
             "does anything along the way fall back to float32 (a tensor made without dtype=, a .float(), a float32 constant)?"),
    _Feature("a batch of more than one", "a batch of one", _main_test(lambda t: t.shape[0] > 1 if t.dim() >= 3 else None),
             "does each sample use its own input (no x[0], nothing summed across the batch)?"),
    _Feature("more than one channel", "one channel", _main_test(lambda t: t.shape[1] > 1 if t.dim() == 4 else None),
             "does each channel keep to itself (nothing mixed across dimension 1)?"),
    _Feature("a non-square input", "a square input", _main_test(lambda t: t.shape[2] != t.shape[3] if t.dim() == 4 else None),
             "are height and width swapped somewhere (H is dimension 2, W dimension 3)?"),
)


def across_cases(outcomes: Sequence[tuple[CaseFacts, bool]]) -> list[Diagnosis]:
    """Which case parameters separate the passing cases (True) from the failing ones (False)."""
    passed = [f for f, ok in outcomes if ok]
    failed = [f for f, ok in outcomes if not ok]
    if not passed or len(failed) < 2:  # one failing case differs from the others in too many ways to tell
        return []
    separating: list[tuple[_Feature, bool]] = []
    for feature in _FEATURES:
        on_failed = {feature.test(f) for f in failed}
        on_passed = {feature.test(f) for f in passed}
        if len(on_failed) == 1 and len(on_passed) == 1 and None not in on_failed | on_passed and on_failed != on_passed:
            on = on_failed.pop()
            if on or feature.both_ways:
                separating.append((feature, on))
    if not separating:
        return []
    failing = _join([f.on if on else f.off for f, on in separating])
    passing = _join([f.off if on else f.on for f, on in separating])
    text = f"passes every case with {passing} ({len(passed)}) and fails every case with {failing} ({len(failed)})"
    hints = [h for f, on in separating if (h := f.hint_on if on else f.hint_off)][:3]
    if len(separating) > 1:
        text += " (the cases cannot tell which of these matters)"
    if hints:
        text += ": " + " Or: ".join(hints)
    return [Diagnosis("across_cases", text)]
