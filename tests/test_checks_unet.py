"""The `unet` checks catch wrong sizes, crops, blocks and networks, and name the known mistakes.

Grading a U-Net costs more than the other exercises, so several variants make two independent
mistakes at once (one in the size formula, one in the crop or a block) and each is asserted
where its own check reports it.
"""

from __future__ import annotations

import torch

from conftest import statuses, variant
from mistake_matching import audit


_SIZE_CONV = "        size -= 4  # DoubleConv"
_SIZE_BOTTOM = "    size -= 4  # the bottleneck's DoubleConv"
_SIZE_UP = "        size = 2 * size - 4  # up-convolution, then DoubleConv"
_ODD = "        if size % 2:"
_CROP = "    top, left = (big_h - h) // 2, (big_w - w) // 2\n    return x[..., top : top + h, left : left + w]  # (..., h, w)"
_CONV1 = "        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=0)"
_CONV2 = "        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=0)"
_DC_FWD = "        return F.relu(self.conv2(F.relu(self.conv1(x))))"
_CAT = "        return self.conv(torch.cat([skip, up], dim=1))"
_HEAD = "        return self.head(x)  # (N, num_classes, H_out, W_out)"
_DOWN = "        return self.conv(F.max_pool2d(x, kernel_size=2, stride=2))"


def _check(result: dict, name: str) -> dict:
    return next(c for c in result["checks"] if c["name"] == name)


def _named(result: dict, check: str) -> str | None:
    found = _check(result, check)
    assert found["status"] == "failed", (check, found["status"], found["message"])
    return (found.get("mistake") or {}).get("name")


def test_padded_convolutions_are_named_everywhere(grade):
    # A student who believes the 3x3 convolutions keep the size: sizes and blocks alike.
    src = variant("unet", (_SIZE_CONV, "        size -= 0"), (_SIZE_BOTTOM, "    size -= 0"),
                  (_SIZE_UP, "        size = 2 * size"),
                  (_CONV1, _CONV1.replace("padding=0", "padding=1")), (_CONV2, _CONV2.replace("padding=0", "padding=1")))
    result = grade("unet", source=src)
    for check in ("output_size_values", "double_conv", "down", "up", "unet_small", "unet_full_size_meta"):
        assert _named(result, check) == "padded-convolutions", check
    assert "572" in _check(result, "unet_full_size_meta")["message"]
    assert statuses(result)["center_crop"] == "passed"


def test_one_conv_per_level_crop_off_by_one_and_head_relu_are_named(grade):
    src = variant("unet", (_SIZE_CONV, "        size -= 2"), (_SIZE_BOTTOM, "    size -= 2"),
                  (_SIZE_UP, "        size = 2 * size - 2"),
                  (_CROP, "    top, left = (big_h - h + 1) // 2, (big_w - w + 1) // 2\n    return x[..., top : top + h, left : left + w]"),
                  (_HEAD, "        return F.relu(self.head(x))"))
    result = grade("unet", source=src)
    assert _named(result, "output_size_values") == "one-conv-per-level"
    assert _named(result, "center_crop") == "crop-off-by-one"
    assert statuses(result)["up"] == "passed"  # Up is judged with the grader's centre crop
    assert "odd differences" in _check(result, "center_crop")["message"]
    # U-Net's own skips always differ by a multiple of 4, so only the head's ReLU shows in the network.
    assert _named(result, "unet_small") == "relu-after-head"


def test_forgotten_expanding_convs_and_symmetric_slices_are_named(grade):
    src = variant("unet", (_SIZE_UP, "        size = 2 * size"),
                  (_CROP, "    top, left = (big_h - h) // 2, (big_w - w) // 2\n    return x[..., top : big_h - top, left : big_w - left]"))
    result = grade("unet", source=src)
    assert _named(result, "output_size_values") == "expanding-convs-forgotten"
    assert _named(result, "center_crop") == "crop-symmetric-slices"
    assert statuses(result)["up"] == "passed"  # a wrong center_crop costs only its own points


def test_floored_odd_sizes_and_corner_crop_are_named(grade):
    src = variant("unet", (_ODD, "        if False:"),
                  (_CROP, "    return x[..., :h, :w]"))
    result = grade("unet", source=src)
    st = statuses(result)
    assert st["output_size_values"] == "passed"
    assert _named(result, "output_size_errors") == "odd-sizes-floored"
    assert _named(result, "center_crop") == "crop-from-corner"
    assert statuses(result)["up"] == statuses(result)["unet_small"] == "passed"


def test_crop_inside_up_from_the_corner_is_named_in_up_and_unet(grade):
    # A crop written inside Up itself, not through center_crop, is Up's own mistake.
    src = variant("unet", ("        skip = center_crop(skip, up.shape[-2:])", "        skip = skip[..., : up.shape[-2], : up.shape[-1]]"))
    result = grade("unet", source=src)
    assert statuses(result)["center_crop"] == "passed"
    assert _named(result, "up") == "skip-cropped-from-corner"
    assert _named(result, "unet_small") == "skip-cropped-from-corner"
    assert "Up is built on your DoubleConv" in _check(result, "up")["message"]


