"""Hidden checks for `nms`: box areas, pairwise IoU, greedy NMS and NMS per category."""

from __future__ import annotations

import torch

from grader.checks import call, dtype_name, random_boxes
from grader.engine.spec import Check, Mistake, Picture

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
def _area_variant(area_fn):
    """A `box_area` mistake; `box_iou` keeps the reference's own areas (it is graded on its own)."""
    return lambda ref: {"box_area": area_fn}


def _area_plus_one(boxes):
    return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)


def _area_xywh(boxes):
    return boxes[:, 2] * boxes[:, 3]


def _area_keepdim(boxes):
    return (boxes[:, 2:3] - boxes[:, 0:1]) * (boxes[:, 3:4] - boxes[:, 1:2])  # (N, 1)


def _area_float32(boxes):
    return ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).float()


def _area_detached(boxes):
    return ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).detach()


def _area_xxyy(boxes):
    return (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])


def _iou_from(inter_fn, union_fn=None, guarded=True):
    """A `box_iou` mistake built from a wrong intersection (and optionally a wrong denominator),
    dividing by 1 where the denominator is not positive as the reference does (unless not `guarded`)."""

    def build(ref):
        def box_iou(boxes1, boxes2):
            area1, area2 = ref.box_area(boxes1), ref.box_area(boxes2)
            inter = inter_fn(boxes1, boxes2)
            denom = (union_fn or (lambda a1, a2, i: a1[:, None] + a2[None, :] - i))(area1, area2, inter)
            return inter / (torch.where(denom > 0, denom, torch.ones_like(denom)) if guarded else denom)

        return {"box_iou": box_iou}

    return build


def _clamped_inter(b1, b2):
    wh = (torch.min(b1[:, None, 2:], b2[None, :, 2:]) - torch.max(b1[:, None, :2], b2[None, :, :2])).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def _unclamped_inter(b1, b2):
    wh = torch.min(b1[:, None, 2:], b2[None, :, 2:]) - torch.max(b1[:, None, :2], b2[None, :, :2])
    return wh[..., 0] * wh[..., 1]


def _corners_swapped_inter(b1, b2):
    wh = torch.max(b1[:, None, 2:], b2[None, :, 2:]) - torch.min(b1[:, None, :2], b2[None, :, :2])
    return wh[..., 0] * wh[..., 1]


def _iou_plus_one_matrix(boxes1, boxes2):
    """IoU in the old pixel-index convention (py_cpu_nms): every width and height + 1."""

    def area(b):
        return (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)

    wh = (torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:]) - torch.max(boxes1[:, None, :2], boxes2[None, :, :2]) + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area(boxes1)[:, None] + area(boxes2)[None, :] - inter)


def _nms_from(order_fn=None, drop_fn=None, final_fn=None, suppressed_suppress=False, iou_fn=None, top_k=None,
              positions=False):
    """An `nms` mistake: a wrong visiting order, a wrong drop test, a wrong final order, suppressed
    boxes that still suppress others, its own IoU, only the `top_k` best boxes considered, or
    positions in the sorted order returned instead of indices."""

    def build(ref):
        def nms(boxes, scores, iou_threshold):
            if boxes.shape[0] == 0:
                return torch.empty(0, dtype=torch.int64)
            order = (order_fn or (lambda s: torch.sort(s, descending=True, stable=True).indices))(scores)
            if top_k is not None:
                order = order[:top_k]
            iou = (iou_fn or ref.box_iou)(boxes, boxes)
            drops = (drop_fn or (lambda v, t: v > t))(iou, iou_threshold)
            suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool)
            keep = []
            for position, i in enumerate(order.tolist()):
                if not suppressed[i]:
                    keep.append(position if positions else i)
                if suppressed_suppress or not suppressed[i]:
                    suppressed |= drops[i]
            out = torch.tensor(keep, dtype=torch.int64)
            return final_fn(out, boxes) if final_fn else out

        return {"nms": nms}

    return build


def _batched_ignores_categories(ref):
    return {"batched_nms": lambda boxes, scores, idxs, iou_threshold: ref.nms(boxes, scores, iou_threshold)}


