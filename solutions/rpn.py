"""Anchors and the region proposal network of Faster R-CNN (notes: Object Detection).

R-CNN and Fast R-CNN take their regions of interest from an external algorithm (selective
search): Fast R-CNN shares one feature map among all regions and is trained end to end *given*
the regions, but does not learn where to look. Faster R-CNN replaces that algorithm with a small
network on the shared feature map, the *region proposal network* (RPN). At every feature-map
location it considers `A` reference boxes, the *anchors* (here 3 sizes x 3 aspect ratios), and
predicts for each one an objectness score and four offsets `(dx, dy, dw, dh)` that move and
stretch the anchor onto an object. The best few hundred boxes, after NMS, are the proposals.

The pieces, in the order the data flows:
- `generate_anchors` makes the `A` anchors centred at 0; `grid_anchors` copies them to every
  location of an `(H, W)` feature map, `stride` pixels apart (why: the feature map is the image
  downsampled `stride` times, so location `(i, j)` looks at pixel `(i * stride, j * stride)`).
- `encode_boxes` / `decode_boxes` convert between boxes and offsets relative to an anchor:
  the targets the RPN learns, and how its predictions become boxes.
- `RPNHead` is the network: a 3x3 conv, then two 1x1 convs for the scores and the offsets.
- `flatten_rpn_outputs` lines its outputs up with `grid_anchors`, one row per anchor.
- `rpn_proposals` turns them into proposals: the top scores, decoded, clipped to the image,
  tiny boxes removed, NMS, the best `post_nms_top_n` kept.

`rpn_proposals` needs NMS: reuse your `nms` from the nms exercise by copying it into this file as
a private helper (each exercise file is graded on its own). `torchvision` is forbidden here.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

IntOrPair = int | tuple[int, int]

BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # decode never lets an anchor grow more than 1000/16 = 62.5 times


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """`3 -> (3, 3)`, `(2, 1) -> (2, 1)`; raises `ValueError` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def _check_boxes(boxes: torch.Tensor, name: str) -> None:
    """Raise `ValueError` unless `boxes` is a floating `(N, 4)` tensor."""
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 4), got {shape}")
    if not boxes.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {boxes.dtype}")


def generate_anchors(
    sizes: tuple[float, ...] = (128, 256, 512),
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
) -> torch.Tensor:
    """The `A = len(aspect_ratios) * len(sizes)` anchors of one location, centred at 0.

    Exactly torchvision's `AnchorGenerator.generate_anchors`: an anchor of size `s` and aspect
    ratio `r = h / w` has `h = s * sqrt(r)` and `w = s / sqrt(r)` (so its area is `s**2`), and is
    `(-w/2, -h/2, w/2, h/2)`, rounded with `torch.round` (halves to even).

    Args:
        sizes (tuple of numbers): anchor sizes in pixels (the square root of the area).
        aspect_ratios (tuple of numbers): height / width ratios.

    Returns:
        Tensor[A, 4] (float32): ratio-major: all sizes of the first ratio, then the next ratio.
    """
    if len(sizes) == 0 or len(aspect_ratios) == 0:
        raise ValueError(f"need at least one size and one aspect ratio, got {sizes!r} and {aspect_ratios!r}")
    scales = torch.as_tensor(sizes, dtype=torch.float32)  # (S,)
    ratios = torch.as_tensor(aspect_ratios, dtype=torch.float32)  # (R,)
    if bool((scales <= 0).any()) or bool((ratios <= 0).any()):
        raise ValueError(f"sizes and aspect ratios must be positive, got {sizes!r} and {aspect_ratios!r}")
    h_ratios = torch.sqrt(ratios)  # (R,)
    w_ratios = 1 / h_ratios  # (R,)
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)  # (R * S,) ratio-major
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)  # (R * S,)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()  # (A, 4)