def test_tensor_offset_crop_passes_the_full_size_check(grade):
    # The widely copied Pytorch-UNet pattern: offsets as torch.tensor([...]) (which, on the meta
    # device, have no value to read), and F.pad with negative amounts to crop.
    src = variant("unet", ("        skip = center_crop(skip, up.shape[-2:])",
                           "        diff_y = torch.tensor([skip.size()[2] - up.size()[2]])\n"
                           "        diff_x = torch.tensor([skip.size()[3] - up.size()[3]])\n"
                           "        skip = F.pad(skip, [-(diff_x // 2), -(diff_x - diff_x // 2), -(diff_y // 2), -(diff_y - diff_y // 2)])"))
    result = grade("unet", source=src)
    assert result["score"] == result["max_score"], {c["name"]: c["message"] for c in result["checks"] if c["status"] != "passed"}


def test_swapped_crop_offsets_and_missing_middle_relu_are_named(grade):
    src = variant("unet", (_CROP, "    top, left = (big_w - w) // 2, (big_h - h) // 2\n    return x[..., top : top + h, left : left + w]"),
                  (_DC_FWD, "        return F.relu(self.conv2(self.conv1(x)))"))
    result = grade("unet", source=src)
    assert _named(result, "center_crop") == "crop-hw-swapped"
    assert _named(result, "double_conv") == "relu-missing-between-convs"
    assert _named(result, "down") == "relu-missing-between-convs"
    assert statuses(result)["unet_full_size_meta"] == "passed"


def test_pooling_inside_double_conv_is_named_in_double_conv_and_down(grade):
    # An "encoder block" that convolves twice and pools, written as DoubleConv.
    result = grade("unet", source=variant("unet", (_DC_FWD, "        return F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2, 2)")))
    assert _named(result, "double_conv") == "pooling-inside-double-conv"
    assert _named(result, "down") == "pooling-inside-double-conv"
    assert "Down is built on your DoubleConv" in _check(result, "down")["message"]


def test_missing_last_relu_is_named(grade):
    result = grade("unet", source=variant("unet", (_DC_FWD, "        return self.conv2(F.relu(self.conv1(x)))")))
    assert _named(result, "double_conv") == "relu-missing-after-second-conv"
    assert statuses(result)["center_crop"] == "passed"


def test_concatenating_upsampled_first_and_convolving_before_pooling_are_named(grade):
    src = variant("unet", (_CAT, "        return self.conv(torch.cat([up, skip], dim=1))"),
                  (_DOWN, "        return F.max_pool2d(self.conv(x), kernel_size=2, stride=2)"))
    result = grade("unet", source=src)
    assert statuses(result)["double_conv"] == "passed"
    assert _named(result, "up") == "concat-upsampled-first"
    assert _named(result, "down") == "down-convolves-before-pooling"


def test_concatenating_upsampled_first_is_named_in_the_network(grade):
    result = grade("unet", source=variant("unet", (_CAT, "        return self.conv(torch.cat([up, skip], dim=1))")))
    assert _named(result, "unet_small") == "concat-upsampled-first"
    assert statuses(result)["down"] == "passed"


def test_average_pooling_and_resized_skip_are_named(grade):
    src = variant("unet", (_DOWN, "        return self.conv(F.avg_pool2d(x, kernel_size=2, stride=2))"),
                  ("        skip = center_crop(skip, up.shape[-2:])", "        skip = F.interpolate(skip, size=tuple(up.shape[-2:]))"))
    result = grade("unet", source=src)
    assert _named(result, "down") == "down-average-pooling"
    assert _named(result, "up") == "skip-resized-not-cropped"


def test_batch_norm_is_named_on_meta_and_keys_are_listed(grade):
    src = variant("unet", (_CONV2, _CONV2 + "\n        self.bn1 = nn.BatchNorm2d(out_channels)\n        self.bn2 = nn.BatchNorm2d(out_channels)"),
                  (_DC_FWD, "        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))"),
                  ("        self.inc = DoubleConv(in_channels, base)", "        self.first = DoubleConv(in_channels, base)"),
                  ("        x = self.inc(x)", "        x = self.first(x)"))
    result = grade("unet", source=src)
    assert _named(result, "unet_full_size_meta") == "batch-norm-added"
    message = _check(result, "double_conv")["message"]
    assert "unexpected keys: bn1.weight" in message and "bn2.running_mean" in message
    message = _check(result, "unet_small")["message"]
    assert "missing keys: inc.conv1.weight" in message and "first.conv1.weight" in message


def test_meta_probe_allocates_nothing_real():
    from grader.checks.unet import probe_meta_unet
    from grader.engine.oracles import load_reference

    got = probe_meta_unet(load_reference("unet"), (), (1, 1, 572, 572))
    assert got == {"conv layers": 23, "conv 3x3": 18, "up-conv 2x2 stride 2": 4, "conv 1x1": 1, "other conv": 0,
                   "parameters": 31_030_658, "output shape": [1, 2, 388, 388]}


def test_reference_sizes_agree_with_the_network():
    from grader.engine.oracles import load_reference

    ref = load_reference("unet")
    torch.manual_seed(0)
    net = ref.UNet(1, 2, 2, 2)
    for h, w in [(44, 60), (48, 44)]:
        out = net(torch.zeros(1, 1, h, w))
        assert tuple(out.shape[-2:]) == (ref.unet_output_size(h, 2), ref.unet_output_size(w, 2))


def test_mistakes_are_distinguishable():
    assert audit("unet") == []
