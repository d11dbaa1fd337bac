"""Convolution from scratch (notes: Convolution).

A convolutional layer slides one small kernel over the whole input: *sparse connectivity* (each
output sees a k x k window) and *parameter sharing* (the same kernel everywhere) give it far fewer
parameters than a dense layer, and make it translation *equivariant*: shift the input and the
feature map shifts with it. (The notes call this "invariant"; it is equivariant. Invariance comes
later, from pooling.) Deep-learning "convolution" is really cross-correlation: the kernel is not
flipped.

Write every function with tensor operations (`Tensor.unfold`, `einsum`, `F.pad`, indexing); the
built-in convolutions and `F.unfold`/`F.fold` are forbidden here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def conv2d_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one spatial dimension.

    `floor((size + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1`.

    Args:
        size: input length (>= 1); kernel_size (>= 1); stride (>= 1); padding (>= 0);
            dilation (>= 1). All plain ints.

    Returns:
        int: the output length.

    Raises:
        ValueError: an argument is not an int or is out of range, or the output would be < 1.
    """
    args = {"size": size, "kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation}
    for name, value in args.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an int, got {value!r}")
    for name in ("size", "kernel_size", "stride", "dilation"):
        if args[name] < 1:
            raise ValueError(f"{name} must be >= 1, got {args[name]}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"the kernel does not fit: output size would be {out}")
    return out


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
) -> torch.Tensor:
    """2-D cross-correlation with zero padding, like `F.conv2d`.

    Args:
        x (Tensor[N, C_in, H, W]): the input.
        weight (Tensor[C_out, C_in, kH, kW]): the kernels.
        bias (Tensor[C_out] or None): added to every output position of its channel.
        stride, padding: int or (h, w).

    Returns:
        Tensor[N, C_out, H_out, W_out], with H_out = conv2d_output_size(H, kH, stride_h, padding_h).
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"expected x (N, C, H, W) and weight (C_out, C, kH, kW), got {tuple(x.shape)} and {tuple(weight.shape)}")
    kh, kw = weight.shape[2], weight.shape[3]
    xp = F.pad(x, (pw, pw, ph, ph))  # (N, C, H + 2ph, W + 2pw)
    patches = xp.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)
    out = torch.einsum("nchwij,ocij->nohw", patches, weight)  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
) -> torch.Tensor:
    """2-D transposed convolution, like `F.conv_transpose2d` with `output_padding=0`.

    Every input pixel paints a copy of the kernel, scaled by its value, into the output at
    `stride` spacing; overlapping copies add up; `padding` then trims the border.

    Args:
        x (Tensor[N, C_in, H, W]): the input.
        weight (Tensor[C_in, C_out, kH, kW]): note the order: input channels first.
        bias (Tensor[C_out] or None).
        stride, padding: int or (h, w).

    Returns:
        Tensor[N, C_out, (H - 1) * stride_h - 2 * padding_h + kH, (W - 1) * stride_w - 2 * padding_w + kW].
    """
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if x.dim() != 4 or weight.dim() != 4 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"expected x (N, C_in, H, W) and weight (C_in, C_out, kH, kW), got {tuple(x.shape)} and {tuple(weight.shape)}")
    n, _, h, w = x.shape
    c_out, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw
    if full_h - 2 * ph < 1 or full_w - 2 * pw < 1:
        raise ValueError("padding is too large for this input and kernel")
    contrib = torch.einsum("ncij,cokl->noijkl", x, weight)  # (N, C_out, H, W, kH, kW)
    out = x.new_zeros(n, c_out, full_h, full_w)
    for ki in range(kh):
        for kj in range(kw):
            out[:, :, ki : ki + (h - 1) * sh + 1 : sh, kj : kj + (w - 1) * sw + 1 : sw] += contrib[..., ki, kj]
    out = out[:, :, ph : full_h - ph, pw : full_w - pw]  # (N, C_out, H_out, W_out)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv_vs_dense_params(in_shape: tuple[int, int, int], out_channels: int, kernel_size: IntOrPair) -> tuple[int, int]:
    """Parameters (weights + biases) of a conv layer and of the dense layer it replaces.

    The conv layer is stride 1 with "same" padding, so both map the volume `in_shape = (C, H, W)`
    to `(out_channels, H, W)`.

    Returns:
        (conv_params, dense_params): ints.
    """
    c, h, w = in_shape
    kh, kw = _pair(kernel_size, "kernel_size")
    conv = out_channels * c * kh * kw + out_channels
    dense = (c * h * w) * (out_channels * h * w) + out_channels * h * w
    return conv, dense
