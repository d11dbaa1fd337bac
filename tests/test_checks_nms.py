"""The `nms` checks: wrong implementations lose points with the right status and are named, and
torchvision's NMS is refused (through a stand-in module, as torchvision is not installed)."""

from __future__ import annotations

from conftest import mistakes, statuses, variant

# Every check of the exercise, by part.
AREA = {"box_area_values"}
IOU = {"box_iou_published", "box_iou_random", "box_iou_no_overlap", "box_iou_degenerate"}
NMS = {"nms_near_threshold", "nms_exact_threshold_and_ties", "nms_edge_cases"}
BATCHED = {"batched_nms_categories", "batched_nms_many_categories", "batched_nms_edge_cases"}


def _failing(result: dict) -> set[str]:
    return {name for name, status in statuses(result).items() if status != "passed"}


def test_greater_or_equal_drops_boxes_at_the_threshold(grade):
    src = variant("nms", ("box_iou(boxes.detach(), boxes.detach()) > iou_threshold", "box_iou(boxes.detach(), boxes.detach()) >= iou_threshold"))
    result = grade("nms", source=src)
    assert statuses(result)["nms_exact_threshold_and_ties"] == "failed"
    assert "nms-greater-or-equal" in mistakes(result)
    assert statuses(result)["nms_near_threshold"] == "passed"  # only the exact case tells > from >=
    assert result["score"] < result["max_score"]


def test_kept_indices_in_index_order(grade):
    src = variant("nms", ("return torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (K,)",
                          "return torch.tensor(sorted(keep), dtype=torch.int64, device=boxes.device)  # (K,)"))
    result = grade("nms", source=src)
    assert NMS <= _failing(result)
    assert "nms-index-order" in mistakes(result)
    assert not (AREA | IOU) & _failing(result)


def test_ties_visited_higher_index_first(grade):
    src = variant("nms", ("order = torch.sort(scores.detach(), descending=True, stable=True).indices  # (N,)",
                          "order = torch.sort(scores.detach(), stable=True).indices.flip(0)  # (N,)"))
    result = grade("nms", source=src)
    assert statuses(result)["nms_exact_threshold_and_ties"] == "failed"
    assert "nms-ties-higher-index-first" in mistakes(result)


def test_unclamped_intersection(grade):
    src = variant("nms", ("wh = (bottom_right - top_left).clamp(min=0)", "wh = bottom_right - top_left"))
    result = grade("nms", source=src)
    assert {"box_iou_random", "box_iou_no_overlap"} <= _failing(result)
    assert "intersection-not-clamped" in mistakes(result)
    assert statuses(result)["box_area_values"] == "passed"
    no_overlap = next(c for c in result["checks"] if c["name"] == "box_iou_no_overlap")
    assert "disjoint along both x and y" in no_overlap["message"]


def test_iou_nan_when_union_is_zero(grade):
    src = variant("nms", ("return inter / torch.where(union > 0, union, torch.ones_like(union))  # (N, M)",
                          "return inter / union  # (N, M)"))
    result = grade("nms", source=src)
    assert statuses(result)["box_iou_degenerate"] == "failed"
    assert "NaN" in next(c for c in result["checks"] if c["name"] == "box_iou_degenerate")["message"]
    assert "iou-nan-when-union-is-zero" in mistakes(result)
    assert statuses(result)["box_iou_random"] == "passed"


def test_width_plus_one(grade):
    src = variant("nms", ("return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # (N,)",
                          "return (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)  # (N,)"))
    result = grade("nms", source=src)
    assert statuses(result)["box_area_values"] == "failed"
    assert "width-plus-one" in mistakes(result)


def test_union_counts_intersection_twice(grade):
    src = variant("nms", ("union = area1[:, None] + area2[None, :] - inter  # (N, M)", "union = area1[:, None] + area2[None, :]  # (N, M)"))
    result = grade("nms", source=src)
    assert statuses(result)["box_iou_published"] == "failed"
    assert "union-counts-intersection-twice" in mistakes(result)


def test_suppressed_boxes_still_suppress(grade):
    src = variant("nms", ("        if suppressed[i]:\n            continue\n        keep.append(i)\n        suppressed |= overlaps[i]\n",
                          "        if not suppressed[i]:\n            keep.append(i)\n        suppressed |= overlaps[i]\n"))
    result = grade("nms", source=src)
    assert statuses(result)["nms_near_threshold"] == "failed"
    assert "nms-suppressed-boxes-suppress" in mistakes(result)


def test_int32_indices(grade):
    src = variant("nms", ("return torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (K,)",
                          "return torch.tensor(keep, dtype=torch.int32, device=boxes.device)  # (K,)"))
    result = grade("nms", source=src)
    near = next(c for c in result["checks"] if c["name"] == "nms_near_threshold")
    assert near["status"] == "failed"
    assert "dtype int32, expected int64" in near["message"]


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
        "    kept_idx = torch.cat([torch.nonzero(kept & (idxs == c)).flatten() for c in torch.unique(idxs).tolist()]"
        " + [torch.empty(0, dtype=torch.int64)])\n    return kept_idx\n"))
    result = grade("nms", source=src)
    assert statuses(result)["batched_nms_categories"] == "failed"
    assert "batched-nms-grouped-by-category" in mistakes(result)


def test_stub_raising_in_one_part_only(grade):
    src = variant("nms", ('    _check_boxes(boxes1, "boxes1")\n', '    raise NotImplementedError("box_iou")\n'))
    result = grade("nms", source=src)
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
    result = grade("nms", source=src)
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
    result = grade("nms", source=src)
    assert {statuses(result)[name] for name in NMS} == {"forbidden"}
    assert "nms" in next(c for c in result["checks"] if c["name"] == "nms_edge_cases")["message"]
