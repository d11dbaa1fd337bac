"""Max and average pooling (notes: Convolution, GlobalAvgPooling).

Pooling summarises each k x k window of every feature map *independently*: the number of channels
is kept, height and width shrink. Max pooling keeps the strongest response, which gives a little
invariance to small shifts; average pooling keeps the mean. With a stride smaller than the kernel
the windows overlap (as in AlexNet's 3x3 stride-2 pooling).

Write both with tensor operations (`Tensor.unfold`, `amax`, `mean`); the built-in poolings are
forbidden here.
"""

from __future__ import annotations

import torch

IntOrPair = int | tuple[int, int]


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    """`3 -> (3, 3)`, `(2, 1) -> (2, 1)`; raises `TypeError` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def max_pool2d(x: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> torch.Tensor:
    """Max over each window, channel by channel; no padding, floor mode.

    Args:
        x (Tensor[N, C, H, W]): the input.
        kernel_size: int or (kH, kW).
        stride: int or (h, w); None means stride = kernel_size.

    Returns:
        Tensor[N, C, (H - kH) // stride_h + 1, (W - kW) // stride_w + 1].

    Raises:
        ValueError: the kernel is larger than the input, in height or in width (the contract
            also accepts the RuntimeError that `Tensor.unfold` raises when no window fits).
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(kernel_size if stride is None else stride, "stride")
    if kh > x.shape[-2] or kw > x.shape[-1]:
        raise ValueError(f"kernel {(kh, kw)} is larger than the input {tuple(x.shape[-2:])}")
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)
    return windows.flatten(-2).max(dim=-1).values  # (N, C, H_out, W_out)


def avg_pool2d(x: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> torch.Tensor:
    """Mean over each window, channel by channel; no padding, floor mode.

    Args:
        x (Tensor[N, C, H, W]): the input.
        kernel_size: int or (kH, kW).
        stride: int or (h, w); None means stride = kernel_size.

    Returns:
        Tensor[N, C, (H - kH) // stride_h + 1, (W - kW) // stride_w + 1].

    Raises:
        ValueError: the kernel is larger than the input, in height or in width (the contract
            also accepts the RuntimeError that `Tensor.unfold` raises when no window fits).
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(kernel_size if stride is None else stride, "stride")
    if kh > x.shape[-2] or kw > x.shape[-1]:
        raise ValueError(f"kernel {(kh, kw)} is larger than the input {tuple(x.shape[-2:])}")
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)
    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)
