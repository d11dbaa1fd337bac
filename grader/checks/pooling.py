"""Hidden checks for `pooling`: max and average pooling, overlapping windows, and the error for a
kernel larger than the input."""

from __future__ import annotations

import torch

from grader.checks import call, outcome_case, randn
from grader.engine.spec import Check, Mistake, Picture

# (N, C, H, W, kernel_size, stride, label)
_CONFIGS = [
    (2, 3, 8, 8, 2, None, "2x2, stride defaults to the kernel"),
    (1, 1, 7, 9, 3, 2, "batch 1, one channel, overlapping 3x3 windows with stride 2 (AlexNet style)"),
    (2, 2, 9, 6, (3, 2), (2, 1), "non-square kernel (3, 2) and pair stride (2, 1)"),
    (1, 4, 11, 10, (2, 3), None, "sizes that do not divide evenly: the remainder is dropped"),
    (3, 2, 5, 5, 5, 1, "kernel as large as the input"),
]


def _case(g, fn, cfg, *, dtype=torch.float32, grad=False):
    n, c, h, w, k, s, label = cfg
    x = randn(g, n, c, h, w, dtype=dtype)
    return call(fn, x, k, s, grad=grad, label=f"{label}, x {tuple(x.shape)}, kernel_size={k}, stride={s}, {str(dtype)[6:]}")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _stride_one(fn_name):
    def build(ref):
        fn = getattr(ref, fn_name)
        return {fn_name: lambda x, kernel_size, stride=None: fn(x, kernel_size, 1 if stride is None else stride)}

    return build


def _kernel_swapped(fn_name):
    def build(ref):
        fn = getattr(ref, fn_name)

        def wrong(x, kernel_size, stride=None):
            kh, kw = _pair(kernel_size)
            s = (kh, kw) if stride is None else _pair(stride)
            return fn(x, (kw, kh), (s[1], s[0]))

        return {fn_name: wrong}

    return build


def _ceil_mode(fn_name):
    def build(ref):
        def wrong(x, kernel_size, stride=None):
            import torch.nn.functional as F

            pool = F.max_pool2d if fn_name == "max_pool2d" else F.avg_pool2d
            return pool(x, kernel_size, stride, ceil_mode=True)

        return {fn_name: wrong}

    return build


def _across_channels(fn_name):
    def build(ref):
        fn = getattr(ref, fn_name)

        def wrong(x, kernel_size, stride=None):
            pooled = fn(x, kernel_size, stride)
            reduced = pooled.amax(dim=1, keepdim=True) if fn_name == "max_pool2d" else pooled.mean(dim=1, keepdim=True)
            return reduced.expand_as(pooled).contiguous()

        return {fn_name: wrong}

    return build


def _stride_ignored(fn_name):
    def build(ref):
        fn = getattr(ref, fn_name)
        return {fn_name: lambda x, kernel_size, stride=None: fn(x, kernel_size, kernel_size)}

    return build


def _window_start_not_scaled(fn_name):
    """A loop over output positions (i, j) that reads the window at (i, j) instead of (i * stride_h, j * stride_w)."""
    def build(ref):
        def wrong(x, kernel_size, stride=None):
            kh, kw = _pair(kernel_size)
            sh, sw = _pair(kernel_size if stride is None else stride)
            out_h, out_w = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1
            windows = x.unfold(2, kh, 1).unfold(3, kw, 1)[:, :, :out_h, :out_w]  # (N, C, H_out, W_out, kH, kW)
            return windows.amax(dim=(-2, -1)) if fn_name == "max_pool2d" else windows.mean(dim=(-2, -1))

        return {fn_name: wrong}

    return build


def _abs_max(ref):
    def max_pool2d(x, kernel_size, stride=None):
        kh, kw = _pair(kernel_size)
        sh, sw = _pair(kernel_size if stride is None else stride)
        windows = x.unfold(2, kh, sh).unfold(3, kw, sw).flatten(-2)
        idx = windows.abs().argmax(-1, keepdim=True)
        return windows.gather(-1, idx).squeeze(-1)

    return {"max_pool2d": max_pool2d}


