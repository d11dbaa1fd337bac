"""Wrong implementations of `pooling` lose points with the right status, and known mistakes are named."""

from __future__ import annotations

import pytest

from conftest import assert_statuses, mistakes, statuses, variant
from mistake_matching import audit

N = "pooling"
MAX_RET = "    return windows.flatten(-2).max(dim=-1).values  # (N, C, H_out, W_out)"
AVG_RET = "    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)"
STRIDE = '    sh, sw = _pair(kernel_size if stride is None else stride, "stride")'

CASES = [
    ("stride defaults to one", [(STRIDE, '    sh, sw = _pair(1 if stride is None else stride, "stride")')],
     {"max_pool2d_forward": "failed", "avg_pool2d_forward": "failed"}, "max_pool2d-stride-default-one"),
    ("max of absolute values", [(MAX_RET, "    idx = windows.flatten(-2).abs().argmax(-1, keepdim=True)\n    return windows.flatten(-2).gather(-1, idx).squeeze(-1)")],
     {"max_pool2d_forward": "failed", "avg_pool2d_forward": "passed"}, "max-of-absolute-values"),
    ("pooling across channels", [(AVG_RET, "    pooled = windows.mean(dim=(-2, -1))\n    return pooled.mean(dim=1, keepdim=True).expand_as(pooled).contiguous()")],
     {"avg_pool2d_forward": "failed"}, "avg_pool2d-across-channels"),
    ("wrong divisor", [(AVG_RET, "    return windows.sum(dim=(-2, -1)) / (kh * kh)")],
     {"avg_pool2d_forward": "failed", "max_pool2d_forward": "passed"}, "avg-wrong-divisor"),
    ("divided by the kernel side", [(AVG_RET, "    return windows.sum(dim=(-2, -1)) / kh")],
     {"avg_pool2d_forward": "failed", "max_pool2d_forward": "passed"}, "avg-divided-by-kernel-side"),
    ("kernel swapped", [('    kh, kw = _pair(kernel_size, "kernel_size")\n    sh, sw = _pair(kernel_size if stride is None else stride, "stride")\n    if kh > x.shape[-2] or kw > x.shape[-1]:\n        raise ValueError(f"kernel {(kh, kw)} is larger than the input {tuple(x.shape[-2:])}")\n    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten',
                         '    kw, kh = _pair(kernel_size, "kernel_size")\n    sw, sh = _pair(kernel_size if stride is None else stride, "stride")\n    if kh > x.shape[-2] or kw > x.shape[-1]:\n        raise ValueError(f"kernel {(kh, kw)} is larger than the input {tuple(x.shape[-2:])}")\n    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten')],
     {"max_pool2d_forward": "failed"}, "max_pool2d-kernel-hw-swapped"),
    ("empty result instead of an error", [('        raise ValueError(f"kernel {(kh, kw)} is larger than the input {tuple(x.shape[-2:])}")\n    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten',
                                            '        return x[..., :0, :0]\n    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten')],
     {"kernel_larger_than_input": "failed"}, None),
    ("ceil mode by padding", [(AVG_RET, "    import math\n    ph = (math.ceil((x.shape[-2] - kh) / sh) * sh + kh) - x.shape[-2]\n    pw = (math.ceil((x.shape[-1] - kw) / sw) * sw + kw) - x.shape[-1]\n"
                                         "    padded = torch.nn.functional.pad(x, (0, pw, 0, ph), value=float('nan'))\n    return padded.unfold(2, kh, sh).unfold(3, kw, sw).nanmean(dim=(-2, -1))")],
     {"avg_pool2d_forward": "failed"}, "avg_pool2d-ceil-mode"),
    ("gradient cut", [(MAX_RET, "    return windows.flatten(-2).max(dim=-1).values.detach()")],
     {"max_pool2d_forward": "passed", "max_pool2d_float64_gradients": "failed"}, None),
]


@pytest.mark.parametrize("desc,edits,expected,mistake", CASES, ids=[c[0] for c in CASES])
def test_wrong_pooling_loses_points(grade, desc, edits, expected, mistake):
    result = grade(N, source=variant(N, *edits))
    assert_statuses(result, expected)
    assert result["score"] < result["max_score"]
    if mistake:
        assert mistake in mistakes(result)


