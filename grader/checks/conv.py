"""Hidden checks for `conv`: output sizes, conv2d, conv_transpose2d and the parameter count."""

from __future__ import annotations

import torch

from grader.checks import call, randn
from grader.engine.spec import Check, Mistake

# (N, C_in, H, W, C_out, kH, kW, stride, padding, label)
_CONV_CONFIGS = [
    (2, 3, 8, 8, 4, 3, 3, 1, 0, "3x3 kernel, defaults"),
    (1, 1, 7, 9, 2, 3, 3, 2, 1, "batch 1, one channel, stride 2, padding 1, odd non-square input"),
    (2, 2, 9, 6, 3, 2, 3, (2, 1), (1, 0), "non-square 2x3 kernel, pair stride (2, 1) and padding (1, 0)"),
    (1, 3, 10, 11, 2, 5, 1, 3, (2, 0), "5x1 kernel, stride 3 that does not divide the size"),
    (3, 4, 5, 5, 1, 5, 5, 1, 2, "5x5 kernel covering the input, padding 2"),
]


def _conv_case(g, cfg, *, dtype=torch.float32, bias=True, grad=False):
    n, c, h, w, co, kh, kw, stride, padding, label = cfg
    x = randn(g, n, c, h, w, dtype=dtype)
    weight = randn(g, co, c, kh, kw, dtype=dtype)
    b = randn(g, co, dtype=dtype) if bias else None
    return call("conv2d", x, weight, b, stride, padding, grad=grad, label=f"{label}, x {tuple(x.shape)}, weight {tuple(weight.shape)}, {str(dtype)[6:]}")


def _tconv_case(g, cfg, *, dtype=torch.float32, bias=True, grad=False):
    n, c, h, w, co, kh, kw, stride, padding, label = cfg
    x = randn(g, n, c, h, w, dtype=dtype)
    weight = randn(g, c, co, kh, kw, dtype=dtype)
    b = randn(g, co, dtype=dtype) if bias else None
    return call("conv_transpose2d", x, weight, b, stride, padding, grad=grad, label=f"{label}, x {tuple(x.shape)}, weight {tuple(weight.shape)}, {str(dtype)[6:]}")


# (N, C_in, H, W, C_out, kH, kW, stride, padding, label) for the transposed convolution
_TCONV_CONFIGS = [
    (2, 3, 4, 4, 2, 2, 2, 2, 0, "2x2 kernel stride 2: the U-Net up-convolution"),
    (1, 1, 3, 5, 1, 3, 3, 1, 0, "batch 1, one channel, stride 1"),
    (2, 2, 3, 4, 3, 4, 3, (2, 3), (1, 1), "non-square kernel, pair stride (2, 3), padding 1"),
    (1, 2, 5, 3, 2, 3, 2, 3, (1, 0), "stride 3 larger than the kernel width: gaps in the output"),
]