def _batched_per_category(categories=lambda idxs: torch.unique(idxs).tolist(), local=False, merge="mask"):
    """A `batched_nms` that runs `nms` category by category, over the wrong categories or with the
    kept indices left local to each category, and merges the kept indices:
    "mask" as the reference does (equal scores: lower index first), "concat" category after
    category, or "concat-sorted" category after category and then sorted by score (equal
    scores: category order)."""

    def build(ref):
        def batched_nms(boxes, scores, idxs, iou_threshold):
            kept_mask = torch.zeros(boxes.shape[0], dtype=torch.bool)
            parts = [torch.empty(0, dtype=torch.int64)]
            for c in categories(idxs):
                members = torch.nonzero(idxs == c).flatten()
                kept = ref.nms(boxes[members], scores[members], iou_threshold)
                kept = kept if local else members[kept]
                kept_mask[kept] = True
                parts.append(kept)
            if merge == "mask":
                kept = torch.nonzero(kept_mask).flatten()
            else:
                kept = torch.cat(parts)
            if merge != "concat":
                kept = kept[torch.sort(scores[kept], descending=True, stable=True).indices]
            return kept

        return {"batched_nms": batched_nms}

    return build


def _batched_coordinate_trick(ref):
    """torchvision's trick: offset each category by the largest coordinate (+ 1), then one NMS."""

    def batched_nms(boxes, scores, idxs, iou_threshold):
        if boxes.numel() == 0:
            return torch.empty(0, dtype=torch.int64)
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        return ref.nms(boxes + offsets[:, None], scores, iou_threshold)

    return {"batched_nms": batched_nms}


AREA_MISTAKES = (
    Mistake("width-plus-one", "Widths were computed as x2 - x1 + 1 (the old pixel-index convention); box coordinates here are continuous, so the width is x2 - x1.", _area_variant(_area_plus_one), _SECTION),
    Mistake("boxes-read-as-xywh", "The last two columns were taken as the width and height (the (x, y, w, h) format of COCO annotations); boxes here are corners (x1, y1, x2, y2): the width is x2 - x1, the height y2 - y1.", _area_variant(_area_xywh), _SECTION, subsection="Intersection over union"),
    Mistake("boxes-read-as-x1-x2-y1-y2", "The columns were read as (x_min, x_max, y_min, y_max) (the Open Images order); boxes here are (x1, y1, x2, y2): the width is boxes[:, 2] - boxes[:, 0], the height boxes[:, 3] - boxes[:, 1].", _area_variant(_area_xxyy), _SECTION, subsection="Intersection over union"),
    Mistake("area-keeps-a-dimension", "Slicing with 2:3 and 0:1 keeps a dimension, so the areas come back as (N, 1): index the columns with plain integers (boxes[:, 2] - boxes[:, 0]) to get (N,), as box_iou and nms expect.", _area_variant(_area_keepdim), _SECTION),
    Mistake("area-cast-to-float32", "The areas are float32 for float64 boxes (a float32 buffer filled in a loop, or .float()): compute them with tensor operations on the boxes, which keep their dtype.", _area_variant(_area_float32), _SECTION),
    Mistake("area-without-gradient", "The areas carry no gradient: rebuilding them with torch.tensor([...]) (or .detach(), .item(), numpy) cuts them off autograd, and the box losses of a detector need that gradient. Compute (x2 - x1) * (y2 - y1) on the columns of the tensor.", _area_variant(_area_detached), _SECTION),
)

IOU_MISTAKES = (
    # The NaN mistake first: where a union is 0, the other mistakes give NaN too.
    Mistake("iou-nan-when-union-is-zero", "Two zero-area boxes have union 0 and your IoU is 0 / 0 = NaN; the contract says 0 there (divide by 1 where the union is 0).", _iou_from(_clamped_inter, guarded=False), _SECTION, subsection="Intersection over union"),
    Mistake("intersection-not-clamped", "The intersection's width and height are not clamped at 0: for boxes that do not overlap, the two negative sides multiply into a positive 'intersection'. Use (bottom_right - top_left).clamp(min=0).", _iou_from(_unclamped_inter), _SECTION, subsection="Intersection over union"),
    Mistake("iou-width-plus-one", "Widths and heights were computed with + 1 (the old pixel-index convention); here the width is x2 - x1.", lambda ref: {"box_iou": _iou_plus_one_matrix}, _SECTION),
    Mistake("union-counts-intersection-twice", "The union is area1 + area2: the intersection is counted twice, subtract it once.", _iou_from(_clamped_inter, lambda a1, a2, i: a1[:, None] + a2[None, :]), _SECTION, subsection="Intersection over union"),
    Mistake("intersection-over-smaller-box", "You divided the intersection by the smaller box's area; IoU divides by the area of the union.", _iou_from(_clamped_inter, lambda a1, a2, i: torch.min(a1[:, None], a2[None, :])), _SECTION, subsection="Intersection over union"),
    Mistake("intersection-corners-swapped", "max and min are swapped in the intersection: its top-left corner is the *larger* of the two top-left corners (torch.max) and its bottom-right the *smaller* of the two bottom-right corners (torch.min); the other way round gives the box enclosing both.", _iou_from(_corners_swapped_inter), _SECTION, subsection="Intersection over union"),
)

