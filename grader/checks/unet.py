"""Hidden checks for `unet`: sizes, centre crops, the three blocks, a small U-Net with the reference's
weights, and the full-size U-Net counted on the `meta` device (no weights are allocated)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import call, module_case, randn, reference_state
from grader.runner import probes
from grader.engine.spec import Case, Check, Mistake, Picture

_S = "Segmentation"
_PROBES = "grader.checks.unet"


# --- probes (run in the worker on the student's module, and here on the reference) -------------
def trusted_center_crop(x: torch.Tensor, size: Any) -> torch.Tensor:
    """The grader's centre crop (Tensor[..., H, W] -> Tensor[..., h, w]): it stands in for the
    student's `center_crop` inside `Up` and `UNet`, whose checks then test those parts only."""
    h, w = int(size[0]), int(size[1])
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


_TRUSTED_CROP = {"center_crop": f"{_PROBES}:trusted_center_crop"}


def probe_meta_unet(mod: Any, init_args: tuple, input_shape: tuple, device: str = "cpu", seed: int = 0) -> dict:
    """The full-size `UNet(*init_args)` built on the `meta` device (shapes only, no memory) and
    counted without running it: its convolution layers by kind and its parameters. Its output
    shape comes from a real forward pass of a narrow copy (`base_channels=2`, the same depth) on a
    zero input of `input_shape`: the shape does not depend on the width, and a real pass works
    with any code, crops computed with `torch.tensor([...])` included (on `meta`, such a tensor
    has no value to read)."""
    with torch.device("meta"):
        net = mod.UNet(*init_args)
    kinds = {"conv 3x3": 0, "up-conv 2x2 stride 2": 0, "conv 1x1": 0, "other conv": 0}
    for m in net.modules():
        if isinstance(m, nn.ConvTranspose2d):
            kinds["up-conv 2x2 stride 2" if m.kernel_size == (2, 2) and m.stride == (2, 2) else "other conv"] += 1
        elif isinstance(m, nn.Conv2d):
            kinds[{(3, 3): "conv 3x3", (1, 1): "conv 1x1"}.get(m.kernel_size, "other conv")] += 1
    depth = {"depth": init_args[3]} if len(init_args) > 3 else {}
    narrow = mod.UNet(*init_args[:2], base_channels=2, **depth).to(device)
    with torch.no_grad(), probes.trusted_parts(mod, _TRUSTED_CROP):
        out = narrow(torch.zeros(*input_shape, device=device))
    return {"conv layers": sum(kinds.values()), **kinds,
            "parameters": int(sum(p.numel() for p in net.parameters())),
            "output shape": list(out.shape)}


# --- known mistakes: unet_output_size -----------------------------------------------------------
def _size_fn(shrink: int, up_shrink: int | None = None, odd_ok: bool = False):
    def unet_output_size(input_size, depth=4):
        if not isinstance(input_size, int) or not isinstance(depth, int) or input_size < 1 or depth < 0:
            raise ValueError("bad argument")
        size = input_size
        for _ in range(depth):
            size -= shrink
            if size <= 0 or (size % 2 and not odd_ok):
                raise ValueError("cannot pass")
            size //= 2
        size -= shrink
        for _ in range(depth):
            size = 2 * size - (shrink if up_shrink is None else up_shrink)
        if size <= 0:
            raise ValueError("cannot pass")
        return size

    return lambda ref: {"unet_output_size": unet_output_size}


SIZE_MISTAKES = (
    Mistake("padded-convolutions", "Your sizes assume padded 3x3 convolutions that keep the size: U-Net's convolutions are unpadded and each takes 2 pixels, 4 per double convolution (572 -> 388).", _size_fn(0), _S, subsection="U-Net"),
    Mistake("one-conv-per-level", "Each level has *two* unpadded 3x3 convolutions, so it loses 4 pixels, not 2.", _size_fn(2), _S, subsection="U-Net"),
    Mistake("expanding-convs-forgotten", "The expanding path also has two unpadded 3x3 convolutions after each up-convolution: each step doubles the size, then takes 4.", _size_fn(4, up_shrink=0), _S, subsection="U-Net"),
    Mistake("odd-sizes-floored", "An odd size before a 2x2 pooling loses a row or column, so the skip and the upsampled map no longer line up: the contract raises ValueError instead.", _size_fn(4, odd_ok=True), _S, subsection="U-Net"),
)