def _flipped(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv2d(x, weight.flip(-2, -1), bias, stride, padding)

    return {"conv2d": conv2d}


def _no_bias(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv2d(x, weight, None, stride, padding)

    return {"conv2d": conv2d}


def _first_stride_only(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        s = stride if isinstance(stride, int) else stride[0]
        p = padding if isinstance(padding, int) else padding[0]
        return ref.conv2d(x, weight, bias, s, p)

    return {"conv2d": conv2d}


def _hw_swapped(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        s = stride if isinstance(stride, int) else (stride[1], stride[0])
        p = padding if isinstance(padding, int) else (padding[1], padding[0])
        return ref.conv2d(x, weight, bias, s, p)

    return {"conv2d": conv2d}


def _pad_one_side(ref):
    import torch.nn.functional as F

    def conv2d(x, weight, bias=None, stride=1, padding=0):
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        xp = F.pad(x, (0, 2 * pw, 0, 2 * ph))
        return ref.conv2d(xp, weight, bias, stride, 0)

    return {"conv2d": conv2d}


_SECTION = "Convolution"
CONV_MISTAKES = (
    Mistake("flipped-kernel", "You flipped the kernel (textbook convolution); deep-learning 'convolution' is cross-correlation: the kernel is applied as it is.", _flipped, _SECTION, subsection="Cross-correlation, not flipped convolution"),
    Mistake("bias-ignored", "The bias is never added: add bias[c_out] to every position of output channel c_out.", _no_bias, _SECTION),
    Mistake("first-stride-only", "Only the first value of a pair stride/padding is used, for both dimensions: stride and padding are (h, w) pairs.", _first_stride_only, _SECTION),
    Mistake("stride-hw-swapped", "Height and width are swapped in the stride/padding pair: (h, w) means rows first.", _hw_swapped, _SECTION),
    Mistake("padding-one-side", "All the padding went to the bottom/right: zero padding adds `padding` rows and columns on each side.", _pad_one_side, _SECTION),
)


def _tflip(ref):
    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv_transpose2d(x, weight.flip(-2, -1), bias, stride, padding)

    return {"conv_transpose2d": conv_transpose2d}


def _t_no_crop(ref):
    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv_transpose2d(x, weight, bias, stride, 0)

    return {"conv_transpose2d": conv_transpose2d}


def _t_no_bias(ref):
    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv_transpose2d(x, weight, None, stride, padding)

    return {"conv_transpose2d": conv_transpose2d}


def _t_as_conv(ref):
    """Zero-insertion upsampling, then a plain convolution with the *unflipped*, untransposed kernel."""
    import torch.nn.functional as F

    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        n, c, h, w = x.shape
        kh, kw = weight.shape[-2:]
        up = x.new_zeros(n, c, (h - 1) * sh + 1, (w - 1) * sw + 1)
        up[:, :, ::sh, ::sw] = x
        up = F.pad(up, (kw - 1 - pw, kw - 1 - pw, kh - 1 - ph, kh - 1 - ph))
        return ref.conv2d(up, weight.transpose(0, 1), bias, 1, 0)

    return {"conv_transpose2d": conv_transpose2d}


TCONV_MISTAKES = (
    Mistake("transpose-flipped-kernel", "The kernel is painted upside down: each input pixel adds weight[c_in, c_out] as it is, at stride spacing.", _tflip, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-padding-ignored", "The padding is ignored: in a transposed convolution `padding` removes rows and columns from each border of the full output.", _t_no_crop, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-bias-ignored", "The bias is never added to the output channels.", _t_no_bias, _SECTION),
    Mistake("transpose-as-conv-unflipped", "Zero-insertion followed by a convolution needs the kernel flipped (and in/out channels swapped); without the flip you get a different operation.", _t_as_conv, _SECTION, subsection="Transposed convolution"),
)


def _size_ceil(ref):
    import math

    def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1

    return {"conv2d_output_size": conv2d_output_size}


def _size_no_dilation(ref):
    def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        return ref.conv2d_output_size(size, kernel_size, stride, padding, 1)

    return {"conv2d_output_size": conv2d_output_size}


def _size_one_pad(ref):
    def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
        return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1

    return {"conv2d_output_size": conv2d_output_size}


SIZE_MISTAKES = (
    Mistake("ceil-instead-of-floor", "The division is rounded up: a window that does not fit entirely is dropped, so round down (floor).", _size_ceil, _SECTION, subsection="Output size"),
    Mistake("dilation-ignored", "Dilation spreads the kernel: its effective size is dilation * (kernel_size - 1) + 1.", _size_no_dilation, _SECTION, subsection="Output size"),
    Mistake("padding-counted-once", "Padding is added on both sides, so it counts twice: size + 2 * padding.", _size_one_pad, _SECTION, subsection="Output size"),
)


def _dense_no_bias(ref):
    def conv_vs_dense_params(in_shape, out_channels, kernel_size):
        conv, dense = ref.conv_vs_dense_params(in_shape, out_channels, kernel_size)
        c, h, w = in_shape
        return conv, dense - out_channels * h * w

    return {"conv_vs_dense_params": conv_vs_dense_params}


def _conv_no_bias(ref):
    def conv_vs_dense_params(in_shape, out_channels, kernel_size):
        conv, dense = ref.conv_vs_dense_params(in_shape, out_channels, kernel_size)
        return conv - out_channels, dense

    return {"conv_vs_dense_params": conv_vs_dense_params}


def _conv_no_in_channels(ref):
    def conv_vs_dense_params(in_shape, out_channels, kernel_size):
        conv, dense = ref.conv_vs_dense_params(in_shape, out_channels, kernel_size)
        c = in_shape[0]
        return (conv - out_channels) // c + out_channels, dense

    return {"conv_vs_dense_params": conv_vs_dense_params}


PARAM_MISTAKES = (
    Mistake("dense-biases-missing", "The dense layer has one bias per output unit: out_channels * H * W of them.", _dense_no_bias, _SECTION, subsection="Parameter counts"),
    Mistake("conv-biases-missing", "The conv layer has one bias per output channel.", _conv_no_bias, _SECTION, subsection="Parameter counts"),
    Mistake("conv-kernel-single-channel", "Each conv kernel spans all input channels: out_channels * C * kH * kW weights.", _conv_no_in_channels, _SECTION, subsection="Parameter counts"),
)


def _size_valid(g, ref):
    cases = [(32, 3), (32, 3, 1, 1), (7, 3, 2), (10, 4, 3, 1), (5, 5), (11, 3, 2, 1, 2), (9, 2, 2, 0, 3), (1, 1)]
    for _ in range(4):
        size = int(torch.randint(5, 60, (1,), generator=g))
        k = int(torch.randint(1, 6, (1,), generator=g))
        s = int(torch.randint(1, 4, (1,), generator=g))
        p = int(torch.randint(0, 3, (1,), generator=g))
        d = int(torch.randint(1, 3, (1,), generator=g))
        if size + 2 * p >= d * (k - 1) + 1:
            cases.append((size, k, s, p, d))
    return [call("conv2d_output_size", *c, label=f"conv2d_output_size{c}") for c in cases]


def _size_errors(g, ref):
    bad = [((2, 5), "kernel larger than the input"), ((0, 1), "size 0"), ((5, 0), "kernel_size 0"),
           ((5, 3, 0), "stride 0"), ((5, 3, 1, -1), "negative padding"), ((5, 3, 1, 0, 0), "dilation 0"),
           ((5.0, 3), "a float size"), ((5, 3, 1, 0, 3), "dilated kernel larger than the input")]
    return [call("conv2d_output_size", *args, raises=("ValueError",), label=f"{why}: conv2d_output_size{args}") for args, why in bad]


def _conv_forward(g, ref):
    return [_conv_case(g, cfg) for cfg in _CONV_CONFIGS]


def _conv_float64_nobias(g, ref):
    return [_conv_case(g, cfg, dtype=torch.float64, bias=(i % 2 == 0)) for i, cfg in enumerate(_CONV_CONFIGS[:4])]


def _conv_grads(g, ref):
    return [_conv_case(g, cfg, dtype=torch.float64, grad=True) for cfg in _CONV_CONFIGS[:4]]


def _tconv_forward(g, ref):
    return [_tconv_case(g, cfg) for cfg in _TCONV_CONFIGS]


def _tconv_float64_grads(g, ref):
    return [_tconv_case(g, cfg, dtype=torch.float64, bias=(i % 2 == 1), grad=True) for i, cfg in enumerate(_TCONV_CONFIGS)]


def _params(g, ref):
    configs = [((3, 32, 32), 16, 3), ((1, 28, 28), 8, 5), ((64, 7, 9), 32, (3, 1)), ((3, 224, 224), 64, 7), ((2, 5, 5), 1, 1)]
    return [call("conv_vs_dense_params", *c, label=f"in_shape {c[0]}, out_channels {c[1]}, kernel_size {c[2]}") for c in configs]


CHECKS = [
    Check("output_size_values", "conv2d_output_size", 2, _size_valid, SIZE_MISTAKES,
          "the formula on strides, paddings and dilations, including sizes that do not divide evenly"),
    Check("output_size_errors", "conv2d_output_size", 2, _size_errors, (),
          "ValueError for impossible or ill-typed arguments"),
    Check("conv2d_forward", "conv2d", 4, _conv_forward, CONV_MISTAKES,
          "float32 outputs against the reference on 5 shapes"),
    Check("conv2d_float64_optional_bias", "conv2d", 3, _conv_float64_nobias, CONV_MISTAKES,
          "float64 in, float64 out; bias=None"),
    Check("conv2d_gradients", "conv2d", 3, _conv_grads, CONV_MISTAKES,
          "gradients w.r.t. x, weight and bias through autograd"),
    Check("conv_transpose2d_forward", "conv_transpose2d", 4, _tconv_forward, TCONV_MISTAKES,
          "outputs against the reference, including stride larger than the kernel"),
    Check("conv_transpose2d_float64_gradients", "conv_transpose2d", 4, _tconv_float64_grads, TCONV_MISTAKES,
          "float64, optional bias, and gradients"),
    Check("conv_vs_dense_params", "conv_vs_dense_params", 3, _params, PARAM_MISTAKES,
          "parameter counts of a conv layer and the dense layer it replaces"),
]
