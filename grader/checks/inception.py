"""Hidden checks for `inception`: the Inception module's outputs and shapes, and its parameter counts."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from grader.checks import call, module_case, randn, reference_state
from grader.runner import probes
from grader.engine.spec import Case, Check, Mistake, Picture

_S = "Convolution"
_PROBES = "grader.checks.inception"
INCEPTION_3A = (192, 64, 96, 128, 16, 32, 32)
NAIVE_3A = (192, 64, 128, 32)

# (config, input (N, H, W), label)
_MODULES = [
    (INCEPTION_3A, (1, 6, 6), "GoogLeNet's inception(3a)"),
    ((3, 4, 2, 5, 3, 6, 2), (2, 9, 9), "small module, 9x9 input"),
    ((8, 1, 4, 4, 2, 3, 5), (1, 5, 11), "non-square 5x11 input"),
    ((5, 2, 3, 2, 1, 1, 3), (2, 1, 1), "1x1 input: only the padding surrounds each pixel"),
    ((6, 3, 4, 6, 2, 4, 2), (1, 2, 3), "2x3 input, smaller than the 5x5 kernel"),
]


def _args(cfg: tuple) -> str:
    return "InceptionModule(" + ", ".join(map(str, cfg)) + ")"


# --- probes (run in the worker on the student's module, and here on the reference) -------------
def probe_output_shape(mod: Any, cfg: tuple, input_shape: tuple, device: str = "cpu", seed: int = 0) -> list[int]:
    """The output shape of a freshly built module on a random input of `input_shape`."""
    net = mod.InceptionModule(*cfg).to(device)
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        return list(net(x).shape)


def probe_parameter_count(mod: Any, cfg: tuple, device: str = "cpu", seed: int = 0) -> int:
    """The parameters of a freshly built `InceptionModule(*cfg)`, counted by torch; a lazy module
    (`nn.LazyConv2d`, as in d2l's GoogLeNet) first sees one small input to get its shapes."""
    net = mod.InceptionModule(*cfg)
    probes.materialize(net, "forward", [torch.zeros(1, cfg[0], 3, 3)])
    return int(sum(p.numel() for p in net.parameters()))


# --- known mistakes: the module ----------------------------------------------------------------
def _module(forward):
    def build(ref):
        class Wrong(ref.InceptionModule):
            pass

        Wrong.forward = forward
        return {"InceptionModule": Wrong}

    return build


def _run(seq, x, skip=()):
    for i, layer in enumerate(seq):
        if i not in skip:
            x = layer(x)
    return x


def _reversed_order(self, x):
    return torch.cat([self.branch4(x), self.branch3(x), self.branch2(x), self.branch1(x)], dim=1)


def _no_relu_after_reductions(self, x):
    return torch.cat([self.branch1(x), _run(self.branch2, x, {1}), _run(self.branch3, x, {1}), self.branch4(x)], dim=1)


def _no_final_relu(self, x):
    return torch.cat([_run(self.branch1, x, {1}), _run(self.branch2, x, {3}), _run(self.branch3, x, {3}),
                      _run(self.branch4, x, {2})], dim=1)


def _avg_pool_branch(self, x):
    pooled = F.avg_pool2d(x, 3, stride=1, padding=1)
    return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), _run(self.branch4, pooled, {0})], dim=1)


MODULE_MISTAKES = (
    Mistake("branches-concatenated-in-wrong-order", "The branches are concatenated in another order: the contract's order is [branch1, branch2, branch3, branch4] (1x1, 3x3, 5x5, pool).", _module(_reversed_order), _S, subsection="The Inception module"),
    Mistake("relu-missing-after-reductions", "The 1x1 reductions have no ReLU: every convolution of the module, the reductions included, is followed by a ReLU.", _module(_no_relu_after_reductions), _S),
    Mistake("relu-missing-at-branch-ends", "The last convolution of each branch has no ReLU: every convolution of the module is followed by a ReLU.", _module(_no_final_relu), _S),
    Mistake("pool-branch-average-pool", "The pool branch averages: GoogLeNet's fourth branch is a 3x3 *max* pooling (stride 1, padding 1) before its 1x1 projection.", _module(_avg_pool_branch), _S, subsection="The Inception module"),
)


