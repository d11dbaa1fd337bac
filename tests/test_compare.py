"""Tensor comparison: tolerances by dtype and messages that say what differed."""

from __future__ import annotations

import torch

from grader.engine.compare import compare
from grader.runner.probes import sanitize


def _c(got, exp, **kw):
    return compare(sanitize(got), sanitize(exp), "output", **kw)


def test_equal_within_dtype_tolerance():
    x = torch.randn(3, 4)
    assert _c(x + 1e-7, x) is None
    assert _c(x.double() + 1e-6, x.double()) is not None  # float64 is held tighter


def test_shape_dtype_device_messages():
    x = torch.zeros(2, 3)
    assert "shape (3, 2), expected (2, 3)" in _c(x.T, x)
    assert "dtype float64, expected float32" in _c(x.double(), x)
    got = sanitize(x)
    got["device"] = "cpu"
    assert "on device cpu, expected cuda" in compare(got, sanitize(x), "output", device="cuda")


def test_worst_element_and_values_are_reported():
    exp = torch.zeros(2, 3, 4)
    got = exp.clone()
    got[1, 2, 3] = 5.0
    got[0, 0, 1] = 0.5
    msg = _c(got, exp)
    assert "2 of 24 elements differ" in msg
    assert "first wrong element at (0, 0, 1)" in msg
    assert "largest absolute error 5 at (1, 2, 3)" in msg
    assert "got      [" in msg and "expected [" in msg


def test_nan_and_inf_are_named():
    exp = torch.ones(4)
    got = exp.clone()
    got[2] = float("nan")
    assert "1 NaN value(s)" in _c(got, exp)
    got[2] = float("inf")
    assert "1 infinite value(s)" in _c(got, exp)


def test_numbers_and_structures():
    assert compare(3, 3) is None
    assert "expected int 3" in compare(3.0, 3)
    assert "2 items, expected 3" in compare((1, 2), (1, 2, 3))
    assert compare(0.1 + 0.2, 0.3) is None
    assert "expected a mapping" in compare(1, {"a": 1})
    assert "object of type" in compare({"__unsupported__": "x.Evil"}, sanitize(torch.ones(1)))
