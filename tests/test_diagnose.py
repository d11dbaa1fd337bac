"""Diagnoses: each kind on wrong implementations written for it, and none for correct code.

Each test writes a small reference and a realistic wrong version of it, runs both through the
same probe the grader uses, and checks the finding's kind and the words that make it precise.
A few tests go end to end through grading.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from conftest import variant
from grader.engine.diagnose import CaseFacts, across_cases, diagnose
from grader.engine.spec import Case
from grader.runner import probes


def _run(fn, args, kwargs, grad):
    out = probes.sanitize(probes.call(SimpleNamespace(f=fn), "f", *copy.deepcopy(args), grad=grad, **copy.deepcopy(kwargs)))
    return {k: v for k, v in out.items() if k != "args_after"}


def diag(ref, wrong, *args, grad=False, label="", **kwargs):
    """The diagnosis of `wrong` against `ref` on one case; also proves the reference gets none."""
    case = Case("call", ("f", *args), {**kwargs, **({"grad": True} if grad else {})}, label=label)
    facts = CaseFacts.of(case, list(inspect.signature(ref).parameters))
    expected = _run(ref, args, kwargs, grad)
    assert diagnose(_run(ref, args, kwargs, grad), expected, facts) == []
    return diagnose(_run(wrong, args, kwargs, grad), expected, facts)


def one(found, kind):
    """The single finding of `kind` (and nothing else), its text."""
    assert [d.kind for d in found] == [kind], found
    return found[0].text


def rand(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# References with the contract's parameter names.
def conv2d(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride, padding)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    return F.conv_transpose2d(x, weight, bias, stride, padding)


def max_pool2d(x, kernel_size, stride=None):
    return F.max_pool2d(x, kernel_size, stride)


def avg_pool2d(x, kernel_size, stride=None):
    return F.avg_pool2d(x, kernel_size, stride)


def box_iou(boxes1, boxes2):
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def nms(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    for i in order.tolist():
        if all(box_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= iou_threshold for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


X = rand(2, 3, 9, 7)
W = rand(4, 3, 3, 2, seed=1)
B = rand(4, seed=2)
BOXES = torch.tensor([[0.0, 0.0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [21, 20, 31, 30], [50, 50, 60, 60], [0, 0, 9, 10]])
SCORES = torch.tensor([0.5, 0.8, 0.3, 0.9, 0.7, 0.6])  # nms keeps [3, 1, 4]


# --- shape --------------------------------------------------------------------------------------
def test_shape_ceil_instead_of_floor():
    text = one(diag(max_pool2d, lambda x, kernel_size, stride=None: F.max_pool2d(x, kernel_size, stride, ceil_mode=True), X, 2, None), "shape")
    assert "dimension 2 (height) is 5, expected 4 (1 more): the division rounds up (ceil)" in text
    assert "plus 1 row at the bottom" in text


def test_shape_padding_not_applied():
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias, stride, 0), X, W, B, 1, 2), "shape")
    assert "dimension 2 (height) is 7, expected 11 (4 fewer): the padding (2 on each side) is not applied" in text
    assert "without 2 rows at the top and 2 rows at the bottom" in text


def test_shape_stride_not_applied_and_stride_none():
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias, 1, padding), X, W, B, (2, 1), 1), "shape")
    assert "dimension 2 (height) is 9, expected 5 (4 more): the stride (2) is not applied" in text
    text = one(diag(max_pool2d, lambda x, kernel_size, stride=None: F.max_pool2d(x, kernel_size, 1 if stride is None else stride), X, 3, None), "shape")
    assert "stride=None is taken as 1, where it means the kernel size (3)" in text


def test_shape_padding_twice_and_stride_as_kernel():
    def twice(x, weight, bias=None, stride=1, padding=0):
        return F.conv2d(F.pad(x, (padding,) * 4), weight, bias, stride, padding)

    assert "the padding (1) is applied twice" in one(diag(conv2d, twice, X, W, B, 1, 1), "shape")

    def stride_as_kernel(x, kernel_size, stride=None):
        return F.max_pool2d(x, kernel_size)

    assert "the stride is taken as the kernel size (3) where 1 is given" in one(diag(max_pool2d, stride_as_kernel, X, 3, 1), "shape")


def test_structure_indices_instead_of_values():
    def argmax_pool(x, kernel_size, stride=None):
        return F.max_pool2d(x, kernel_size, stride, return_indices=True)[1]

    assert one(diag(max_pool2d, argmax_pool, X, 2, None), "structure").startswith(
        "yours holds int64 indices where float64 values are expected: the positions (argmax, .indices)")


def test_shape_missing_plus_one():
    def wrong(x, weight, bias=None, stride=1, padding=0):  # out = (H + 2p - k) // s, windows from 0
        return F.conv2d(x, weight, bias, stride, padding)[..., :-1, :-1]

    text = one(diag(conv2d, wrong, X, W, B, 1, 0), "shape")
    assert "the + 1 of floor((size + 2 * padding - kernel) / stride) + 1 is missing" in text
    assert "without 1 row at the bottom" in text and "1 column at the right" in text


def test_shape_transposed_padding_cropped_on_one_side_or_not_at_all():
    x, w = rand(2, 3, 4, 4), rand(3, 2, 3, 3, seed=1)

    def one_side(x, weight, bias=None, stride=1, padding=0):
        return F.conv_transpose2d(x, weight, bias, stride, 0)[:, :, padding:, padding:]

    text = one(diag(conv_transpose2d, one_side, x, w, None, 2, 1), "shape")
    assert "is 8, expected 7 (1 more): the padding (1) is cropped from one side only" in text
    assert "plus 1 row at the bottom and 1 column at the right" in text
    text = one(diag(conv_transpose2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv_transpose2d(x, weight, bias, stride, 0),
                    x, w, None, 2, 1), "shape")
    assert "the padding is not cropped" in text and "1 row at the top and 1 row at the bottom" in text


def test_shape_height_and_width_swapped():
    text = one(diag(max_pool2d, lambda x, kernel_size, stride=None: F.max_pool2d(x, kernel_size[::-1], stride[::-1]), X, (3, 2), (2, 1)), "shape")
    assert "height and width are swapped" in text


def test_shape_weight_axes_read_in_the_wrong_order():
    def wrong(x, weight, bias=None, stride=1, padding=0):  # takes the weight as (C_out, C_in, kH, kW)
        w = weight.transpose(0, 1)
        return F.conv_transpose2d(x[:, :w.shape[0]], w, None, stride, padding)

    text = one(diag(conv_transpose2d, wrong, rand(2, 3, 4, 4), rand(3, 2, 2, 2, seed=1), None, 2, 0), "shape")
    assert "dimension 1 (channels) is 3, expected 2 (1 more): 3 is weight.shape[0] where weight.shape[1] = 2 is expected" in text


def test_shape_missing_size_one_dimension():
    def channel_mean(x):
        return x.mean(dim=1, keepdim=True)

    text = one(diag(channel_mean, lambda x: x.mean(dim=1), X), "shape")
    assert "dimension 1 (of size 1) is missing" in text and "keepdim=True" in text


# --- layout -------------------------------------------------------------------------------------
def test_layout_channels_last_and_transposed():
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias).permute(0, 2, 3, 1), X, W, B), "layout")
    assert "expected.permute(0, 2, 3, 1)" in text and "channels last" in text
    square = rand(2, 3, 6, 6)
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x.transpose(2, 3), weight.transpose(2, 3), bias),
                    square, rand(4, 3, 3, 3), B), "layout")
    assert "height and width swapped" in text
    a, b = BOXES[:4], BOXES[2:]
    text = one(diag(box_iou, lambda boxes1, boxes2: box_iou(boxes2, boxes1), a, b), "layout")
    assert "the transpose (rows and columns swapped)" in text


def test_layout_view_where_a_permute_was_needed():
    def wrong(x, weight, bias=None, stride=1, padding=0):  # convolution as a matrix product, then the wrong view
        n, _, h, w = x.shape
        cols = F.unfold(x, weight.shape[2:])  # (N, C*kH*kW, L)
        out = cols.transpose(1, 2) @ weight.reshape(weight.shape[0], -1).T  # (N, L, C_out)
        return out.reshape(n, weight.shape[0], h - weight.shape[2] + 1, w - weight.shape[3] + 1)

    text = one(diag(conv2d, wrong, X, W, None), "layout")
    assert "laid out as (N, H, W, C)" in text and "permute" in text


def test_layout_slices_in_another_order():
    def branches(x, weight, bias=None, stride=1, padding=0):  # two "branches" concatenated along the channels
        return torch.cat([F.conv2d(x, weight[:1], bias[:1]), F.conv2d(x, weight[1:], bias[1:])], dim=1)

    def swapped(x, weight, bias=None, stride=1, padding=0):
        return torch.cat([F.conv2d(x, weight[1:], bias[1:]), F.conv2d(x, weight[:1], bias[:1])], dim=1)

    text = one(diag(branches, swapped, X, W, B), "layout")
    assert text.startswith("the right channels in another order: yours 0-2 are the expected 1-3; yours 3 is the expected 0")

    def grid(base, rows, cols):  # location-major: the anchors of one location are consecutive
        shifts = torch.tensor([[float(c), float(r)] * 2 for r in range(rows) for c in range(cols)])
        return (shifts[:, None, :] + base[None]).reshape(-1, 4)

    def anchor_major(base, rows, cols):
        shifts = torch.tensor([[float(c), float(r)] * 2 for r in range(rows) for c in range(cols)])
        return (shifts[None, :, :] + base[:, None]).reshape(-1, 4)

    base = torch.tensor([[-1.0, -2, 1, 2], [-2, -1, 2, 1]], dtype=torch.float64)
    text = one(diag(grid, anchor_major, base, 2, 3), "layout")
    assert text.startswith("the right rows in another order (12 stretches)")


def test_layout_flipped():
    def wrong(x, kernel_size, stride=None):  # rows collected bottom-up
        rows = [F.avg_pool2d(x, kernel_size, stride)[:, :, i] for i in range(F.avg_pool2d(x, kernel_size, stride).shape[2])]
        return torch.stack(rows[::-1], dim=2)

    text = one(diag(avg_pool2d, wrong, X, 2, None), "layout")
    assert "flipped along dimension 2 (height) (upside down)" in text


# --- arithmetic ---------------------------------------------------------------------------------
def test_arithmetic_wrong_count():
    def wrong(x, kernel_size, stride=None):
        kh, kw = kernel_size
        return x.unfold(2, kh, stride[0]).unfold(3, kw, stride[1]).sum((-2, -1)) / (kh * kh)

    text = one(diag(avg_pool2d, wrong, X, (3, 2), (2, 1)), "arithmetic")
    assert "every value is 2/3 of the expected one" in text and "divided by kH*kH = 9 instead of kH*kW = 6" in text


def test_arithmetic_sum_instead_of_mean_and_sign():
    def mse(x, x_hat):
        return ((x - x_hat) ** 2).mean()

    x, y = rand(2, 3, 4), rand(2, 3, 4, seed=1)
    text = one(diag(mse, lambda x, x_hat: ((x - x_hat) ** 2).sum(), x, y), "arithmetic")
    assert "yours is 24 times the expected value: a sum where the mean over the number of elements = 24 was needed" in text

    def g_loss(fake_logits):  # minimax generator loss
        return torch.log1p(-torch.sigmoid(fake_logits)).mean()

    text = one(diag(g_loss, lambda fake_logits: -torch.log1p(-torch.sigmoid(fake_logits)).mean(), rand(8)), "arithmetic")
    assert text.startswith("yours has the right size but the wrong sign (yours = -expected)")


def test_arithmetic_offset_and_named_scalar():
    def triplet(a, p, n, margin=1.0):
        return F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin).mean()

    a = rand(6, 3)
    far = a + 5.0  # every triplet is active, so a doubled margin shifts the loss by exactly margin
    text = one(diag(triplet, lambda a, p, n, margin=1.0: F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + 2 * margin).mean(),
                    a, far, a + 0.1, 0.5), "arithmetic")
    assert "exactly margin: margin is added once too often" in text
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias) + 0.5, X, W, B), "arithmetic")
    assert "every value is off by the same +0.5" in text


def test_arithmetic_bias_missing_twice_or_on_the_wrong_axis():
    no_bias = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, None, stride, padding), X, W, B, 1, 1), "arithmetic")
    assert no_bias == "bias is missing: yours = expected - bias along dimension 1 (channels)"
    twice = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias) + bias.view(1, -1, 1, 1), X, W, B), "arithmetic")
    assert twice.startswith("bias is added twice")
    x = rand(2, 3, 6, 6)  # W_out == C_out == 4: `out + bias` broadcasts along the width without an error
    wrong_axis = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight) + bias, x, rand(4, 3, 3, 3), B), "arithmetic")
    assert "bias is added along dimension 3 (width) instead of dimension 1 (channels)" in wrong_axis
    shuffled = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias.flip(0)), X, W, B), "arithmetic")
    assert "depends only on the index along dimension 1 (channels)" in shuffled


def test_arithmetic_lower_precision():
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x.float(), weight.float(), bias.float()).double(),
                    X, W, B), "arithmetic")
    assert "exactly a float32 number" in text and re.search(r"relative error is ~\de-07", text)
    text = one(diag(lambda x: x.cumsum(-1) / 3, lambda x: x.float().cumsum(-1).double() / 3, X), "arithmetic")
    assert "about float32's precision" in text
    text = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight, bias).float(), X, W, B), "arithmetic")
    assert "right to float32 precision, but the result is float32 where float64 is expected" in text


# --- location -----------------------------------------------------------------------------------
def test_location_shift_from_padding_on_one_side():
    def wrong(x, weight, bias=None, stride=1, padding=0):
        return F.conv2d(F.pad(x, (0, 2 * padding, 0, 2 * padding)), weight, bias, stride, 0)

    text = one(diag(conv2d, wrong, X, W, B, 1, 2), "location")
    assert "yours[..., i, j] = expected[..., i + 2, j + 2]" in text and "moved 2 rows up and 2 columns left" in text


def test_location_border_only():
    def wrong(x, weight, bias=None, stride=1, padding=0):
        return F.conv2d(F.pad(x, (padding,) * 4, mode="replicate"), weight, bias, stride, 0)

    text = one(diag(conv2d, wrong, X, W, B, 1, 1), "location")
    assert text.startswith("only the border is wrong (the top 1 row, the bottom 1 row, the left 1 column and the right 1 column)")
    assert "is the padding zeros, on every side?" in text


def test_location_some_channels_or_batch_items():
    def last_channel_skipped(x, weight, bias=None, stride=1, padding=0):
        out = torch.zeros_like(F.conv2d(x, weight, bias))
        for o in range(weight.shape[0] - 1):
            out[:, o] = F.conv2d(x, weight[o:o + 1], bias[o:o + 1])[:, 0]
        return out

    text = one(diag(conv2d, last_channel_skipped, X, W, B), "location")
    assert text == "only channel 3 of 4 is wrong; 0-2 are right"

    def first_sample_everywhere(x, weight, bias=None, stride=1, padding=0):
        return F.conv2d(x[:1], weight, bias).expand(x.shape[0], -1, -1, -1)

    text = one(diag(conv2d, first_sample_everywhere, X, W, B), "location")
    assert text.startswith("only batch item 1 of 2 is wrong; 0 is right: does each sample use its own input")


def test_location_only_where_windows_overlap():
    def overwrite(x, weight, bias=None, stride=1, padding=0):  # `=` where overlapping copies must add up
        n, _, h, w = x.shape
        kh, kw = weight.shape[2:]
        out = x.new_zeros(n, weight.shape[1], (h - 1) * stride + kh, (w - 1) * stride + kw)
        contrib = torch.einsum("ncij,cokl->noijkl", x, weight)
        for ki in range(kh):
            for kj in range(kw):
                out[:, :, ki:ki + (h - 1) * stride + 1:stride, kj:kj + (w - 1) * stride + 1:stride] = contrib[..., ki, kj]
        return out

    text = one(diag(conv_transpose2d, overwrite, rand(2, 3, 4, 4), rand(3, 2, 3, 3, seed=1), None, 2, 0), "location")
    assert text.startswith("wrong only where windows overlap (stride (2, 2) < kernel (3, 3)") and "(+=)" in text


# --- structure ----------------------------------------------------------------------------------
def test_structure_all_zeros_and_input_unchanged():
    def never_written(x, weight, bias=None, stride=1, padding=0):
        return torch.zeros_like(F.conv2d(x, weight, bias))

    assert one(diag(conv2d, never_written, X, W, B), "structure").startswith("every value is 0")

    def add_noise(x, std):
        return (x + std * rand(*x.shape, seed=7)).clamp(0, 1)

    images = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert one(diag(add_noise, lambda x, std: x.clamp(0, 1), images, 0.3), "structure") == \
        "the result is the input x, unchanged: nothing is applied to it"


def test_structure_nan_where_expected_zero_and_overflow():
    def naive_iou(boxes1, boxes2):  # 0/0 for zero-area boxes
        area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
        area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
        lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
        rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        return inter / (area1[:, None] + area2[None, :] - inter)

    points = torch.tensor([[2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0]])
    text = one(diag(box_iou, naive_iou, points, points), "structure")
    assert "1 NaN value(s) where the expected values are finite, the first at (0, 0)" in text and "exactly where the expected value is 0" in text

    def nonsaturating(fake_logits):
        return -F.logsigmoid(fake_logits).mean()

    logits = torch.tensor([-1e4, 0.5, 2.0], dtype=torch.float64)
    text = one(diag(nonsaturating, lambda fake_logits: -torch.log(torch.sigmoid(fake_logits)).mean(), logits), "structure")
    assert "infinite value(s)" in text and "as large as 1e+04: an overflow" in text


def test_structure_nan_only_in_the_backward_pass():
    def pairwise_distances(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return torch.where(d2 > 0, d2.clamp(min=1e-30).sqrt(), torch.zeros_like(d2))

    a = rand(3, 2)
    found = diag(pairwise_distances, lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1).sqrt(), a, a.clone(), grad=True)
    assert [d.kind for d in found] == ["gradients", "structure"]
    assert found[0].text == "the output is right, but the gradient w.r.t. a and b are wrong"
    assert found[1].text.startswith("gradient w.r.t. a: the forward values are finite, but the backward pass makes 6 NaN value(s)")
    assert "the output has 3 value(s) exactly 0, where a square root or a norm has an infinite derivative" in found[1].text


def test_structure_indices_order_ties_and_sets():
    text = one(diag(nms, lambda boxes, scores, iou_threshold: nms(boxes, scores, iou_threshold).sort().values, BOXES, SCORES, 0.5), "structure")
    assert text == "the right elements, but sorted in increasing order where they must be by decreasing scores"

    def unstable(boxes, scores, iou_threshold):  # equal scores: higher index first
        keep = nms(boxes, scores, iou_threshold).tolist()
        return torch.tensor(sorted(keep, key=lambda i: (-float(scores[i]), -i)), dtype=torch.int64)

    apart = torch.tensor([[20.0 * i, 0, 20 * i + 10, 10] for i in range(5)])  # disjoint: nothing is suppressed
    tied = torch.tensor([0.5, 0.9, 0.5, 0.5, 0.1])
    assert "equal scores are in another order: ties keep the lower index first" in one(diag(nms, unstable, apart, tied, 0.5), "structure")
    capped = one(diag(nms, lambda boxes, scores, iou_threshold: nms(boxes, scores, iou_threshold)[:2], BOXES, SCORES, 0.5), "structure")
    assert capped.startswith("yours is the first 2 of the expected 3, and the rest is missing")
    too_many = one(diag(nms, lambda boxes, scores, iou_threshold: torch.tensor([3, 1, 5, 4]), BOXES, SCORES, 0.5), "structure")
    assert too_many == "4 elements where 3 are expected: [5] in yours is not expected"
    labels = torch.tensor([3, -1, 3, 5])  # labels repeat: a label vector is not a set of indices

    def verify(query, threshold):
        return labels

    assert diag(verify, lambda query, threshold: labels[[2, 1, 0, 3]].flip(0), torch.zeros(4, 2), 1.0) == []


def test_structure_number_as_tensor_and_int_as_float():
    def pixel_accuracy(pred, target):
        return float((pred == target).double().mean())

    pred, target = torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]])
    text = one(diag(pixel_accuracy, lambda pred, target: (pred == target).double().mean(), pred, target), "structure")
    assert text == "the right value, but as a tensor of shape (): return a Python number (float(...) or .item())"

    def output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1

    text = one(diag(output_size, lambda size, kernel_size, stride=1, padding=0, dilation=1: (size + 2 * padding - kernel_size) / stride + 1,
                    9, 3, 3, 0), "structure")
    assert "the right value as a float (3.0): return an int" in text


def test_arithmetic_of_numbers_names_the_formula_variant():
    def output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1

    def ceil(size, kernel_size, stride=1, padding=0, dilation=1):
        return -(-(size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride) + 1

    assert one(diag(output_size, ceil, 10, 3, 2), "arithmetic").startswith("5 is what you get when the division rounds up (ceil)")
    no_dilation = one(diag(output_size, lambda size, kernel_size, stride=1, padding=0, dilation=1: (size + 2 * padding - kernel_size) // stride + 1,
                           11, 3, 1, 0, 2), "arithmetic")
    assert "the dilation (2) is not applied" in no_dilation


# --- gradients ----------------------------------------------------------------------------------
def test_gradients_missing_or_wrong_for_a_named_input():
    detached = one(diag(conv2d, lambda x, weight, bias=None, stride=1, padding=0: F.conv2d(x, weight.detach(), bias), X, W, B, grad=True), "gradients")
    assert detached.startswith("the output is right, but no gradient reaches weight")

    class Doubled(torch.autograd.Function):  # a hand-written backward that forgets the 1/2 of the derivative of x**2 / 2
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x / 2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2 * x

    def half_square(x, scale):
        return x * x / 2 * scale

    found = diag(half_square, lambda x, scale: Doubled.apply(x) * scale, rand(5), rand(5, seed=1), grad=True)
    assert [d.kind for d in found] == ["gradients", "arithmetic"]
    assert found[0].text == "the output is right, but the gradient w.r.t. x is wrong (w.r.t. scale it is right)"
    assert found[1].text.startswith("gradient w.r.t. x: every value is 2 times the expected one")


# --- across cases -------------------------------------------------------------------------------
def _facts(**values):
    label = values.pop("label", "")
    return CaseFacts(values, label)


def test_across_cases_names_the_separating_parameter():
    x = rand(2, 3, 8, 8)
    outcomes = [(_facts(x=x, weight=W, bias=B, stride=1, padding=0), True), (_facts(x=x, weight=W, bias=B, stride=2, padding=0), False),
                (_facts(x=x, weight=W, bias=B, stride=1, padding=0), True), (_facts(x=x, weight=W, bias=B, stride=(2, 2), padding=0), False)]
    assert one(across_cases(outcomes), "across_cases") == (
        "passes every case with stride 1 (2) and fails every case with stride > 1 (2): is the stride applied "
        "(window i starts at i * stride, and the output size divides by it)?")
    outcomes = [(_facts(x=x, weight=W, bias=None, stride=1), False), (_facts(x=x, weight=W, bias=B, stride=1), True),
                (_facts(x=x.float(), weight=W, bias=None, stride=1), False)]
    assert one(across_cases(outcomes), "across_cases").startswith("passes every case with a bias (1) and fails every case with bias=None (2)")


def test_across_cases_threshold_ties_and_nothing_to_say():
    outcomes = [(_facts(boxes=BOXES, label="IoU exactly 0.5 = the threshold: both stay"), False),
                (_facts(boxes=BOXES, label="IoU(2, 3) is exactly 0.75 = the threshold"), False),
                (_facts(boxes=BOXES, label="random boxes"), True), (_facts(boxes=BOXES, label="equal scores: lower index first"), True)]
    text = one(across_cases(outcomes), "across_cases")
    assert text.startswith("passes every case with no value exactly at the threshold (2) and fails every case with a value exactly at the threshold (2)")
    assert "(> against >=" in text
    assert across_cases([(f, False) for f, _ in outcomes]) == []  # every case fails: nothing separates
    assert across_cases([(f, True) for f, _ in outcomes]) == []
    assert across_cases([(f, not ok) for f, ok in outcomes]) == []  # passing the ties proves nothing about them
    assert across_cases(outcomes[1:]) == []  # one failing case differs from the others in too many ways
    same = [(_facts(boxes=BOXES, label="a"), True), (_facts(boxes=BOXES, label="a"), False), (_facts(boxes=BOXES, label="a"), False)]
    assert across_cases(same) == []  # identical parameters cannot separate anything


# --- end to end through grading -----------------------------------------------------------------
STRIDE = "    patches = xp.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)"


def test_grading_diagnoses_an_ignored_stride_and_learns_the_pattern(grade):
    result = grade("conv", source=variant("conv", (STRIDE, STRIDE.replace("unfold(2, kh, sh).unfold(3, kw, sw)", "unfold(2, kh, 1).unfold(3, kw, 1)"))))
    check = next(c for c in result["checks"] if c["name"] == "conv2d_forward")
    assert check["status"] == "failed" and check["points"] == 0
    assert check["message"].startswith("output: shape (1, 2, 7, 9), expected (1, 2, 4, 5)")  # the first failure decides
    kinds = [d["kind"] for d in check["diagnosis"]]
    assert kinds == ["shape", "across_cases"]
    assert "the stride (2) is not applied" in check["diagnosis"][0]["text"]
    assert check["diagnosis"][1]["text"].startswith("passes every case with stride 1")


def test_grading_diagnoses_a_detached_gradient(grade):
    ret = "    return windows.flatten(-2).max(dim=-1).values  # (N, C, H_out, W_out)"
    result = grade("pooling", source=variant("pooling", (ret, ret.replace(".values", ".values.detach()"))))
    check = next(c for c in result["checks"] if c["name"] == "max_pool2d_float64_gradients")
    assert check["diagnosis"][0]["kind"] == "gradients" and "no gradient reaches x" in check["diagnosis"][0]["text"]


@pytest.mark.parametrize("name", ["conv", "pooling"])
def test_references_get_no_diagnosis(grade, name):
    result = grade(name)
    assert result["score"] == result["max_score"]
    assert all(c["diagnosis"] == [] for c in result["checks"])


def test_a_correct_implementation_written_differently_gets_no_diagnosis(grade):
    loops = ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
             ("    total = torch.zeros_like(windows[..., 0, 0])\n    for i in range(kh):\n        for j in range(kw):\n"
              "            total = total + windows[..., i, j]\n    return total / (kh * kw)"))
    result = grade("pooling", source=variant("pooling", loops))
    assert result["score"] == result["max_score"] and all(c["diagnosis"] == [] for c in result["checks"])


POOL_STRIDE = '    sh, sw = _pair(kernel_size if stride is None else stride, "stride")'


def test_an_error_on_some_cases_gets_the_pattern(grade):
    result = grade("pooling", source=variant("pooling", (POOL_STRIDE, '    sh, sw = _pair(stride, "stride")')))
    check = next(c for c in result["checks"] if c["name"] == "max_pool2d_forward")
    assert check["status"] == "error" and "TypeError" in check["message"]
    assert [d["kind"] for d in check["diagnosis"]] == ["across_cases"]
    assert check["diagnosis"][0]["text"] == ("passes every case with an explicit stride (3) and fails every case with stride=None (2): "
                                             "stride=None means stride = kernel_size")


def test_learning_the_pattern_keeps_the_timeout_budget(grade):
    hang = ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2).max(dim=-1).values",
            ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    while x.shape[0] == 1 and x.dtype == torch.float32:\n        pass\n"
             "    return windows.flatten(-2).max(dim=-1).values + 1"))
    result = grade("pooling", source=variant("pooling", hang), timeout=1.0, parts=("max_pool2d", "avg_pool2d"))
    checks = {c["name"]: c for c in result["checks"]}
    first = checks["max_pool2d_forward"]  # case 0 (batch 2) fails at once; case 1 (batch 1) hangs while learning
    assert first["status"] == "failed" and first["message"].startswith("output: ")
    assert first["diagnosis"][0]["text"].startswith("every value is off by the same +1")
    assert result["duration_s"] < 1.0 + 10  # the check stopped within its budget (1 s: the loop spins)
    assert checks["avg_pool2d_forward"]["status"] == "passed"  # the worker came back for the next checks


ODD = [torch.zeros(0), torch.zeros(0, 4), torch.tensor(1.0), torch.tensor([True, False]), torch.tensor([1 + 2j, 3j]),
       torch.tensor([float("nan"), 1.0]), torch.tensor([float("inf"), 1.0]), torch.tensor([[1, 2], [3, 4]]), rand(2, 3, 4, 4),
       rand(2, 3, 4, 4).float(), rand(1, 1, 1, 1), rand(2, 2, 2, 2, 2), torch.tensor([5, 5, 5]), torch.tensor([-1, 2]),
       torch.full((2, 2, 5, 5), float("nan")), rand(2, 3, 5, 4).half(), torch.arange(10), torch.arange(10).flip(0),
       1, 2.5, float("nan"), float("inf"), 0.0, True, "x", None, [1, 2], (torch.ones(2),), {"a": torch.ones(2)}, {"__unsupported__": "x"}]
ODD_FACTS = [CaseFacts({}), CaseFacts({"x": rand(2, 3, 4, 4), "weight": rand(3, 3, 2, 2), "bias": None, "stride": (2, 1), "padding": 1}),
             CaseFacts({"x": torch.zeros(0), "scores": torch.tensor([0.1, 0.2]), "size": 5, "kernel_size": 3, "stride": 0, "margin": 1.0}),
             CaseFacts({"x": rand(1, 1, 1, 1), "weight": rand(1, 1, 3, 3), "kernel_size": 0, "padding": (0, 5)})]


@pytest.mark.filterwarnings("ignore")
def test_odd_values_never_break_the_diagnosis():
    for got, exp in itertools.product(ODD, repeat=2):
        g, e = probes.sanitize(got), probes.sanitize(exp)
        for facts in ODD_FACTS:
            for findings in (diagnose(g, e, facts), diagnose({"out": e, "grads": {"arg0": g}}, {"out": e, "grads": {"arg0": e}}, facts)):
                assert all(d.text and "values differ" not in d.text for d in findings)
    assert isinstance(across_cases([(f, i % 2 == 0) for i, f in enumerate(ODD_FACTS * 2)]), list)