def grid_anchors(base_anchors: torch.Tensor, feature_size: tuple[int, int], stride: IntOrPair) -> torch.Tensor:
    """The base anchors copied to every location of a feature map.

    Location `(i, j)` (row `i`, column `j`) shifts every anchor by `(j * stride_w, i * stride_h)`
    in `(x, y)`, as torchvision's `AnchorGenerator.grid_anchors` does.

    Args:
        base_anchors (Tensor[A, 4]): anchors centred at 0, e.g. from `generate_anchors`.
        feature_size (tuple[int, int]): `(H, W)` of the feature map.
        stride: int or `(stride_h, stride_w)`: image pixels between neighbouring locations.

    Returns:
        Tensor[H * W * A, 4]: location-major, row by row; the `A` anchors of a location are
        consecutive. Row `(i * W + j) * A + a` is anchor `a` at location `(i, j)`.
    """
    _check_boxes(base_anchors, "base_anchors")
    h, w = _pair(feature_size, "feature_size")
    sh, sw = _pair(stride, "stride")
    if h < 1 or w < 1 or sh < 1 or sw < 1:
        raise ValueError(f"feature_size and stride must be positive, got {feature_size!r} and {stride!r}")
    shifts_x = torch.arange(w, device=base_anchors.device).to(base_anchors.dtype) * sw  # (W,)
    shifts_y = torch.arange(h, device=base_anchors.device).to(base_anchors.dtype) * sh  # (H,)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")  # (H, W) each
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)  # (H * W,) row by row
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1)  # (H * W, 4)
    return (shifts[:, None, :] + base_anchors[None, :, :]).reshape(-1, 4)  # (H * W * A, 4)


