"""Hidden checks for `gap`: global average pooling, the GAP classifier head and class activation maps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from grader.checks import call, module_case, randn, reference_state
from grader.engine.compare import TOLERANCES, compare, is_tensor
from grader.runner.probes import TENSOR_KEY
from grader.engine.spec import Case, Check, Mistake, Picture

_S = "GlobalAvgPooling"
_PROBES = "grader.checks.gap"

# (N, C, H, W, label)
_SHAPES = [
    (2, 3, 7, 7, "square 7x7 maps"),
    (1, 4, 1, 1, "H = W = 1: the mean of one value is that value"),
    (3, 2, 5, 9, "non-square 5x9 maps"),
    (2, 5, 1, 6, "a single row, 1x6"),
    (1, 1, 13, 3, "one channel, tall 13x3 map"),
]


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --- probes (run in the worker on the student's module, and here on the reference) -------------
def trusted_global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """The grader's GAP, (N, C, H, W) -> (N, C): it stands in for the student's `global_avg_pool`
    inside `GAPClassifier`, whose checks then test the classifier only."""
    return x.mean(dim=(2, 3))


_TRUSTED_GAP = {"global_avg_pool": f"{_PROBES}:trusted_global_avg_pool"}
_WITH_OUR_GAP = " (with the grader's global_avg_pool in place of yours)"


def probe_parameters(mod: Any, cls: str, init_args: tuple, device: str = "cpu", seed: int = 0) -> dict:
    """The names and shapes of a freshly built module's parameters, and their total count."""
    net = getattr(mod, cls)(*init_args)
    return {"parameters": {name: list(p.shape) for name, p in net.named_parameters()},
            "count": int(sum(p.numel() for p in net.parameters()))}


def probe_cam_identity(mod: Any, fc_weight: torch.Tensor, fc_bias: torch.Tensor, features: torch.Tensor,
                       class_idx: torch.Tensor, device: str = "cpu", seed: int = 0) -> dict:
    """The class score of a GAP + linear head (computed here, trusted) and the student's
    `class_activation_map(...).mean((1, 2)) + bias`: Zhou et al. (2016) say they are equal."""
    fc_weight, fc_bias = fc_weight.to(device), fc_bias.to(device)
    features, class_idx = features.to(device), class_idx.to(device)
    rows = torch.arange(features.shape[0], device=device)
    score = (features.mean(dim=(2, 3)) @ fc_weight.T + fc_bias)[rows, class_idx]  # (N,)
    cam = mod.class_activation_map(features, fc_weight, class_idx)  # (N, H, W)
    return {"class_score": score, "cam_mean_plus_bias": cam.mean(dim=(1, 2)) + fc_bias[class_idx]}


def _assess_identity(got: Any, expected: Any) -> str | None:
    """Explain a broken `score = mean(CAM) + bias` first, then anything else that differs."""
    if isinstance(got, dict) and is_tensor(got.get("class_score")) and is_tensor(got.get("cam_mean_plus_bias")):
        score, lhs = got["class_score"][TENSOR_KEY], got["cam_mean_plus_bias"][TENSOR_KEY]
        if lhs.shape == score.shape and lhs.dtype == score.dtype:
            rtol, atol = TOLERANCES.get(score.dtype, (1e-5, 1e-8))
            if not torch.allclose(lhs, score, rtol=rtol, atol=atol):
                return ("the mean of your CAM plus the class bias should equal the class score of the GAP + fc "
                        f"head (Zhou et al. 2016), but got {[round(v, 5) for v in lhs.tolist()]} for scores "
                        f"{[round(v, 5) for v in score.tolist()]}: the CAM is sum_c w[k, c] * f[c, h, w], "
                        "with no bias, ReLU or normalisation")
    return compare(got, expected, "result")


# --- known mistakes: global_avg_pool ------------------------------------------------------------
def _gap_over_channels(ref):
    return {"global_avg_pool": lambda x: x.mean(dim=1, keepdim=True)}


def _gap_over_channels_squeezed(ref):
    return {"global_avg_pool": lambda x: x.mean(dim=1)}


def _gap_sum(ref):
    return {"global_avg_pool": lambda x: x.sum(dim=(2, 3))}


def _gap_keepdim(ref):
    return {"global_avg_pool": lambda x: x.mean(dim=(2, 3), keepdim=True)}


def _gap_square_divisor(ref):
    return {"global_avg_pool": lambda x: x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[2])}


def _gap_max(ref):
    return {"global_avg_pool": lambda x: x.amax(dim=(2, 3))}


_CHANNELS_EXPLANATION = ("You averaged across the channels (the notes' 'depth 1, keeping height and width'): GAP "
                         "averages each feature map over its positions, keeping the C channels and dropping H and W.")
