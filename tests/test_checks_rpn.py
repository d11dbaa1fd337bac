"""The `rpn` checks: wrong implementations lose points with the right status and are named, and
torchvision is refused (through a stand-in module, as torchvision is not installed)."""

from __future__ import annotations

import pytest

from conftest import mistakes, statuses, variant
from grader.checks.rpn import CHECKS
from mistake_matching import assert_named, check_named, indistinguishable

ANCHORS = {"generate_anchors_defaults", "generate_anchors_sizes_ratios"}
GRID = {"grid_anchors_order_count", "grid_anchors_strides"}
HEAD = {"rpn_head_outputs", "rpn_head_gradients"}
FLATTEN = {"flatten_matches_grid_anchors", "flatten_random_maps"}
PROPOSALS = {"proposals_valid", "proposals_default_limits", "proposals_top_n_limits", "proposals_clip_and_min_size", "proposals_ties"}


def _failing(result: dict) -> set[str]:
    return {name for name, status in statuses(result).items() if status != "passed"}


def _message(result: dict, check: str) -> str:
    return next(c for c in result["checks"] if c["name"] == check)["message"]


def test_inverted_aspect_ratios(grade):
    src = variant("rpn", ("h_ratios = torch.sqrt(ratios)  # (R,)", "h_ratios = 1 / torch.sqrt(ratios)  # (R,)"))
    result = grade("rpn", source=src)
    assert ANCHORS <= _failing(result)
    assert "inverted-aspect-ratio" in mistakes(result)
    assert "[[-91,-45,91,45]" in _message(result, "generate_anchors_defaults")  # the expected figure is shown
    assert not (GRID | HEAD | FLATTEN) & _failing(result)


def test_rounding_halves_up(grade):
    src = variant("rpn", ("return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()  # (A, 4)",
                          "return torch.floor(torch.stack([-ws, -hs, ws, hs], dim=1) / 2 + 0.5)  # (A, 4)"))
    result = grade("rpn", source=src)
    assert statuses(result)["generate_anchors_defaults"] == "passed"  # no halves among the defaults
    assert statuses(result)["generate_anchors_sizes_ratios"] == "failed"
    assert "anchors-round-half-up" in mistakes(result)


def test_column_major_grid(grade):
    src = variant("rpn", ('shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")  # (H, W) each',
                          'shift_x, shift_y = torch.meshgrid(shifts_x, shifts_y, indexing="ij")  # (W, H) each'))
    result = grade("rpn", source=src)
    assert GRID <= _failing(result)
    assert "column-major-anchor-order" in mistakes(result)
    assert "2 x 3 feature map" in _message(result, "grid_anchors_order_count")


def test_flatten_permuting_anchors_first(grade):
    src = variant("rpn", ("scores = objectness.permute(0, 2, 3, 1).reshape(n, -1)", "scores = objectness.reshape(n, -1)"),
                  ("deltas = deltas.permute(0, 3, 4, 1, 2).reshape(n, -1, 4)", "deltas = deltas.permute(0, 1, 3, 4, 2).reshape(n, -1, 4)"))
    result = grade("rpn", source=src)
    assert FLATTEN <= _failing(result)
    assert "flatten-anchor-major" in mistakes(result)
    assert "grid_anchors" in _message(result, "flatten_matches_grid_anchors")
    assert statuses(result)["proposals_valid"] == "passed"  # the proposals get flattened inputs from the grader


def test_decode_without_clamp(grade):
    src = variant("rpn", ("dw = (deltas[:, 2] / ww).clamp(max=BBOX_XFORM_CLIP)", "dw = deltas[:, 2] / ww"),
                  ("dh = (deltas[:, 3] / wh).clamp(max=BBOX_XFORM_CLIP)", "dh = deltas[:, 3] / wh"))
    result = grade("rpn", source=src)
    assert statuses(result)["decode_boxes_values"] == "passed"
    assert statuses(result)["decode_boxes_clamp"] == "failed"
    assert "decode-without-clamp" in mistakes(result)


def test_decode_clamp_on_both_sides(grade):
    src = variant("rpn", ("dw = (deltas[:, 2] / ww).clamp(max=BBOX_XFORM_CLIP)", "dw = (deltas[:, 2] / ww).clamp(-BBOX_XFORM_CLIP, BBOX_XFORM_CLIP)"),
                  ("dh = (deltas[:, 3] / wh).clamp(max=BBOX_XFORM_CLIP)", "dh = (deltas[:, 3] / wh).clamp(-BBOX_XFORM_CLIP, BBOX_XFORM_CLIP)"))
    result = grade("rpn", source=src)
    assert statuses(result)["decode_boxes_clamp"] == "failed"
    assert "decode-clamp-both-sides" in mistakes(result)