# --- known mistakes: center_crop ----------------------------------------------------------------
def _crop(offsets):
    def build(ref):
        def center_crop(x, size):
            h, w = int(size[0]), int(size[1])
            big_h, big_w = x.shape[-2], x.shape[-1]
            if h > big_h or w > big_w:
                raise ValueError("too large")
            return offsets(x, h, w, big_h, big_w)

        return {"center_crop": center_crop}

    return build


def _ceil_offsets(x, h, w, big_h, big_w):
    top, left = (big_h - h + 1) // 2, (big_w - w + 1) // 2
    return x[..., top : top + h, left : left + w]


def _symmetric_slices(x, h, w, big_h, big_w):
    top, left = (big_h - h) // 2, (big_w - w) // 2
    return x[..., top : big_h - top, left : big_w - left]


def _corner(x, h, w, big_h, big_w):
    return x[..., :h, :w]


def _hw_swapped(x, h, w, big_h, big_w):
    top, left = (big_w - w) // 2, (big_h - h) // 2
    return x[..., top : top + h, left : left + w]


CROP_MISTAKES = (
    Mistake("crop-off-by-one", "With an odd difference the extra row/column is taken from the top/left: the contract's offset is (H - h) // 2, rounded down, so the extra one is left at the bottom/right.", _crop(_ceil_offsets), _S, subsection="U-Net"),
    Mistake("crop-symmetric-slices", "x[top:H - top] removes (H - h) // 2 rows from *both* sides, one row too many kept when H - h is odd: slice x[top:top + h].", _crop(_symmetric_slices), _S, subsection="U-Net"),
    Mistake("crop-from-corner", "The crop starts at the top-left corner: a centre crop starts at ((H - h) // 2, (W - w) // 2).", _crop(_corner), _S, subsection="U-Net"),
    Mistake("crop-hw-swapped", "Height and width are swapped in the offsets: top comes from H - h, left from W - w.", _crop(_hw_swapped), _S),
)


# --- known mistakes: the blocks -----------------------------------------------------------------
def _double_conv(forward):
    def make(ref):
        return type("WrongDoubleConv", (ref.DoubleConv,), {"forward": forward})

    return make


def _padded_forward(self, x):
    x = F.relu(F.conv2d(x, self.conv1.weight, self.conv1.bias, padding=1))
    return F.relu(F.conv2d(x, self.conv2.weight, self.conv2.bias, padding=1))


_PADDED = _double_conv(_padded_forward)
_POOLED = _double_conv(lambda self, x: F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2, 2))
_NO_MID_RELU = _double_conv(lambda self, x: F.relu(self.conv2(self.conv1(x))))
_NO_END_RELU = _double_conv(lambda self, x: self.conv2(F.relu(self.conv1(x))))


def _up_forward(crop, order):
    def forward(self, x, skip):
        up = self.up(x)
        skip = crop(skip, up)
        return self.conv(torch.cat([up, skip] if order == "up-first" else [skip, up], dim=1))

    return forward


def _crop_ref(skip, up):
    return trusted_center_crop(skip, up.shape[-2:])


def _crop_ceil(skip, up):
    return _ceil_offsets(skip, up.shape[-2], up.shape[-1], skip.shape[-2], skip.shape[-1])


def _up(forward):
    def make(ref):
        return type("WrongUp", (ref.Up,), {"forward": forward})

    return make


_UP_FIRST = _up(_up_forward(_crop_ref, "up-first"))
_UP_CROP_CEIL = _up(_up_forward(_crop_ceil, "skip-first"))
_UP_RESIZED = _up(lambda self, x, skip: self.conv(torch.cat([F.interpolate(skip, size=tuple(self.up(x).shape[-2:])), self.up(x)], dim=1)))
_UP_CORNER = _up(lambda self, x, skip: self.conv(torch.cat([skip[..., : 2 * x.shape[-2], : 2 * x.shape[-1]], self.up(x)], dim=1)))


def _down(forward):
    def make(ref):
        return type("WrongDown", (ref.Down,), {"forward": forward})

    return make


_DOWN_CONV_FIRST = _down(lambda self, x: F.max_pool2d(self.conv(x), 2, 2))
_DOWN_AVG = _down(lambda self, x: self.conv(F.avg_pool2d(x, 2, 2)))


