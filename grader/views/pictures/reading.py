"""Reading the probes' results without torch: tensors as numpy arrays, values found by path,
tolerances, which elements are wrong, and the short descriptions and numbers the pictures print.

Values arrive as the engine's sanitized results ({"__tensor__": tensor}) or as a case's own
arguments (tensors), and are read through their `.numpy()`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.engine.spec import DTYPE_TOLERANCES

TENSOR_KEY = "__tensor__"  # = grader.runner.probes.TENSOR_KEY (not imported: the runner imports torch)


class Array:
    """A value read as a numpy array, with its dtype's name ("float32", "int64", "bool"...)."""

    def __init__(self, data: np.ndarray, dtype: str):
        self.data, self.dtype = data, dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_float(self) -> bool:
        return self.data.dtype.kind == "f"


def as_array(value: Any) -> Array | None:
    """`value` (a sanitized or raw tensor, a numpy array, a number or a list of numbers) as an
    `Array`, floats in float64 and integers in int64; None for anything else."""
    if isinstance(value, dict) and TENSOR_KEY in value:
        value = value[TENSOR_KEY]
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a torch tensor
        t = value.detach().cpu()
        name = str(t.dtype).replace("torch.", "")
        if t.is_complex():
            return None
        if t.is_floating_point():
            return Array(t.double().numpy(), name)
        return Array(t.numpy().astype(bool if name == "bool" else np.int64), name)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fiub":
            return Array(value.astype(np.float64 if value.dtype.kind == "f" else value.dtype), value.dtype.name)
        return None
    if isinstance(value, bool):
        return Array(np.array(value), "bool")
    if isinstance(value, int):
        return Array(np.array(value, dtype=np.int64), "int")
    if isinstance(value, float):
        return Array(np.array(value), "float")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        data = np.array(value, dtype=np.float64 if any(isinstance(v, float) for v in value) else np.int64)
        return Array(data, "float" if data.dtype.kind == "f" else "int")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        try:
            data = np.array(value)
        except ValueError:
            return None
        return Array(data.astype(np.float64), "float") if data.dtype.kind in "fiu" else None
    return None


def value_at(value: Any, path: str | tuple) -> Any:
    """The part of a probe's result at `path` (a key, or keys and positions); None when absent."""
    for step in (path,) if isinstance(path, str) else path:
        if isinstance(value, dict) and not (TENSOR_KEY in value) and step in value:
            value = value[step]
        elif isinstance(value, (list, tuple)) and isinstance(step, int) and -len(value) <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def case_arg(case: Any, position: int | None) -> Any:
    args = getattr(case, "args", ())
    return args[position] if position is not None and 0 <= position < len(args) else None


def tolerance(case: Any, dtype: str) -> tuple[float, float]:
    rtol, atol = DTYPE_TOLERANCES.get(dtype, (1e-6, 1e-9))
    case_rtol, case_atol = getattr(case, "rtol", None), getattr(case, "atol", None)
    return (rtol if case_rtol is None else case_rtol), (atol if case_atol is None else case_atol)


def wrong_mask(exp: Array, got: Array, case: Any) -> np.ndarray:
    """Where `got` differs from `exp` beyond the comparison's tolerance (same shapes)."""
    if exp.is_float or got.is_float:
        rtol, atol = tolerance(case, exp.dtype)
        e, g = exp.data.astype(np.float64), got.data.astype(np.float64)
        return ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    return exp.data != got.data