# --- known mistakes: the parameter counts ------------------------------------------------------
def _params(fn):
    return lambda ref: {"inception_params": fn}


def _p_no_bias(c, a, r3, b, r5, d, p):
    return a * c + (r3 * c + b * r3 * 9) + (r5 * c + d * r5 * 25) + p * c


def _p_big_conv_on_input(c, a, r3, b, r5, d, p):
    return (a * c + a) + (r3 * c + r3 + b * c * 9 + b) + (r5 * c + r5 + d * c * 25 + d) + (p * c + p)


def _p_kernel_not_squared(c, a, r3, b, r5, d, p):
    return (a * c + a) + (r3 * c + r3 + b * r3 * 3 + b) + (r5 * c + r5 + d * r5 * 5 + d) + (p * c + p)


def _p_no_pool_proj(c, a, r3, b, r5, d, p):
    return (a * c + a) + (r3 * c + r3 + b * r3 * 9 + b) + (r5 * c + r5 + d * r5 * 25 + d)


PARAM_MISTAKES = (
    Mistake("biases-not-counted", "The biases are missing: each convolution also has one bias per output channel.", _params(_p_no_bias), _S, subsection="Parameter counts"),
    Mistake("big-convs-on-the-input", "The 3x3 and 5x5 convolutions are counted on in_channels inputs: after the 1x1 reduction they see only ch3x3red (ch5x5red) channels; that is the point of the reduction.", _params(_p_big_conv_on_input), _S, subsection="The Inception module"),
    Mistake("kernel-area-not-squared", "A k x k kernel has k * k weights per input channel (9 and 25), not k.", _params(_p_kernel_not_squared), _S, subsection="Parameter counts"),
    Mistake("pool-projection-not-counted", "The pool branch's 1x1 projection (in_channels -> pool_proj, with bias) is missing from the count.", _params(_p_no_pool_proj), _S, subsection="The Inception module"),
)


def _naive(fn):
    return lambda ref: {"naive_inception_params": fn}


NAIVE_MISTAKES = (
    Mistake("naive-biases-not-counted", "The biases are missing: each convolution also has one bias per output channel.",
            _naive(lambda c, a, b, d: a * c + b * c * 9 + d * c * 25), _S, subsection="Parameter counts"),
    Mistake("naive-kernel-area-not-squared", "A k x k kernel has k * k weights per input channel (9 and 25), not k.",
            _naive(lambda c, a, b, d: (a * c + a) + (b * c * 3 + b) + (d * c * 5 + d)), _S, subsection="Parameter counts"),
    Mistake("naive-branches-chained", "The branches were counted one after the other, each convolution on the previous one's output: the branches run in *parallel*, and the 3x3 and 5x5 convolutions both see the module's in_channels input.",
            _naive(lambda c, a, b, d: (a * c + a) + (b * a * 9 + b) + (d * b * 25 + d)), _S, subsection="The Inception module"),
    Mistake("naive-1x1-branch-dropped", "The 1x1 *branch* was dropped too: the naive module loses only the 1x1 reductions and the pool projection; its own 1x1 branch stays.",
            _naive(lambda c, a, b, d: (b * c * 9 + b) + (d * c * 25 + d)), _S, subsection="The Inception module"),
)


# --- cases --------------------------------------------------------------------------------------
def _module_cases(g, ref, *, grad):
    cases = []
    for cfg, (n, h, w), label in _MODULES[: 4 if grad else 5]:
        state = reference_state(ref, "InceptionModule", *cfg)
        x = randn(g, n, cfg[0], h, w)
        cases.append(module_case("InceptionModule", cfg, (x,), state, grad=grad,
                                 label=f"{label}: {_args(cfg)} with the reference's weights, x {tuple(x.shape)}"))
    return cases


