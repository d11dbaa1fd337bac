"""The `nms` checks: wrong implementations lose points with the right status and are named, and
torchvision's NMS is refused (through a stand-in module, as torchvision is not installed)."""

from __future__ import annotations

import pytest

from conftest import mistakes, statuses, variant
from grader.checks.nms import CHECKS
from mistake_matching import assert_named, check_named, indistinguishable

# Every check of the exercise, by part.
AREA = {"box_area_values"}
IOU = {"box_iou_published", "box_iou_random", "box_iou_no_overlap", "box_iou_degenerate"}
NMS = {"nms_near_threshold", "nms_exact_threshold_and_ties", "nms_edge_cases", "nms_many_boxes"}
BATCHED = {"batched_nms_categories", "batched_nms_many_categories", "batched_nms_edge_cases"}


def _failing(result: dict) -> set[str]:
    return {name for name, status in statuses(result).items() if status != "passed"}


def test_greater_or_equal_drops_boxes_at_the_threshold(grade):
    src = variant("nms", ("box_iou(boxes.detach(), boxes.detach()) > iou_threshold", "box_iou(boxes.detach(), boxes.detach()) >= iou_threshold"))
    result = grade("nms", source=src, parts=("nms",))
    assert statuses(result)["nms_exact_threshold_and_ties"] == "failed"
    assert "nms-greater-or-equal" in mistakes(result)
    assert statuses(result)["nms_near_threshold"] == "passed"  # only the exact case tells > from >=
    assert result["score"] < result["max_score"]


def test_kept_indices_in_index_order(grade):
    src = variant("nms", ("return torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (K,)",
                          "return torch.tensor(sorted(keep), dtype=torch.int64, device=boxes.device)  # (K,)"))
    result = grade("nms", source=src, parts=("box_area", "box_iou", "nms"))
    assert NMS <= _failing(result)
    assert "nms-index-order" in mistakes(result)
    assert not (AREA | IOU) & _failing(result)


def test_ties_visited_higher_index_first(grade):
    src = variant("nms", ("order = torch.sort(scores.detach(), descending=True, stable=True).indices  # (N,)",
                          "order = torch.sort(scores.detach(), stable=True).indices.flip(0)  # (N,)"))
    result = grade("nms", source=src, parts=("nms",))
    assert statuses(result)["nms_exact_threshold_and_ties"] == "failed"
    assert "nms-ties-higher-index-first" in mistakes(result)


def test_unclamped_intersection(grade):
    src = variant("nms", ("wh = (bottom_right - top_left).clamp(min=0)", "wh = bottom_right - top_left"))
    result = grade("nms", source=src, parts=("box_area", "box_iou"))
    assert {"box_iou_random", "box_iou_no_overlap"} <= _failing(result)
    assert "intersection-not-clamped" in mistakes(result)
    assert statuses(result)["box_area_values"] == "passed"
    no_overlap = next(c for c in result["checks"] if c["name"] == "box_iou_no_overlap")
    assert "disjoint along both x and y" in no_overlap["message"]


def test_iou_nan_when_union_is_zero(grade):
    src = variant("nms", ("return inter / torch.where(union > 0, union, torch.ones_like(union))  # (N, M)",
                          "return inter / union  # (N, M)"))
    result = grade("nms", source=src, parts=("box_iou",))
    assert statuses(result)["box_iou_degenerate"] == "failed"
    assert "NaN" in next(c for c in result["checks"] if c["name"] == "box_iou_degenerate")["message"]
    assert "iou-nan-when-union-is-zero" in mistakes(result)
    assert statuses(result)["box_iou_random"] == "passed"


def test_width_plus_one(grade):
    src = variant("nms", ("return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (N,)",
                          "return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)  # (N,)"))
    result = grade("nms", source=src, parts=("box_area",))
    assert statuses(result)["box_area_values"] == "failed"
    assert "width-plus-one" in mistakes(result)


def test_union_counts_intersection_twice(grade):
    src = variant("nms", ("union = area1[:, None] + area2[None, :] - inter  # (N, M)", "union = area1[:, None] + area2[None, :]  # (N, M)"))
    result = grade("nms", source=src, parts=("box_iou",))
    assert statuses(result)["box_iou_published"] == "failed"
    assert "union-counts-intersection-twice" in mistakes(result)


