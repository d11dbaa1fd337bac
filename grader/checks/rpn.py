"""Hidden checks for `rpn`: anchors, the box coder, the RPN head, its flattening and proposals."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from grader.checks import call, dtype_name, module_case, randn, random_boxes, reference_state
from grader.engine.compare import is_tensor
from grader.runner.probes import TENSOR_KEY
from grader.engine.spec import Case, Check, Mistake, Picture

_SECTION = "Object Detection"
_CLIP = math.log(1000.0 / 16)

# The contract's figure: generate_anchors() at its defaults.
_DEFAULT_ANCHORS = ("[[-91,-45,91,45],[-181,-91,181,91],[-362,-181,362,181],[-64,-64,64,64],[-128,-128,128,128],"
                    "[-256,-256,256,256],[-45,-91,45,91],[-91,-181,91,181],[-181,-362,181,362]]")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _boxes(g: torch.Generator, n: int, dtype: torch.dtype) -> torch.Tensor:
    """`n` anchor-like boxes: corners in `[0, 200]`, sides in `[8, 64]`."""
    return random_boxes(g, n, dtype=dtype, extent=200.0, min_size=8.0, max_size=64.0)


def _jittered(g: torch.Generator, anchors: torch.Tensor) -> torch.Tensor:
    """Boxes near `anchors`: centres moved by up to half a side, sides scaled by exp(+-0.7)."""
    a = anchors.double()
    wh = a[:, 2:] - a[:, :2]
    centre = a[:, :2] + 0.5 * wh + (torch.rand(a.shape[0], 2, generator=g, dtype=torch.float64) - 0.5) * wh
    new_wh = wh * torch.exp((torch.rand(a.shape[0], 2, generator=g, dtype=torch.float64) - 0.5) * 1.4)
    return torch.cat([centre - new_wh / 2, centre + new_wh / 2], dim=1).to(anchors.dtype)  # (n, 4)


# --- known mistakes: anchors ----------------------------------------------------------------------
def _anchor_variant(*, inverted: bool = False, size_major: bool = False, rounding=torch.round,
                    corners: str = "centred"):
    def build(ref):
        def generate_anchors(sizes=(128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0)):
            scales = torch.as_tensor(sizes, dtype=torch.float32)
            h_r = torch.sqrt(torch.as_tensor(aspect_ratios, dtype=torch.float32))
            w_r = 1 / h_r
            if inverted:
                h_r, w_r = w_r, h_r
            if size_major:
                ws, hs = (scales[:, None] * w_r[None, :]).reshape(-1), (scales[:, None] * h_r[None, :]).reshape(-1)
            else:
                ws, hs = (w_r[:, None] * scales[None, :]).reshape(-1), (h_r[:, None] * scales[None, :]).reshape(-1)
            if corners == "centred":
                boxes = torch.stack([-ws, -hs, ws, hs], dim=1) / 2
            elif corners == "full":
                boxes = torch.stack([-ws, -hs, ws, hs], dim=1)
            else:
                boxes = torch.stack([torch.zeros_like(ws), torch.zeros_like(hs), ws, hs], dim=1)
            return rounding(boxes)

        return {"generate_anchors": generate_anchors}

    return build


def _grid_variant(kind: str):
    def build(ref):
        def grid_anchors(base_anchors, feature_size, stride):
            h, w = _pair(feature_size)
            sh, sw = _pair(stride)
            if kind == "stride-swapped":
                sh, sw = sw, sh
            if kind == "size-hw-swapped":
                h, w = w, h
            if kind == "stride-ignored":
                sh, sw = 1, 1
            offset = 0.5 if kind == "half-stride" else 0.0
            xs = (torch.arange(w, dtype=base_anchors.dtype) + offset) * sw
            ys = (torch.arange(h, dtype=base_anchors.dtype) + offset) * sh
            if kind == "column-major":
                sx, sy = torch.meshgrid(xs, ys, indexing="ij")
            else:
                sy, sx = torch.meshgrid(ys, xs, indexing="ij")
            sx, sy = sx.reshape(-1), sy.reshape(-1)
            if kind == "xy-swapped":
                sx, sy = (torch.arange(h, dtype=base_anchors.dtype) * sh).repeat_interleave(w), (torch.arange(w, dtype=base_anchors.dtype) * sw).repeat(h)
            shifts = torch.stack([sx, sy, sx, sy], dim=1)
            if kind == "anchor-major":
                return (base_anchors[:, None, :] + shifts[None, :, :]).reshape(-1, 4)
            return (shifts[:, None, :] + base_anchors[None, :, :]).reshape(-1, 4)

        return {"grid_anchors": grid_anchors}

    return build


ANCHOR_MISTAKES = (
    Mistake("inverted-aspect-ratio", "Height and width are swapped: the aspect ratio is h / w, so h = size * sqrt(ratio) and w = size / sqrt(ratio).", _anchor_variant(inverted=True), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("size-major-anchor-order", "The anchors are ordered size by size; the contract (torchvision) orders them ratio by ratio: all sizes of the first ratio, then the next ratio.", _anchor_variant(size_major=True), _SECTION),
    Mistake("anchors-not-rounded", "The coordinates are not rounded: torchvision rounds the anchors with torch.round.", _anchor_variant(rounding=lambda t: t), _SECTION),
    Mistake("anchors-round-half-up", "Halves were rounded up (floor(x + 0.5)); torch.round rounds halves to the even neighbour: 2.5 -> 2, -1.5 -> -2.", _anchor_variant(rounding=lambda t: torch.floor(t + 0.5)), _SECTION),
    Mistake("anchors-full-size-offsets", "The corners are at (-w, -h, w, h): the anchor is then twice too large; the centre is half a width from each side.", _anchor_variant(corners="full"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("anchors-not-centred", "The anchors are (0, 0, w, h); they must be centred at 0: (-w/2, -h/2, w/2, h/2).", _anchor_variant(corners="corner"), _SECTION, subsection="Anchors and the region proposal network"),
)

GRID_MISTAKES = (
    Mistake("column-major-anchor-order", "The locations are visited column by column; the contract goes row by row (location (i, j) is row i * W + j), as the flattened RPN outputs do.", _grid_variant("column-major"), _SECTION),
    Mistake("grid-anchor-major-order", "All locations of anchor 0 come first, then anchor 1...; the A anchors of one location must be consecutive.", _grid_variant("anchor-major"), _SECTION),
    Mistake("grid-stride-hw-swapped", "The stride pair is (stride_h, stride_w): rows (y) move by stride_h, columns (x) by stride_w.", _grid_variant("stride-swapped"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("grid-shift-xy-swapped", "x is shifted by the row index and y by the column index; column j moves x, row i moves y.", _grid_variant("xy-swapped"), _SECTION),
    Mistake("grid-half-stride-offset", "The anchors are centred at ((j + 0.5) * stride, (i + 0.5) * stride); torchvision's grid starts at 0: location (i, j) is at (j * stride_w, i * stride_h).", _grid_variant("half-stride"), _SECTION),
    Mistake("grid-feature-size-read-as-w-h", "feature_size was read as (W, H): it is (H, W), the shape of the feature map's last two dimensions, so the grid has H rows of W locations (x goes along W).", _grid_variant("size-hw-swapped"), _SECTION),
    Mistake("grid-stride-ignored", "The shifts are the feature-map indices themselves: multiply them by the stride, since location (i, j) of a map downsampled stride times looks at pixel (j * stride_w, i * stride_h) of the image.", _grid_variant("stride-ignored"), _SECTION),
)


# --- known mistakes: the box coder ----------------------------------------------------------------
def _centres(boxes, plus_one=False):
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def _encode_variant(kind: str):
    def build(ref):
        def encode_boxes(gt, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
            if kind == "swapped":
                gt, anchors = anchors, gt
            wx, wy, ww, wh = (1 / v for v in weights) if kind == "weights-divided" else weights
            ax, ay, aw, ah = _centres(anchors, kind == "plus-one")
            gx, gy, gw, gh = _centres(gt, kind == "plus-one")
            if kind == "corners":
                dx, dy = (gt[:, 0] - anchors[:, 0]) / aw, (gt[:, 1] - anchors[:, 1]) / ah
            elif kind == "not-normalised":
                dx, dy = gx - ax, gy - ay
            else:
                dx, dy = (gx - ax) / aw, (gy - ay) / ah
            if kind == "no-log":
                dw, dh = gw / aw, gh / ah
            else:
                dw, dh = torch.log(gw / aw), torch.log(gh / ah)
            return torch.stack([wx * dx, wy * dy, ww * dw, wh * dh], dim=1)

        return {"encode_boxes": encode_boxes}

    return build


def _decode_variant(kind: str):
    def build(ref):
        def decode_boxes(deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
            wx, wy, ww, wh = weights
            ax, ay, aw, ah = _centres(anchors, kind == "plus-one")
            if kind == "weights-multiplied":
                d = deltas * torch.tensor([wx, wy, ww, wh], dtype=deltas.dtype)
            elif kind == "clamp-before-weights":
                d = torch.cat([deltas[:, :2], deltas[:, 2:].clamp(max=_CLIP)], dim=1) / torch.tensor([wx, wy, ww, wh], dtype=deltas.dtype)
            else:
                d = deltas / torch.tensor([wx, wy, ww, wh], dtype=deltas.dtype)
            dw, dh = d[:, 2], d[:, 3]
            if kind == "clamp-both-sides":
                dw, dh = dw.clamp(-_CLIP, _CLIP), dh.clamp(-_CLIP, _CLIP)
            elif kind not in ("no-clamp", "clamp-before-weights"):
                dw, dh = dw.clamp(max=_CLIP), dh.clamp(max=_CLIP)
            x, y = d[:, 0] * aw + ax, d[:, 1] * ah + ay
            w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
            if kind == "full-size":
                return torch.stack([x - w, y - h, x + w, y + h], dim=1)
            if kind == "plus-one":
                return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w - 1, y + 0.5 * h - 1], dim=1)
            return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], dim=1)

        return {"decode_boxes": decode_boxes}

    return build


ENCODE_MISTAKES = (
    Mistake("encode-width-plus-one", "Widths were computed as x2 - x1 + 1 (old Detectron); the contract (torchvision's BoxCoder) uses x2 - x1.", _encode_variant("plus-one"), _SECTION),
    Mistake("encode-size-without-log", "dw and dh are the plain ratios g_w / a_w; they are their logarithms, so that 0 means 'same size' and decode can use exp.", _encode_variant("no-log"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("encode-offsets-not-normalised", "dx and dy are raw pixel offsets; divide them by the anchor's width and height, so that they do not depend on the anchor's size.", _encode_variant("not-normalised"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("encode-corner-offsets", "dx and dy were measured between the top-left corners; they are measured between the centres.", _encode_variant("corners"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("encode-weights-divided", "The offsets were divided by the weights; encode multiplies by them (and decode divides).", _encode_variant("weights-divided"), _SECTION),
    Mistake("encode-arguments-swapped", "The roles of the boxes and the anchors are swapped: the offsets are measured relative to the anchor (the second argument).", _encode_variant("swapped"), _SECTION),
)

DECODE_MISTAKES = (
    Mistake("decode-without-clamp", "dw and dh are not clamped: a huge predicted dw makes exp(dw) overflow; clamp them from above at log(1000 / 16) after dividing by the weights.", _decode_variant("no-clamp"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("decode-clamp-before-weights", "dw and dh were clamped before being divided by the weights; torchvision divides first, then clamps at log(1000 / 16).", _decode_variant("clamp-before-weights"), _SECTION),
    Mistake("decode-clamp-both-sides", "dw and dh were clamped from below too; only the upper side is clamped (a very negative dw just makes a tiny box).", _decode_variant("clamp-both-sides"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("decode-width-plus-one", "The old Detectron + 1 / - 1 pixel convention was used; widths here are x2 - x1.", _decode_variant("plus-one"), _SECTION),
    Mistake("decode-weights-multiplied", "The offsets were multiplied by the weights; decode divides by them, undoing encode's multiplication.", _decode_variant("weights-multiplied"), _SECTION),
    Mistake("decode-full-size-offsets", "The corners are the centre +- the full width; they are the centre +- half the width.", _decode_variant("full-size"), _SECTION),
)


# --- known mistakes: the head and the flattening ----------------------------------------------------
def _head_variant(kind: str):
    def build(ref):
        class RPNHead(ref.RPNHead):
            def forward(self, features):
                if kind == "skips-conv":
                    hidden = features
                elif kind == "no-relu":
                    hidden = self.conv(features)
                else:
                    hidden = F.relu(self.conv(features))
                objectness, deltas = self.cls_logits(hidden), self.bbox_pred(hidden)
                if kind == "sigmoid":
                    objectness = torch.sigmoid(objectness)
                if kind == "softmax":
                    objectness = torch.softmax(objectness, dim=1)
                if kind == "relu-outputs":
                    objectness, deltas = F.relu(objectness), F.relu(deltas)
                if kind == "outputs-swapped":
                    return deltas, objectness
                return objectness, deltas

        return {"RPNHead": RPNHead}

    return build


def _flatten_variant(kind: str):
    def build(ref):
        def flatten_rpn_outputs(objectness, deltas):
            n, a, h, w = objectness.shape
            if kind == "anchor-major":
                return objectness.reshape(n, -1), deltas.view(n, a, 4, h, w).permute(0, 1, 3, 4, 2).reshape(n, -1, 4)
            if kind == "no-permute":
                return objectness.reshape(n, -1), deltas.reshape(n, -1, 4)
            if kind == "scores-not-permuted":
                return objectness.reshape(n, -1), deltas.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
            if kind == "batch-merged":
                return objectness.permute(0, 2, 3, 1).reshape(-1, 1), deltas.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(-1, 4)
            if kind == "coordinate-major":
                return (objectness.permute(0, 2, 3, 1).reshape(n, -1),
                        deltas.view(n, 4, a, h, w).permute(0, 3, 4, 2, 1).reshape(n, -1, 4))
            # column-major
            return (objectness.permute(0, 3, 2, 1).reshape(n, -1),
                    deltas.view(n, a, 4, h, w).permute(0, 4, 3, 1, 2).reshape(n, -1, 4))

        return {"flatten_rpn_outputs": flatten_rpn_outputs}

    return build


HEAD_MISTAKES = (
    Mistake("rpn-head-relu-missing", "There is no ReLU after the shared 3x3 conv: relu(conv(features)) feeds both heads.", _head_variant("no-relu"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("rpn-head-skips-shared-conv", "The 1x1 heads were applied to the features directly; they read the output of the shared 3x3 conv (after its ReLU).", _head_variant("skips-conv"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("rpn-head-sigmoid-objectness", "The objectness went through a sigmoid: the head returns logits (the loss and rpn_proposals apply the sigmoid).", _head_variant("sigmoid"), _SECTION),
    Mistake("rpn-head-relu-on-outputs", "A ReLU was applied to the heads' outputs: logits and offsets can be negative.", _head_variant("relu-outputs"), _SECTION),
    Mistake("rpn-head-softmax-objectness", "A softmax over the anchors was applied to the objectness: the A channels are A independent binary scores (one logit per anchor, as torchvision's RPN has), not one A-way choice; return the logits (the original Faster R-CNN's softmax was over 2 scores per anchor).", _head_variant("softmax"), _SECTION),
    Mistake("rpn-head-outputs-swapped", "The outputs come back as (deltas, objectness): forward returns (objectness (N, A, H, W), deltas (N, 4A, H, W)), in that order.", _head_variant("outputs-swapped"), _SECTION),
)

FLATTEN_MISTAKES = (
    Mistake("flatten-anchor-major", "The outputs were flattened in (A, H, W) order (no permute, or permuting to (N, A, H, W)); grid_anchors is location-major: permute to (N, H, W, A) before flattening.", _flatten_variant("anchor-major"), _SECTION),
    Mistake("flatten-without-permute", "The deltas were reshaped to (N, -1, 4) straight from (N, 4A, H, W): that mixes coordinates of different locations. View them as (N, A, 4, H, W) and permute to (N, H, W, A, 4) first.", _flatten_variant("no-permute"), _SECTION),
    Mistake("flatten-deltas-coordinate-major", "The delta channels were read as (4, A) (channel j * A + a); channel 4a + j is coordinate j of anchor a: view as (N, A, 4, H, W).", _flatten_variant("coordinate-major"), _SECTION),
    Mistake("flatten-column-major", "The locations were flattened column by column (W before H); grid_anchors goes row by row.", _flatten_variant("column-major"), _SECTION),
    Mistake("flatten-scores-not-permuted", "The deltas are in the right order but the scores were reshaped straight from (N, A, H, W), anchor by anchor: permute them to (N, H, W, A) too, or score i belongs to another anchor than delta i.", _flatten_variant("scores-not-permuted"), _SECTION),
    Mistake("flatten-batch-merged", "The images of the batch were merged into one list ((N*H*W*A, 1) and (N*H*W*A, 4), as torchvision's concat_box_prediction_layers does for its loss): keep one row per image, scores (N, H*W*A) and deltas (N, H*W*A, 4).", _flatten_variant("batch-merged"), _SECTION),
)


# --- known mistakes: proposals ---------------------------------------------------------------------
def _greedy_nms(boxes: torch.Tensor, thresh: float) -> list[int]:
    """Greedy NMS over boxes already in visiting order (the mistakes' own, written independently)."""
    wh = (torch.min(boxes[:, None, 2:], boxes[None, :, 2:]) - torch.max(boxes[:, None, :2], boxes[None, :, :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area[:, None] + area[None, :] - inter
    overlaps = inter > thresh * union  # inter / union > thresh, without 0 / 0
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool)
    keep: list[int] = []
    for i in range(boxes.shape[0]):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return keep


def _proposals_variant(kind: str):
    def build(ref):
        def rpn_proposals(scores, deltas, anchors, image_size, pre_nms_top_n=1000, post_nms_top_n=100,
                          nms_thresh=0.7, min_size=1e-3):
            height, width = image_size
            if kind == "clip-hw-swapped":
                height, width = width, height
            if kind == "clip-minus-one":
                height, width = height - 1, width - 1
            order = torch.sort(scores, descending=True, stable=True).indices
            if kind != "pre-top-n-ignored":
                order = order[:pre_nms_top_n]
            s, anc = scores[order], anchors[order]
            boxes = ref.decode_boxes(deltas[order], anc)
            if kind != "no-clip":
                boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                                     boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], dim=1)
            if kind != "small-kept":
                big = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
                boxes, s, anc = boxes[big], s[big], anc[big]
            if kind == "post-top-n-before-nms":
                boxes, s, anc = boxes[:post_nms_top_n], s[:post_nms_top_n], anc[:post_nms_top_n]
            keep = _greedy_nms(anc if kind == "nms-on-anchors" else boxes, nms_thresh)[:post_nms_top_n]
            keep_t = torch.tensor(keep, dtype=torch.int64)
            probs = s[keep_t] if kind == "logits-returned" else torch.sigmoid(s[keep_t])
            return boxes[keep_t], probs

        return {"rpn_proposals": rpn_proposals}

    return build


PROPOSAL_MISTAKES = (
    Mistake("proposals-clip-hw-swapped", "image_size is (H, W): x is clipped to [0, W] and y to [0, H], not the other way round.", _proposals_variant("clip-hw-swapped"), _SECTION),
    Mistake("proposals-not-clipped", "The boxes are not clipped to the image: clamp x to [0, W] and y to [0, H] after decoding.", _proposals_variant("no-clip"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("proposals-clip-minus-one", "The boxes were clipped to W - 1 and H - 1 (the old pixel-index convention); coordinates are continuous: clip to [0, W] and [0, H].", _proposals_variant("clip-minus-one"), _SECTION),
    Mistake("proposals-small-boxes-kept", "Boxes narrower or lower than min_size (after clipping) must be dropped before NMS.", _proposals_variant("small-kept"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("proposals-logits-returned", "The scores are returned as logits; the contract returns probabilities, sigmoid(score).", _proposals_variant("logits-returned"), _SECTION),
    Mistake("proposals-pre-top-n-ignored", "All anchors went into NMS: only the pre_nms_top_n best-scoring ones are decoded and considered.", _proposals_variant("pre-top-n-ignored"), _SECTION),
    Mistake("proposals-post-top-n-before-nms", "The list was cut to post_nms_top_n before NMS; NMS first, then keep the first post_nms_top_n survivors.", _proposals_variant("post-top-n-before-nms"), _SECTION, subsection="Anchors and the region proposal network"),
    Mistake("proposals-nms-on-anchors", "NMS compared the anchors; it must compare the decoded (and clipped) boxes.", _proposals_variant("nms-on-anchors"), _SECTION, subsection="Anchors and the region proposal network"),
)


# --- cases: anchors -------------------------------------------------------------------------------
def probe_generate_anchors(mod, *args, device="cpu", seed=0):
    """generate_anchors(*args), moved to `device`: the contract gives it no device argument, so
    the anchors are made on the CPU (as torchvision's are by default) and moved like inputs."""
    out = mod.generate_anchors(*args)
    return {"out": out.to(device) if isinstance(out, torch.Tensor) else out}


def _anchors(*args, label: str) -> Case:
    return Case("grader.checks.rpn:probe_generate_anchors", args, label=label)


def _anchors_defaults(g, ref):
    return [
        _anchors(label=f"the defaults: expected {_DEFAULT_ANCHORS}"),
        _anchors((128, 256, 512), (0.5, 1.0, 2.0), label="sizes (128, 256, 512), ratios (0.5, 1.0, 2.0) given explicitly"),
    ]


def _anchors_other(g, ref):
    return [
        _anchors((32,), (1.0,), label="one size 32, one ratio 1.0: a single square anchor"),
        _anchors((32, 64), (0.25, 1.0, 4.0), label="sizes (32, 64), ratios (0.25, 1.0, 4.0): h = w/4, h = w, h = 4w, square roots exact"),
        _anchors((3, 5, 7), (1.0,), label="sizes (3, 5, 7), ratio 1.0: half-sides 1.5, 2.5, 3.5 round to even: 2, 2, 4"),
        _anchors((16, 40, 100), (0.5, 2.0, 3.0), label="sizes (16, 40, 100), ratios (0.5, 2.0, 3.0)"),
        _anchors((24.0, 48.0), (1.0, 0.5), label="float sizes (24.0, 48.0), ratios (1.0, 0.5)"),
    ]


def _grid_cases(g, ref):
    base6 = ref.generate_anchors((32, 64), (0.5, 1.0, 2.0))
    base3 = ref.generate_anchors((20,), (0.5, 1.0, 2.0))
    return [
        call("grid_anchors", base6, (2, 3), 16, label="6 base anchors, a 2 x 3 feature map (H=2, W=3), stride 16: 36 anchors"),
        call("grid_anchors", base3, (3, 2), 8, label="3 base anchors, a 3 x 2 feature map (H=3, W=2), stride 8: 18 anchors"),
        call("grid_anchors", torch.tensor([[-4.0, -4.0, 4.0, 4.0]]), (1, 5), 10, label="1 base anchor, a 1 x 5 feature map, stride 10"),
        call("grid_anchors", base3, (1, 1), 32, label="a 1 x 1 feature map: the base anchors themselves"),
    ]


def _grid_strides(g, ref):
    half = torch.rand(4, 2, generator=g, dtype=torch.float64) * 20 + 2
    base64 = torch.cat([-half, half], dim=1)  # (4, 4) zero-centred
    return [
        call("grid_anchors", ref.generate_anchors((20,), (0.5, 1.0, 2.0)), (3, 4), (8, 4),
             label="3 base anchors, a 3 x 4 feature map, stride (8, 4): rows 8 pixels apart, columns 4"),
        call("grid_anchors", base64, (4, 3), (5, 7), label="4 random float64 base anchors, a 4 x 3 feature map, stride (5, 7)"),
        call("grid_anchors", ref.generate_anchors(), (2, 5), (16, 32), label="the 9 default anchors, a 2 x 5 feature map, stride (16, 32)"),
    ]


# --- cases: the box coder -------------------------------------------------------------------------
def _coder_inputs(g, n, dtype):
    anchors = _boxes(g, n, dtype)
    return _jittered(g, anchors), anchors


def _encode_cases(g, ref):
    gt, anchors = _coder_inputs(g, 10, torch.float32)
    gt64, anchors64 = _coder_inputs(g, 6, torch.float64)
    gt_w, anchors_w = _coder_inputs(g, 7, torch.float64)
    return [
        call("encode_boxes", gt, anchors, label="10 random float32 anchors and boxes near them"),
        call("encode_boxes", gt64, anchors64, grad=True, label="6 random float64 anchors and boxes, gradients w.r.t. both"),
        call("encode_boxes", gt_w, anchors_w, (10.0, 10.0, 5.0, 5.0), label="weights (10, 10, 5, 5) (Fast R-CNN's box head), float64"),
        call("encode_boxes", gt_w, anchors_w, (2.0, 0.5, 1.0, 3.0), label="weights (2, 0.5, 1, 3): each weight scales its own offset, float64"),
        call("encode_boxes", anchors, anchors, label="boxes equal to their anchors: all offsets 0"),
    ]


def _decode_cases(g, ref):
    anchors = _boxes(g, 10, torch.float32)
    anchors64 = _boxes(g, 6, torch.float64)
    return [
        call("decode_boxes", randn(g, 10, 4) * 0.5, anchors, label="10 random float32 anchors, offsets ~ N(0, 0.5)"),
        call("decode_boxes", randn(g, 6, 4, dtype=torch.float64) * 0.5, anchors64, grad=True,
             label="6 random float64 anchors and offsets, gradients w.r.t. both"),
        call("decode_boxes", randn(g, 6, 4, dtype=torch.float64), anchors64, (10.0, 10.0, 5.0, 5.0),
             label="weights (10, 10, 5, 5), float64"),
        call("decode_boxes", torch.zeros(10, 4), anchors, label="zero offsets: the anchors themselves"),
    ]


def _decode_clamp_cases(g, ref):
    anchors = _boxes(g, 5, torch.float32)
    huge = torch.tensor([[0.1, -0.2, 10.0, 0.3], [0.0, 0.0, 50.0, 100.0], [0.2, 0.1, 0.5, 1000.0],
                         [0.0, 0.0, -10.0, -30.0], [-0.3, 0.4, 4.0, 4.2]])
    anchors64 = _boxes(g, 5, torch.float64)
    big = torch.tensor([[0.0, 0.0, 20.0, 30.0], [1.0, -1.0, 25.0, 19.0], [0.0, 0.0, -30.0, 5.0],
                        [0.5, 0.5, 22.0, 21.0], [0.0, 0.0, 40.0, -40.0]], dtype=torch.float64)
    return [
        call("decode_boxes", huge, anchors, label="huge dw, dh (10, 50, 100, 1000) are clamped at log(1000/16); very negative ones (-10, -30) are not"),
        call("decode_boxes", big, anchors64, (1.0, 1.0, 5.0, 5.0),
             label="weights (1, 1, 5, 5) and dw, dh up to 40: divided by 5 first (20 -> 4, below the clamp), then clamped; float64"),
        call("decode_boxes", big, anchors64, grad=True, label="clamped dw, dh in float64: gradients (0 through the clamp)"),
    ]


def _round_trip_cases(g, ref):
    """decode_boxes on offsets that the reference's encode_boxes made from boxes gt: gt back. The
    offsets come from the reference, so this part is graded on its own, whatever encode_boxes does."""
    gt, anchors = _coder_inputs(g, 12, torch.float64)
    gt32, anchors32 = _coder_inputs(g, 12, torch.float32)
    cases = []
    for boxes, anc, weights, what in [(gt, anchors, (1.0, 1.0, 1.0, 1.0), "12 random float64 boxes"),
                                      (gt, anchors, (10.0, 10.0, 5.0, 5.0), "the same with weights (10, 10, 5, 5)"),
                                      (gt32, anchors32, (2.0, 0.5, 1.0, 3.0), "12 random float32 boxes, weights (2, 0.5, 1, 3)")]:
        deltas = ref.encode_boxes(boxes, anc, weights)
        cases.append(call("decode_boxes", deltas, anc, weights,
                          label=f"{what}: the offsets that encode the boxes {[[round(v, 2) for v in row] for row in boxes[:2].tolist()]}, ... "
                                "relative to their anchors (made by the reference's encode_boxes), decoded: the boxes come back"))
    return cases


# --- cases: the head and the flattening --------------------------------------------------------------
# (N, C, H, W, A)
_HEAD_CONFIGS = [(2, 8, 5, 7, 3), (1, 4, 3, 3, 9), (2, 6, 4, 6, 1), (1, 5, 2, 9, 2)]


def _head_state(g, ref, c, a):
    """Reference-shaped weights with values from `g` (larger than torchvision's std 0.01, and
    non-zero biases), so that every layer visibly matters."""
    return {k: randn(g, *v.shape) * 0.3 for k, v in reference_state(ref, "RPNHead", c, a).items()}


def _head_case(g, ref, cfg, grad):
    n, c, h, w, a = cfg
    what = "outputs and gradients w.r.t. the input and every parameter" if grad else "objectness (N, A, H, W) and deltas (N, 4A, H, W)"
    return module_case("RPNHead", (c, a), (randn(g, n, c, h, w),), _head_state(g, ref, c, a), grad=grad,
                       label=f"RPNHead({c}, {a}) with the reference's weights on features {(n, c, h, w)}: {what}")


def _head_outputs(g, ref):
    return [_head_case(g, ref, cfg, grad=False) for cfg in _HEAD_CONFIGS]


def _head_grads(g, ref):
    return [_head_case(g, ref, cfg, grad=True) for cfg in _HEAD_CONFIGS[:3]]


def _labelled_maps(ref, n, a, h, w, stride, base):
    """objectness[n, a, i, j] = 10000 n + 1000 i + 10 j + a, and deltas whose 4 channels of anchor
    a at (i, j) hold that anchor's grid_anchors box (+ 10000 n): all distinct, and the correct
    flattening of deltas is exactly grid_anchors."""
    ii = torch.arange(h).view(1, 1, h, 1)
    jj = torch.arange(w).view(1, 1, 1, w)
    aa = torch.arange(a).view(1, a, 1, 1)
    nn_ = torch.arange(n).view(n, 1, 1, 1)
    objectness = (10000 * nn_ + 1000 * ii + 10 * jj + aa).float()  # (N, A, H, W)
    grid = ref.grid_anchors(base, (h, w), stride)  # (H*W*A, 4)
    per_anchor = grid.view(h, w, a, 4).permute(2, 3, 0, 1).reshape(1, 4 * a, h, w)  # (1, 4A, H, W)
    deltas = per_anchor + 10000 * nn_.float()  # (N, 4A, H, W)
    return objectness, deltas


def _flatten_order(g, ref):
    base3 = ref.generate_anchors((32,), (0.5, 1.0, 2.0))
    cases = []
    for n, a, h, w, stride, base in [(2, 3, 2, 4, 16, base3), (1, 9, 3, 2, (8, 16), ref.generate_anchors()),
                                     (1, 1, 1, 5, 10, torch.tensor([[-4.0, -4.0, 4.0, 4.0]]))]:
        objectness, deltas = _labelled_maps(ref, n, a, h, w, stride, base)
        cases.append(call("flatten_rpn_outputs", objectness, deltas,
                          label=f"N={n}, A={a}, H={h}, W={w}: objectness[n, a, i, j] = 10000n + 1000i + 10j + a; the 4 delta channels "
                                f"of anchor a at (i, j) hold its grid_anchors box (stride {stride}), so your flattened deltas[n] must be "
                                f"grid_anchors(base, ({h}, {w}), {stride}) + 10000n, row (i * W + j) * A + a"))
    return cases


def _flatten_random(g, ref):
    return [
        call("flatten_rpn_outputs", randn(g, 2, 2, 3, 3, dtype=torch.float64), randn(g, 2, 8, 3, 3, dtype=torch.float64), grad=True,
             label="random float64 maps N=2, A=2, H=W=3, gradients too"),
        call("flatten_rpn_outputs", randn(g, 3, 4, 2, 5), randn(g, 3, 16, 2, 5), label="random float32 maps N=3, A=4, H=2, W=5"),
    ]


# --- cases: proposals ---------------------------------------------------------------------------------
def _scenario(g, ref, h, w, stride, sizes, ratios=(0.5, 1.0, 2.0), *, dtype=torch.float32, move=0.3, tie_levels=0):
    """Seeded RPN output maps for one image of an (H, W) feature map, flattened with the
    reference, and the matching anchors: (scores (K,), deltas (K, 4), anchors (K, 4), image_size)."""
    a = len(sizes) * len(ratios)
    logits = torch.randn(1, a, h, w, generator=g, dtype=torch.float64) * 3
    if tie_levels:
        logits = torch.round(logits * tie_levels / 3) * 3 / tie_levels  # only a few distinct values
    objectness = logits.clamp(-14, 14).to(dtype)  # (1, A, H, W); |logits| < 15: distinct float32 sigmoids
    deltas = (torch.randn(1, 4 * a, h, w, generator=g, dtype=torch.float64) * move).to(dtype)  # (1, 4A, H, W)
    scores, flat = ref.flatten_rpn_outputs(objectness, deltas)
    anchors = ref.grid_anchors(ref.generate_anchors(sizes, ratios).to(dtype), (h, w), stride)
    sh, sw = _pair(stride)
    return scores[0], flat[0], anchors, (h * sh, w * sw)


def _proposal_case(g, ref, h, w, stride, sizes, label, *, dtype=torch.float32, move=0.3, tie_levels=0, assess=False, **kwargs):
    """A call of rpn_proposals on a seeded scenario; with `assess`, judged by `assess_proposals`."""
    scores, deltas, anchors, image = _scenario(g, ref, h, w, stride, sizes, dtype=dtype, move=move, tie_levels=tie_levels)
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    full = (f"{label}; {anchors.shape[0]} anchors of an {h} x {w} feature map with stride {stride}, sizes {sizes}, "
            f"image {image}, {dtype_name(dtype)}" + (f", {args}" if args else ""))
    judge = None
    if assess:  # a partial of a module-level function, so that recorded grading can name it
        judge = functools.partial(assess_proposals, image_size=image, post_nms_top_n=kwargs.get("post_nms_top_n", 100),
                                  min_size=kwargs.get("min_size", 1e-3))
    return Case("call", ("rpn_proposals", scores, deltas, anchors, image), kwargs, label=full, assess=judge)


def assess_proposals(got, expected, *, image_size, post_nms_top_n, min_size):
    """The proposals' own properties, checked one by one for a message that says which failed:
    a pair of tensors, at most `post_nms_top_n` (and as many as the reference's), inside the
    image, none smaller than `min_size`, probabilities in [0, 1] in decreasing order."""
    height, width = image_size
    out = got.get("out") if isinstance(got, dict) else None
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(is_tensor(t) for t in out)):
        return "rpn_proposals must return a pair (boxes (P, 4), probs (P,)) of tensors"
    boxes, probs = out[0][TENSOR_KEY].double(), out[1][TENSOR_KEY].double()
    n_exp = expected["out"][0][TENSOR_KEY].shape[0]
    if boxes.dim() != 2 or boxes.shape[1] != 4 or probs.shape != (boxes.shape[0],):
        return f"expected boxes (P, 4) and probs (P,), got {tuple(boxes.shape)} and {tuple(probs.shape)}"
    if boxes.shape[0] > post_nms_top_n:
        return f"{boxes.shape[0]} proposals, more than post_nms_top_n = {post_nms_top_n}"
    if boxes.shape[0] != n_exp:
        return f"{boxes.shape[0]} proposals, expected {n_exp}"
    for i, row in enumerate(boxes.tolist()):
        x1, y1, x2, y2 = row
        if not (0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height):
            return (f"proposal {i} {[round(v, 3) for v in row]} is not inside the {height} x {width} image: "
                    f"clip x to [0, W] = [0, {width}] and y to [0, H] = [0, {height}]")
        if x2 - x1 < min_size or y2 - y1 < min_size:
            return f"proposal {i} {[round(v, 3) for v in row]} is smaller than min_size = {min_size}: such boxes are dropped before NMS"
    if bool(((probs < 0) | (probs > 1)).any()):
        return "probs must be probabilities, sigmoid(score), in [0, 1]"
    if probs.numel() > 1 and bool((probs[1:] > probs[:-1]).any()):
        i = int((probs[1:] > probs[:-1]).nonzero()[0]) + 1
        return f"probs are not in decreasing order: probs[{i}] = {probs[i].item():.6g} > probs[{i - 1}] = {probs[i - 1].item():.6g}"
    return None


def _proposals_valid(g, ref):
    return [
        _proposal_case(g, ref, 6, 8, 16, (32, 64), "inside the image, sorted, at most post_nms_top_n", assess=True),
        _proposal_case(g, ref, 4, 6, 16, (64, 128), "large anchors and offsets, min_size 12", move=0.8, min_size=12.0, post_nms_top_n=30,
                       assess=True),
        _proposal_case(g, ref, 5, 5, (16, 8), (32,), "a non-square image", post_nms_top_n=20, assess=True),
    ]


def _proposals_defaults(g, ref):
    return [
        _proposal_case(g, ref, 6, 8, 16, (32, 64), "the default limits (pre 1000, post 100, threshold 0.7)"),
        _proposal_case(g, ref, 5, 6, (16, 8), (24, 48), "the default limits, stride (16, 8): a non-square image", move=0.5),
        _proposal_case(g, ref, 6, 6, 16, (32, 64), "the default limits", dtype=torch.float64),
    ]


def _proposals_top_n(g, ref):
    return [
        _proposal_case(g, ref, 6, 8, 16, (32, 64), "top-n limits, threshold 0.4", pre_nms_top_n=40, post_nms_top_n=15, nms_thresh=0.4),
        _proposal_case(g, ref, 5, 5, 16, (32, 64), "few anchors into NMS, room for all of them", pre_nms_top_n=8, post_nms_top_n=100),
        _proposal_case(g, ref, 4, 5, 16, (32, 64), "more than all anchors into NMS, threshold 0.5", pre_nms_top_n=5000, post_nms_top_n=300, nms_thresh=0.5),
        _proposal_case(g, ref, 4, 4, 16, (32,), "a single proposal", post_nms_top_n=1),
    ]


def _proposals_clip_small(g, ref):
    return [
        _proposal_case(g, ref, 3, 4, 16, (64, 128), "anchors much larger than the 48 x 64 image, moved far: clipping and min_size 16 matter",
                       move=1.2, min_size=16.0),
        _proposal_case(g, ref, 4, 3, (8, 16), (32, 96), "a non-square image, large offsets", move=1.0, min_size=4.0, nms_thresh=0.6),
    ]


def _proposals_ties(g, ref):
    return [
        _proposal_case(g, ref, 5, 6, 16, (32, 64), "integer logits, many equal: equal scores are ranked lower index first, also at the pre_nms_top_n cut",
                       dtype=torch.float64, tie_levels=3, pre_nms_top_n=60, post_nms_top_n=25),
        _proposal_case(g, ref, 4, 4, 16, (32,), "logits that are multiples of 3, many equal, threshold 0.5", tie_levels=1, nms_thresh=0.5),
    ]


_BOXES = Picture("boxes")
_PROPOSALS = Picture("boxes", of=("out", 0), inputs=(4,))  # the proposals in the image of image_size


CHECKS = [
    Check("generate_anchors_defaults", "generate_anchors", 1, _anchors_defaults, ANCHOR_MISTAKES,
          "the 9 default anchors of torchvision's AnchorGenerator", _BOXES),
    Check("generate_anchors_sizes_ratios", "generate_anchors", 2, _anchors_other, ANCHOR_MISTAKES,
          "other sizes and ratios: ratio-major order, rounding halves to even", _BOXES),
    Check("grid_anchors_order_count", "grid_anchors", 2, _grid_cases, GRID_MISTAKES,
          "H * W * A anchors, row by row, the A anchors of a location consecutive, on non-square maps", _BOXES),
    Check("grid_anchors_strides", "grid_anchors", 1, _grid_strides, GRID_MISTAKES,
          "pair strides (stride_h, stride_w) and float64 anchors", _BOXES),
    Check("encode_boxes_values", "encode_boxes", 3, _encode_cases, ENCODE_MISTAKES,
          "offsets against the reference, weights other than 1, gradients", Picture("values")),
    Check("decode_boxes_values", "decode_boxes", 2, _decode_cases, DECODE_MISTAKES,
          "boxes against the reference, weights other than 1, gradients", _BOXES),
    Check("decode_boxes_clamp", "decode_boxes", 1, _decode_clamp_cases, DECODE_MISTAKES,
          "dw and dh clamped from above at log(1000/16), after the weights", _BOXES),
    Check("decode_encode_round_trip", "decode_boxes", 1, _round_trip_cases, DECODE_MISTAKES,
          "decode_boxes gives back the boxes whose offsets encode_boxes (the reference's) made", _BOXES),
    Check("rpn_head_outputs", "RPNHead", 2, _head_outputs, HEAD_MISTAKES,
          "objectness and deltas with the reference's weights", Picture("maps")),
    Check("rpn_head_gradients", "RPNHead", 2, _head_grads, HEAD_MISTAKES,
          "gradients w.r.t. the features and every parameter", Picture("maps")),
    Check("flatten_matches_grid_anchors", "flatten_rpn_outputs", 2, _flatten_order, FLATTEN_MISTAKES,
          "the order of grid_anchors, on maps where every anchor and location has its own value", Picture("values")),
    Check("flatten_random_maps", "flatten_rpn_outputs", 1, _flatten_random, FLATTEN_MISTAKES,
          "random maps, gradients included", Picture("values")),
    Check("proposals_valid", "rpn_proposals", 1, _proposals_valid, PROPOSAL_MISTAKES,
          "boxes inside the image and not too small, probabilities in decreasing order, at most post_nms_top_n", _PROPOSALS),
    Check("proposals_default_limits", "rpn_proposals", 2, _proposals_defaults, PROPOSAL_MISTAKES,
          "proposals and probabilities equal to the reference's at the default limits", _PROPOSALS),
    Check("proposals_top_n_limits", "rpn_proposals", 1, _proposals_top_n, PROPOSAL_MISTAKES,
          "pre_nms_top_n and post_nms_top_n", _PROPOSALS),
    Check("proposals_clip_and_min_size", "rpn_proposals", 1, _proposals_clip_small, PROPOSAL_MISTAKES,
          "clipping to a non-square image and removing small boxes", _PROPOSALS),
    Check("proposals_ties", "rpn_proposals", 1, _proposals_ties, PROPOSAL_MISTAKES,
          "equal scores: the lower index first", _PROPOSALS),
]
