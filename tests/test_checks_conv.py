"""Wrong implementations of `conv` lose points with the right status, and known mistakes are named."""

from __future__ import annotations

import pytest

from conftest import assert_statuses, mistakes, statuses, variant
from mistake_matching import audit

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
     {"output_size_errors": "failed", "output_size_values": "passed"}, "kernel-larger-than-input-accepted"),
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


# Realistic wrong implementations, one or more independent mistakes each (the parts do not call one
# another): the edits, then {check: the mistake it must name}.
SIZE = "    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1"
TYPES = '            raise ValueError(f"{name} must be an int, got {value!r}")'
RANGES = ('    for name in ("size", "kernel_size", "stride", "dilation"):\n        if args[name] < 1:\n'
          '            raise ValueError(f"{name} must be >= 1, got {args[name]}")\n    if padding < 0:\n'
          '        raise ValueError(f"padding must be >= 0, got {padding}")\n')
UNFOLD = "    patches = xp.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)"
T_CHECK = "    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[0]:"
T_SIZES = "    c_out, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]"
T_EINSUM = '    contrib = torch.einsum("ncij,cokl->noijkl", x, weight)  # (N, C_out, H, W, kH, kW)'
T_FULL = "    full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw"
T_SLICE = "out[:, :, ki : ki + (h - 1) * sh + 1 : sh, kj : kj + (w - 1) * sw + 1 : sw]"
DENSE = "    dense = (c * h * w) * (out_channels * h * w) + out_channels * h * w"
CONV_COUNT = "    conv = out_channels * c * kh * kw + out_channels"

NAMED = {
    "no +1; stride ignored; weight read as (C_out, C_in); dense layer to the channels only": (
        [(SIZE, SIZE.replace(" // stride + 1", " // stride")), (UNFOLD, "    patches = xp.unfold(2, kh, 1).unfold(3, kw, 1)"),
         (T_CHECK, T_CHECK.replace("weight.shape[0]", "weight.shape[1]")), (T_SIZES, T_SIZES.replace("weight.shape[1]", "weight.shape[0]")),
         (T_EINSUM, T_EINSUM.replace("cokl", "ockl")), (DENSE, "    dense = (c * h * w) * out_channels + out_channels")],
        {"output_size_values": "plus-one-missing", "conv2d_forward": "stride-ignored",
         "conv_transpose2d_forward": "transpose-weight-axes-swapped", "conv_vs_dense_params": "dense-outputs-only-channels"}),
    "dilated kernel d * k; padding ignored; transposed stride ignored; one kernel per position": (
        [(SIZE, "    out = (size + 2 * padding - dilation * kernel_size) // stride + 1"),
         ("    xp = F.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw)", "    xp = x"),
         (T_FULL, "    full_h, full_w = h - 1 + kh, w - 1 + kw"), (T_SLICE, "out[:, :, ki : ki + h, kj : kj + w]"),
         (CONV_COUNT, "    conv = (out_channels * c * kh * kw + out_channels) * h * w")],
        {"output_size_values": "dilated-kernel-d-times-k", "conv2d_forward": "padding-ignored",
         "conv_transpose2d_forward": "transpose-stride-ignored", "conv_vs_dense_params": "conv-weights-not-shared"}),
    "transposed-convolution size; bias without reshape; padding added in the transposed convolution; k for k * k": (
        [(SIZE, "    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1"),
         ("        out = out + bias.view(1, -1, 1, 1)\n    return out\n\n\ndef conv_transpose2d(", "        out = out + bias\n    return out\n\n\ndef conv_transpose2d("),
         (T_CROP, "    out = F.pad(out, (pw, pw, ph, ph))"),
         ('    kh, kw = _pair(kernel_size, "kernel_size")\n' + CONV_COUNT,
          "    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0] * kernel_size[1]\n    conv = out_channels * c * k + out_channels")],
        {"output_size_values": "transposed-convolution-formula", "conv2d_forward": "bias-on-wrong-axis",
         "conv_transpose2d_forward": "transpose-padding-adds-zeros", "conv_vs_dense_params": "kernel-area-not-squared"}),
    "true division; transposed output cropped on one side": (
        [(SIZE, SIZE.replace("// stride", "/ stride")), (T_CROP, "    out = out[:, :, : full_h - 2 * ph, : full_w - 2 * pw]")],
        {"output_size_values": "true-division", "conv_transpose2d_forward": "transpose-crop-one-side"}),
    "argument ranges not checked; loops reading the window at (i, j)": (
        [(RANGES, ""), (EINSUM, "    h_out, w_out = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1\n"
                                "    out = x.new_zeros(x.shape[0], weight.shape[0], h_out, w_out)\n"
                                "    for i in range(h_out):\n        for j in range(w_out):\n"
                                '            out[:, :, i, j] = torch.einsum("ncij,ocij->no", xp[:, :, i : i + kh, j : j + kw], weight)')],
        {"output_size_errors": "argument-ranges-not-checked", "conv2d_forward": "window-start-not-scaled"}),
    "float size accepted": ([("    for name, value in args.items():\n        if not isinstance(value, int) or isinstance(value, bool):\n" + TYPES + "\n", "")],
                            {"output_size_errors": "float-size-accepted"}),
    "TypeError for a float": ([(TYPES, TYPES.replace("ValueError", "TypeError"))], {"output_size_errors": "type-error-for-non-int"}),
    "assert instead of raise": (
        [("        if not isinstance(value, int) or isinstance(value, bool):\n" + TYPES, "        assert isinstance(value, int) and not isinstance(value, bool), name"),
         (RANGES, '    for name in ("size", "kernel_size", "stride", "dilation"):\n        assert args[name] >= 1, name\n    assert padding >= 0\n'),
         ('    if out < 1:\n        raise ValueError(f"the kernel does not fit: output size would be {out}")', "    assert out >= 1")],
        {"output_size_errors": "assert-instead-of-value-error"}),
}


@pytest.mark.parametrize("label", list(NAMED))
def test_realistic_mistakes_are_named(grade, label):
    edits, expected = NAMED[label]
    result = grade(N, source=variant(N, *edits))
    checks = {c["name"]: c for c in result["checks"]}
    for check, mistake in expected.items():
        assert checks[check]["status"] == "failed", (check, checks[check]["status"], checks[check]["message"])
        assert (checks[check]["mistake"] or {}).get("name") == mistake, (check, checks[check]["mistake"], checks[check]["message"])


def test_wrong_error_says_what_was_raised(grade):
    result = grade(N, source=variant(N, (TYPES, TYPES.replace("ValueError", "TypeError"))))
    message = next(c["message"] for c in result["checks"] if c["name"] == "output_size_errors")
    assert "expected ValueError, but it raised TypeError" in message and "a float size" in message


def test_mistakes_are_distinguishable():
    assert audit(N) == []