def test_suppressed_boxes_still_suppress(grade):
    src = variant("nms", ("        if suppressed[i]:\n            continue\n        keep.append(i)\n        suppressed |= overlaps[i]\n",
                          "        if not suppressed[i]:\n            keep.append(i)\n        suppressed |= overlaps[i]\n"))
    result = grade("nms", source=src, parts=("nms",))
    assert statuses(result)["nms_near_threshold"] == "failed"
    assert "nms-suppressed-boxes-suppress" in mistakes(result)


def test_int32_indices(grade):
    src = variant("nms", ("return torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (K,)",
                          "return torch.tensor(keep, dtype=torch.int32, device=boxes.device)  # (K,)"))
    result = grade("nms", source=src, parts=("nms",))
    near = next(c for c in result["checks"] if c["name"] == "nms_near_threshold")
    assert near["status"] == "failed"
    assert "dtype int32, expected int64" in near["message"]
    assert "follow the input" not in near["message"]  # indices are int64 whatever the boxes' dtype


def test_batched_nms_ignoring_categories(grade):
    src = variant("nms", ("    kept = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)  # (N,)\n",
                          "    return nms(boxes, scores, iou_threshold)\n    kept = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)  # (N,)\n"))
    result = grade("nms", source=src)
    assert {"batched_nms_categories", "batched_nms_many_categories"} <= _failing(result)
    assert "batched-nms-ignores-categories" in mistakes(result)
    assert not (AREA | IOU | NMS) & _failing(result)


def test_batched_nms_grouped_by_category(grade):
    src = variant("nms", (
        "    kept_idx = torch.nonzero(kept).flatten()  # (K,) increasing index\n",
        "    groups = [torch.nonzero(kept & (idxs == c)).flatten() for c in torch.unique(idxs).tolist()]\n"
        "    kept_idx = torch.cat([m[torch.sort(scores[m], descending=True, stable=True).indices] for m in groups]"
        " + [torch.empty(0, dtype=torch.int64)])  # each category by decreasing score, one after the other\n"
        "    return kept_idx\n"))
    result = grade("nms", source=src, parts=("batched_nms",))
    assert statuses(result)["batched_nms_categories"] == "failed"
    assert "batched-nms-grouped-by-category" in mistakes(result)


def test_stub_raising_in_one_part_only(grade):
    src = variant("nms", ('    _check_boxes(boxes1, "boxes1")\n', '    raise NotImplementedError("box_iou")\n'))
    result = grade("nms", source=src, parts=("box_area", "box_iou"))
    assert {statuses(result)[name] for name in IOU} == {"not_implemented"}
    assert statuses(result)["box_area_values"] == "passed"


# torchvision is not installed where the tests run: the submission builds a stand-in with the
# same names, whose `torchvision.ops.nms` is a correct NMS, and calls it as a student would.
_FAKE_TORCHVISION = '''

import sys as _sys
import types as _types

_tv = _types.ModuleType("torchvision")
_tv.ops = _types.ModuleType("torchvision.ops")
_tv.ops.nms = _own_nms
_sys.modules["torchvision"], _sys.modules["torchvision.ops"] = _tv, _tv.ops

import torchvision


def nms(boxes, scores, iou_threshold):
    return torchvision.ops.nms(boxes, scores, iou_threshold)
'''


def test_torchvision_ops_nms_is_forbidden(grade):
    src = variant("nms", ("def nms(", "def _own_nms(")) + _FAKE_TORCHVISION
    result = grade("nms", source=src, parts=("box_area", "box_iou", "nms"))
    assert {statuses(result)[name] for name in NMS} == {"forbidden"}
    assert "torchvision.ops.nms" in next(c for c in result["checks"] if c["name"] == "nms_near_threshold")["message"]
    assert any("torchvision.ops.nms" in n for n in result["notices"])  # the static scan too
    assert {statuses(result)[name] for name in AREA | IOU} == {"passed"}


# The route torchvision.ops.nms really takes: the `torchvision::nms` operator, caught at the
# dispatcher (forbidden_ops) however it is reached.
_TORCH_OPS_ROUTE = '''

import torch.library as _library

try:
    _LIB = _library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.impl("nms", lambda dets, scores, t: _own_nms(dets, scores, t), "CompositeExplicitAutograd")
except RuntimeError:
    pass  # defined already in this worker by an earlier grading


def nms(boxes, scores, iou_threshold):
    return torch.ops.torchvision.nms(boxes, scores, iou_threshold)
'''