def _with_blocks(cls_name: str, *makers):
    """A mistake: the reference class `cls_name` with some of its blocks (or itself) replaced by
    wrong subclasses; the parameters are the same, so the reference's weights still load."""

    def build(ref):
        wrong = {w.__mro__[1]: w for w in (make(ref) for make in makers)}  # reference block -> wrong one
        base = getattr(ref, cls_name)

        class Wrong(wrong.get(base, base)):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                for m in self.modules():
                    if m is not self and type(m) in wrong:
                        m.__class__ = wrong[type(m)]

        return {cls_name: Wrong}

    return build


_BLOCK_MISTAKES = {  # name -> (explanation, the wrong block)
    "padded-convolutions": ("The 3x3 convolutions are padded: U-Net's are unpadded (padding=0), each one takes 2 pixels from the height and width.", _PADDED),
    "relu-missing-between-convs": ("There is no ReLU between the two 3x3 convolutions: each convolution is followed by a ReLU.", _NO_MID_RELU),
    "relu-missing-after-second-conv": ("The second 3x3 convolution has no ReLU: each convolution is followed by a ReLU.", _NO_END_RELU),
    "pooling-inside-double-conv": ("DoubleConv also pools: it is only the two 3x3 convolutions with their ReLUs; the 2x2 max pooling belongs to Down, before its DoubleConv (the skip connection is taken from the unpooled map).", _POOLED),
    "down-convolves-before-pooling": ("Down pools *first*, then applies its DoubleConv: the skip is taken before the pooling, at full resolution.", _DOWN_CONV_FIRST),
    "down-average-pooling": ("U-Net downsamples with 2x2 *max* pooling, stride 2.", _DOWN_AVG),
    "concat-upsampled-first": ("The concatenation is [upsampled, skip]: the contract (and the paper's figure) concatenates [skip_cropped, upsampled], so the DoubleConv's weights see the skip channels first.", _UP_FIRST),
    "crop-off-by-one": ("With an odd difference the skip is cropped one row/column too far: the offset is (H - h) // 2, rounded down.", _UP_CROP_CEIL),
    "skip-resized-not-cropped": ("The skip is resized (interpolated) to the upsampled size: U-Net *crops* it, because the border pixels were lost by the unpadded convolutions.", _UP_RESIZED),
    "skip-cropped-from-corner": ("The skip is cropped from its top-left corner: crop it around its centre.", _UP_CORNER),
}


def _block_mistakes(cls_name: str, *names: str) -> tuple[Mistake, ...]:
    """The named block mistakes, as seen through the class `cls_name` that contains the block."""
    return tuple(Mistake(n, _BLOCK_MISTAKES[n][0], _with_blocks(cls_name, _BLOCK_MISTAKES[n][1]), _S) for n in names)


def _unet_head_relu(ref):
    class Wrong(ref.UNet):
        def forward(self, x):
            return F.relu(super().forward(x))

    return {"UNet": Wrong}


def _unet_batchnorm(ref):
    class BNDoubleConv(ref.DoubleConv):
        def forward(self, x):
            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))

    class Wrong(ref.UNet):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for m in list(self.modules()):
                if type(m) is ref.DoubleConv:
                    m.__class__ = BNDoubleConv
                    m.bn1 = nn.BatchNorm2d(m.conv1.out_channels)
                    m.bn2 = nn.BatchNorm2d(m.conv2.out_channels)

    return {"UNet": Wrong}


DOUBLE_CONV_MISTAKES = _block_mistakes("DoubleConv", "padded-convolutions", "relu-missing-between-convs", "relu-missing-after-second-conv",
                                       "pooling-inside-double-conv")
DOWN_MISTAKES = _block_mistakes("Down", "padded-convolutions", "relu-missing-between-convs", "pooling-inside-double-conv",
                                "down-convolves-before-pooling", "down-average-pooling")
UP_MISTAKES = _block_mistakes("Up", "padded-convolutions", "concat-upsampled-first", "crop-off-by-one", "skip-resized-not-cropped", "skip-cropped-from-corner")
# Mistakes inside the blocks are named by the blocks' own checks; these are the ones a whole U-Net shows.
UNET_MISTAKES = _block_mistakes("UNet", "padded-convolutions", "concat-upsampled-first", "skip-cropped-from-corner") + (
    Mistake("relu-after-head", "The 1x1 head is followed by a ReLU: the head outputs raw class scores (logits), negative ones included.", _unet_head_relu, _S),
)
META_MISTAKES = (
    Mistake("padded-convolutions", "The 3x3 convolutions are padded: U-Net's are unpadded, which is why a 572 x 572 input gives a 388 x 388 output.", _with_blocks("UNet", _PADDED), _S, subsection="U-Net"),
    Mistake("batch-norm-added", "Batch norm was added after the convolutions: the original U-Net has none (and the contract's state_dict has no such keys).", _unet_batchnorm, _S, subsection="U-Net"),
)


