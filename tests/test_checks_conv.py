"""Wrong implementations of `conv` lose points with the right status, and known mistakes are named."""

from __future__ import annotations

import pytest

from conftest import assert_statuses, mistakes, statuses, variant

N = "conv"
EINSUM = '    out = torch.einsum("nchwij,ocij->nohw", patches, weight)  # (N, C_out, H_out, W_out)'
PAD = "    xp = F.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw)"
BIAS = "    if bias is not None:\n        out = out + bias.view(1, -1, 1, 1)\n    return out\n\n\ndef conv_transpose2d("
T_CROP = "    out = out[:, :, ph : full_h - ph, pw : full_w - pw]  # (N, C_out, H_out, W_out)"
T_PAINT = "+= contrib[..., ki, kj]"

CASES = [
    # (description, edits, {check: status}, expected mistake or None)
    ("flipped kernel", [(EINSUM, EINSUM.replace("patches, weight)", "patches, weight.flip(-2, -1))"))],
     {"conv2d_forward": "failed", "conv2d_gradients": "failed"}, "flipped-kernel"),
    ("bias ignored", [(BIAS, BIAS.replace("out = out + bias.view(1, -1, 1, 1)", "pass"))],
     {"conv2d_forward": "failed"}, "bias-ignored"),
    ("padding on one side", [(PAD, "    xp = F.pad(x, (0, 2 * pw, 0, 2 * ph))")],
     {"conv2d_forward": "failed"}, "padding-one-side"),
    ("first stride only", [('    sh, sw = _pair(stride, "stride")\n    ph, pw = _pair(padding, "padding")\n    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[1]',
                            '    sh, sw = _pair(stride, "stride")\n    ph, pw = _pair(padding, "padding")\n    sw, pw = sh, ph\n    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[1]')],
     {"conv2d_forward": "failed", "conv_transpose2d_forward": "passed"}, "first-stride-only"),
    ("ceil in the size formula", [("    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                                   "    out = -(-(size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride) + 1")],
     {"output_size_values": "failed", "output_size_errors": "passed"}, "ceil-instead-of-floor"),
    ("transposed conv ignores padding", [(T_CROP, "    out = out")],
     {"conv_transpose2d_forward": "failed", "conv2d_forward": "passed"}, "transpose-padding-ignored"),
    ("transposed conv flipped kernel", [(T_PAINT, "+= contrib[..., kh - 1 - ki, kw - 1 - kj]")],
     {"conv_transpose2d_forward": "failed"}, "transpose-flipped-kernel"),
    ("dense biases missing", [("    dense = (c * h * w) * (out_channels * h * w) + out_channels * h * w", "    dense = (c * h * w) * (out_channels * h * w)")],
     {"conv_vs_dense_params": "failed"}, "dense-biases-missing"),
    ("no validation of the size formula", [('    if out < 1:\n        raise ValueError(f"the kernel does not fit: output size would be {out}")', "")],
     {"output_size_errors": "failed", "output_size_values": "passed"}, None),
    ("output cast to float32", [("    return out\n\n\ndef conv_transpose2d(", "    return out.float()\n\n\ndef conv_transpose2d(")],
     {"conv2d_forward": "passed", "conv2d_float64_optional_bias": "failed"}, None),
    ("gradient cut by detach", [(EINSUM, EINSUM.replace("patches, weight)", "patches, weight.detach())"))],
     {"conv2d_forward": "passed", "conv2d_gradients": "failed"}, None),
]


@pytest.mark.parametrize("desc,edits,expected,mistake", CASES, ids=[c[0] for c in CASES])
def test_wrong_conv_loses_points(grade, desc, edits, expected, mistake):
    result = grade(N, source=variant(N, *edits))
    assert_statuses(result, expected)
    assert result["score"] < result["max_score"]
    if mistake:
        assert mistake in mistakes(result)


def test_float64_message_names_the_dtype(grade):
    result = grade(N, source=variant(N, ("    return out\n\n\ndef conv_transpose2d(", "    return out.float()\n\n\ndef conv_transpose2d(")))
    msg = next(c["message"] for c in result["checks"] if c["name"] == "conv2d_float64_optional_bias")
    assert "dtype float32, expected float64" in msg


def test_detached_gradient_message_names_the_argument(grade):
    result = grade(N, source=variant(N, (EINSUM, EINSUM.replace("patches, weight)", "patches, weight.detach())"))))
    msg = next(c["message"] for c in result["checks"] if c["name"] == "conv2d_gradients")
    assert "gradient w.r.t. weight" in msg


def test_builtin_conv_is_forbidden_and_scanned(grade):
    src = variant(N, (EINSUM, "    return F.conv2d(x, weight, bias, (sh, sw), (ph, pw))\n" + EINSUM))
    result = grade(N, source=src)
    assert statuses(result)["conv2d_forward"] == "forbidden"
    assert "torch.nn.functional.conv2d" in next(c["message"] for c in result["checks"] if c["name"] == "conv2d_forward")
    assert any("torch.nn.functional.conv2d" in n for n in result["notices"])


def test_nn_conv_module_is_forbidden(grade):
    src = variant(N, (EINSUM, "    layer = torch.nn.Conv2d(x.shape[1], weight.shape[0], tuple(weight.shape[2:]))\n" + EINSUM))
    assert statuses(grade(N, source=src))["conv2d_forward"] == "forbidden"
