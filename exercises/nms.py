"""Box IoU and non-maximum suppression (notes: Object Detection).

A detector does not find an object once: the sliding window, the region proposals of R-CNN, the
anchors of Faster R-CNN's RPN all yield many overlapping boxes around the same object, each with
a score. *Non-maximum suppression* (NMS) keeps the highest-scoring box, drops every remaining box
that overlaps it by more than a threshold, and repeats with the best box left. The RPN uses it to
thin out its proposals, and every detector runs it, class by class, on its final detections.

Overlap is measured by the *intersection over union* (IoU) of two boxes `(x1, y1, x2, y2)`:
1 for identical boxes, 0 for boxes that do not overlap. Widths are `x2 - x1` (no `+ 1`: the
coordinates are continuous, not pixel indices). `box_area` and `box_iou` are the building blocks;
`box_iou` compares every box of one set with every box of the other at once, with broadcasting.
`batched_nms` is NMS within each category: a dog never suppresses a cat.

Write everything with tensor operations (a Python loop over the kept boxes is fine in `nms`);
`torchvision.ops` is forbidden here.
"""

from __future__ import annotations

import torch


def _check_boxes(boxes: torch.Tensor, name: str) -> None:
    """Raise `ValueError` unless `boxes` is a floating `(N, 4)` tensor."""
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 4), got {shape}")
    if not boxes.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {boxes.dtype}")


def _check_scores(scores: torch.Tensor, n: int, name: str) -> None:
    """Raise `ValueError` unless `scores` is a `(n,)` tensor."""
    if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or scores.shape[0] != n:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"{name} must be a tensor of shape ({n},), one value per box, got {shape}")


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of each box, like `torchvision.ops.box_area`.

    Args:
        boxes (Tensor[N, 4]): boxes `(x1, y1, x2, y2)` with `x2 >= x1` and `y2 >= y1`.

    Returns:
        Tensor[N]: `(x2 - x1) * (y2 - y1)`, in the dtype of `boxes`.
    """
    # TODO: your code here
    raise NotImplementedError("box_area")


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection over union, like `torchvision.ops.box_iou`.

    The IoU is 0, never NaN, where the union is 0 (two zero-area boxes).

    Args:
        boxes1 (Tensor[N, 4]): boxes `(x1, y1, x2, y2)`.
        boxes2 (Tensor[M, 4]): boxes `(x1, y1, x2, y2)`.

    Returns:
        Tensor[N, M]: entry `[i, j]` is the IoU of `boxes1[i]` and `boxes2[j]`, in `[0, 1]`.
    """
    # TODO: your code here
    raise NotImplementedError("box_iou")


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, like `torchvision.ops.nms`.

    Boxes are visited by decreasing score (equal scores: the lower index first). A box is kept
    unless its IoU with an already kept box is strictly greater than `iou_threshold`.

    Args:
        boxes (Tensor[N, 4]): boxes `(x1, y1, x2, y2)`.
        scores (Tensor[N]): one score per box.
        iou_threshold (float): boxes overlapping a kept box by more than this are dropped.

    Returns:
        Tensor[K] (int64): indices of the kept boxes, in decreasing score order.
    """
    # TODO: your code here
    raise NotImplementedError("nms")


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category independently, like `torchvision.ops.batched_nms`.

    Boxes of different categories never suppress each other, whatever their coordinates (they
    may be negative) and whatever the category ids (any integers).

    Args:
        boxes (Tensor[N, 4]): boxes `(x1, y1, x2, y2)`.
        scores (Tensor[N]): one score per box.
        idxs (Tensor[N]): integer category of each box.
        iou_threshold (float): as in `nms`.

    Returns:
        Tensor[K] (int64): indices of the kept boxes, in decreasing score order (equal scores:
        the lower index first), whatever their category.
    """
    # TODO: your code here
    raise NotImplementedError("batched_nms")
