"""Hidden checks for `conv`: output sizes, conv2d, conv_transpose2d and the parameter count."""

from __future__ import annotations

import torch

from grader.checks import call, outcome_case, randn
from grader.engine.spec import Check, Mistake, Picture

# (N, C_in, H, W, C_out, kH, kW, stride, padding, label)
_CONV_CONFIGS = [
    (2, 3, 6, 7, 4, 3, 4, 1, 0, "non-square 3x4 kernel, 4 output channels"),  # W_out = C_out: a bias on the wrong axis still runs
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
    (2, 3, 4, 4, 3, 2, 2, 2, 0, "2x2 kernel stride 2, as U-Net's up-convolution"),
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


def _stride_ignored(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv2d(x, weight, bias, 1, padding)

    return {"conv2d": conv2d}


def _padding_ignored(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv2d(x, weight, bias, stride, 0)

    return {"conv2d": conv2d}


def _window_start_not_scaled(ref):
    """Loops over output positions (i, j) that read the window at (i, j) instead of (i * stride_h, j * stride_w)."""
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        h_out = (x.shape[2] + 2 * ph - weight.shape[2]) // sh + 1
        w_out = (x.shape[3] + 2 * pw - weight.shape[3]) // sw + 1
        return ref.conv2d(x, weight, bias, 1, padding)[:, :, :h_out, :w_out]

    return {"conv2d": conv2d}


def _bias_last_axis(ref):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        out = ref.conv2d(x, weight, None, stride, padding)
        return out if bias is None else out + bias  # (C_out,) broadcast along the width

    return {"conv2d": conv2d}


_SECTION = "Convolution"
CONV_MISTAKES = (
    Mistake("flipped-kernel", "You flipped the kernel (textbook convolution); deep-learning 'convolution' is cross-correlation: the kernel is applied as it is.", _flipped, _SECTION, subsection="Cross-correlation, not flipped convolution"),
    Mistake("bias-ignored", "The bias is never added: add bias[c_out] to every position of output channel c_out.", _no_bias, _SECTION),
    Mistake("first-stride-only", "Only the first value of a pair stride/padding is used, for both dimensions: stride and padding are (h, w) pairs.", _first_stride_only, _SECTION),
    Mistake("stride-hw-swapped", "Height and width are swapped in the stride/padding pair: (h, w) means rows first.", _hw_swapped, _SECTION),
    Mistake("padding-one-side", "All the padding went to the bottom/right: zero padding adds `padding` rows and columns on each side.", _pad_one_side, _SECTION),
    Mistake("stride-ignored", "The stride is ignored: the window moves by one position at a time, so the output is as large as with stride 1. With stride s the window jumps s positions, and the output shrinks to floor((H + 2p - k) / s) + 1.", _stride_ignored, _SECTION, subsection="Output size"),
    Mistake("padding-ignored", "The padding is ignored: add `padding` rows and columns of zeros on each side of the input (F.pad) before sliding the kernel.", _padding_ignored, _SECTION, subsection="Output size"),
    Mistake("window-start-not-scaled", "Output position (i, j) reads the window starting at (i, j): with stride s it starts at (i * s_h, j * s_w) of the padded input.", _window_start_not_scaled, _SECTION, subsection="Output size"),
    Mistake("bias-on-wrong-axis", "The bias was added as `out + bias`: a (C_out,) tensor broadcasts along the *last* axis, the width. Reshape it to (1, C_out, 1, 1) so that bias[c] is added to every position of output channel c.", _bias_last_axis, _SECTION),
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


def _t_weight_axes_swapped(ref):
    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv_transpose2d(x, weight.transpose(0, 1), bias, stride, padding)

    return {"conv_transpose2d": conv_transpose2d}


def _t_stride_ignored(ref):
    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        return ref.conv_transpose2d(x, weight, bias, 1, padding)

    return {"conv_transpose2d": conv_transpose2d}


def _t_padding_adds_zeros(ref):
    import torch.nn.functional as F

    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        out = F.pad(ref.conv_transpose2d(x, weight, None, stride, 0), (pw, pw, ph, ph))
        return out if bias is None else out + bias.view(1, -1, 1, 1)

    return {"conv_transpose2d": conv_transpose2d}


def _t_crop_one_side(ref):
    def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        full = ref.conv_transpose2d(x, weight, bias, stride, 0)
        return full[:, :, : full.shape[2] - 2 * ph, : full.shape[3] - 2 * pw]

    return {"conv_transpose2d": conv_transpose2d}


TCONV_MISTAKES = (
    Mistake("transpose-flipped-kernel", "The kernel comes out rotated by 180 degrees: each input pixel must add weight[c_in, c_out] as it is, at stride spacing. (Zero-insertion followed by an ordinary convolution gives the same result only with the kernel flipped and its channel axes swapped; without the flip you get this.)", _tflip, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-padding-ignored", "The padding is ignored: in a transposed convolution `padding` removes rows and columns from each border of the full output.", _t_no_crop, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-bias-ignored", "The bias is never added to the output channels.", _t_no_bias, _SECTION),
    Mistake("transpose-weight-axes-swapped", "The weight was read as (C_out, C_in, kH, kW), the layout of an ordinary convolution: a transposed convolution's weight is (C_in, C_out, kH, kW), input channels first.", _t_weight_axes_swapped, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-stride-ignored", "The stride is ignored: each input pixel's copy of the kernel must be painted `stride` positions after the previous one, which is what makes the output larger, (H - 1) * stride + kH before the padding.", _t_stride_ignored, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-crop-one-side", "All 2 * padding rows and columns were cut from the bottom and right: `padding` removes that many from *each* border of the full output, top and left too.", _t_crop_one_side, _SECTION, subsection="Transposed convolution"),
    Mistake("transpose-padding-adds-zeros", "The padding was added as a border of zeros, as in a convolution: in a transposed convolution `padding` does the opposite and *removes* that many rows and columns from each border of the full output.", _t_padding_adds_zeros, _SECTION, subsection="Transposed convolution"),
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


def _size_fn(formula):
    """A wrong size formula, with the reference's argument checks."""
    def build(ref):
        def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
            ref.conv2d_output_size(size, kernel_size, stride, padding, dilation)  # the same errors
            return formula(size, kernel_size, stride, padding, dilation)

        return {"conv2d_output_size": conv2d_output_size}

    return build


SIZE_MISTAKES = (
    Mistake("ceil-instead-of-floor", "The division is rounded up: a window that does not fit entirely is dropped, so round down (floor).", _size_ceil, _SECTION, subsection="Output size"),
    Mistake("dilation-ignored", "Dilation spreads the kernel: its effective size is dilation * (kernel_size - 1) + 1.", _size_no_dilation, _SECTION, subsection="Output size"),
    Mistake("padding-counted-once", "Padding is added on both sides, so it counts twice: size + 2 * padding.", _size_one_pad, _SECTION, subsection="Output size"),
    Mistake("plus-one-missing", "The + 1 is missing: (room left after the first window) / stride counts the *moves* of the window; the first position counts too.",
            _size_fn(lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s), _SECTION, subsection="Output size"),
    Mistake("dilated-kernel-d-times-k", "A dilated kernel spans dilation * (kernel_size - 1) + 1 positions, not dilation * kernel_size: the gaps are only *between* its taps.",
            _size_fn(lambda n, k, s, p, d: (n + 2 * p - d * k) // s + 1), _SECTION, subsection="Output size"),
    Mistake("transposed-convolution-formula", "That is the output size of a *transposed* convolution, (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1, which upsamples: a convolution shrinks, floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1.",
            _size_fn(lambda n, k, s, p, d: (n - 1) * s - 2 * p + d * (k - 1) + 1), _SECTION, subsection="Output size"),
    Mistake("true-division", "`/` returns a float in Python 3: use floor division `//`, and return an int.",
            _size_fn(lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) / s + 1), _SECTION, subsection="Output size"),
)


def _size_errors_fn(check_types: bool = True, check_ranges: bool = True, check_output: bool = True,
                    error: type = ValueError, type_error: type | None = None):
    """The contract's formula with some of its argument checks missing or raising another error."""
    def build(ref):
        def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
            args = (size, kernel_size, stride, padding, dilation)
            if check_types and not all(isinstance(v, int) and not isinstance(v, bool) for v in args):
                raise (type_error or error)("not an int")
            if check_ranges and (min(size, kernel_size, stride, dilation) < 1 or padding < 0):
                raise error("out of range")
            out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
            if check_output and out < 1:
                raise error("the kernel does not fit")
            return out

        return {"conv2d_output_size": conv2d_output_size}

    return build


SIZE_ERROR_MISTAKES = (
    Mistake("kernel-larger-than-input-accepted", "A kernel larger than the (padded) input gives an output size below 1, which is returned: no window fits, so raise ValueError when the result would be < 1.",
            _size_errors_fn(check_output=False), _SECTION, subsection="Output size"),
    Mistake("argument-ranges-not-checked", "Only the result is checked: a kernel_size, stride or dilation below 1, or a negative padding, must raise ValueError before anything is computed (a stride of 0 even divides by zero).",
            _size_errors_fn(check_ranges=False), _SECTION, subsection="Output size"),
    Mistake("float-size-accepted", "A float size is accepted, and the result is a float: the contract takes ints only, and raises ValueError for anything else.",
            _size_errors_fn(check_types=False), _SECTION),
    Mistake("type-error-for-non-int", "A float size raises TypeError: the contract asks for ValueError for every invalid argument, a non-int included.",
            _size_errors_fn(type_error=TypeError), _SECTION),
    Mistake("assert-instead-of-value-error", "The arguments are checked with `assert`, which raises AssertionError (and disappears under `python -O`): raise ValueError with a message that names the bad argument.",
            _size_errors_fn(error=AssertionError), _SECTION),
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


def _dense_to_channels_only(ref):
    def conv_vs_dense_params(in_shape, out_channels, kernel_size):
        conv, _ = ref.conv_vs_dense_params(in_shape, out_channels, kernel_size)
        c, h, w = in_shape
        return conv, c * h * w * out_channels + out_channels

    return {"conv_vs_dense_params": conv_vs_dense_params}


def _conv_no_sharing(ref):
    def conv_vs_dense_params(in_shape, out_channels, kernel_size):
        conv, dense = ref.conv_vs_dense_params(in_shape, out_channels, kernel_size)
        c, h, w = in_shape
        return conv * h * w, dense

    return {"conv_vs_dense_params": conv_vs_dense_params}


def _kernel_not_squared(ref):
    def conv_vs_dense_params(in_shape, out_channels, kernel_size):
        conv, dense = ref.conv_vs_dense_params(in_shape, out_channels, kernel_size)
        if isinstance(kernel_size, int):
            conv = out_channels * in_shape[0] * kernel_size + out_channels
        return conv, dense

    return {"conv_vs_dense_params": conv_vs_dense_params}


PARAM_MISTAKES = (
    Mistake("dense-biases-missing", "The dense layer has one bias per output unit: out_channels * H * W of them.", _dense_no_bias, _SECTION, subsection="Parameter counts"),
    Mistake("conv-biases-missing", "The conv layer has one bias per output channel.", _conv_no_bias, _SECTION, subsection="Parameter counts"),
    Mistake("conv-kernel-single-channel", "Each conv kernel spans all input channels: out_channels * C * kH * kW weights.", _conv_no_in_channels, _SECTION, subsection="Parameter counts"),
    Mistake("dense-outputs-only-channels", "The dense layer maps to out_channels units: to replace the conv layer it must produce the same output *volume*, out_channels * H * W units, each connected to all C * H * W inputs.", _dense_to_channels_only, _SECTION, subsection="Parameter counts"),
    Mistake("conv-weights-not-shared", "The conv layer was counted with its own kernel and bias at every one of the H * W positions: parameter sharing means one set of kernels for all positions, so the count does not depend on H and W.", _conv_no_sharing, _SECTION, subsection="Parameter counts"),
    Mistake("kernel-area-not-squared", "An int kernel_size k means a k x k kernel: k * k weights per input channel, not k.", _kernel_not_squared, _SECTION, subsection="Parameter counts"),
)


def _size_valid(g, ref):
    cases = [(32, 3), (32, 3, 1, 1), (7, 3, 2), (10, 4, 3, 1), (5, 5), (12, 3, 1, 0, 3), (10, 3, 1, 2), (11, 3, 2, 1, 2),
             (9, 2, 2, 0, 3), (1, 1)]
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
    return [outcome_case("conv2d_output_size", *args, accept=("ValueError",), label=f"{why}: conv2d_output_size{args}") for args, why in bad]


def _conv_forward(g, ref):
    return [_conv_case(g, cfg) for cfg in _CONV_CONFIGS]


def _conv_float64_nobias(g, ref):
    return [_conv_case(g, cfg, dtype=torch.float64, bias=(i % 2 == 0)) for i, cfg in enumerate(_CONV_CONFIGS[1:5])]


def _conv_grads(g, ref):
    return [_conv_case(g, cfg, dtype=torch.float64, grad=True) for cfg in _CONV_CONFIGS[1:5]]


def _tconv_forward(g, ref):
    return [_tconv_case(g, cfg) for cfg in _TCONV_CONFIGS]


def _tconv_float64_grads(g, ref):
    return [_tconv_case(g, cfg, dtype=torch.float64, bias=(i % 2 == 1), grad=True) for i, cfg in enumerate(_TCONV_CONFIGS)]


def _params(g, ref):
    configs = [((1, 28, 28), 8, 5), ((3, 32, 32), 16, 3), ((64, 7, 9), 32, (3, 1)), ((3, 224, 224), 64, 7), ((2, 5, 5), 1, 1)]
    return [call("conv_vs_dense_params", *c, label=f"in_shape {c[0]}, out_channels {c[1]}, kernel_size {c[2]}") for c in configs]


_MAPS = Picture("maps")


CHECKS = [
    Check("output_size_values", "conv2d_output_size", 2, _size_valid, SIZE_MISTAKES,
          "the formula on strides, paddings and dilations, including sizes that do not divide evenly", Picture("values")),
    Check("output_size_errors", "conv2d_output_size", 2, _size_errors, SIZE_ERROR_MISTAKES,
          "ValueError for impossible or ill-typed arguments", Picture("values")),
    Check("conv2d_forward", "conv2d", 4, _conv_forward, CONV_MISTAKES,
          "float32 outputs against the reference on 5 shapes", _MAPS),
    Check("conv2d_float64_optional_bias", "conv2d", 3, _conv_float64_nobias, CONV_MISTAKES,
          "float64 in, float64 out; bias=None", _MAPS),
    Check("conv2d_gradients", "conv2d", 3, _conv_grads, CONV_MISTAKES,
          "gradients w.r.t. x, weight and bias through autograd", _MAPS),
    Check("conv_transpose2d_forward", "conv_transpose2d", 4, _tconv_forward, TCONV_MISTAKES,
          "outputs against the reference, including stride larger than the kernel", _MAPS),
    Check("conv_transpose2d_float64_gradients", "conv_transpose2d", 4, _tconv_float64_grads, TCONV_MISTAKES,
          "float64, optional bias, and gradients", _MAPS),
    Check("conv_vs_dense_params", "conv_vs_dense_params", 3, _params, PARAM_MISTAKES,
          "parameter counts of a conv layer and the dense layer it replaces", Picture("values")),
]
