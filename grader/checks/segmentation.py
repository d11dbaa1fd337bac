"""Hidden checks for `segmentation`: fully convolutionalization, the bilinear upsampling kernel,
and the pixel accuracy and mean IoU metrics."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import call, randn
from grader.engine.compare import compare, is_tensor
from grader.runner.probes import TENSOR_KEY
from grader.engine.spec import Case, Check, Mistake, Picture

_S = "Segmentation"
_PROBES = "grader.checks.segmentation"


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --- probes (run in the worker on the student's module, and here on the reference) -------------
def probe_fcn(mod: Any, weight: torch.Tensor, bias: torch.Tensor | None, in_channels: int, in_hw: tuple,
              inputs: list, device: str = "cpu", seed: int = 0) -> dict:
    """Build an `nn.Linear` with `weight` and `bias`, convert it with the student's
    `fully_convolutionalize`, and apply the result to each input."""
    num_classes, in_features = weight.shape
    linear = nn.Linear(in_features, num_classes, bias=bias is not None, device=device, dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    conv = mod.fully_convolutionalize(linear, in_channels, in_hw)
    with torch.no_grad():
        outputs = [conv(x.to(device)) for x in inputs]
    return {"is an nn.Conv2d": isinstance(conv, nn.Conv2d),
            "kernel_size": [int(k) for k in conv.kernel_size],
            "outputs": outputs,
            "linear.weight after the call": linear.weight.detach()}


def probe_bilinear_upsampling(mod: Any, channels: int, kernel_size: int, constant: float, image: torch.Tensor,
                              device: str = "cpu", seed: int = 0) -> dict:
    """Load the student's `bilinear_kernel` into the transposed convolution it is made for and
    upsample a constant image and `image`; returns the full outputs (the border is judged by the grader)."""
    up = nn.ConvTranspose2d(channels, channels, kernel_size, stride=kernel_size // 2, padding=kernel_size // 4,
                            bias=False, device=device)
    weight = mod.bilinear_kernel(channels, kernel_size)
    with torch.no_grad():
        up.weight.copy_(weight.to(device))
        flat = torch.full((1, channels, 4, 5), constant, device=device)
        return {"constant": up(flat), "image": up(image.to(device))}


def _assess_upsampling(kernel_size: int, image: torch.Tensor, constant: float):
    """Judge the upsampled images away from the border (the behaviour), then everything else."""
    factor, border = kernel_size // 2, kernel_size // 4

    def assess(got: Any, expected: Any) -> str | None:
        if isinstance(got, dict) and is_tensor(got.get("constant")) and is_tensor(got.get("image")):
            flat = got["constant"][TENSOR_KEY][..., border:-border, border:-border]
            if flat.numel() and not torch.allclose(flat, torch.full_like(flat, constant), rtol=1e-5, atol=1e-5):
                return (f"upsampling a constant image of {constant} by {factor} should give {constant} away from the "
                        f"border, but the values range from {flat.min().item():.5g} to {flat.max().item():.5g}: the "
                        "kernel's overlapping copies must add up to 1 at every output pixel")
            smooth = F.interpolate(image, scale_factor=factor, mode="bilinear", align_corners=False)[..., border:-border, border:-border]
            ramp = got["image"][TENSOR_KEY]
            if ramp.shape == image.shape[:2] + (image.shape[2] * factor, image.shape[3] * factor):
                inner = ramp[..., border:-border, border:-border]
                if not torch.allclose(inner, smooth, rtol=1e-4, atol=1e-4):
                    worst = (inner - smooth).abs().max().item()
                    return (f"away from the border, upsampling by {factor} should interpolate linearly between the "
                            f"input pixels (a ramp stays a ramp), as F.interpolate(mode='bilinear', "
                            f"align_corners=False) does; the largest difference is {worst:.4g}")
        return compare(got, expected, "result")

    return assess


# --- known mistakes: fully_convolutionalize -----------------------------------------------------
def _fcn(reshape, keep_bias=True):
    def build(ref):
        def fully_convolutionalize(linear, in_channels, in_hw):
            h, w = (in_hw, in_hw) if isinstance(in_hw, int) else in_hw
            k = linear.weight.shape[0]
            conv = nn.Conv2d(in_channels, k, (h, w), bias=keep_bias and linear.bias is not None,
                             device=linear.weight.device, dtype=linear.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(reshape(linear.weight, k, in_channels, h, w))
                if keep_bias and linear.bias is not None:
                    conv.bias.copy_(linear.bias)
            return conv

        return {"fully_convolutionalize": fully_convolutionalize}

    return build


FCN_MISTAKES = (
    Mistake("fcn-reshape-transposed", "The weight rows were reshaped as (K, C, w, h) and transposed: flatten(1) orders the features channel, then row, then column, so a row of the linear weight reshapes directly to (C, h, w).",
            _fcn(lambda W, k, c, h, w: W.reshape(k, c, w, h).transpose(2, 3)), _S, subsection="From a classifier to a heatmap"),
    Mistake("fcn-channels-last-reshape", "The weight rows were reshaped as (h, w, C), channels last: flatten(1) of an NCHW tensor puts the channel first, so reshape to (K, C, h, w).",
            _fcn(lambda W, k, c, h, w: W.reshape(k, h, w, c).permute(0, 3, 1, 2)), _S, subsection="From a classifier to a heatmap"),
    Mistake("fcn-weight-matrix-transposed", "The (K, C*h*w) weight was transposed before the reshape: each *row* of the linear weight is one output class's kernel.",
            _fcn(lambda W, k, c, h, w: W.t().reshape(k, c, h, w)), _S, subsection="From a classifier to a heatmap"),
    Mistake("fcn-bias-dropped", "The bias of the linear layer was not copied: the convolution adds the same bias to every position of the heatmap.",
            _fcn(lambda W, k, c, h, w: W.reshape(k, c, h, w), keep_bias=False), _S, subsection="From a classifier to a heatmap"),
)


# --- known mistakes: bilinear_kernel ------------------------------------------------------------
def _bilinear(tent_fn, diagonal=True):
    def build(ref):
        def bilinear_kernel(channels, kernel_size):
            factor = kernel_size // 2
            taps = torch.arange(kernel_size, dtype=torch.float32)
            tent = tent_fn(taps, factor)
            filt = tent[:, None] * tent[None, :]
            if not diagonal:
                return filt.expand(channels, channels, kernel_size, kernel_size).clone()
            weight = torch.zeros(channels, channels, kernel_size, kernel_size)
            weight[torch.arange(channels), torch.arange(channels)] = filt
            return weight

        return {"bilinear_kernel": bilinear_kernel}

    return build


_TENT = lambda taps, f: 1 - (taps - (f - 0.5)).abs() / f  # noqa: E731

BILINEAR_MISTAKES = (
    Mistake("bilinear-all-channel-pairs", "The filter was put in every (out, in) channel pair, so each output channel sums all input channels: the kernel is channel-diagonal, weight[c, c] only.",
            _bilinear(_TENT, diagonal=False), _S, subsection="Upsampling"),
    Mistake("bilinear-odd-kernel-center", "The centre is factor - 1, the formula for odd kernels: for an even kernel the tent is centred between two taps, at factor - 0.5.",
            _bilinear(lambda taps, f: 1 - (taps - (f - 1)).abs() / f), _S, subsection="Upsampling"),
    Mistake("bilinear-nearest-kernel", "A box of ones over the central taps is nearest-neighbour upsampling: bilinear weights fall off linearly, 1 - |i - center| / factor.",
            _bilinear(lambda taps, f: ((taps - (f - 0.5)).abs() < f / 2).float()), _S, subsection="Upsampling"),
    Mistake("bilinear-tent-too-wide", "The tent is divided by kernel_size instead of the upsampling factor kernel_size // 2: its copies then overlap too much and a constant image comes out brighter.",
            _bilinear(lambda taps, f: 1 - (taps - (f - 0.5)).abs() / (2 * f)), _S, subsection="Upsampling"),
)


# --- known mistakes: the metrics ----------------------------------------------------------------
def _keep(target, ignore_index):
    return torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index


def _acc(fn):
    return lambda ref: {"pixel_accuracy": fn}


def _acc_tensor(ref):
    return {"pixel_accuracy": lambda p, t, ignore_index=None: torch.tensor(ref.pixel_accuracy(p, t, ignore_index))}


def _acc_per_image(p, t, ignore_index=None):
    keep = _keep(t, ignore_index)
    scores = [((p[i] == t[i]) & keep[i]).sum().item() / keep[i].sum().item() for i in range(t.shape[0]) if keep[i].any()]
    return sum(scores) / len(scores) if scores else 0.0


def _acc_nan(p, t, ignore_index=None):
    keep = _keep(t, ignore_index)
    return float("nan") if not keep.any() else int(((p == t) & keep).sum()) / int(keep.sum())


ACCURACY_MISTAKES = (
    Mistake("accuracy-ignore-not-applied", "The ignored pixels were counted in the total: pixels where target == ignore_index are left out of the numerator *and* the denominator.",
            _acc(lambda p, t, ignore_index=None: int(((p == t) & _keep(t, ignore_index)).sum()) / t.numel()), _S, subsection="Metrics"),
    Mistake("accuracy-per-image-mean", "The accuracies of the images were averaged: pixel accuracy counts the pixels of the whole batch together, which differs when images keep different numbers of pixels.",
            _acc(_acc_per_image), _S),
    Mistake("accuracy-nan-when-empty", "With every pixel ignored you return 0/0 = NaN: the contract returns 0.0 when no pixel is left.",
            _acc(_acc_nan), _S),
    Mistake("metric-returns-tensor", "A tensor was returned: the metric returns a Python float (use .item() or float()).", _acc_tensor, _S),
)


def _iou(fn):
    return lambda ref: {"mean_iou": fn}


def _per_class(p, t, k, keep_pred=None):
    keep_pred = torch.ones_like(p, dtype=torch.bool) if keep_pred is None else keep_pred
    ip, it = (p == k) & keep_pred, t == k
    return int((ip & it).sum()), int((ip | it).sum())


def _miou_all_classes(p, t, num_classes, ignore_index=None):
    keep = _keep(t, ignore_index)
    p, t = p[keep], t[keep]
    if not t.numel():
        return 0.0
    return sum(i / u if u else 0.0 for i, u in (_per_class(p, t, k) for k in range(num_classes))) / num_classes


def _miou_no_ignore(p, t, num_classes, ignore_index=None):
    pairs = [_per_class(p, t, k) for k in range(num_classes)]
    ious = [i / u for i, u in pairs if u]
    return sum(ious) / len(ious) if ious else 0.0


def _miou_pooled(p, t, num_classes, ignore_index=None):
    keep = _keep(t, ignore_index)
    pairs = [_per_class(p[keep], t[keep], k) for k in range(num_classes)]
    inter, union = sum(i for i, _ in pairs), sum(u for _, u in pairs)
    return inter / union if union else 0.0


def _miou_dice(p, t, num_classes, ignore_index=None):
    keep = _keep(t, ignore_index)
    p, t = p[keep], t[keep]
    scores = []
    for k in range(num_classes):
        i, u = _per_class(p, t, k)
        if u:
            scores.append(2 * i / (int((p == k).sum()) + int((t == k).sum())))
    return sum(scores) / len(scores) if scores else 0.0


def _miou_tensor(ref):
    return {"mean_iou": lambda p, t, n, ignore_index=None: torch.tensor(ref.mean_iou(p, t, n, ignore_index))}


MIOU_MISTAKES = (
    Mistake("miou-absent-classes-counted", "Classes absent from both pred and target were averaged in as IoU 0: average only over the classes present.",
            _iou(_miou_all_classes), _S, subsection="Metrics"),
    Mistake("miou-ignore-not-applied", "The ignored pixels still count: the predictions there enter the unions (and can make a class 'present'); drop the pixels where target == ignore_index from pred and target alike.",
            _iou(_miou_no_ignore), _S, subsection="Metrics"),
    Mistake("miou-pooled-over-classes", "The intersections and unions of all classes were summed before dividing: mean IoU is the mean of the per-class IoUs, so small classes weigh as much as large ones.",
            _iou(_miou_pooled), _S, subsection="Metrics"),
    Mistake("miou-dice", "That is the Dice coefficient 2|A and B| / (|A| + |B|): IoU is |A and B| / |A or B|.", _iou(_miou_dice), _S, subsection="Metrics"),
    Mistake("metric-returns-tensor", "A tensor was returned: the metric returns a Python float (use .item() or float()).", _miou_tensor, _S),
)


# --- cases --------------------------------------------------------------------------------------
def _fcn_case(g, c, h, w, k, shapes, *, dtype=torch.float32, bias=True, why=""):
    weight = randn(g, k, c * h * w, dtype=dtype)
    b = randn(g, k, dtype=dtype) if bias else None
    inputs = [randn(g, *s, dtype=dtype) for s in shapes]
    shown = ", ".join(str(tuple(s)) for s in shapes)
    return Case(f"{_PROBES}:probe_fcn", (weight, b, c, (h, w), inputs),
                label=f"{why}: nn.Linear({c}*{h}*{w}, {k}{'' if bias else ', bias=False'}) for (C, h, w) = ({c}, {h}, {w}), inputs {shown}, {_dt(dtype)}")


def _fcn_original(g, ref):
    why = "at the original size the output must equal linear(x.flatten(1))"
    return [_fcn_case(g, 3, 4, 4, 5, [(2, 3, 4, 4)], why=why),
            _fcn_case(g, 2, 3, 5, 4, [(3, 2, 3, 5)], why=why + ", non-square"),
            _fcn_case(g, 8, 1, 1, 3, [(2, 8, 1, 1)], why=why + ", 1x1 features"),
            _fcn_case(g, 4, 2, 3, 2, [(1, 4, 2, 3)], dtype=torch.float64, why=why + ", float64"),
            _fcn_case(g, 1, 6, 6, 10, [(2, 1, 6, 6)], bias=False, why=why + ", no bias")]


def _fcn_larger(g, ref):
    why = "a larger input gives the coarse (N, K, H - h + 1, W - w + 1) heatmap"
    return [_fcn_case(g, 3, 4, 4, 5, [(2, 3, 9, 7)], why=why),
            _fcn_case(g, 2, 3, 5, 4, [(1, 2, 3, 5), (1, 2, 8, 12)], why=why + ", non-square kernel, both sizes with one conv"),
            _fcn_case(g, 4, 2, 2, 3, [(2, 4, 10, 10)], dtype=torch.float64, why=why + ", float64"),
            _fcn_case(g, 2, 3, 3, 2, [(1, 2, 5, 4)], bias=False, why=why + ", no bias")]


def _bilinear_values(g, ref):
    return [call("bilinear_kernel", c, k, label=f"bilinear_kernel({c}, {k}): upsampling by {k // 2}")
            for c, k in [(1, 4), (3, 4), (2, 8), (1, 16), (4, 12)]]


def _bilinear_behaviour(g, ref):
    cases = []
    for c, k in [(1, 4), (2, 8), (3, 4), (1, 12)]:
        rows = torch.arange(5, dtype=torch.float32).view(1, 1, 5, 1)
        cols = torch.arange(6, dtype=torch.float32).view(1, 1, 1, 6)
        slopes = randn(g, 2, c)
        image = slopes[0].view(1, c, 1, 1) * rows + slopes[1].view(1, c, 1, 1) * cols  # (1, c, 5, 6), a ramp per channel
        constant = round(float(torch.rand(1, generator=g)) * 4 + 0.5, 3)
        cases.append(Case(f"{_PROBES}:probe_bilinear_upsampling", (c, k, constant, image),
                          label=f"ConvTranspose2d({c}, {c}, {k}, stride={k // 2}, padding={k // 4}) with your weight, on a constant {constant} image and a 5x6 ramp",
                          assess=_assess_upsampling(k, image, constant)))
    return cases


def _labels(g, n, h, w, classes, agree=0.7):
    target = torch.randint(0, classes, (n, h, w), generator=g)
    noise = torch.randint(0, classes, (n, h, w), generator=g)
    pred = torch.where(torch.rand(n, h, w, generator=g) < agree, target, noise)
    return pred, target


def _ignored(g, target, value, fraction):
    mask = torch.rand(target.shape, generator=g) < fraction
    return torch.where(mask, torch.full_like(target, value), target)


def _accuracy_values(g, ref):
    pred, target = _labels(g, 2, 5, 6, 4)
    p2, t2 = _labels(g, 3, 4, 4, 2, agree=0.5)
    t3 = torch.randint(0, 3, (1, 3, 5), generator=g)
    return [call("pixel_accuracy", pred, target, label="2 images of 5x6, 4 classes, no ignore_index"),
            call("pixel_accuracy", p2, t2, label="3 images of 4x4, 2 classes"),
            call("pixel_accuracy", t3.clone(), t3, label="a perfect prediction: 1.0"),
            call("pixel_accuracy", (t3 + 1) % 3, t3, label="every pixel wrong: 0.0")]


def _accuracy_ignore(g, ref):
    pred, target = _labels(g, 3, 6, 5, 4)
    t_first = target.clone()
    t_first[0] = 255  # the first image ignored entirely: per-image averages would differ
    p2, t2 = _labels(g, 2, 4, 7, 3)
    return [call("pixel_accuracy", pred, _ignored(g, target, 255, 0.3), 255, label="ignore_index=255 on about 30% of the pixels"),
            call("pixel_accuracy", pred, t_first, 255, label="ignore_index=255, the first image entirely ignored"),
            call("pixel_accuracy", p2, _ignored(g, t2, -1, 0.4), -1, label="ignore_index=-1"),
            call("pixel_accuracy", p2, t2, 255, label="ignore_index=255 given but no pixel has it"),
            call("pixel_accuracy", p2, torch.full_like(t2, 255), 255, label="every pixel ignored: 0.0")]


def _miou_values(g, ref):
    pred, target = _labels(g, 2, 6, 6, 3)
    p2, t2 = _labels(g, 1, 8, 5, 4, agree=0.5)
    t3 = torch.randint(0, 4, (2, 3, 3), generator=g)
    p4 = t3.clone()
    p4[0, 0, 0] = 5  # class 5 appears only in pred: present, with IoU 0
    return [call("mean_iou", pred, target, 6, label="classes 0-2 used, num_classes=6: classes 3-5 absent from both are skipped"),
            call("mean_iou", p2, t2, 4, label="1 image of 8x5, 4 classes, half the pixels right"),
            call("mean_iou", t3.clone(), t3, 4, label="a perfect prediction: 1.0"),
            call("mean_iou", p4, t3, 7, label="class 5 only in pred (one pixel): present with IoU 0"),
            call("mean_iou", (t3 + 1) % 4, t3, 4, label="every pixel wrong: 0.0")]


def _miou_ignore(g, ref):
    pred, target = _labels(g, 2, 6, 5, 4)
    p2, t2 = _labels(g, 2, 5, 5, 3)
    t2_ignored = _ignored(g, t2, 255, 0.3)
    p2_only_there = torch.where(t2_ignored == 255, torch.full_like(p2, 3), p2)  # class 3 predicted only at ignored pixels
    return [call("mean_iou", pred, _ignored(g, target, 255, 0.3), 4, 255, label="ignore_index=255 on about 30% of the pixels"),
            call("mean_iou", p2_only_there, t2_ignored, 4, 255, label="class 3 predicted only at ignored pixels: not present"),
            call("mean_iou", pred, _ignored(g, target, -1, 0.5), 6, -1, label="ignore_index=-1, classes 4 and 5 absent"),
            call("mean_iou", pred, torch.full_like(target, 255), 4, 255, label="every pixel ignored: 0.0")]


_ACCURACY_PICTURE = Picture("confusion", inputs=(1, 2, 3))  # pred, target, ignore_index
_MIOU_PICTURE = Picture("confusion", inputs=(1, 2, 4, 3))  # pred, target, ignore_index, num_classes


CHECKS = [
    Check("fcn_original_size", "fully_convolutionalize", 3, _fcn_original, FCN_MISTAKES,
          "an nn.Conv2d with an (h, w) kernel whose output equals the linear layer's at the original size", Picture("maps", of="outputs")),
    Check("fcn_larger_input", "fully_convolutionalize", 2, _fcn_larger, FCN_MISTAKES,
          "on a larger input, the coarse heatmap", Picture("maps", of="outputs")),
    Check("bilinear_kernel_values", "bilinear_kernel", 2, _bilinear_values, BILINEAR_MISTAKES,
          "the FCN bilinear weights, channel-diagonal, float32", Picture("maps")),
    Check("bilinear_kernel_upsampling", "bilinear_kernel", 3, _bilinear_behaviour, BILINEAR_MISTAKES,
          "in a transposed convolution: a constant stays constant, a ramp stays a ramp, away from the border", Picture("maps", of="constant")),
    Check("pixel_accuracy_values", "pixel_accuracy", 2, _accuracy_values, ACCURACY_MISTAKES,
          "the fraction of correct pixels over the batch, as a float", _ACCURACY_PICTURE),
    Check("pixel_accuracy_ignore_index", "pixel_accuracy", 1, _accuracy_ignore, ACCURACY_MISTAKES,
          "ignored pixels left out of both counts; 0.0 when none is left", _ACCURACY_PICTURE),
    Check("mean_iou_values", "mean_iou", 3, _miou_values, MIOU_MISTAKES,
          "the mean over present classes, absent classes skipped", _MIOU_PICTURE),
    Check("mean_iou_ignore_index", "mean_iou", 2, _miou_ignore, MIOU_MISTAKES,
          "ignored pixels left out of intersections, unions and 'present'; 0.0 when none is left", _MIOU_PICTURE),
]