# --- cases --------------------------------------------------------------------------------------
def _size_values(g, ref):
    # Depth 1 first: a size that the common wrong formulas can still compute (and tell apart), so they get named.
    cases = [(18, 1), (5, 0), (572,), (188,), (572, 4), (380, 5), (44, 2), (204, 4)]
    found = 0
    while found < 3:
        depth = int(torch.randint(0, 6, (1,), generator=g))
        size = int(torch.randint(1, 800, (1,), generator=g))
        try:
            ref.unet_output_size(size, depth)
        except ValueError:
            continue
        cases.append((size, depth))
        found += 1
    return [call("unet_output_size", *c, label=f"unet_output_size{c}".replace(",)", ")")) for c in cases]


def _size_errors(g, ref):
    bad = [((571,), "odd size 567 before the first pooling"), ((187,), "187 - 4 = 183 is odd"),
           ((100,), "100 -> 96 -> 48 -> 44 -> 22 -> 18 -> 9: odd before the 3rd pooling"),
           ((172,), "the bottleneck would be 0"), ((14, 1), "the up-convolution path would reach -2"),
           ((0,), "size 0"), ((-4, 0), "a negative size"), ((4, 0), "4 - 4 = 0 at depth 0")]
    return [call("unet_output_size", *args, raises=("ValueError",), label=f"{why}: unet_output_size{args}".replace(",)", ")"))
            for args, why in bad]


def _crops(g, ref):
    configs = [((2, 3, 12, 12), (8, 8), "even differences"),
               ((1, 2, 11, 13), (8, 8), "odd differences 3 and 5: the extra row/column stays at the bottom/right"),
               ((2, 1, 9, 10), (4, 9), "non-square crop, odd difference in height"),
               ((3, 7, 6), (2, 5), "a 3-D tensor: only the last two dimensions are cropped"),
               ((1, 1, 5, 5), (5, 5), "size equal to the input: nothing cropped"),
               ((2, 4, 64, 64), (56, 56), "a U-Net skip: 64x64 cropped to the 56x56 upsampled map")]
    cases = [call("center_crop", randn(g, *shape), size, grad=(i % 2 == 1), label=f"{why}: x {shape} to {size}")
             for i, (shape, size, why) in enumerate(configs)]
    cases.append(call("center_crop", randn(g, 1, 1, 4, 6), torch.Size([4, 4]), label="size given as a torch.Size([4, 4]) (as x.shape[-2:]), x (1, 1, 4, 6)"))
    cases += [call("center_crop", randn(g, 1, 2, 5, 6), size, raises=("ValueError",), label=f"size {size} larger than the 5x6 input")
              for size in [(6, 6), (5, 7)]]
    return cases


# What each block is built on: its check says so, and judges it with the grader's centre crop, so
# that a wrong center_crop costs only its own points.
_BUILT_ON = {"Down": " (Down is built on your DoubleConv: if double_conv fails, fix it first)",
             "Up": " (Up is built on your DoubleConv: if double_conv fails, fix it first; the centre crop is the grader's)",
             "UNet": " (UNet is built on your DoubleConv, Down and Up: if their checks fail, fix them first; the centre crop is the grader's)"}


def _block_cases(ref, cls: str, configs, g) -> list[Case]:
    cases = []
    for init, shapes, why in configs:
        state = reference_state(ref, cls, *init)
        inputs = tuple(randn(g, *s) for s in shapes)
        shown = ", ".join(str(s) for s in shapes)
        cases.append(module_case(cls, init, inputs, state, grad=True, trusted=_TRUSTED_CROP if cls in ("Up", "UNet") else None,
                                 label=f"{cls}{init} with the reference's weights, {why}: input {shown}{_BUILT_ON.get(cls, '')}"))
    return cases


