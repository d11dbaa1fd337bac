"""Dense prediction: from a classifier to per-pixel labels, and how to score them (notes: Segmentation).

Semantic segmentation assigns a class label to every pixel. (The notes call semantic segmentation
"a subclass of instance segmentation"; it is the other way round: instance segmentation also
tells apart the objects of the same class, semantic segmentation treats them as one region.)

The most basic way to get a heatmap is to turn a classification network's fully-connected layer
into a convolution: a linear layer on flattened `(C, h, w)` features *is* a convolution with an
`h x w` kernel, so on a larger input it slides and yields a coarse map of class scores
(fully convolutionalization, as in FCN, Long et al. 2015; it is a way to get a coarse *semantic*
segmentation without training, not an instance segmentation). The coarse map is then upsampled
with a transposed convolution, which FCN initialises as bilinear interpolation and can train
from there.

Why each part matters:
- `fully_convolutionalize`: shows that "dense layer" and "convolution" differ only in how the
  weights are laid out, and why a classifier can become a (coarse) segmenter.
- `bilinear_kernel`: the weights that make a transposed convolution upsample smoothly.
- `pixel_accuracy`, `mean_iou`: the two standard scores; mean IoU is not fooled by a large
  background class the way pixel accuracy is.
"""

from __future__ import annotations

import torch
from torch import nn


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """`3 -> (3, 3)`, `(2, 1) -> (2, 1)`; raises `TypeError` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def fully_convolutionalize(linear: nn.Linear, in_channels: int, in_hw: tuple[int, int]) -> nn.Conv2d:
    """The convolution equivalent to a linear layer on flattened `(C, h, w)` features.

    Args:
        linear (nn.Linear): weight `(K, C * h * w)`, bias `(K,)` or None; it classifies
            `features.flatten(1)` for features of shape `(N, C, h, w)`.
        in_channels (int): C.
        in_hw ((h, w) or int): the feature size the linear layer was made for.

    Returns:
        nn.Conv2d(C, K, kernel_size=(h, w)), with the linear layer's weights (and bias, if any),
        on the linear layer's device and dtype. On an `(N, C, h, w)` input its output
        `(N, K, 1, 1)` equals `linear(x.flatten(1))`; on `(N, C, H, W)` it gives the coarse
        heatmap `(N, K, H - h + 1, W - w + 1)`. The linear layer is left unchanged.
    """
    h, w = _pair(in_hw, "in_hw")
    num_classes, in_features = linear.weight.shape
    if in_features != in_channels * h * w:
        raise ValueError(f"linear.in_features = {in_features} does not match in_channels * h * w = {in_channels} * {h} * {w}")
    conv = nn.Conv2d(in_channels, num_classes, kernel_size=(h, w), bias=linear.bias is not None,
                     device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        # flatten(1) orders the features channel first, then rows, then columns.
        conv.weight.copy_(linear.weight.reshape(num_classes, in_channels, h, w))  # (K, C, h, w)
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """FCN's bilinear-upsampling weight for `nn.ConvTranspose2d(channels, channels, kernel_size,
    stride=kernel_size // 2, padding=kernel_size // 4)`: an upsampling by `factor = kernel_size // 2`.

    The 2-D filter is the outer product of the 1-D tent `1 - |i - center| / factor` for
    `i = 0 .. kernel_size - 1`, with `center = factor - 0.5`; each channel is upsampled on its
    own (channel-diagonal: `weight[c, c] = filter`, zeros elsewhere). Away from the border it
    reproduces `F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)`.

    Args:
        channels (int): input = output channels (>= 1).
        kernel_size (int): a multiple of 4 (4 upsamples by 2, 8 by 4, ...).

    Returns:
        Tensor[channels, channels, kernel_size, kernel_size], float32.
    """
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 4 or kernel_size % 4:
        raise ValueError(f"kernel_size must be a positive multiple of 4, got {kernel_size!r}")
    factor = kernel_size // 2
    center = factor - 0.5
    taps = torch.arange(kernel_size, dtype=torch.float32)
    tent = 1 - (taps - center).abs() / factor  # (k,)
    filt = tent[:, None] * tent[None, :]  # (k, k)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    diag = torch.arange(channels)
    weight[diag, diag] = filt  # (channels, channels, k, k), channel-diagonal
    return weight


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> float:
    """The fraction of pixels whose predicted label equals the target.

    Args:
        pred (LongTensor[N, H, W]): predicted labels.
        target (LongTensor[N, H, W]): true labels.
        ignore_index (int or None): pixels where `target == ignore_index` are left out.

    Returns:
        float: correct pixels / counted pixels over the whole batch; 0.0 when no pixel is counted.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    counted = int(valid.sum())
    if counted == 0:
        return 0.0
    correct = int(((pred == target) & valid).sum())
    return correct / counted


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean intersection over union over the classes present.

    For class k, `IoU_k = |pred == k and target == k| / |pred == k or target == k|`, counted over
    the kept pixels of the whole batch. The mean is over the classes `0 .. num_classes - 1` that
    are present (in pred or target) among the kept pixels: a class absent from both is skipped,
    not counted as 0 or 1.

    Args:
        pred (LongTensor[N, H, W]), target (LongTensor[N, H, W]).
        num_classes (int): K.
        ignore_index (int or None): pixels where `target == ignore_index` are left out, both
            from the intersections and unions and from deciding which classes are present.

    Returns:
        float: the mean IoU; 0.0 when no pixel is left.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]  # (P,) each
    ious = []
    for k in range(num_classes):
        in_pred, in_target = pred == k, target == k
        union = int((in_pred | in_target).sum())
        if union:
            ious.append(int((in_pred & in_target).sum()) / union)
    return sum(ious) / len(ious) if ious else 0.0
