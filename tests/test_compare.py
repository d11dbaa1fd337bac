"""Tensor comparison: tolerances by dtype and messages that say what differed."""

from __future__ import annotations

import pytest
import torch

from conftest import variant
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


def test_numbers_by_value_numpy_scalars_included():
    numpy = pytest.importorskip("numpy")
    assert compare(sanitize(numpy.float64(0.25)), 0.25) is None
    assert compare(numpy.float32(0.25), 0.25) is None
    assert compare(sanitize(numpy.int64(3)), 3) is None and type(sanitize(numpy.int64(3))) is int
    assert sanitize(numpy.bool_(True)) is True
    assert "expected float 0.25" in compare(sanitize(torch.tensor(0.25)), 0.25)  # a tensor is not a Python number
    assert "expected int 3" in compare(3.0, 3) and "expected int 3" in compare(True, 3)
    assert "expected bool True" in compare(1, True)


def test_no_relative_error_where_the_expected_value_is_zero():
    exp = torch.tensor([0.0, 1.0, 2.0])
    msg = _c(torch.tensor([0.5, 1.0, 2.0]), exp)
    assert "no relative error: every wrong element is expected to be 0" in msg and "largest relative error" not in msg
    msg = _c(torch.tensor([0.5, 1.5, 2.0]), exp)
    assert "largest relative error 0.5 at (1,)" in msg  # 0.5 / 1.0, never 0.5 / 0


def test_index_dtype_message_does_not_follow_the_input():
    msg = _c(torch.tensor([0, 2], dtype=torch.int32), torch.tensor([0, 2]))
    assert "dtype int32, expected int64 (indices and labels are int64 whatever the input's dtype)" in msg
    assert "must follow the input's" not in msg
    assert "(the output dtype must follow the input's)" in _c(torch.zeros(2), torch.zeros(2, dtype=torch.float64))


ACCURACY_RETURN = "    return correct / counted"


def test_a_metric_returning_numpy_scalars_keeps_its_points(grade):
    pytest.importorskip("numpy")
    src = variant("segmentation", (ACCURACY_RETURN, "    import numpy\n    return numpy.float64(correct) / numpy.int64(counted)"))
    checks = {c["name"]: c for c in grade("segmentation", source=src)["checks"]}
    assert checks["pixel_accuracy_values"]["status"] == "passed", checks["pixel_accuracy_values"]["message"]
    assert checks["pixel_accuracy_ignore_index"]["status"] == "passed"
    src = variant("segmentation", (ACCURACY_RETURN, "    return torch.tensor(correct / counted)"))
    check = next(c for c in grade("segmentation", source=src)["checks"] if c["name"] == "pixel_accuracy_values")
    assert check["status"] == "failed" and "expected float" in check["message"]
    assert check["diagnosis"][0]["kind"] == "structure" and "return a Python number" in check["diagnosis"][0]["text"]