def test_builtin_pooling_is_forbidden(grade):
    src = variant(N, (AVG_RET, "    return torch.nn.functional.avg_pool2d(x, kernel_size, stride)"))
    result = grade(N, source=src)
    assert statuses(result)["avg_pool2d_forward"] == "forbidden"
    assert statuses(result)["max_pool2d_forward"] == "passed"


CHECK = ('    if kh > x.shape[-2] or kw > x.shape[-1]:\n'
         '        raise ValueError(f"kernel {(kh, kw)} is larger than the input {tuple(x.shape[-2:])}")\n')
WINDOWS = "    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n"


def _loops(start: str, check: str = "") -> list[tuple[str, str]]:
    """Both poolings as loops over the output positions, the window of (i, j) starting at `start`."""
    body = ("    out_h, out_w = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1\n"
            "    out = x.new_zeros(x.shape[0], x.shape[1], out_h, out_w)\n"
            "    for i in range(out_h):\n        for j in range(out_w):\n"
            f"            r, c = {start}\n"
            "            out[:, :, i, j] = x[:, :, r : r + kh, c : c + kw].{}(dim=(-2, -1))\n"
            "    return out")
    return [(CHECK + WINDOWS + MAX_RET, check + body.format("amax")), (CHECK + WINDOWS + AVG_RET, check + body.format("mean"))]


NAMED = {
    "the stride argument ignored": ([(STRIDE, '    sh, sw = _pair(kernel_size, "stride")')], "stride-ignored"),
    "loops reading the window at (i, j)": (_loops("i, j", CHECK), "window-start-not-scaled"),
}


@pytest.mark.parametrize("label", list(NAMED))
def test_realistic_pooling_mistakes_are_named_in_both(grade, label):
    edits, mistake = NAMED[label]
    result = grade(N, source=variant(N, *edits))
    checks = {c["name"]: c for c in result["checks"]}
    for fn in ("max_pool2d", "avg_pool2d"):
        check = checks[f"{fn}_forward"]
        assert check["status"] == "failed" and (check["mistake"] or {}).get("name") == f"{fn}-{mistake}", check


ERRORS = {
    "loops that find no window": (_loops("i * sh, j * sw"), "empty-result-instead-of-error"),
    "assert": ([(CHECK, '    assert kh <= x.shape[-2] and kw <= x.shape[-1], "kernel too large"\n')], "assert-instead-of-error"),
    "bare Exception": ([(CHECK, CHECK.replace("raise ValueError", "raise Exception"))], "bare-exception"),
    "a kernel as large as the input refused": ([(CHECK, CHECK.replace(" > x.shape", " >= x.shape"))], "kernel-as-large-as-input-refused"),
    "None after a message": ([(CHECK, '    if kh > x.shape[-2] or kw > x.shape[-1]:\n        print("the kernel is too large")\n        return None\n')],
                             "none-instead-of-error"),
    "compared with the channels and the height": ([(CHECK, CHECK.replace("x.shape[-2] or kw > x.shape[-1]", "x.shape[1] or kw > x.shape[2]"))],
                                                  "kernel-compared-with-wrong-dimensions"),
}


@pytest.mark.parametrize("label", list(ERRORS))
def test_wrong_errors_are_named(grade, label):
    edits, mistake = ERRORS[label]
    result = grade(N, source=variant(N, *edits))
    check = next(c for c in result["checks"] if c["name"] == "kernel_larger_than_input")
    assert check["status"] == "failed" and (check["mistake"] or {}).get("name") == mistake, check


def test_loops_that_find_no_window_are_otherwise_right(grade):
    result = grade(N, source=variant(N, *_loops("i * sh, j * sw")))
    st = statuses(result)
    assert st["kernel_larger_than_input"] == "failed"
    assert all(status == "passed" for name, status in st.items() if name != "kernel_larger_than_input")


def test_runtime_error_from_unfold_is_accepted(grade):
    # The contract accepts RuntimeError, which Tensor.unfold raises when no window fits.
    result = grade(N, source=variant(N, (CHECK, "")))
    assert statuses(result)["kernel_larger_than_input"] == "passed"


def test_wrong_error_says_what_was_raised(grade):
    result = grade(N, source=variant(N, (CHECK, CHECK.replace("raise ValueError", "raise Exception"))))
    message = next(c["message"] for c in result["checks"] if c["name"] == "kernel_larger_than_input")
    assert "expected ValueError or RuntimeError, but it raised Exception" in message


def test_mistakes_are_distinguishable():
    assert audit(N) == []