def _check_weights(weights: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The four weights as floats; raises `ValueError` unless there are four positive numbers."""
    if len(weights) != 4 or any(float(v) <= 0 for v in weights):
        raise ValueError(f"weights must be four positive numbers (wx, wy, ww, wh), got {weights!r}")
    return tuple(float(v) for v in weights)  # type: ignore[return-value]


def encode_boxes(
    gt: torch.Tensor,
    anchors: torch.Tensor,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> torch.Tensor:
    """The offsets `(dx, dy, dw, dh)` that move each anchor onto its box, like torchvision's
    `BoxCoder.encode_single`.

    With centres `(x, y)` and sizes `(w, h)` (`w = x2 - x1`, no `+ 1`), anchor `a`, box `g`:
    `dx = wx * (g_x - a_x) / a_w`, `dy = wy * (g_y - a_y) / a_h`, `dw = ww * log(g_w / a_w)`,
    `dh = wh * log(g_h / a_h)`.

    Args:
        gt (Tensor[N, 4]): target boxes `(x1, y1, x2, y2)`, one per anchor.
        anchors (Tensor[N, 4]): the anchors (or proposals) `(x1, y1, x2, y2)`.
        weights (tuple of 4 floats): `(wx, wy, ww, wh)`, scaling the offsets.

    Returns:
        Tensor[N, 4]: the offsets, in the dtype of the inputs.
    """
    _check_boxes(gt, "gt")
    _check_boxes(anchors, "anchors")
    if gt.shape != anchors.shape:
        raise ValueError(f"gt and anchors must have the same shape, got {tuple(gt.shape)} and {tuple(anchors.shape)}")
    wx, wy, ww, wh = _check_weights(weights)
    a_w = anchors[:, 2] - anchors[:, 0]  # (N,)
    a_h = anchors[:, 3] - anchors[:, 1]  # (N,)
    a_x = anchors[:, 0] + 0.5 * a_w  # (N,)
    a_y = anchors[:, 1] + 0.5 * a_h  # (N,)
    g_w = gt[:, 2] - gt[:, 0]  # (N,)
    g_h = gt[:, 3] - gt[:, 1]  # (N,)
    g_x = gt[:, 0] + 0.5 * g_w  # (N,)
    g_y = gt[:, 1] + 0.5 * g_h  # (N,)
    dx = wx * (g_x - a_x) / a_w
    dy = wy * (g_y - a_y) / a_h
    dw = ww * torch.log(g_w / a_w)
    dh = wh * torch.log(g_h / a_h)
    return torch.stack([dx, dy, dw, dh], dim=1)  # (N, 4)


def decode_boxes(
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> torch.Tensor:
    """The boxes that offsets `(dx, dy, dw, dh)` make of anchors: the inverse of `encode_boxes`,
    like torchvision's `BoxCoder.decode_single`.

    The offsets are first divided by the weights; then `dw` and `dh` are clamped from above at
    `log(1000 / 16)`, so that `exp` cannot blow a box up to infinity (there is no lower clamp).

    Args:
        deltas (Tensor[N, 4]): offsets `(dx, dy, dw, dh)`, one row per anchor.
        anchors (Tensor[N, 4]): the anchors `(x1, y1, x2, y2)`.
        weights (tuple of 4 floats): `(wx, wy, ww, wh)`, as given to `encode_boxes`.

    Returns:
        Tensor[N, 4]: boxes `(x1, y1, x2, y2)`, in the dtype of the inputs.
    """
    _check_boxes(deltas, "deltas")
    _check_boxes(anchors, "anchors")
    if deltas.shape != anchors.shape:
        raise ValueError(f"deltas and anchors must have the same shape, got {tuple(deltas.shape)} and {tuple(anchors.shape)}")
    wx, wy, ww, wh = _check_weights(weights)
    a_w = anchors[:, 2] - anchors[:, 0]  # (N,)
    a_h = anchors[:, 3] - anchors[:, 1]  # (N,)
    a_x = anchors[:, 0] + 0.5 * a_w  # (N,)
    a_y = anchors[:, 1] + 0.5 * a_h  # (N,)
    dx = deltas[:, 0] / wx
    dy = deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (deltas[:, 3] / wh).clamp(max=BBOX_XFORM_CLIP)
    x = dx * a_w + a_x  # (N,) centres
    y = dy * a_h + a_y
    half_w = 0.5 * torch.exp(dw) * a_w  # (N,) half sizes
    half_h = 0.5 * torch.exp(dh) * a_h
    return torch.stack([x - half_w, y - half_h, x + half_w, y + half_h], dim=1)  # (N, 4)


class RPNHead(nn.Module):
    """The RPN's network: at every location, one objectness logit and 4 offsets per anchor.

    Like torchvision's `RPNHead` on one feature map: a 3x3 conv (with a ReLU) shared by both
    heads, then two 1x1 convs.

    Args:
        in_channels (int): channels of the feature map.
        num_anchors (int): `A`, the anchors per location.
    """

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, kernel_size=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)  # torchvision's initialisation
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and offsets of every anchor of every location.

        Args:
            features (Tensor[N, C, H, W]): the backbone's feature map.

        Returns:
            (objectness, deltas): Tensor[N, A, H, W] logits and Tensor[N, 4A, H, W] offsets,
            where channel `4a + j` of `deltas` is coordinate `j` of anchor `a`.
        """
        hidden = F.relu(self.conv(features))  # (N, C, H, W)
        return self.cls_logits(hidden), self.bbox_pred(hidden)  # (N, A, H, W), (N, 4A, H, W)


def flatten_rpn_outputs(objectness: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The RPN's outputs with one row per anchor, in the order of `grid_anchors`.

    Args:
        objectness (Tensor[N, A, H, W]): logits from `RPNHead`.
        deltas (Tensor[N, 4A, H, W]): offsets from `RPNHead`; channel `4a + j` is coordinate `j`
            of anchor `a`.

    Returns:
        (scores, deltas): Tensor[N, H*W*A] and Tensor[N, H*W*A, 4]; entry `(i * W + j) * A + a`
        belongs to anchor `a` at location `(i, j)`, the row of `grid_anchors` with that anchor.
    """
    if objectness.dim() != 4 or deltas.dim() != 4:
        raise ValueError(f"expected objectness (N, A, H, W) and deltas (N, 4A, H, W), got {tuple(objectness.shape)} and {tuple(deltas.shape)}")
    n, a, h, w = objectness.shape
    if tuple(deltas.shape) != (n, 4 * a, h, w):
        raise ValueError(f"deltas must have shape {(n, 4 * a, h, w)} for objectness {tuple(objectness.shape)}, got {tuple(deltas.shape)}")
    scores = objectness.permute(0, 2, 3, 1).reshape(n, -1)  # (N, H, W, A) -> (N, H*W*A)
    deltas = deltas.view(n, a, 4, h, w)  # (N, A, 4, H, W)
    deltas = deltas.permute(0, 3, 4, 1, 2).reshape(n, -1, 4)  # (N, H, W, A, 4) -> (N, H*W*A, 4)
    return scores, deltas


def rpn_proposals(
    scores: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    pre_nms_top_n: int = 1000,
    post_nms_top_n: int = 100,
    nms_thresh: float = 0.7,
    min_size: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The proposals of one image, like torchvision's `RegionProposalNetwork.filter_proposals`.

    1. keep the `pre_nms_top_n` anchors with the highest scores (equal scores: lower index first);
    2. decode their offsets with `decode_boxes` (default weights);
    3. clip the boxes to the image: x to `[0, W]`, y to `[0, H]`;
    4. drop boxes whose width or height is below `min_size`;
    5. NMS with `nms_thresh` on the scores, and keep the first `post_nms_top_n`.

    Args:
        scores (Tensor[K]): objectness logits, one per anchor.
        deltas (Tensor[K, 4]): predicted offsets, one row per anchor.
        anchors (Tensor[K, 4]): the anchors, e.g. from `grid_anchors`.
        image_size (tuple[int, int]): `(H, W)` of the image, in pixels.
        pre_nms_top_n (int): how many of the best anchors to decode.
        post_nms_top_n (int): how many proposals to return at most.
        nms_thresh (float): the IoU threshold of the NMS.
        min_size (float): the smallest width and height a proposal may have.

    Returns:
        (boxes, probs): Tensor[P, 4] proposals and Tensor[P] their `sigmoid(score)`, by
        decreasing probability, with `P <= post_nms_top_n`.
    """
    _check_boxes(deltas, "deltas")
    _check_boxes(anchors, "anchors")
    if scores.dim() != 1 or not scores.shape[0] == deltas.shape[0] == anchors.shape[0]:
        raise ValueError(f"expected scores (K,), deltas (K, 4), anchors (K, 4), got {tuple(scores.shape)}, {tuple(deltas.shape)}, {tuple(anchors.shape)}")
    height, width = _pair(image_size, "image_size")
    order = torch.sort(scores, descending=True, stable=True).indices[:pre_nms_top_n]  # (K',)
    scores = scores[order]  # (K',) decreasing
    boxes = decode_boxes(deltas[order], anchors[order])  # (K', 4)
    boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                         boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], dim=1)  # (K', 4)
    big = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)  # (K',)
    boxes, scores = boxes[big], scores[big]  # (K'', 4), (K'',) still by decreasing score
    # NMS, as in the nms exercise; the boxes are already in order.
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (K'',)
    top_left = torch.max(boxes[:, None, :2], boxes[None, :, :2])  # (K'', K'', 2)
    bottom_right = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])  # (K'', K'', 2)
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)  # (K'', K'')
    union = area[:, None] + area[None, :] - inter  # (K'', K''), > 0: the boxes have an area
    overlaps = inter / union > nms_thresh  # (K'', K'') bool
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)  # (K'',)
    keep = []
    for i in range(boxes.shape[0]):
        if len(keep) == post_nms_top_n:
            break
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    keep_idx = torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (P,)
    return boxes[keep_idx], torch.sigmoid(scores[keep_idx])  # (P, 4), (P,)