def test_torchvision_nms_operator_is_forbidden(grade):
    src = variant("nms", ("def nms(", "def _own_nms(")) + _TORCH_OPS_ROUTE
    result = grade("nms", source=src, parts=("nms",))
    assert {statuses(result)[name] for name in NMS} == {"forbidden"}
    assert "nms" in next(c for c in result["checks"] if c["name"] == "nms_edge_cases")["message"]


# --- every mistake is told apart from the others, on the cases of each check ----------------------
@pytest.mark.parametrize("check", [c.name for c in CHECKS if c.mistakes])
def test_mistakes_of_each_check_are_told_apart(check):
    assert indistinguishable("nms", check_named("nms", check)) == {}


# --- box_area: realistic wrong areas --------------------------------------------------------------
_AREA = "    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (N,)\n"


@pytest.mark.parametrize("body, mistake", [
    ("    return boxes[:, 2] * boxes[:, 3]  # (x, y, w, h)\n", "boxes-read-as-xywh"),
    ("    x_min, x_max, y_min, y_max = boxes.unbind(1)\n    return (x_max - x_min) * (y_max - y_min)\n", "boxes-read-as-x1-x2-y1-y2"),
    ("    return (boxes[:, 2:3] - boxes[:, 0:1]) * (boxes[:, 3:4] - boxes[:, 1:2])\n", "area-keeps-a-dimension"),
    ("    areas = torch.zeros(boxes.shape[0])\n    for i in range(boxes.shape[0]):\n"
     "        areas[i] = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])\n    return areas\n", "area-cast-to-float32"),
    ("    return torch.tensor([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes])\n", "area-without-gradient"),
])
def test_wrong_box_area_is_named(grade, tmp_path, body, mistake):
    src = variant("nms", (_AREA, body))
    assert_named(grade("nms", source=src, parts=("box_area",)), "nms", src, tmp_path, "box_area_values", mistake)


def test_iou_with_min_and_max_swapped_is_named(grade, tmp_path):
    src = variant("nms", ("top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])", "top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])"),
                  ("bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])", "bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])"))
    result = grade("nms", source=src, parts=("box_iou",))
    for check in ("box_iou_published", "box_iou_random"):
        assert_named(result, "nms", src, tmp_path, check, "intersection-corners-swapped")


def test_iou_with_an_epsilon_in_the_union_passes(grade):
    """inter / (union + 1e-7), as YOLO code writes it, is a correct IoU: it never meets 0 / 0."""
    src = variant("nms", ("return inter / torch.where(union > 0, union, torch.ones_like(union))  # (N, M)", "return inter / (union + 1e-7)"))
    result = grade("nms", source=src)
    assert result["score"] == result["max_score"], {c["name"]: c["message"] for c in result["checks"] if c["message"]}


# --- nms: real patterns ---------------------------------------------------------------------------
_NMS_BODY = variant("nms")[variant("nms").index("    order = torch.sort(scores.detach()"):variant("nms").index("def batched_nms")]

# Ross Girshick's py_cpu_nms, ported to torch: areas and overlaps with + 1, boxes kept while the
# overlap is <= the threshold (so it already drops only > threshold). A stable sort isolates the + 1.
_PY_CPU_NMS = '''    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    while order.numel() > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp(min=0)
        inter = w * h
        ovr = inter / (areas[i] + areas[rest] - inter)
        order = rest[ovr <= iou_threshold]
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


'''

# SSD's nms (ssd.pytorch layers/box_utils.py): only the top_k = 200 best boxes take part.
_SSD_TOP_K = '''    order = torch.sort(scores.detach(), descending=True, stable=True).indices[:200]  # top_k
    overlaps = box_iou(boxes.detach(), boxes.detach()) > iou_threshold
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


'''

# Boxes sorted first, then the positions in the sorted order returned as if they were indices.
_SORTED_POSITIONS = '''    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    ranked = boxes.detach()[order]
    overlaps = box_iou(ranked, ranked) > iou_threshold
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep = []
    for k in range(ranked.shape[0]):
        if suppressed[k]:
            continue
        keep.append(k)
        suppressed |= overlaps[k]
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


'''


