"""The `gap` checks catch wrong global average poolings, classifier heads and CAMs, and name the known mistakes."""

from __future__ import annotations

import pytest
import torch

from conftest import mistakes, statuses, variant
from mistake_matching import audit


_GAP = "    return x.mean(dim=(2, 3))  # (N, C)"
_FWD = "        return self.fc(global_avg_pool(features))  # (N, K)"
_CAM = '    return torch.einsum("nc,nchw->nhw", w, features)  # (N, H, W)'


_CAM_NORMALISED = ('    m = torch.einsum("nc,nchw->nhw", w, features)\n'
                  "    lo, hi = m.flatten(1).amin(1).view(-1, 1, 1), m.flatten(1).amax(1).view(-1, 1, 1)\n"
                  "    return (m - lo) / (hi - lo)")

# GAP and CAM are independent parts (the CAM does not call global_avg_pool), so each wrong
# implementation makes one mistake in each: new GAP body, new CAM body (or None), expected names.
_WRONG = {
    # The notes' misconception: "GAP outputs depth 1, keeping height and width".
    "averages channels (N, 1, H, W); normalised CAM": (
        "    return x.mean(dim=1, keepdim=True)", _CAM_NORMALISED, "gap-averages-channels", "cam-normalised"),
    "averages channels (N, H, W); CAM with ReLU": (
        "    return x.mean(dim=1)", '    return torch.relu(torch.einsum("nc,nchw->nhw", w, features))', "gap-averages-channels-squeezed", "cam-relu"),
    "sums; CAM of the first image's class": (
        "    return x.sum(dim=(2, 3))", '    return torch.einsum("c,nchw->nhw", fc_weight[class_idx[0]], features)', "gap-sum-not-mean", "cam-first-image-class"),
    "keeps (N, C, 1, 1); CAM averaged over channels": (
        "    return x.mean(dim=(2, 3), keepdim=True)", "    return (w[:, :, None, None] * features).mean(dim=1)", "gap-keeps-spatial-dims", "cam-mean-over-channels"),
    "divides by H * H; CAM of all classes": (
        "    return x.sum(dim=(2, 3)) / (x.shape[2] * x.shape[2])", '    return torch.einsum("kc,nchw->nhw", fc_weight, features)', "gap-square-divisor", "cam-all-classes-summed"),
    "global max pooling": ("    return x.amax(dim=(2, 3))", None, "gap-max-not-mean", None),
}


@pytest.mark.parametrize("label", list(_WRONG))
def test_wrong_gap_and_cam_are_named(grade, label):
    gap_body, cam_body, gap_mistake, cam_mistake = _WRONG[label]
    edits = [(_GAP, gap_body)] + ([(_CAM, cam_body)] if cam_body else [])
    result = grade("gap", source=variant("gap", *edits))
    checks = {c["name"]: c for c in result["checks"]}
    for name in ("global_avg_pool_forward", "global_avg_pool_float64_gradients"):
        assert checks[name]["status"] == "failed" and checks[name]["mistake"]["name"] == gap_mistake
    for name in ("cam_values", "cam_mean_is_class_score"):
        if cam_mistake is None:
            assert checks[name]["status"] == "passed"
        else:
            assert checks[name]["status"] == "failed" and checks[name]["mistake"]["name"] == cam_mistake
    if gap_mistake == "gap-square-divisor":  # right on square maps, wrong on the first non-square one
        assert "non-square" in checks["global_avg_pool_forward"]["message"]
    if cam_mistake == "cam-relu":
        message = checks["cam_mean_is_class_score"]["message"]
        assert "class score" in message and "Zhou" in message
    # The classifier calls the student's global_avg_pool, but is judged with the grader's: a wrong
    # GAP costs only its own points.
    assert checks["classifier_logits"]["status"] == checks["classifier_any_input_size"]["status"] == "passed"


@pytest.mark.parametrize("new, mistake", [
    ("        return torch.softmax(self.fc(global_avg_pool(features)), dim=1)", "classifier-softmax-output"),
    ("        return self.fc(torch.relu(global_avg_pool(features)))", "classifier-relu-before-fc"),
    ("        return self.fc(features.sum(dim=(2, 3)))", "classifier-sum-pool"),
])
def test_wrong_classifier_is_named(grade, new, mistake):
    result = grade("gap", source=variant("gap", (_FWD, new)))
    st = statuses(result)
    assert st["classifier_logits"] == st["classifier_any_input_size"] == "failed"
    assert st["global_avg_pool_forward"] == "passed"
    assert mistake in mistakes(result)