def _double_conv_cases(g, ref):
    return _block_cases(ref, "DoubleConv", [((3, 8), [(2, 3, 12, 10)], "non-square"),
                                            ((1, 4), [(1, 1, 5, 5)], "5x5 -> 1x1"),
                                            ((6, 2), [(1, 6, 9, 14)], "fewer output channels"),
                                            ((2, 3), [(3, 2, 7, 7)], "batch of 3")], g)


def _down_cases(g, ref):
    return _block_cases(ref, "Down", [((4, 8), [(2, 4, 16, 16)], "16 -> 8 -> 4"),
                                      ((3, 6), [(1, 3, 13, 15)], "odd sizes: the pooling floors 13x15 to 6x7"),
                                      ((2, 2), [(1, 2, 10, 12)], "non-square"),
                                      ((8, 16), [(1, 8, 12, 12)], "channels doubled")], g)


def _up_cases(g, ref):
    return _block_cases(ref, "Up", [((8, 4), [(2, 8, 4, 4), (2, 4, 12, 12)], "skip 12x12 cropped to 8x8"),
                                    ((8, 4), [(1, 8, 4, 4), (1, 4, 11, 13)], "odd differences 3 and 5 in the crop"),
                                    ((4, 3), [(1, 4, 3, 5), (1, 2, 9, 10)], "non-square, odd difference in height only"),
                                    ((6, 3), [(2, 6, 3, 3), (2, 3, 6, 6)], "skip already 6x6: nothing to crop"),
                                    ((16, 8), [(1, 16, 3, 3), (1, 8, 9, 9)], "6x6 centre of a 9x9 skip")], g)


def _unet_small(g, ref):
    return _block_cases(ref, "UNet", [((1, 2, 4, 4), [(1, 1, 188, 188)], "base 4, depth 4, the smallest input 188 -> 4"),
                                      ((3, 5, 4, 2), [(2, 3, 44, 60)], "depth 2, non-square 44x60 -> 4x12"),
                                      ((1, 3, 4, 1), [(1, 1, 18, 22)], "depth 1, 18x22 -> 2x6"),
                                      ((2, 2, 2, 3), [(1, 2, 92, 100)], "base 2, depth 3, 92x100 -> 4x12")], g)


def _unet_meta(g, ref):
    configs = [((), (1, 1, 572, 572), "the defaults, as in the paper: 23 conv layers, 31,030,658 parameters, output (1, 2, 388, 388)"),
               ((3, 5, 64, 5), (2, 3, 380, 412), "3 input channels, 5 classes, depth 5, batch 2, non-square 380x412 -> 4x36")]
    return [Case(f"{_PROBES}:probe_meta_unet", (init, shape),
                 label=f"UNet{init} built on the meta device and counted, its output shape from a copy with "
                       f"base_channels=2 on an input {shape}: {why}") for init, shape, why in configs]


CHECKS = [
    Check("output_size_values", "unet_output_size", 2, _size_values, SIZE_MISTAKES,
          "572 -> 388, 188 -> 4, and other depths", Picture("values")),
    Check("output_size_errors", "unet_output_size", 2, _size_errors, SIZE_MISTAKES,
          "ValueError for odd sizes before a pooling and for sizes that vanish", Picture("values")),
    Check("center_crop", "center_crop", 3, _crops, CROP_MISTAKES,
          "centre crops with even and odd differences, gradients, and ValueError when too large", Picture("maps")),
    Check("double_conv", "DoubleConv", 3, _double_conv_cases, DOUBLE_CONV_MISTAKES,
          "outputs and gradients with the reference's weights: two unpadded 3x3 convolutions with ReLUs", Picture("maps")),
    Check("down", "Down", 2, _down_cases, DOWN_MISTAKES,
          "2x2 max pooling, then DoubleConv, outputs and gradients", Picture("maps")),
    Check("up", "Up", 4, _up_cases, UP_MISTAKES,
          "up-convolution, centre crop of the skip, [skip, upsampled], DoubleConv; outputs and gradients", Picture("maps")),
    Check("unet_small", "UNet", 3, _unet_small, UNET_MISTAKES,
          "small U-Nets (base 2-4) with the reference's weights: outputs and gradients", Picture("maps")),
    Check("unet_full_size_meta", "UNet", 3, _unet_meta, META_MISTAKES,
          "the paper's U-Net built on the meta device: conv layers by kind and parameters; the output shape of a narrow copy", Picture("values")),
]