def test_widths_plus_one(grade):
    src = variant("rpn", ("a_w = anchors[:, 2] - anchors[:, 0]  # (N,)", "a_w = anchors[:, 2] - anchors[:, 0] + 1  # (N,)"),
                  ("a_h = anchors[:, 3] - anchors[:, 1]  # (N,)", "a_h = anchors[:, 3] - anchors[:, 1] + 1  # (N,)"),
                  ("g_w = gt[:, 2] - gt[:, 0]  # (N,)", "g_w = gt[:, 2] - gt[:, 0] + 1  # (N,)"),
                  ("g_h = gt[:, 3] - gt[:, 1]  # (N,)", "g_h = gt[:, 3] - gt[:, 1] + 1  # (N,)"))
    result = grade("rpn", source=src)
    assert statuses(result)["encode_boxes_values"] == "failed"
    assert "encode-width-plus-one" in mistakes(result)
    assert {"decode_boxes_values"} <= _failing(result)


def test_head_without_relu(grade):
    src = variant("rpn", ("hidden = F.relu(self.conv(features))  # (N, C, H, W)", "hidden = self.conv(features)  # (N, C, H, W)"))
    result = grade("rpn", source=src)
    assert HEAD <= _failing(result)
    assert "rpn-head-relu-missing" in mistakes(result)
    assert not (ANCHORS | GRID | FLATTEN | PROPOSALS) & _failing(result)


def test_head_with_sequential_conv_names_the_keys(grade):
    src = variant("rpn", ("self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)",
                          "self.conv = nn.Sequential(nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1), nn.ReLU())"),
                  ("for layer in (self.conv, self.cls_logits, self.bbox_pred):", "for layer in (self.conv[0], self.cls_logits, self.bbox_pred):"),
                  ("hidden = F.relu(self.conv(features))  # (N, C, H, W)", "hidden = self.conv(features)  # (N, C, H, W)"))
    result = grade("rpn", source=src)
    assert statuses(result)["rpn_head_outputs"] == "failed"
    message = _message(result, "rpn_head_outputs")
    assert "missing keys: conv.weight" in message and "conv.0.weight" in message


def test_proposals_clipped_with_height_and_width_swapped(grade):
    src = variant("rpn", ("boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),\n"
                          "                         boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], dim=1)",
                          "boxes = torch.stack([boxes[:, 0].clamp(0, height), boxes[:, 1].clamp(0, width),\n"
                          "                         boxes[:, 2].clamp(0, height), boxes[:, 3].clamp(0, width)], dim=1)"))
    result = grade("rpn", source=src)
    assert statuses(result)["proposals_valid"] == "failed"
    assert "inside the" in _message(result, "proposals_valid")
    assert "proposals-clip-hw-swapped" in mistakes(result)


def test_proposals_return_logits(grade):
    src = variant("rpn", ("return boxes[keep_idx], torch.sigmoid(scores[keep_idx])  # (P, 4), (P,)",
                          "return boxes[keep_idx], scores[keep_idx]  # (P, 4), (P,)"))
    result = grade("rpn", source=src)
    assert PROPOSALS <= _failing(result)
    assert "proposals-logits-returned" in mistakes(result)


def test_proposals_keep_small_boxes(grade):
    src = variant("rpn", ("boxes, scores = boxes[big], scores[big]", "big = big | True"))
    result = grade("rpn", source=src)
    assert statuses(result)["proposals_valid"] == "failed"
    assert "smaller than min_size" in _message(result, "proposals_valid")
    assert "proposals-small-boxes-kept" in mistakes(result)


def test_proposals_cut_before_nms(grade):
    src = variant("rpn", ("        if len(keep) == post_nms_top_n:\n            break\n", ""),
                  ("    overlaps = inter / union > nms_thresh  # (K'', K'') bool\n",
                   "    overlaps = (inter / union > nms_thresh)[:post_nms_top_n, :post_nms_top_n]\n"
                   "    boxes, scores = boxes[:post_nms_top_n], scores[:post_nms_top_n]\n"))
    result = grade("rpn", source=src)
    assert "proposals-post-top-n-before-nms" in mistakes(result)


# torchvision is not installed where the tests run: the submission builds a stand-in whose
# `torchvision.ops.nms` is a correct greedy NMS, and calls it as a student would.
_FAKE_TORCHVISION = '''

import sys as _sys
import types as _types


def _fake_nms(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices
    wh = (torch.min(boxes[:, None, 2:], boxes[None, :, 2:]) - torch.max(boxes[:, None, :2], boxes[None, :, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    over = inter / (area[:, None] + area[None, :] - inter) > iou_threshold
    keep, gone = [], torch.zeros(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if not gone[i]:
            keep.append(i)
            gone |= over[i]
    return torch.tensor(keep, dtype=torch.int64)


_tv = _types.ModuleType("torchvision")
_tv.ops = _types.ModuleType("torchvision.ops")
_tv.ops.nms = _fake_nms
_sys.modules["torchvision"], _sys.modules["torchvision.ops"] = _tv, _tv.ops

import torchvision
'''