NMS_MISTAKES = (
    Mistake("nms-greater-or-equal", "A box with IoU exactly equal to the threshold was dropped: the contract drops only IoU strictly greater than the threshold (> not >=).", _nms_from(drop_fn=lambda v, t: v >= t), _SECTION, subsection="Non-maximum suppression"),
    Mistake("nms-index-order", "The kept indices come back sorted by index; they must be in decreasing score order (the best box first).", _nms_from(final_fn=lambda keep, boxes: keep.sort().values), _SECTION),
    Mistake("nms-lowest-score-first", "The boxes were visited from the lowest score up (torch.sort is ascending by default): NMS starts from the best box.", _nms_from(order_fn=lambda s: torch.sort(s, stable=True).indices), _SECTION, subsection="Non-maximum suppression"),
    Mistake("nms-ties-higher-index-first", "Equal scores are visited higher index first (an ascending sort flipped?); with equal scores the lower index comes first: use torch.sort(scores, descending=True, stable=True).", _nms_from(order_fn=lambda s: torch.sort(s, stable=True).indices.flip(0)), _SECTION),
    Mistake("nms-suppressed-boxes-suppress", "A box that was already suppressed still suppressed the boxes it overlaps; only kept boxes suppress others.", _nms_from(suppressed_suppress=True), _SECTION, subsection="Non-maximum suppression"),
    Mistake("nms-iou-width-plus-one", "The NMS measures overlaps with widths x2 - x1 + 1 (py_cpu_nms's pixel-index convention), which raises every IoU (0.5 becomes about 0.55 for small boxes), so boxes just below the threshold are dropped: coordinates here are continuous, use your box_iou.", _nms_from(iou_fn=_iou_plus_one_matrix), _SECTION),
    Mistake("nms-top-k-only", "Only the 200 best-scoring boxes were considered (SSD's top_k): every box takes part in NMS, however many there are; a detector's output has thousands.", _nms_from(top_k=200), _SECTION),
    Mistake("nms-positions-in-sorted-order", "The returned numbers are positions in the score-sorted order, not indices of the boxes: map them back through the sort (order[k]), so that boxes[keep] are the kept boxes.", _nms_from(positions=True), _SECTION),
    Mistake("nms-returns-boxes", "nms returns the kept boxes themselves; the contract returns their indices (an int64 tensor (K,)), from which the caller takes boxes, scores and labels alike.", _nms_from(final_fn=lambda keep, boxes: boxes[keep]), _SECTION),
)