def fmt(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 100000 else str(int(x))
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == round(x) and abs(x) < 100000:
        return str(int(x))
    return f"{x:.4g}"


def describe(value: Any) -> str:
    """A short description of a result value (a tensor's shape and dtype, a number, a type)."""
    arr = as_array(value)
    if arr is not None and arr.data.ndim and not isinstance(value, (list, tuple)):
        return f"a tensor of shape {arr.shape}, {arr.dtype}"
    if arr is not None and arr.data.ndim == 0:
        return fmt(arr.data.item())
    if isinstance(value, dict) and "__unsupported__" in value:
        return f"an object of type {value['__unsupported__']}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None:
        return "None"
    text = repr(value) if not isinstance(value, (list, tuple)) else "[" + ", ".join(describe(v) for v in value) + "]"
    return text if len(text) <= 80 else text[:77] + "..."


def path_name(path: Sequence[Any], arg_names: Sequence[str]) -> str:
    parts = []
    for step in path:
        if isinstance(step, str) and step.startswith("arg") and step[3:].isdigit():
            i = int(step[3:])
            parts.append(arg_names[i] if i < len(arg_names) else f"argument {i}")
        elif isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append({"out": "output", "grads": "gradient w.r.t."}.get(step, str(step)))
    return " ".join(parts).replace(" [", "[").replace("gradient w.r.t. param:", "gradient w.r.t. parameter ")


def value_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [f for f in finite if f.size]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(float(f.min()) for f in finite), max(float(f.max()) for f in finite)
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def arrays_differ(exp: Array, got: Array, case: Any) -> bool:
    return exp.shape != got.shape or bool(wrong_mask(exp, got, case).any())


def dtype_changed(exp: Array, got: Array) -> bool:
    """A different dtype, as the comparison sees it (a Python float where an int is expected too)."""
    return exp.dtype != got.dtype


def differs(expected: Any, got: Any, case: Any) -> bool:
    """Whether two probe results differ anywhere (beyond the tolerance, or in dtype), the inputs
    after the call left out: where they do not, there is nothing to draw."""
    for path, e, g in walk_leaves(expected, got):
        if path[:1] == ("args_after",):
            continue
        ea, ga = as_array(e), as_array(g)
        if ea is not None and ga is not None:
            if dtype_changed(ea, ga) or arrays_differ(ea, ga, case):
                return True
        elif describe(e) != describe(g):
            return True
    return False


def dtype_at(value: Any, of: Any) -> str:
    arr = as_array(value_at(value, of))
    return arr.dtype if arr is not None else "float32"


def indices_of(value: Any) -> np.ndarray | None:
    arr = as_array(value)
    if arr is None or arr.is_float or arr.data.ndim != 1:
        return None
    return arr.data.astype(np.int64)


def walk_leaves(exp: Any, got: Any, path: tuple = (), depth: int = 0) -> list[tuple[tuple, Any, Any]]:
    """(path, expected, got) for every leaf of two results walked side by side."""
    leaf_e, leaf_g = as_array(exp), as_array(got)
    if leaf_e is not None or leaf_g is not None or depth > 6:
        return [(path, exp, got)]
    if isinstance(exp, dict) and TENSOR_KEY not in exp:
        keys = list(exp) + [k for k in (got if isinstance(got, dict) else {}) if k not in exp]
        return [leaf for k in keys for leaf in walk_leaves(exp.get(k), got.get(k) if isinstance(got, dict) else None, path + (k,), depth + 1)]
    if isinstance(exp, (list, tuple)) and exp:
        return [leaf for i, v in enumerate(exp)
                for leaf in walk_leaves(v, got[i] if isinstance(got, (list, tuple)) and i < len(got) else None, path + (i,), depth + 1)]
    return [(path, exp, got)]


def is_whole(arr: Array) -> bool:
    """Integers, or floats that all are (labels, indices, counts): drawn as a strip of numbers."""
    if not arr.is_float:
        return True
    d = arr.data
    return bool(d.size) and bool(np.isfinite(d).all()) and bool((d == np.round(d)).all()) and float(np.abs(d).max()) < 1e7


def small_errors(exp: Array, got: Array) -> bool:
    """Wrong, but by little next to the values' range: the diagonal would hide it."""
    d = (got.data - exp.data).astype(np.float64)
    lo, hi = value_range([exp.data.astype(np.float64)])
    return bool(np.isfinite(d).all()) and float(np.abs(d).max()) < 0.05 * (hi - lo)