def test_torchvision_nms_is_forbidden(grade):
    src = variant("rpn", ("    keep_idx = torch.tensor(keep, dtype=torch.int64, device=boxes.device)  # (P,)\n",
                          "    keep_idx = torchvision.ops.nms(boxes, scores, nms_thresh)[:post_nms_top_n]\n")) + _FAKE_TORCHVISION
    result = grade("rpn", source=src)
    assert {statuses(result)[name] for name in PROPOSALS} == {"forbidden"}
    assert "torchvision.ops.nms" in _message(result, "proposals_default_limits")
    assert any("torchvision.ops.nms" in n for n in result["notices"])
    assert not (ANCHORS | GRID | HEAD | FLATTEN) & _failing(result)


# --- every mistake is told apart from the others, on the cases of each check ----------------------
@pytest.mark.parametrize("check", [c.name for c in CHECKS if c.mistakes])
def test_mistakes_of_each_check_are_told_apart(check):
    assert indistinguishable("rpn", check_named("rpn", check)) == {}


_SHIFT_X = "shifts_x = torch.arange(w, device=base_anchors.device).to(base_anchors.dtype) * sw  # (W,)"
_SHIFT_Y = "shifts_y = torch.arange(h, device=base_anchors.device).to(base_anchors.dtype) * sh  # (H,)"
_HEAD_RETURN = "return self.cls_logits(hidden), self.bbox_pred(hidden)  # (N, A, H, W), (N, 4A, H, W)"
_SCORES = "scores = objectness.permute(0, 2, 3, 1).reshape(n, -1)  # (N, H, W, A) -> (N, H*W*A)"
_DELTAS = "deltas = deltas.permute(0, 3, 4, 1, 2).reshape(n, -1, 4)  # (N, H, W, A, 4) -> (N, H*W*A, 4)"


@pytest.mark.parametrize("edits, checks, mistake", [
    ([('h, w = _pair(feature_size, "feature_size")', 'w, h = _pair(feature_size, "feature_size")')],
     ("grid_anchors_order_count", "grid_anchors_strides"), "grid-feature-size-read-as-w-h"),
    ([(_SHIFT_X, _SHIFT_X.replace(" * sw", "")), (_SHIFT_Y, _SHIFT_Y.replace(" * sh", ""))],
     ("grid_anchors_order_count", "grid_anchors_strides"), "grid-stride-ignored"),
    ([(_HEAD_RETURN, "return torch.softmax(self.cls_logits(hidden), dim=1), self.bbox_pred(hidden)")],
     ("rpn_head_outputs", "rpn_head_gradients"), "rpn-head-softmax-objectness"),
    ([(_HEAD_RETURN, "return self.bbox_pred(hidden), self.cls_logits(hidden)")],
     ("rpn_head_outputs", "rpn_head_gradients"), "rpn-head-outputs-swapped"),
    ([(_SCORES, "scores = objectness.reshape(n, -1)")],
     ("flatten_matches_grid_anchors", "flatten_random_maps"), "flatten-scores-not-permuted"),
    # torchvision's concat_box_prediction_layers: one list for the whole batch
    ([(_SCORES, "scores = objectness.permute(0, 2, 3, 1).reshape(-1, 1)"), (_DELTAS, "deltas = deltas.permute(0, 3, 4, 1, 2).reshape(-1, 4)")],
     ("flatten_matches_grid_anchors", "flatten_random_maps"), "flatten-batch-merged"),
])
def test_more_wrong_anchors_heads_and_flattenings_are_named(grade, tmp_path, edits, checks, mistake):
    src = variant("rpn", *edits)
    result = grade("rpn", source=src)
    for check in checks:
        assert_named(result, "rpn", src, tmp_path, check, mistake)


def test_a_wrong_encode_costs_the_decode_part_nothing(grade):
    """The round trip decodes offsets made by the reference's encode: each part is graded on its own."""
    src = variant("rpn", ("dw = ww * torch.log(g_w / a_w)", "dw = ww * (g_w / a_w)"), ("dh = wh * torch.log(g_h / a_h)", "dh = wh * (g_h / a_h)"))
    result = grade("rpn", source=src)
    st = statuses(result)
    assert st["encode_boxes_values"] == "failed" and "encode-size-without-log" in mistakes(result)
    assert {st[c] for c in ("decode_boxes_values", "decode_boxes_clamp", "decode_encode_round_trip")} == {"passed"}