BATCHED_MISTAKES = (
    Mistake("batched-nms-ignores-categories", "Boxes of different categories suppressed each other: batched_nms runs NMS within each category separately.", _batched_ignores_categories, _SECTION, subsection="Non-maximum suppression"),
    Mistake("batched-nms-grouped-by-category", "The kept boxes come back category by category; the result must be sorted by decreasing score over all categories.", _batched_per_category(merge="concat"), _SECTION),
    Mistake("batched-nms-ties-by-category", "Equal scores are ordered by category, not by index: sort all kept indices by score with a stable sort, starting from increasing index.", _batched_per_category(merge="concat-sorted"), _SECTION),
    Mistake("batched-nms-offset-trick-negative-coordinates", "Each category was offset by the largest coordinate (torchvision's trick): with negative coordinates that offset is too small, or even negative, and boxes of different categories overlap and suppress each other. Offset by more than the span of all coordinates (max - min + 1), or run nms category by category.", _batched_coordinate_trick, _SECTION, subsection="Non-maximum suppression"),
    Mistake("batched-nms-local-indices", "The indices kept in each category are positions within that category's boxes: map them back to indices of all boxes (members[keep]) before merging.", _batched_per_category(local=True), _SECTION, subsection="Non-maximum suppression"),
    Mistake("batched-nms-categories-assumed-consecutive", "The categories were taken to be 0, 1, ..., K - 1 (range of their count): category ids are arbitrary integers; loop over torch.unique(idxs).", _batched_per_category(categories=lambda idxs: list(range(torch.unique(idxs).numel()))), _SECTION, subsection="Non-maximum suppression"),
    Mistake("batched-nms-last-category-skipped", "The loop over range(idxs.max()) stops before the largest category id, whose boxes are all lost: loop over torch.unique(idxs).", _batched_per_category(categories=lambda idxs: list(range(int(idxs.max()))) if idxs.numel() else []), _SECTION, subsection="Non-maximum suppression"),
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
        call("box_iou", torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 2.0, 4.0]], dtype=torch.float64),
             torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 5.0], [3.0, 3.0, 4.0, 4.0]], dtype=torch.float64),
             label="a point against itself (union 0: IoU 0), two overlapping boxes (IoU 0.525) and a box apart from both (IoU 0), float64"),
        call("box_iou", torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0]]),
             torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 5.0], [0.0, 0.0, 0.0, 5.0], [2.0, 2.0, 4.0, 4.0]]),
             label="zero-area boxes (a point and a line) against the same point, a box, the same line and a box apart: union 0 gives IoU 0, never NaN"),
        call("box_iou", torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]]),
             label="ordinary boxes beside the degenerate ones: the same box (IoU 1) and one overlapping a quarter of it"),
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
        call("nms", torch.tensor([[0.0, 0.0, 4.0, 4.0], [6.0, 0.0, 10.0, 4.0], [12.0, 0.0, 16.0, 4.0]]), torch.tensor([0.9, 0.8, 0.7]), 0.0,
             label="3 boxes 2 apart, threshold 0.0: their IoU is 0, not > 0, so all stay"),
        call("nms", torch.tensor([[0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 3.0, 1.0], [5.0, 0.0, 7.0, 1.0]]), torch.tensor([0.9, 0.8, 0.7]), 0.45,
             label="IoU(box 0, box 1) = 1/3 < 0.45 = the threshold: all stay (small boxes: widths x2 - x1, without + 1)"),
        call("nms", torch.tensor([[0.0, 0.0, 10.0, 10.0], [30.0, 0.0, 40.0, 10.0], [1.0, 0.0, 11.0, 10.0], [60.0, 0.0, 70.0, 10.0]]),
             torch.tensor([0.2, 0.5, 0.9, 0.3]), 0.5,
             label="box 2 (the best, 0.9) overlaps box 0 (the worst, 0.2) at IoU 0.82: box 0 goes, and the result is [2, 1, 3]"),
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


def _detections(g: torch.Generator, objects: int, per_object: int, extent: float, dtype: torch.dtype) -> torch.Tensor:
    """What a detector outputs: `per_object` jittered boxes around each of `objects` random boxes."""
    base = random_boxes(g, objects, dtype=torch.float64, extent=extent, min_size=20.0, max_size=100.0)
    wh = (base[:, 2:] - base[:, :2]).repeat_interleave(per_object, dim=0)  # (objects * per_object, 2)
    jitter = (torch.rand(objects * per_object, 4, generator=g, dtype=torch.float64) - 0.5) * 0.3 * wh.repeat(1, 2)
    boxes = base.repeat_interleave(per_object, dim=0) + jitter
    return torch.cat([boxes[:, :2], torch.max(boxes[:, 2:], boxes[:, :2] + 1.0)], dim=1).to(dtype)  # (n, 4)


def _nms_many(g, ref):
    uniform = random_boxes(g, 2000, extent=1000.0, min_size=10.0, max_size=60.0)
    clustered = _detections(g, 300, 5, 1000.0, torch.float64)
    crowded = _detections(g, 200, 5, 500.0, torch.float32)
    return [
        call("nms", uniform, torch.rand(2000, generator=g), 0.5,
             label="2000 random float32 boxes in a 1000 x 1000 image, threshold 0.5: well over 200 boxes stay"),
        call("nms", clustered, torch.rand(clustered.shape[0], generator=g, dtype=torch.float64), 0.5,
             label="1500 float64 boxes, 5 jittered detections around each of 300 objects, threshold 0.5"),
        call("nms", crowded, _quantized_scores(g, crowded.shape[0], torch.float32, levels=20), 0.7,
             label="1000 float32 detections of 200 crowded objects, scores from 20 values (many equal), threshold 0.7"),
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
        _negative_case(g, 16, 3, -130.0, "boxes with negative coordinates only (all within [-130, -10])"),
        _negative_case(g, 16, 3, -70.0, "boxes with coordinates from about -70 to 70"),
    ]


