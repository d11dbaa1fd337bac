"""The Inception module of GoogLeNet (notes: Convolution, Inception).

An Inception module runs several convolutions of different sizes *in parallel* on the same input
(1x1, 3x3, 5x5, and a 3x3 max pooling) and concatenates their outputs along the channels, so the
next layer sees features at several scales at once. Padding keeps every branch at the input's
height and width, which is what makes the concatenation possible.

The notes' point about cost: a 3x3 or 5x5 convolution on many input channels is expensive, so
GoogLeNet first *reduces* the depth with a cheap 1x1 convolution (`ch3x3red`, `ch5x5red`), and
projects the pooled branch with a 1x1 convolution too (`pool_proj`). On GoogLeNet's
inception(3a) this cuts the parameters from 387,296 (the naive module) to 163,696, and the
output depth from 416 to 256.

Why each part matters:
- `InceptionModule`: the parallel-branches pattern, with the 1x1 "bottleneck" convolutions.
- `inception_params` and `naive_inception_params`: counting the weights by hand is how you see
  what the 1x1 reductions buy.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_channels(**channels: int) -> None:
    """Raise `ValueError` naming the first channel count that is not a positive int."""
    for name, value in channels.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


class InceptionModule(nn.Module):
    """GoogLeNet's Inception module with dimension reductions (no batch norm).

    Args:
        in_channels (int): C_in.
        ch1x1 (int): output channels of the 1x1 branch.
        ch3x3red (int): channels of the 1x1 reduction before the 3x3 convolution.
        ch3x3 (int): output channels of the 3x3 branch.
        ch5x5red (int): channels of the 1x1 reduction before the 5x5 convolution.
        ch5x5 (int): output channels of the 5x5 branch.
        pool_proj (int): output channels of the 1x1 projection after the max pooling.

    Attributes (all `nn.Sequential`, convolutions with bias, each followed by a ReLU):
        branch1: [Conv2d 1x1 -> ch1x1, ReLU]
        branch2: [Conv2d 1x1 -> ch3x3red, ReLU, Conv2d 3x3 padding 1 -> ch3x3, ReLU]
        branch3: [Conv2d 1x1 -> ch5x5red, ReLU, Conv2d 5x5 padding 2 -> ch5x5, ReLU]
        branch4: [MaxPool2d 3x3 stride 1 padding 1, Conv2d 1x1 -> pool_proj, ReLU]
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The four branches, concatenated along the channels.

        Args:
            x (Tensor[N, in_channels, H, W]).

        Returns:
            Tensor[N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W]: branch1, branch2, branch3, branch4
            in that order.
        """
        # TODO: your code here
        raise NotImplementedError("forward")


def inception_params(in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                     pool_proj: int) -> int:
    """The number of parameters (weights + biases) of `InceptionModule` with these arguments.

    A `k x k` convolution from `c_in` to `c_out` channels has `c_out * c_in * k * k` weights and
    `c_out` biases; the max pooling and the ReLUs have none.

    Returns:
        int: 163,696 for GoogLeNet's inception(3a) `(192, 64, 96, 128, 16, 32, 32)`.
    """
    # TODO: your code here
    raise NotImplementedError("inception_params")


def naive_inception_params(in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int) -> int:
    """The parameters of the naive Inception module: the same branches without the 1x1
    reductions before the 3x3 and 5x5 convolutions and without the pool projection.

    Its branches are a 1x1, a 3x3 and a 5x5 convolution applied directly to the `in_channels`
    input, and a 3x3 max pooling (no parameters, and `in_channels` output channels).

    Returns:
        int: 387,296 for inception(3a) `(192, 64, 128, 32)`.
    """
    # TODO: your code here
    raise NotImplementedError("naive_inception_params")
