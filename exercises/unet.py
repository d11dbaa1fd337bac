"""U-Net, as in Ronneberger et al. (2015) (notes: Segmentation).

Segmentation labels every pixel, so a network must see the whole image (high-level, global
information: go deep) and still place boundaries precisely (local information: keep the
resolution). U-Net does both. Its *contracting path* is a plain CNN: two unpadded 3x3
convolutions with ReLUs, then a 2x2 max pooling with stride 2, doubling the channels at each step.
Its *expanding path* mirrors it: a 2x2 up-convolution (a transposed convolution) doubles the size
and halves the channels, the feature map of the same level of the contracting path is cropped to
that size and concatenated, and two 3x3 convolutions mix them. A final 1x1 convolution maps each
64-component feature vector to the class scores: 23 convolutional layers in all.

Unpadded ("valid") convolutions lose 2 pixels of height and width each, which is why the output
(388 x 388 for a 572 x 572 input) is smaller than the input and why the skip connections must be
cropped. They also constrain the input: every size before a pooling must be even.

Why each part matters:
- `unet_output_size`: tracking sizes by hand is how you choose a valid tile size.
- `center_crop`: the skip connection only lines up with the upsampled map once centred.
- `DoubleConv`, `Down`, `Up`: the three building blocks; `Up` is where fine and coarse features
  are combined ("local predictions that respect global structure").
- `UNet`: the blocks assembled, with the skips used in reverse order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """`3 -> (3, 3)`, `(2, 1) -> (2, 1)` (a `torch.Size` too); raises `TypeError` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def unet_output_size(input_size: int, depth: int = 4) -> int:
    """The output height (or width) of `UNet(depth=depth)` for an input of `input_size`.

    Every double convolution takes 4 (two unpadded 3x3 convolutions), every pooling halves,
    every up-convolution doubles: 572 -> 388 and 188 -> 4 at depth 4.

    Args:
        input_size (int): the input height or width (>= 1).
        depth (int): the number of poolings (>= 0).

    Returns:
        int: the output size.

    Raises:
        ValueError: the input cannot pass: a size would be <= 0 at some stage (the input
            itself included), or a size before a 2x2 pooling is odd.
    """
    # TODO: your code here
    raise NotImplementedError("unet_output_size")


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre `size` of the last two dimensions of x.

    Args:
        x (Tensor[..., H, W]): the map to crop.
        size ((h, w)): the target size, `h <= H` and `w <= W`.

    Returns:
        Tensor[..., h, w]: `x[..., top:top + h, left:left + w]` with `top = (H - h) // 2` and
        `left = (W - w) // 2` (an odd difference leaves the extra row/column at the bottom/right).

    Raises:
        ValueError: size is larger than x.
    """
    # TODO: your code here
    raise NotImplementedError("center_crop")


class DoubleConv(nn.Module):
    """Two unpadded 3x3 convolutions, each followed by a ReLU: H and W shrink by 4.

    Args:
        in_channels (int), out_channels (int).

    Attributes:
        conv1 (nn.Conv2d): in_channels -> out_channels, 3x3, padding 0, with bias.
        conv2 (nn.Conv2d): out_channels -> out_channels, 3x3, padding 0, with bias.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tensor[N, in_channels, H, W] -> Tensor[N, out_channels, H - 4, W - 4]."""
        # TODO: your code here
        raise NotImplementedError("forward")


class Down(nn.Module):
    """One step down the contracting path: 2x2 max pooling (stride 2), then a `DoubleConv`.

    Args:
        in_channels (int), out_channels (int).

    Attributes:
        conv (DoubleConv): in_channels -> out_channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tensor[N, in_channels, H, W] -> Tensor[N, out_channels, H // 2 - 4, W // 2 - 4]."""
        # TODO: your code here
        raise NotImplementedError("forward")


class Up(nn.Module):
    """One step up the expanding path: up-convolution, crop-and-concatenate, `DoubleConv`.

    Args:
        in_channels (int): channels of the map coming from below; the skip has in_channels // 2.
        out_channels (int).

    Attributes:
        up (nn.ConvTranspose2d): in_channels -> in_channels // 2, kernel 2, stride 2 (doubles H, W).
        conv (DoubleConv): in_channels -> out_channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample x, crop skip to its size around the centre, concatenate `[skip, upsampled]`.

        Args:
            x (Tensor[N, in_channels, h, w]): the coarse map from below.
            skip (Tensor[N, in_channels // 2, H, W]): the same level's map of the contracting
                path, with H >= 2h and W >= 2w.

        Returns:
            Tensor[N, out_channels, 2h - 4, 2w - 4].
        """
        # TODO: your code here
        raise NotImplementedError("forward")


class UNet(nn.Module):
    """U-Net without padding and without batch norm.

    Args:
        in_channels (int): image channels (1 in the paper).
        num_classes (int): output channels, one score map per class.
        base_channels (int): channels after the first `DoubleConv` (64 in the paper).
        depth (int): the number of poolings (4 in the paper).

    Attributes:
        inc (DoubleConv): in_channels -> base.
        downs (nn.ModuleList): `Down(base * 2**i, base * 2**(i + 1))` for i in range(depth).
        ups (nn.ModuleList): `Up(base * 2**(i + 1), base * 2**i)` for i in reversed(range(depth)).
        head (nn.Conv2d): 1x1, base -> num_classes.

    At the defaults: 23 convolutional layers, 31,030,658 parameters, and a (1, 1, 572, 572) input
    gives a (1, 2, 388, 388) output.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 64, depth: int = 4) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class scores.

        Args:
            x (Tensor[N, in_channels, H, W]): H and W valid for `unet_output_size`.

        Returns:
            Tensor[N, num_classes, unet_output_size(H, depth), unet_output_size(W, depth)].
        """
        # TODO: your code here
        raise NotImplementedError("forward")