def test_py_cpu_nms_plus_one_is_named_as_such_not_as_greater_or_equal(grade, tmp_path):
    src = variant("nms", (_NMS_BODY, _PY_CPU_NMS))
    result = grade("nms", source=src, parts=("box_iou", "nms"))
    assert statuses(result)["box_iou_random"] == "passed"  # its own box_iou is right
    for check in ("nms_near_threshold", "nms_exact_threshold_and_ties"):
        assert_named(result, "nms", src, tmp_path, check, "nms-iou-width-plus-one")
    assert "nms-greater-or-equal" not in mistakes(result)


def test_top_200_nms_loses_the_many_boxes_check(grade, tmp_path):
    src = variant("nms", (_NMS_BODY, _SSD_TOP_K))
    result = grade("nms", source=src, parts=("nms",))
    assert_named(result, "nms", src, tmp_path, "nms_many_boxes", "nms-top-k-only")
    assert {statuses(result)[c] for c in NMS - {"nms_many_boxes"}} == {"passed"}  # fewer than 200 boxes there


def test_positions_in_the_sorted_order_are_named(grade, tmp_path):
    src = variant("nms", (_NMS_BODY, _SORTED_POSITIONS))
    result = grade("nms", source=src, parts=("nms",))
    for check in ("nms_near_threshold", "nms_exact_threshold_and_ties"):
        assert_named(result, "nms", src, tmp_path, check, "nms-positions-in-sorted-order")


def test_nms_returning_the_boxes_is_named(grade, tmp_path):
    src = variant("nms", ("return torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (K,)",
                          "return boxes[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]"))
    assert_named(grade("nms", source=src, parts=("nms",)), "nms", src, tmp_path, "nms_near_threshold", "nms-returns-boxes")


# --- batched_nms: real patterns -------------------------------------------------------------------
_BATCHED_BODY = variant("nms")[variant("nms").index("    kept = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)  # (N,)"):]

# torchvision's _batched_nms_coordinate_trick.
_COORDINATE_TRICK = '''    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return nms(boxes_for_nms, scores, iou_threshold)
'''


def test_torchvision_coordinate_trick_fails_with_negative_coordinates(grade, tmp_path):
    src = variant("nms", (_BATCHED_BODY, _COORDINATE_TRICK))
    result = grade("nms", source=src, parts=("batched_nms",))
    assert_named(result, "nms", src, tmp_path, "batched_nms_categories", "batched-nms-offset-trick-negative-coordinates")
    assert statuses(result)["batched_nms_edge_cases"] == "passed"  # right for non-negative coordinates
    message = next(c for c in result["checks"] if c["name"] == "batched_nms_categories")["message"]
    assert "negative coordinates" in message


def test_coordinate_trick_over_the_span_of_the_coordinates_passes(grade):
    """Shifting by the span (max - min + 1) keeps categories apart whatever the sign: correct."""
    src = variant("nms", (_BATCHED_BODY, _COORDINATE_TRICK.replace(
        "    max_coordinate = boxes.max()\n    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))\n",
        "    offsets = idxs.to(boxes) * (boxes.max() - boxes.min() + 1)\n")))
    result = grade("nms", source=src, parts=("batched_nms",))
    assert result["score"] == result["max_score"], {c["name"]: c["message"] for c in result["checks"] if c["message"]}


@pytest.mark.parametrize("edit, checks, mistake", [
    (("kept[members[nms(boxes[members], scores[members], iou_threshold)]] = True",
      "kept[nms(boxes[members], scores[members], iou_threshold)] = True"),
     ("batched_nms_categories", "batched_nms_many_categories"), "batched-nms-local-indices"),
    (("for category in torch.unique(idxs).tolist():", "for category in range(len(torch.unique(idxs))):"),
     ("batched_nms_many_categories", "batched_nms_edge_cases"), "batched-nms-categories-assumed-consecutive"),
    (("for category in torch.unique(idxs).tolist():", "for category in range(int(idxs.max()) if len(idxs) else 0):"),
     ("batched_nms_categories", "batched_nms_edge_cases"), "batched-nms-last-category-skipped"),
])
def test_wrong_category_loops_are_named(grade, tmp_path, edit, checks, mistake):
    src = variant("nms", edit)
    result = grade("nms", source=src, parts=("batched_nms",))
    for check in checks:
        assert_named(result, "nms", src, tmp_path, check, mistake)