GAP_MISTAKES = (
    Mistake("gap-averages-channels", _CHANNELS_EXPLANATION, _gap_over_channels, _S, subsection="What GAP computes"),
    Mistake("gap-averages-channels-squeezed", _CHANNELS_EXPLANATION, _gap_over_channels_squeezed, _S, subsection="What GAP computes"),
    Mistake("gap-sum-not-mean", "The positions are summed, not averaged: divide by the H * W positions.", _gap_sum, _S, subsection="What GAP computes"),
    Mistake("gap-keeps-spatial-dims", "The result is (N, C, 1, 1); the contract asks for (N, C): reduce H and W away.", _gap_keepdim, _S, subsection="What GAP computes"),
    Mistake("gap-square-divisor", "The sum is divided by H * H: a feature map has H * W positions, which differ on non-square maps.", _gap_square_divisor, _S, subsection="What GAP computes"),
    Mistake("gap-max-not-mean", "That is global *max* pooling: GAP takes the mean of each feature map.", _gap_max, _S, subsection="GAP versus max pooling"),
)


# --- known mistakes: GAPClassifier --------------------------------------------------------------
def _classifier(forward):
    def build(ref):
        class Wrong(ref.GAPClassifier):
            pass

        Wrong.forward = forward
        return {"GAPClassifier": Wrong}

    return build


CLASSIFIER_MISTAKES = (
    Mistake("classifier-softmax-output", "The forward returns probabilities: it must return the raw logits fc(GAP(features)), no softmax.",
            _classifier(lambda self, f: torch.softmax(self.fc(f.mean(dim=(2, 3))), dim=1)), _S),
    Mistake("classifier-global-max-pool", "The features are max-pooled: the head averages each feature map (GAP) before fc.",
            _classifier(lambda self, f: self.fc(f.amax(dim=(2, 3)))), _S, subsection="GAP versus max pooling"),
    Mistake("classifier-sum-pool", "The features are summed over positions: GAP divides by H * W, which also makes the logits independent of the input size.",
            _classifier(lambda self, f: self.fc(f.sum(dim=(2, 3)))), _S),
    Mistake("classifier-relu-before-fc", "A ReLU was added between the GAP and fc: the contract's head is fc(GAP(features)) only.",
            _classifier(lambda self, f: self.fc(torch.relu(f.mean(dim=(2, 3))))), _S),
)


# --- known mistakes: class_activation_map -------------------------------------------------------
def _cam_normalised(ref):
    def class_activation_map(features, fc_weight, class_idx):
        m = ref.class_activation_map(features, fc_weight, class_idx)
        lo = m.flatten(1).amin(1).view(-1, 1, 1)
        hi = m.flatten(1).amax(1).view(-1, 1, 1)
        return (m - lo) / (hi - lo)

    return {"class_activation_map": class_activation_map}


def _cam_normalised_over_batch(ref):
    def class_activation_map(features, fc_weight, class_idx):
        m = ref.class_activation_map(features, fc_weight, class_idx)
        return (m - m.min()) / (m.max() - m.min())

    return {"class_activation_map": class_activation_map}


def _cam_relu(ref):
    return {"class_activation_map": lambda f, w, k: torch.relu(ref.class_activation_map(f, w, k))}


def _cam_first_class(ref):
    return {"class_activation_map": lambda f, w, k: ref.class_activation_map(f, w, k[:1].expand_as(k))}


def _cam_mean_over_channels(ref):
    return {"class_activation_map": lambda f, w, k: ref.class_activation_map(f, w, k) / f.shape[1]}


def _cam_all_classes_summed(ref):
    return {"class_activation_map": lambda f, w, k: torch.einsum("kc,nchw->nhw", w, f)}


CAM_MISTAKES = (
    Mistake("cam-normalised", "The map is rescaled to [0, 1]: that is only for display; the CAM itself is the raw weighted sum, so that its mean plus the bias is the class score.", _cam_normalised, _S, subsection="Class activation maps"),
    Mistake("cam-normalised-over-batch", "The maps are rescaled to [0, 1] with the minimum and maximum of the whole batch: rescaling is only for display (and would be per image); the CAM itself is the raw weighted sum, so that its mean plus the bias is the class score.", _cam_normalised_over_batch, _S, subsection="Class activation maps"),
    Mistake("cam-relu", "A ReLU was applied (as in Grad-CAM): the CAM of Zhou et al. keeps negative evidence, so that its mean plus the bias is the class score.", _cam_relu, _S, subsection="Class activation maps"),
    Mistake("cam-first-image-class", "Every image uses class_idx[0]: take fc_weight[class_idx[n]] for image n.", _cam_first_class, _S),
    Mistake("cam-mean-over-channels", "The weighted features are averaged over the channels: the CAM is their sum over c.", _cam_mean_over_channels, _S, subsection="Class activation maps"),
    Mistake("cam-all-classes-summed", "The weights of every class are summed: use only the row fc_weight[class_idx[n]] of the requested class.", _cam_all_classes_summed, _S, subsection="Class activation maps"),
)


# --- cases --------------------------------------------------------------------------------------
def _gap_case(g, shape, *, dtype=torch.float32, grad=False):
    n, c, h, w, label = shape
    x = randn(g, n, c, h, w, dtype=dtype)
    return call("global_avg_pool", x, grad=grad, label=f"{label}, x {tuple(x.shape)}, {_dt(dtype)}")