def _output_shapes(g, ref):
    configs = [(INCEPTION_3A, (1, 192, 5, 5), "inception(3a) outputs 64 + 128 + 32 + 32 = 256 channels"),
               ((480, 192, 96, 208, 16, 48, 64), (1, 480, 2, 2), "inception(4a) outputs 512 channels"),
               ((3, 4, 2, 5, 3, 6, 2), (2, 3, 7, 10), "H and W are kept"),
               ((2, 1, 1, 1, 1, 1, 1), (1, 2, 1, 1), "1x1 input, one channel per branch")]
    return [Case(f"{_PROBES}:probe_output_shape", (cfg, shape), label=f"{label}: {_args(cfg)}, x {shape}")
            for cfg, shape, label in configs]


def _random_configs(g, n):
    return [tuple(int(v) for v in torch.randint(1, 40, (7,), generator=g)) for _ in range(n)]


def _params_values(g, ref):
    configs = [INCEPTION_3A, (256, 128, 128, 192, 32, 96, 64), (1, 1, 1, 1, 1, 1, 1), *_random_configs(g, 3)]
    return [call("inception_params", *cfg, label=f"inception_params{cfg}" + (" (inception(3a): 163,696)" if cfg == INCEPTION_3A else ""))
            for cfg in configs]


def _module_parameter_counts(g, ref):
    configs = [(INCEPTION_3A, " (inception(3a): 163,696)"), ((480, 192, 96, 208, 16, 48, 64), " (inception(4a))"),
               ((3, 5, 2, 7, 4, 1, 6), ""), ((1, 1, 1, 1, 1, 1, 1), "")]
    return [Case(f"{_PROBES}:probe_parameter_count", (cfg,), label=f"sum(p.numel() for p in {_args(cfg)}.parameters()){note}")
            for cfg, note in configs]


def _params_other_configs(g, ref):
    configs = [(480, 192, 96, 208, 16, 48, 64), (3, 5, 2, 7, 4, 1, 6), *_random_configs(g, 2)]
    return [call("inception_params", *cfg, label=f"inception_params{cfg}: the parameters of the contract's module with these arguments")
            for cfg in configs]


def _naive_values(g, ref):
    configs = [NAIVE_3A, (256, 128, 192, 96), (1, 1, 1, 1),
               *[tuple(int(v) for v in torch.randint(1, 60, (4,), generator=g)) for _ in range(3)]]
    return [call("naive_inception_params", *cfg, label=f"naive_inception_params{cfg}" + (" (naive inception(3a): 387,296)" if cfg == NAIVE_3A else ""))
            for cfg in configs]


CHECKS = [
    Check("module_forward", "InceptionModule", 4, lambda g, ref: _module_cases(g, ref, grad=False), MODULE_MISTAKES,
          "outputs equal the reference's with its weights, inception(3a) and small inputs included", Picture("maps")),
    Check("module_gradients", "InceptionModule", 2, lambda g, ref: _module_cases(g, ref, grad=True), MODULE_MISTAKES,
          "gradients w.r.t. the input and every parameter", Picture("maps")),
    Check("module_output_shape", "InceptionModule", 1, _output_shapes, (),
          "ch1x1 + ch3x3 + ch5x5 + pool_proj output channels, height and width kept", Picture("values")),
    Check("module_parameter_count", "InceptionModule", 1, _module_parameter_counts, (),
          "the parameters of your module (163,696 for inception(3a)), lazy modules included", Picture("values")),
    Check("params_values", "inception_params", 2, _params_values, PARAM_MISTAKES,
          "the count on inception(3a) (163,696) and other configurations", Picture("values")),
    Check("params_other_configs", "inception_params", 2, _params_other_configs, PARAM_MISTAKES,
          "the count on inception(4a) and random configurations, against the contract's module (never against your own)", Picture("values")),
    Check("naive_params_values", "naive_inception_params", 3, _naive_values, NAIVE_MISTAKES,
          "the naive module's count on inception(3a) (387,296) and other configurations", Picture("values")),
]
