"""Wrong implementations of `pooling` lose points with the right status, and known mistakes are named."""

from __future__ import annotations

import pytest

from conftest import assert_statuses, mistakes, statuses, variant

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