def _negative_case(g: torch.Generator, n: int, categories: int, low: float, what: str):
    """`n` random boxes from `low` on, each repeated in every category with its own score: the
    categories must keep their copies whatever the coordinates' sign."""
    boxes = random_boxes(g, n, dtype=torch.float64, extent=100.0, min_size=10.0, max_size=40.0) + low
    boxes = boxes.repeat(categories, 1)  # (n * categories, 4)
    idxs = torch.arange(categories).repeat_interleave(n)
    scores = torch.rand(n * categories, generator=g, dtype=torch.float64)
    return call("batched_nms", boxes, scores, idxs, 0.5,
                label=f"{what}: {n} random boxes, each repeated in categories 0..{categories - 1} with its own score, float64, "
                      "threshold 0.5: categories are independent whatever the coordinates")


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
        call("batched_nms", random_boxes(g, 60, dtype=torch.float64, extent=60) - 50.0, torch.rand(60, generator=g, dtype=torch.float64),
             torch.randint(0, 20, (60,), generator=g), 0.3,
             label="60 random float64 boxes from -50 to 70 in 20 categories, threshold 0.3"),
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
        call("batched_nms", boxes[:6], scores[:6], torch.tensor([5, 2, 5, 2, 2, 5]), 0.5,
             label="6 random boxes in categories 2 and 5 only (ids are any integers, not 0, 1, ...)"),
    ]


_IOU_PICTURE = Picture("iou", inputs=(1, 2))  # boxes1, boxes2
_NMS_PICTURE = Picture("kept", inputs=(1, 2))  # boxes, scores
_BATCHED_PICTURE = Picture("kept", inputs=(1, 2, 3))  # boxes, scores, categories


CHECKS = [
    Check("box_area_values", "box_area", 2, _area_cases, AREA_MISTAKES,
          "areas of the published, random, zero-area and empty box sets, gradients included", Picture("values")),
    Check("box_iou_published", "box_iou", 1, _iou_published, IOU_MISTAKES,
          "the published 4 x 3 IoU matrix and its transpose", _IOU_PICTURE),
    Check("box_iou_random", "box_iou", 2, _iou_random, IOU_MISTAKES,
          "random boxes in float32 and float64, gradients included", _IOU_PICTURE),
    Check("box_iou_no_overlap", "box_iou", 2, _iou_no_overlap, IOU_MISTAKES,
          "disjoint, touching and nested boxes", _IOU_PICTURE),
    Check("box_iou_degenerate", "box_iou", 1, _iou_degenerate, IOU_MISTAKES,
          "zero-area boxes (IoU 0, never NaN) and empty sets", _IOU_PICTURE),
    Check("nms_near_threshold", "nms", 3, _nms_near_threshold, NMS_MISTAKES,
          "random sets with pairs just above and just below the threshold, several thresholds, float32 and float64", _NMS_PICTURE),
    Check("nms_exact_threshold_and_ties", "nms", 3, _nms_exact_and_ties, NMS_MISTAKES,
          "IoU equal to the threshold keeps both boxes; equal scores keep the lower index first", _NMS_PICTURE),
    Check("nms_edge_cases", "nms", 2, _nms_edge_cases, NMS_MISTAKES,
          "empty input, one box, identical boxes, thresholds 0 and 1; int64 indices by decreasing score", _NMS_PICTURE),
    Check("nms_many_boxes", "nms", 2, _nms_many, NMS_MISTAKES,
          "thousands of boxes, as a detector outputs: every box takes part, hundreds stay", _NMS_PICTURE),
    Check("batched_nms_categories", "batched_nms", 2, _batched_categories, BATCHED_MISTAKES,
          "boxes of different categories never suppress each other, also with negative coordinates", _BATCHED_PICTURE),
    Check("batched_nms_many_categories", "batched_nms", 2, _batched_many, BATCHED_MISTAKES,
          "many categories, equal scores across categories", _BATCHED_PICTURE),
    Check("batched_nms_edge_cases", "batched_nms", 1, _batched_edge_cases, BATCHED_MISTAKES,
          "empty input, a single category, one box per category, a single box, category ids that are not 0, 1, ...", _BATCHED_PICTURE),
]