# Normalisations copied from CAM visualisation code: per image with an epsilon (a loop, as in
# Zhou et al.'s demo), and over the whole batch at once.
_CAM_EPS_LOOP = ("    maps = []\n    for i in range(features.shape[0]):\n"
                 '        cam = torch.einsum("c,chw->hw", w[i], features[i])\n'
                 "        cam = cam - cam.min()\n        maps.append(cam / (cam.max() + 1e-8))\n"
                 "    return torch.stack(maps)")
_CAM_BATCH = ('    m = torch.einsum("nc,nchw->nhw", w, features)\n'
              "    return (m - m.min()) / (m.max() - m.min())")


@pytest.mark.parametrize("body, mistake", [(_CAM_EPS_LOOP, "cam-normalised"), (_CAM_BATCH, "cam-normalised-over-batch")],
                         ids=["per image, with an epsilon", "over the batch"])
def test_normalised_cams_are_named_in_both_cam_checks(grade, body, mistake):
    result = grade("gap", source=variant("gap", (_CAM, body)))
    checks = {c["name"]: c for c in result["checks"]}
    for name in ("cam_values", "cam_mean_is_class_score"):
        assert checks[name]["status"] == "failed" and (checks[name]["mistake"] or {}).get("name") == mistake, (name, checks[name])


def test_classifier_that_only_accepts_one_size_fails_the_size_check(grade):
    src = variant("gap", (_FWD, "        return self.fc(global_avg_pool(features[..., :6, :6]))"))
    result = grade("gap", source=src)
    assert statuses(result)["classifier_any_input_size"] == "failed"


def test_classifier_with_wrong_layer_name_gets_the_keys(grade):
    src = variant("gap", ("        self.fc = nn.Linear(in_channels, num_classes)",
                          "        self.linear = nn.Linear(in_channels, num_classes)"),
                  ("return self.fc(global_avg_pool", "return self.linear(global_avg_pool"))
    result = grade("gap", source=src)
    check = next(c for c in result["checks"] if c["name"] == "classifier_logits")
    assert check["status"] == "failed"
    assert "missing keys: fc.weight" in check["message"] and "unexpected keys: linear.weight" in check["message"]
    assert statuses(result)["classifier_parameters"] == "failed"


def test_classifier_with_extra_parameters_fails(grade):
    src = variant("gap", ("        self.fc = nn.Linear(in_channels, num_classes)",
                          "        self.fc = nn.Linear(in_channels, num_classes)\n        self.scale = nn.Parameter(torch.ones(1))"))
    result = grade("gap", source=src)
    st = statuses(result)
    assert st["classifier_parameters"] == "failed"
    assert "scale" in next(c for c in result["checks"] if c["name"] == "classifier_logits")["message"]


def test_gap_that_cuts_the_gradient_fails_only_the_gradient_check(grade):
    result = grade("gap", source=variant("gap", (_GAP, "    return x.mean(dim=(2, 3)).detach()")))
    st = statuses(result)
    assert st["global_avg_pool_forward"] == "passed"
    assert st["global_avg_pool_float64_gradients"] == "failed"


def test_builtin_adaptive_pool_is_forbidden(grade):
    src = variant("gap", ("import torch\n", "import torch\nimport torch.nn.functional as F\n"),
                  (_GAP, "    return F.adaptive_avg_pool2d(x, 1).flatten(1)"))
    result = grade("gap", source=src)
    assert statuses(result)["global_avg_pool_forward"] == "forbidden"
    assert any("adaptive_avg_pool2d" in n for n in result["notices"])


def test_reference_cam_mean_plus_bias_is_the_classifier_score():
    from grader.engine.oracles import load_reference

    ref = load_reference("gap")
    torch.manual_seed(0)
    net = ref.GAPClassifier(6, 4).double()
    features = torch.randn(3, 6, 5, 7, dtype=torch.float64)
    k = torch.tensor([0, 3, 2])
    cam = ref.class_activation_map(features, net.fc.weight, k)
    score = net(features)[torch.arange(3), k]
    torch.testing.assert_close(cam.mean(dim=(1, 2)) + net.fc.bias[k], score)


def test_mistakes_are_distinguishable():
    assert audit("gap") == []