def _avg_wrong_divisor(ref):
    def avg_pool2d(x, kernel_size, stride=None):
        kh, kw = _pair(kernel_size)
        sh, sw = _pair(kernel_size if stride is None else stride)
        return x.unfold(2, kh, sh).unfold(3, kw, sw).sum(dim=(-2, -1)) / (kh * kh)

    return {"avg_pool2d": avg_pool2d}


def _avg_divided_by_one_side(ref):
    def avg_pool2d(x, kernel_size, stride=None):
        kh, kw = _pair(kernel_size)
        sh, sw = _pair(kernel_size if stride is None else stride)
        return x.unfold(2, kh, sh).unfold(3, kw, sw).sum(dim=(-2, -1)) / kh

    return {"avg_pool2d": avg_pool2d}


_S = "Convolution"


def _mistakes(fn_name: str) -> tuple[Mistake, ...]:
    common = (
        Mistake(f"{fn_name}-stride-default-one", "With stride=None the stride must equal the kernel size (non-overlapping windows), not 1.", _stride_one(fn_name), _S, subsection="Pooling"),
        Mistake(f"{fn_name}-kernel-hw-swapped", "Height and width are swapped: kernel_size and stride pairs are (h, w), rows first.", _kernel_swapped(fn_name), _S),
        Mistake(f"{fn_name}-ceil-mode", "Partial windows at the border are kept (ceil mode); the contract uses floor mode: a window that does not fit is dropped.", _ceil_mode(fn_name), _S, subsection="Pooling"),
        Mistake(f"{fn_name}-across-channels", "The pooling also mixes channels: pooling works on each feature map independently and keeps the depth.", _across_channels(fn_name), "GlobalAvgPooling", subsection="GAP versus max pooling"),
        Mistake(f"{fn_name}-stride-ignored", "The stride argument is ignored (the windows always sit side by side): with a stride smaller than the kernel the windows overlap, with a larger one they skip pixels.", _stride_ignored(fn_name), _S, subsection="Pooling"),
        Mistake(f"{fn_name}-window-start-not-scaled", "Output position (i, j) reads the window starting at (i, j): with stride s it starts at (i * s_h, j * s_w).", _window_start_not_scaled(fn_name), _S, subsection="Pooling"),
    )
    if fn_name == "max_pool2d":
        return common + (Mistake("max-of-absolute-values", "The window's value with the largest magnitude is taken; max pooling keeps the largest value, negatives included.", _abs_max, _S, subsection="Pooling"),)
    return common + (Mistake("avg-wrong-divisor", "The window sum is divided by kH*kH instead of the window's kH*kW elements.", _avg_wrong_divisor, _S, subsection="Pooling"),
                     Mistake("avg-divided-by-kernel-side", "The window sum is divided by the kernel size k, one side of the window: a k x k window holds k * k values (kH * kW for a rectangle).", _avg_divided_by_one_side, _S, subsection="Pooling"))


def _forward(fn):
    return lambda g, ref: [_case(g, fn, cfg) for cfg in _CONFIGS]


def _float64_grads(fn):
    return lambda g, ref: [_case(g, fn, cfg, dtype=torch.float64, grad=True) for cfg in _CONFIGS[:4]]


# --- known mistakes: the error for a kernel larger than the input ---------------------------------
def _refusal(decide):
    """Both poolings, with the reference's check replaced by `decide(x, kh, kw)`: None to go on,
    "empty" for the empty result a loop over no window gives, "none" to return None, or an
    exception to raise."""
    def build(ref):
        def wrap(fn):
            def pool(x, kernel_size, stride=None):
                kh, kw = _pair(kernel_size)
                sh, sw = _pair(kernel_size if stride is None else stride)
                verdict = decide(x, kh, kw)
                if verdict == "empty":
                    h_out, w_out = (x.shape[-2] - kh) // sh + 1, (x.shape[-1] - kw) // sw + 1
                    return x.new_zeros(*x.shape[:2], max(h_out, 0), max(w_out, 0))
                if verdict == "none":
                    return None
                if isinstance(verdict, Exception):
                    raise verdict
                return fn(x, kernel_size, stride)

            return pool

        return {"max_pool2d": wrap(ref.max_pool2d), "avg_pool2d": wrap(ref.avg_pool2d)}

    return build