def _gap_forward(g, ref):
    return [_gap_case(g, s) for s in _SHAPES]


def _gap_float64_grads(g, ref):
    return [_gap_case(g, s, dtype=torch.float64, grad=True) for s in _SHAPES]


def _classifier_logits(g, ref):
    cases = []
    # The `module` probe builds float32 modules, so module cases stay float32.
    for c, k, n, h, w in [(8, 5, 2, 6, 6), (3, 10, 1, 4, 7), (16, 2, 3, 3, 3), (1, 4, 2, 5, 2)]:
        state = reference_state(ref, "GAPClassifier", c, k)
        x = randn(g, n, c, h, w)
        cases.append(module_case("GAPClassifier", (c, k), (x,), state, grad=True, trusted=_TRUSTED_GAP,
                                 label=f"GAPClassifier({c}, {k}) with the reference's weights, features {tuple(x.shape)}{_WITH_OUR_GAP}"))
    return cases


def _classifier_sizes(g, ref):
    c, k = 6, 3
    state = reference_state(ref, "GAPClassifier", c, k)
    sizes = [(7, 7), (1, 1), (5, 11), (14, 3), (32, 32)]
    return [module_case("GAPClassifier", (c, k), (randn(g, 2, c, h, w),), state, trusted=_TRUSTED_GAP,
                        label=f"one GAPClassifier({c}, {k}), the same weights, features of size {h}x{w}: the head is invariant to the input size{_WITH_OUR_GAP}")
            for h, w in sizes]


def _classifier_parameters(g, ref):
    return [Case(f"{_PROBES}:probe_parameters", ("GAPClassifier", (c, k)),
                 label=f"parameters of GAPClassifier({c}, {k}): only fc.weight ({k}, {c}) and fc.bias ({k},)")
            for c, k in [(512, 1000), (8, 5), (1, 1), (2048, 10)]]


def _cam_values(g, ref):
    cases = []
    for (n, c, h, w, k), dtype in zip([(2, 8, 7, 7, 5), (1, 3, 4, 9, 10), (3, 16, 1, 5, 4), (4, 2, 6, 3, 3)],
                                      [torch.float32, torch.float64, torch.float32, torch.float64]):
        features = randn(g, n, c, h, w, dtype=dtype)
        fc_weight = randn(g, k, c, dtype=dtype)
        class_idx = torch.randint(0, k, (n,), generator=g)
        cases.append(call("class_activation_map", features, fc_weight, class_idx, grad=True,
                          label=f"features {tuple(features.shape)}, fc_weight {tuple(fc_weight.shape)}, class_idx {class_idx.tolist()}, {_dt(dtype)}"))
    return cases


def _cam_identity(g, ref):
    cases = []
    for (n, c, h, w, k), dtype in zip([(3, 8, 7, 7, 5), (2, 4, 5, 9, 3), (4, 6, 2, 1, 2), (2, 12, 10, 4, 7)],
                                      [torch.float64, torch.float32, torch.float64, torch.float32]):
        head = nn.Linear(c, k).to(dtype)
        features = randn(g, n, c, h, w, dtype=dtype)
        class_idx = torch.randint(0, k, (n,), generator=g)
        cases.append(Case(f"{_PROBES}:probe_cam_identity",
                          (head.weight.detach().clone(), head.bias.detach().clone(), features, class_idx),
                          label=f"GAP + nn.Linear({c}, {k}) head, features {tuple(features.shape)}, class_idx {class_idx.tolist()}, {_dt(dtype)}",
                          assess=_assess_identity))
    return cases


CHECKS = [
    Check("global_avg_pool_forward", "global_avg_pool", 3, _gap_forward, GAP_MISTAKES,
          "(N, C, H, W) -> (N, C) on square, non-square and 1x1 maps", Picture("maps")),
    Check("global_avg_pool_float64_gradients", "global_avg_pool", 3, _gap_float64_grads, GAP_MISTAKES,
          "float64 in, float64 out, and the gradient spread evenly over the H * W positions", Picture("maps")),
    Check("classifier_logits", "GAPClassifier", 3, _classifier_logits, CLASSIFIER_MISTAKES,
          "the logits (and gradients) of fc(GAP(features)) with the reference's weights", Picture("maps")),
    Check("classifier_any_input_size", "GAPClassifier", 2, _classifier_sizes, CLASSIFIER_MISTAKES,
          "one set of weights classifies feature maps of any size, 1x1 included", Picture("maps")),
    Check("classifier_parameters", "GAPClassifier", 1, _classifier_parameters, (),
          "no parameters beyond fc: GAP itself has none", Picture("values")),
    Check("cam_values", "class_activation_map", 3, _cam_values, CAM_MISTAKES,
          "M[n, h, w] = sum_c w[class_idx[n], c] * f[n, c, h, w], gradients included", Picture("maps")),
    Check("cam_mean_is_class_score", "class_activation_map", 3, _cam_identity, CAM_MISTAKES,
          "mean over positions of the CAM + bias = the class score (Zhou et al. 2016)", Picture("values")),
]
