"""The `segmentation` checks catch wrong conversions, kernels and metrics, and name the known mistakes.

The four functions are independent, so each wrong implementation below makes one mistake in
several of them at once, and each mistake is asserted where its own checks report it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import statuses, variant
from mistake_matching import audit


_RESHAPE = "linear.weight.reshape(num_classes, in_channels, h, w)"
_BIAS = "bias=linear.bias is not None,"
_COPY_BIAS = "        if linear.bias is not None:\n            conv.bias.copy_(linear.bias)\n"
_CENTER = "    center = factor - 0.5"
_DIAG = "    weight[diag, diag] = filt  # (channels, channels, k, k), channel-diagonal"
_TENT = "    tent = 1 - (taps - center).abs() / factor  # (k,)"
_ACC = "    return correct / counted"
_ACC_VALID = "    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index"
_ACC_EMPTY = "    if counted == 0:\n        return 0.0\n"
_IOU_MASK = "        pred, target = pred[keep], target[keep]  # (P,) each"
_IOU_MEAN = "    return sum(ious) / len(ious) if ious else 0.0"
_IOU_APPEND = "            ious.append(int((in_pred & in_target).sum()) / union)"

_WRONG = {
    "transposed reshape, all channel pairs, ignore not applied, absent classes counted": (
        [(_RESHAPE, "linear.weight.reshape(num_classes, in_channels, w, h).transpose(2, 3)"),
         (_DIAG, "    weight[:, :] = filt"),
         (_ACC_VALID, "    valid = torch.ones_like(target, dtype=torch.bool)"),
         (_IOU_APPEND, "            ious.append(int((in_pred & in_target).sum()) / union)\n        else:\n            ious.append(0.0)")],
        {"fcn_original_size": "fcn-reshape-transposed", "fcn_larger_input": "fcn-reshape-transposed",
         "bilinear_kernel_values": "bilinear-all-channel-pairs", "bilinear_kernel_upsampling": "bilinear-all-channel-pairs",
         "pixel_accuracy_ignore_index": "accuracy-ignore-not-applied", "mean_iou_values": "miou-absent-classes-counted"}),
    "channels-last reshape, odd-kernel centre, per-image accuracy, ignore not applied in IoU": (
        [(_RESHAPE, "linear.weight.reshape(num_classes, h, w, in_channels).permute(0, 3, 1, 2)"),
         (_CENTER, "    center = factor - 1"),
         (_ACC, "    per_image = [float(((pred[i] == target[i]) & valid[i]).sum() / valid[i].sum()) for i in range(len(target)) if valid[i].any()]\n"
                "    return sum(per_image) / len(per_image)"),
         (_IOU_MASK, "        pass")],
        {"fcn_original_size": "fcn-channels-last-reshape", "bilinear_kernel_values": "bilinear-odd-kernel-center",
         "bilinear_kernel_upsampling": "bilinear-odd-kernel-center", "pixel_accuracy_ignore_index": "accuracy-per-image-mean",
         "mean_iou_ignore_index": "miou-ignore-not-applied"}),
    "transposed weight matrix, nearest kernel, NaN when empty, pooled IoU": (
        [(_RESHAPE, "linear.weight.t().reshape(num_classes, in_channels, h, w)"),
         (_TENT, "    tent = ((taps - center).abs() < factor / 2).float()"),
         (_ACC_EMPTY, ""), (_ACC, "    return correct / counted if counted else float('nan')"),
         ("    ious = []\n", "    inter = union_all = 0\n"),
         ("        if union:\n" + _IOU_APPEND + "\n" + _IOU_MEAN,
          "        inter += int((in_pred & in_target).sum())\n        union_all += union\n    return inter / union_all if union_all else 0.0")],
        {"fcn_original_size": "fcn-weight-matrix-transposed", "bilinear_kernel_values": "bilinear-nearest-kernel",
         "bilinear_kernel_upsampling": "bilinear-nearest-kernel", "pixel_accuracy_ignore_index": "accuracy-nan-when-empty",
         "mean_iou_values": "miou-pooled-over-classes"}),
    "no bias, tent too wide, accuracy as a tensor, Dice instead of IoU": (
        [(_BIAS, "bias=False,"), (_COPY_BIAS, ""),
         (_TENT, "    tent = 1 - (taps - center).abs() / kernel_size"),
         (_ACC, "    return torch.tensor(correct / counted)"),
         (_IOU_APPEND, "            ious.append(2 * int((in_pred & in_target).sum()) / (int(in_pred.sum()) + int(in_target.sum())))")],
        {"fcn_original_size": "fcn-bias-dropped", "fcn_larger_input": "fcn-bias-dropped",
         "bilinear_kernel_upsampling": "bilinear-tent-too-wide", "pixel_accuracy_values": "metric-returns-tensor",
         "mean_iou_values": "miou-dice", "mean_iou_ignore_index": "miou-dice"}),
    "mean IoU as a tensor": (
        [(_IOU_MEAN, "    return torch.tensor(sum(ious) / len(ious) if ious else 0.0)")],
        {"mean_iou_values": "metric-returns-tensor"}),
}


@pytest.mark.parametrize("label", list(_WRONG))
def test_wrong_implementations_are_named(grade, label):
    edits, expected = _WRONG[label]
    result = grade("segmentation", source=variant("segmentation", *edits))
    checks = {c["name"]: c for c in result["checks"]}
    for check, mistake in expected.items():
        assert checks[check]["status"] == "failed", (check, checks[check]["message"])
        assert (checks[check].get("mistake") or {}).get("name") == mistake, (check, checks[check].get("mistake"))
    assert result["score"] < result["max_score"]


def test_forgotten_bias_copy_fails_without_a_name(grade):
    # The conv keeps its random initial bias: wrong, but not the bias=False mistake.
    result = grade("segmentation", source=variant("segmentation", (_COPY_BIAS, "")))
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["fcn_original_size"]["status"] == "failed" and checks["fcn_original_size"]["mistake"] is None
    assert statuses(result)["bilinear_kernel_values"] == "passed"


def test_modifying_the_linear_layer_and_a_float64_kernel_fail(grade):
    src = variant("segmentation",
                  ("        conv.weight.copy_(linear.weight.reshape(num_classes, in_channels, h, w))  # (K, C, h, w)",
                   "        linear.weight.data = linear.weight.data.reshape(num_classes, in_channels, h, w)\n"
                   "        conv.weight.copy_(linear.weight)"),
                  ("    taps = torch.arange(kernel_size, dtype=torch.float32)", "    taps = torch.arange(kernel_size, dtype=torch.float64)"),
                  ("    weight = torch.zeros(channels, channels, kernel_size, kernel_size)",
                   "    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=torch.float64)"))
    result = grade("segmentation", source=src)
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["fcn_original_size"]["status"] == "failed"
    assert "linear.weight after the call" in checks["fcn_original_size"]["message"]
    assert checks["bilinear_kernel_values"]["status"] == "failed"
    assert "dtype float64, expected float32" in checks["bilinear_kernel_values"]["message"]


def test_upsampling_message_explains_the_constant(grade):
    result = grade("segmentation", source=variant("segmentation", (_TENT, "    tent = 1 - (taps - center).abs() / kernel_size")))
    message = next(c for c in result["checks"] if c["name"] == "bilinear_kernel_upsampling")["message"]
    assert "constant image" in message and "add up to 1" in message


def test_reference_conv_equals_the_linear_layer_and_upsamples_bilinearly():
    import torch.nn.functional as F

    from grader.engine.oracles import load_reference

    ref = load_reference("segmentation")
    torch.manual_seed(0)
    linear = nn.Linear(3 * 4 * 5, 7)
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(ref.fully_convolutionalize(linear, 3, (4, 5))(x).flatten(1), linear(x.flatten(1)))
    up = nn.ConvTranspose2d(2, 2, 8, stride=4, padding=2, bias=False)
    with torch.no_grad():
        up.weight.copy_(ref.bilinear_kernel(2, 8))
        y = torch.randn(1, 2, 5, 6)
        torch.testing.assert_close(up(y)[..., 2:-2, 2:-2],
                                   F.interpolate(y, scale_factor=4, mode="bilinear", align_corners=False)[..., 2:-2, 2:-2])


def test_mistakes_are_distinguishable():
    assert audit("segmentation") == []