def _too_large(x, kh, kw):
    return kh > x.shape[-2] or kw > x.shape[-1]


def _fits_exactly_refused(x, kh, kw):
    return ValueError("too large") if kh >= x.shape[-2] or kw >= x.shape[-1] else None


def _wrong_dimensions(x, kh, kw):
    return ValueError("too large") if kh > x.shape[1] or kw > x.shape[2] else None


ERROR_MISTAKES = (
    Mistake("empty-result-instead-of-error", "A kernel larger than the input gives an empty result (no window fits, so the loops never run): the contract raises an error instead, since there is no sensible output.",
            _refusal(lambda x, kh, kw: "empty" if _too_large(x, kh, kw) else None), _S, subsection="Pooling"),
    Mistake("assert-instead-of-error", "The kernel is checked with `assert`, which raises AssertionError (and disappears under `python -O`): raise ValueError with a message that names both sizes.",
            _refusal(lambda x, kh, kw: AssertionError("too large") if _too_large(x, kh, kw) else None), _S),
    Mistake("bare-exception", "A bare Exception is raised: raise ValueError, the error for a bad argument value, so that callers can catch it precisely.",
            _refusal(lambda x, kh, kw: Exception("too large") if _too_large(x, kh, kw) else None), _S),
    Mistake("kernel-as-large-as-input-refused", "A kernel exactly as large as the input is refused: it fits once, and gives a 1x1 output. Only a kernel *larger* than the input (kH > H or kW > W) is an error.",
            _refusal(_fits_exactly_refused), _S, subsection="Pooling"),
    Mistake("none-instead-of-error", "None is returned (perhaps after printing a message) for a kernel larger than the input: the caller then fails later, far from the cause. Raise ValueError instead.",
            _refusal(lambda x, kh, kw: "none" if _too_large(x, kh, kw) else None), _S),
    Mistake("kernel-compared-with-wrong-dimensions", "The kernel is compared with x.shape[1] and x.shape[2], the channels and the height: x is (N, C, H, W), so compare kH with x.shape[-2] and kW with x.shape[-1].",
            _refusal(_wrong_dimensions), _S, subsection="Pooling"),
)


def _errors(g, ref):
    x = randn(g, 1, 2, 4, 5)
    accept = ("ValueError", "RuntimeError")
    cases = [outcome_case(fn, x, k, None, accept=accept, label=f"{fn} with kernel {k} on a 4x5 input: {why}")
             for fn in ("max_pool2d", "avg_pool2d")
             for k, why in ((6, "larger in both dimensions"), ((5, 2), "too tall"), ((2, 6), "too wide"))]
    cases.append(outcome_case("max_pool2d", randn(g, 1, 6, 5, 5), 5, None, accept=accept,
                              label="max_pool2d with kernel 5 on a 5x5 input (6 channels): a kernel as large as the input fits once"))
    cases.append(outcome_case("max_pool2d", x, 3, None, accept=accept,
                              label="max_pool2d with kernel 3 on a 4x5 input with 2 channels: it fits"))
    return cases


CHECKS = [
    Check("max_pool2d_forward", "max_pool2d", 4, _forward("max_pool2d"), _mistakes("max_pool2d"),
          "outputs against the reference on 5 shapes, overlapping windows included", Picture("maps")),
    Check("max_pool2d_float64_gradients", "max_pool2d", 4, _float64_grads("max_pool2d"), _mistakes("max_pool2d"),
          "float64, and the gradient flowing only to each window's maximum", Picture("maps")),
    Check("avg_pool2d_forward", "avg_pool2d", 4, _forward("avg_pool2d"), _mistakes("avg_pool2d"),
          "outputs against the reference on 5 shapes", Picture("maps")),
    Check("avg_pool2d_float64_gradients", "avg_pool2d", 4, _float64_grads("avg_pool2d"), _mistakes("avg_pool2d"),
          "float64, and the gradient spread evenly over each window", Picture("maps")),
    Check("kernel_larger_than_input", "errors", 2, _errors, ERROR_MISTAKES,
          "a kernel larger than the input, in one dimension or both, raises ValueError or RuntimeError; one as large fits", Picture("window", inputs=(1, 2))),
]
