"""Hidden checks for `nms`: box areas, pairwise IoU, greedy NMS and NMS per category."""

from __future__ import annotations

import torch

from grader.checks import call, dtype_name, random_boxes
from grader.engine.spec import Check, Mistake

_SECTION = "Object Detection"

# The published example: the first three boxes against themselves and a small box in the corner.
_PUBLISHED = [[0.0, 0.0, 100.0, 100.0], [0.0, 0.0, 50.0, 50.0], [200.0, 200.0, 300.0, 300.0], [0.0, 0.0, 25.0, 25.0]]


def _stretched(box: torch.Tensor, iou: float) -> torch.Tensor:
    """`box` with x2 moved right so that its IoU with `box` is `iou` (torchvision's test recipe)."""
    out = box.clone()
    out[2] += (box[2] - box[0]) * (1 - iou) / iou
    return out


def _near_threshold_set(g: torch.Generator, n: int, thresh: float, dtype: torch.dtype, margin: float,
                        pairs: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Random boxes and scores where `pairs` boxes are stretched copies of others, with IoUs
    alternately `margin` above and below `thresh`: the ones above must go, the others stay."""
    boxes = random_boxes(g, n, dtype=torch.float64)
    for k in range(pairs):
        target = thresh + margin if k % 2 == 0 else thresh - margin
        boxes[n - 1 - k] = _stretched(boxes[k], target)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    return boxes.to(dtype), scores.to(dtype)


def _quantized_scores(g: torch.Generator, n: int, dtype: torch.dtype, levels: int = 5) -> torch.Tensor:
    """Scores from only `levels` values, so that many are equal."""
    return (torch.randint(0, levels, (n,), generator=g).to(dtype) / levels)


# --- known mistakes -------------------------------------------------------------------------------
def _area_plus_one(ref):
    def box_area(boxes):
        return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)

    return {"box_area": box_area}


def _iou_from(inter_fn, union_fn=None):
    """A `box_iou` mistake built from a wrong intersection (and optionally a wrong denominator)."""

    def build(ref):
        def box_iou(boxes1, boxes2):
            area1, area2 = ref.box_area(boxes1), ref.box_area(boxes2)
            inter = inter_fn(boxes1, boxes2)
            denom = (union_fn or (lambda a1, a2, i: a1[:, None] + a2[None, :] - i))(area1, area2, inter)
            return inter / denom

        return {"box_iou": box_iou}

    return build


def _clamped_inter(b1, b2):
    wh = (torch.min(b1[:, None, 2:], b2[None, :, 2:]) - torch.max(b1[:, None, :2], b2[None, :, :2])).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def _unclamped_inter(b1, b2):
    wh = torch.min(b1[:, None, 2:], b2[None, :, 2:]) - torch.max(b1[:, None, :2], b2[None, :, :2])
    return wh[..., 0] * wh[..., 1]


def _iou_plus_one(ref):
    def box_iou(boxes1, boxes2):
        def area(b):
            return (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)

        wh = (torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.max(boxes1[:, None, :2], boxes2[None, :, :2]) + 1).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        return inter / (area(boxes1)[:, None] + area(boxes2)[None, :] - inter)

    return {"box_iou": box_iou}


def _nms_from(order_fn=None, drop_fn=None, final_fn=None, suppressed_suppress=False):
    """An `nms` mistake: a wrong visiting order, a wrong drop test, a wrong final order, or
    suppressed boxes that still suppress others."""

    def build(ref):
        def nms(boxes, scores, iou_threshold):
            if boxes.shape[0] == 0:
                return torch.empty(0, dtype=torch.int64)
            order = (order_fn or (lambda s: torch.sort(s, descending=True, stable=True).indices))(scores)
            iou = ref.box_iou(boxes, boxes)
            drops = (drop_fn or (lambda v, t: v > t))(iou, iou_threshold)
            suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool)
            keep = []
            for i in order.tolist():
                if not suppressed[i]:
                    keep.append(i)
                if suppressed_suppress or not suppressed[i]:
                    suppressed |= drops[i]
            out = torch.tensor(keep, dtype=torch.int64)
            return final_fn(out) if final_fn else out

        return {"nms": nms}

    return build


def _batched_ignores_categories(ref):
    return {"batched_nms": lambda boxes, scores, idxs, iou_threshold: ref.nms(boxes, scores, iou_threshold)}


def _batched_grouped(resort: bool):
    def build(ref):
        def batched_nms(boxes, scores, idxs, iou_threshold):
            parts = [torch.empty(0, dtype=torch.int64)]
            for c in torch.unique(idxs).tolist():
                members = torch.nonzero(idxs == c).flatten()
                parts.append(members[ref.nms(boxes[members], scores[members], iou_threshold)])
            kept = torch.cat(parts)
            if resort:
                kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices]
            return kept

        return {"batched_nms": batched_nms}

    return build


AREA_MISTAKES = (
    Mistake("width-plus-one", "Widths were computed as x2 - x1 + 1 (the old pixel-index convention); box coordinates here are continuous, so the width is x2 - x1.", _area_plus_one, _SECTION),
)

IOU_MISTAKES = (
    # The NaN mistake first: where a union is 0, the other mistakes give NaN too.
    Mistake("iou-nan-when-union-is-zero", "Two zero-area boxes have union 0 and your IoU is 0 / 0 = NaN; the contract says 0 there (divide by 1 where the union is 0).", _iou_from(_clamped_inter), _SECTION, subsection="Intersection over union"),
    Mistake("intersection-not-clamped", "The intersection's width and height are not clamped at 0: for boxes that do not overlap, the two negative sides multiply into a positive 'intersection'. Use (bottom_right - top_left).clamp(min=0).", _iou_from(_unclamped_inter), _SECTION, subsection="Intersection over union"),
    Mistake("iou-width-plus-one", "Widths and heights were computed with + 1 (the old pixel-index convention); here the width is x2 - x1.", _iou_plus_one, _SECTION),
    Mistake("union-counts-intersection-twice", "The union is area1 + area2: the intersection is counted twice, subtract it once.", _iou_from(_clamped_inter, lambda a1, a2, i: a1[:, None] + a2[None, :]), _SECTION, subsection="Intersection over union"),
    Mistake("intersection-over-smaller-box", "You divided the intersection by the smaller box's area; IoU divides by the area of the union.", _iou_from(_clamped_inter, lambda a1, a2, i: torch.min(a1[:, None], a2[None, :])), _SECTION, subsection="Intersection over union"),
)

NMS_MISTAKES = (
    Mistake("nms-greater-or-equal", "A box with IoU exactly equal to the threshold was dropped: the contract drops only IoU strictly greater than the threshold (> not >=).", _nms_from(drop_fn=lambda v, t: v >= t), _SECTION, subsection="Non-maximum suppression"),
    Mistake("nms-index-order", "The kept indices come back sorted by index; they must be in decreasing score order (the best box first).", _nms_from(final_fn=lambda keep: keep.sort().values), _SECTION),
    Mistake("nms-lowest-score-first", "The boxes were visited from the lowest score up (torch.sort is ascending by default): NMS starts from the best box.", _nms_from(order_fn=lambda s: torch.sort(s, stable=True).indices), _SECTION, subsection="Non-maximum suppression"),
    Mistake("nms-ties-higher-index-first", "Equal scores are visited higher index first (an ascending sort flipped?); with equal scores the lower index comes first: use torch.sort(scores, descending=True, stable=True).", _nms_from(order_fn=lambda s: torch.sort(s, stable=True).indices.flip(0)), _SECTION),
    Mistake("nms-suppressed-boxes-suppress", "A box that was already suppressed still suppressed the boxes it overlaps; only kept boxes suppress others.", _nms_from(suppressed_suppress=True), _SECTION, subsection="Non-maximum suppression"),
)

BATCHED_MISTAKES = (
    Mistake("batched-nms-ignores-categories", "Boxes of different categories suppressed each other: batched_nms runs NMS within each category separately.", _batched_ignores_categories, _SECTION, subsection="Non-maximum suppression"),
    Mistake("batched-nms-grouped-by-category", "The kept boxes come back category by category; the result must be sorted by decreasing score over all categories.", _batched_grouped(False), _SECTION),
    Mistake("batched-nms-ties-by-category", "Equal scores are ordered by category, not by index: sort all kept indices by score with a stable sort, starting from increasing index.", _batched_grouped(True), _SECTION),
)


# --- cases --------------------------------------------------------------------------------------
def _area_cases(g, ref):
    published = torch.tensor(_PUBLISHED)
    degenerate = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0], [2.0, 3.0, 7.0, 3.0], [0.5, 0.5, 2.0, 4.0]], dtype=torch.float64)
    return [
        call("box_area", published, label="the published boxes [[0,0,100,100],[0,0,50,50],[200,200,300,300],[0,0,25,25]]"),
        call("box_area", random_boxes(g, 7), label="7 random float32 boxes"),
        call("box_area", random_boxes(g, 5, dtype=torch.float64, min_size=0.1, max_size=3.0), grad=True,
             label="5 random small float64 boxes (sides below 3), gradients too"),
        call("box_area", degenerate, label="zero-area boxes (a point, vertical and horizontal lines) and one ordinary box, float64"),
        call("box_area", torch.zeros(0, 4), label="no boxes: shape (0, 4)"),
    ]


def _iou_published(g, ref):
    b = torch.tensor(_PUBLISHED)
    return [
        call("box_iou", b, b[:3], label="the published boxes (4) against the first three: expected [[1,0.25,0],[0.25,1,0],[0,0,1],[0.0625,0.25,0]]"),
        call("box_iou", b[:3], b, label="the first three published boxes against all four (the transposed matrix)"),
    ]


def _iou_random(g, ref):
    return [
        call("box_iou", random_boxes(g, 6, extent=10, min_size=1, max_size=6), random_boxes(g, 5, extent=10, min_size=1, max_size=6),
             label="6 x 5 random float32 boxes, some overlapping"),
        call("box_iou", random_boxes(g, 3, dtype=torch.float64, extent=10, min_size=1, max_size=6),
             random_boxes(g, 8, dtype=torch.float64, extent=10, min_size=1, max_size=6),
             label="3 x 8 random float64 boxes"),
        call("box_iou", random_boxes(g, 4, dtype=torch.float64, extent=8, min_size=2, max_size=6),
             random_boxes(g, 5, dtype=torch.float64, extent=8, min_size=2, max_size=6), grad=True,
             label="4 x 5 random float64 boxes, gradients w.r.t. both sets"),
    ]


def _iou_no_overlap(g, ref):
    unit = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    return [
        call("box_iou", unit, torch.tensor([[2.0, 2.0, 3.0, 3.0], [-3.0, -2.0, -1.0, -0.5]]),
             label="boxes disjoint along both x and y (up-right and down-left of [0,0,1,1]): IoU 0"),
        call("box_iou", unit, torch.tensor([[2.0, 0.0, 3.0, 1.0], [0.25, 1.5, 0.75, 2.0]]),
             label="boxes disjoint along one axis only (beside and above [0,0,1,1]): IoU 0"),
        call("box_iou", unit, torch.tensor([[1.0, 0.0, 2.0, 1.0], [1.0, 1.0, 2.0, 2.0], [0.0, -1.0, 1.0, 0.0]]),
             label="boxes touching [0,0,1,1] along an edge or at a corner: IoU 0"),
        call("box_iou", torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 5.0, 5.0]], dtype=torch.float64),
             torch.tensor([[2.0, 2.0, 5.0, 5.0], [4.0, 1.0, 6.0, 12.0]], dtype=torch.float64),
             label="nested boxes ([2,2,5,5] inside [0,0,10,10]) and a box crossing both, float64"),
    ]


def _iou_degenerate(g, ref):
    return [
        call("box_iou", torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0]]),
             torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 5.0], [0.0, 0.0, 0.0, 5.0], [2.0, 2.0, 4.0, 4.0]]),
             label="zero-area boxes (a point and a line) against the same point, a box, the same line and a box apart: union 0 gives IoU 0, never NaN"),
        call("box_iou", torch.zeros(0, 4), random_boxes(g, 3), label="no boxes in boxes1: shape (0, 4) against (3, 4)"),
        call("box_iou", random_boxes(g, 2, dtype=torch.float64), torch.zeros(0, 4, dtype=torch.float64),
             label="no boxes in boxes2: (2, 4) against (0, 4), float64"),
    ]


def _nms_near_threshold(g, ref):
    configs = [(30, 0.5, torch.float32), (50, 0.7, torch.float32), (40, 0.3, torch.float64),
               (20, 0.9, torch.float32), (60, 0.5, torch.float64)]
    cases = []
    for n, thresh, dtype in configs:
        margin = 1e-4 if dtype == torch.float32 else 1e-7
        boxes, scores = _near_threshold_set(g, n, thresh, dtype, margin)
        cases.append(call("nms", boxes, scores, thresh,
                          label=f"{n} random {dtype_name(dtype)} boxes, threshold {thresh}; 4 of them stretched copies of others with IoU {thresh} +- {margin:g}"))
    return cases


def _nms_exact_and_ties(g, ref):
    pair = torch.tensor([[0.0, 0.0, 3.0, 1.0], [1.0, 0.0, 4.0, 1.0], [10.0, 0.0, 14.0, 1.0], [11.0, 0.0, 14.0, 1.0]])
    # IoU(0, 1) = 2/4 = 0.5 exactly; IoU(2, 3) = 3/4 = 0.75 exactly.
    overlapping_ties = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0], [1.0, 0.0, 11.0, 10.0], [21.0, 1.0, 31.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    return [
        call("nms", pair, torch.tensor([0.9, 0.8, 0.7, 0.6]), 0.5,
             label="IoU(box 0, box 1) is exactly 0.5 = the threshold: both stay; IoU(2, 3) = 0.75 > 0.5: box 3 goes"),
        call("nms", pair.double(), torch.tensor([0.6, 0.7, 0.8, 0.9], dtype=torch.float64), 0.75,
             label="IoU(2, 3) is exactly 0.75 = the threshold: both stay, float64"),
        call("nms", overlapping_ties, torch.tensor([0.5, 0.5, 0.5, 0.5, 0.9]), 0.5,
             label="equal scores 0.5 for boxes 0-3 (0 and 2 overlap, 1 and 3 overlap): the lower index wins and comes first"),
        call("nms", random_boxes(g, 25), torch.full((25,), 0.3), 0.4,
             label="25 random boxes, all with the same score: visited by increasing index"),
        call("nms", overlapping_ties.double(), _quantized_scores(g, 5, torch.float64, levels=2), 0.3,
             label="scores from only two values, float64"),
    ]


def _nms_edge_cases(g, ref):
    same = torch.tensor([[5.0, 5.0, 15.0, 25.0]]).repeat(6, 1)
    return [
        call("nms", torch.zeros(0, 4), torch.zeros(0), 0.5, label="no boxes: (0, 4) boxes, (0,) scores -> an empty int64 tensor"),
        call("nms", torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([0.1]), 0.5, label="a single box"),
        call("nms", same, torch.rand(6, generator=g), 0.5, label="6 identical boxes with random scores: only the best stays"),
        call("nms", same.double(), torch.full((6,), 0.25, dtype=torch.float64), 0.99, label="6 identical boxes with equal scores, threshold 0.99: only box 0 stays"),
        call("nms", random_boxes(g, 12), torch.rand(12, generator=g), 1.0, label="12 random boxes, threshold 1.0: nothing is suppressed, all come back by decreasing score"),
        call("nms", random_boxes(g, 15, extent=200), torch.rand(15, generator=g), 0.0, label="15 random boxes, threshold 0.0: any overlap at all suppresses"),
        call("nms", torch.tensor([[2.0, 2.0, 2.0, 2.0]]).repeat(3, 1), torch.tensor([0.2, 0.9, 0.5]), 0.5,
             label="3 identical zero-area boxes: their IoU is 0, so all stay, by decreasing score"),
    ]


def _batched_categories(g, ref):
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    boxes, scores = _near_threshold_set(g, 40, 0.5, torch.float64, 1e-3)
    return [
        call("batched_nms", box.repeat(4, 1), torch.tensor([0.3, 0.9, 0.6, 0.8]), torch.tensor([0, 1, 2, 1]), 0.5,
             label="4 identical boxes in categories [0, 1, 2, 1]: one per category stays"),
        call("batched_nms", random_boxes(g, 30), torch.rand(30, generator=g), torch.randint(0, 3, (30,), generator=g), 0.5,
             label="30 random boxes in 3 categories, threshold 0.5"),
        call("batched_nms", boxes, scores, torch.randint(0, 2, (40,), generator=g), 0.5,
             label="40 random float64 boxes in 2 categories, with pairs at IoU 0.5 +- 0.001"),
    ]


def _batched_many(g, ref):
    n = 90
    boxes = random_boxes(g, n, extent=60)
    cats = torch.randint(0, 30, (n,), generator=g) * 37  # 30 categories, not 0..29
    return [
        call("batched_nms", boxes, torch.rand(n, generator=g), cats, 0.3,
             label="90 random boxes in 30 categories numbered 0, 37, 74, ..., threshold 0.3"),
        call("batched_nms", boxes.double(), _quantized_scores(g, n, torch.float64), cats, 0.5,
             label="the same 90 boxes in float64 with scores from 5 values: equal scores across categories, lower index first"),
        call("batched_nms", random_boxes(g, 50, extent=40), _quantized_scores(g, 50, torch.float32, levels=3),
             torch.randint(0, 12, (50,), generator=g), 0.4,
             label="50 crowded boxes in 12 categories, scores from 3 values, threshold 0.4"),
    ]


def _batched_edge_cases(g, ref):
    boxes = random_boxes(g, 20, extent=50)
    scores = torch.rand(20, generator=g)
    return [
        call("batched_nms", torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5,
             label="no boxes: an empty int64 tensor"),
        call("batched_nms", boxes, scores, torch.zeros(20, dtype=torch.int64), 0.5,
             label="20 random boxes all in category 0: the same as nms"),
        call("batched_nms", boxes, scores, torch.arange(20), 0.5,
             label="20 random boxes each in its own category: none is suppressed"),
        call("batched_nms", torch.tensor([[1.0, 1.0, 4.0, 5.0]]), torch.tensor([0.5]), torch.tensor([3]), 0.5,
             label="a single box"),
    ]


CHECKS = [
    Check("box_area_values", "box_area", 2, _area_cases, AREA_MISTAKES,
          "areas of the published, random, zero-area and empty box sets, gradients included"),
    Check("box_iou_published", "box_iou", 1, _iou_published, IOU_MISTAKES,
          "the published 4 x 3 IoU matrix and its transpose"),
    Check("box_iou_random", "box_iou", 2, _iou_random, IOU_MISTAKES,
          "random boxes in float32 and float64, gradients included"),
    Check("box_iou_no_overlap", "box_iou", 2, _iou_no_overlap, IOU_MISTAKES,
          "disjoint, touching and nested boxes"),
    Check("box_iou_degenerate", "box_iou", 1, _iou_degenerate, IOU_MISTAKES,
          "zero-area boxes (IoU 0, never NaN) and empty sets"),
    Check("nms_near_threshold", "nms", 4, _nms_near_threshold, NMS_MISTAKES,
          "random sets with pairs just above and just below the threshold, several thresholds, float32 and float64"),
    Check("nms_exact_threshold_and_ties", "nms", 3, _nms_exact_and_ties, NMS_MISTAKES,
          "IoU equal to the threshold keeps both boxes; equal scores keep the lower index first"),
    Check("nms_edge_cases", "nms", 3, _nms_edge_cases, NMS_MISTAKES,
          "empty input, one box, identical boxes, thresholds 0 and 1; int64 indices by decreasing score"),
    Check("batched_nms_categories", "batched_nms", 2, _batched_categories, BATCHED_MISTAKES,
          "boxes of different categories never suppress each other"),
    Check("batched_nms_many_categories", "batched_nms", 2, _batched_many, BATCHED_MISTAKES,
          "many categories, equal scores across categories"),
    Check("batched_nms_edge_cases", "batched_nms", 1, _batched_edge_cases, BATCHED_MISTAKES,
          "empty input, a single category, one box per category, a single box"),
]
