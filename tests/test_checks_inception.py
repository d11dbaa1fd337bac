"""The `inception` checks catch wrong modules and parameter counts, and name the known mistakes."""

from __future__ import annotations

import pytest
from torch import nn

from conftest import ROOT, statuses, variant
from mistake_matching import audit


_CAT = "        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]"
_RED3 = "            nn.Conv2d(in_channels, ch3x3red, 1), nn.ReLU(),"
_RED5 = "            nn.Conv2d(in_channels, ch5x5red, 1), nn.ReLU(),"
_END1 = "nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())"
_END2 = "            nn.Conv2d(ch3x3red, ch3x3, 3, padding=1), nn.ReLU(),"
_END3 = "            nn.Conv2d(ch5x5red, ch5x5, 5, padding=2), nn.ReLU(),"
_END4 = "            nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU(),"
_B2 = "    branch2 = (ch3x3red * in_channels + ch3x3red) + (ch3x3 * ch3x3red * 9 + ch3x3)"
_B3 = "    branch3 = (ch5x5red * in_channels + ch5x5red) + (ch5x5 * ch5x5red * 25 + ch5x5)"


def _ends_without_relu():
    return [(old, old.replace("nn.ReLU()", "nn.Identity()")) for old in (_END1, _END2, _END3, _END4)]


_P_NO_BIAS = [("    branch1 = ch1x1 * in_channels + ch1x1", "    branch1 = ch1x1 * in_channels"),
              (_B2, "    branch2 = ch3x3red * in_channels + ch3x3 * ch3x3red * 9"),
              (_B3, "    branch3 = ch5x5red * in_channels + ch5x5 * ch5x5red * 25"),
              ("    branch4 = pool_proj * in_channels + pool_proj", "    branch4 = pool_proj * in_channels")]
_P_ON_INPUT = [(_B2, "    branch2 = (ch3x3red * in_channels + ch3x3red) + (ch3x3 * in_channels * 9 + ch3x3)"),
               (_B3, "    branch3 = (ch5x5red * in_channels + ch5x5red) + (ch5x5 * in_channels * 25 + ch5x5)")]
_P_NOT_SQUARED = [(_B2, _B2.replace("* 9", "* 3")), (_B3, _B3.replace("* 25", "* 5"))]
_P_NO_PROJ = [("    branch4 = pool_proj * in_channels + pool_proj", "    branch4 = 0")]
_N_NO_BIAS = [("    branch1 = ch1x1 * in_channels + ch1x1\n    branch2 = ch3x3 * in_channels * 9 + ch3x3\n    branch3 = ch5x5 * in_channels * 25 + ch5x5",
               "    branch1 = ch1x1 * in_channels\n    branch2 = ch3x3 * in_channels * 9\n    branch3 = ch5x5 * in_channels * 25")]
_N_NOT_SQUARED = [("    branch2 = ch3x3 * in_channels * 9 + ch3x3\n    branch3 = ch5x5 * in_channels * 25 + ch5x5",
                   "    branch2 = ch3x3 * in_channels * 3 + ch3x3\n    branch3 = ch5x5 * in_channels * 5 + ch5x5")]
_N_CHAINED = [("    branch2 = ch3x3 * in_channels * 9 + ch3x3\n    branch3 = ch5x5 * in_channels * 25 + ch5x5",
               "    branch2 = ch3x3 * ch1x1 * 9 + ch3x3\n    branch3 = ch5x5 * ch3x3 * 25 + ch5x5")]
_N_NO_1X1 = [("    return branch1 + branch2 + branch3\n", "    return branch2 + branch3\n")]

# The module, its count and the naive count are independent parts, so each wrong implementation
# makes one mistake in each: edits, then the names expected for (module, inception_params, naive).
_WRONG = {
    "branches reversed; biases not counted, in either count": (
        # The naive edit first: the two functions share the line `branch1 = ch1x1 * in_channels + ch1x1`.
        [(_CAT, "        branches = [self.branch4(x), self.branch3(x), self.branch2(x), self.branch1(x)]")] + _N_NO_BIAS + _P_NO_BIAS,
        ("branches-concatenated-in-wrong-order", "biases-not-counted", "naive-biases-not-counted")),
    "no ReLU after the reductions; big convolutions counted on the input; k instead of k*k": (
        [(_RED3, _RED3.replace("nn.ReLU()", "nn.Identity()")), (_RED5, _RED5.replace("nn.ReLU()", "nn.Identity()"))] + _P_ON_INPUT + _N_NOT_SQUARED,
        ("relu-missing-after-reductions", "big-convs-on-the-input", "naive-kernel-area-not-squared")),
    "no ReLU at the branch ends; k instead of k*k; naive 1x1 branch dropped": (
        _ends_without_relu() + _P_NOT_SQUARED + _N_NO_1X1,
        ("relu-missing-at-branch-ends", "kernel-area-not-squared", "naive-1x1-branch-dropped")),
    "average-pool branch; pool projection not counted; naive branches chained": (
        [("nn.MaxPool2d(3, stride=1, padding=1)", "nn.AvgPool2d(3, stride=1, padding=1)")] + _P_NO_PROJ + _N_CHAINED,
        ("pool-branch-average-pool", "pool-projection-not-counted", "naive-branches-chained")),
}


@pytest.mark.parametrize("label", list(_WRONG))
def test_wrong_modules_and_counts_are_named(grade, label):
    edits, (module_mistake, params_mistake, naive_mistake) = _WRONG[label]
    result = grade("inception", source=variant("inception", *edits))
    checks = {c["name"]: c for c in result["checks"]}
    expected = {"module_forward": module_mistake, "module_gradients": module_mistake,
                "params_values": params_mistake, "params_other_configs": params_mistake,
                "naive_params_values": naive_mistake}
    for check, mistake in expected.items():
        if mistake is None:
            assert checks[check]["status"] == "passed", check
        else:
            assert checks[check]["status"] == "failed", (check, checks[check]["message"])
            assert checks[check]["mistake"]["name"] == mistake, (check, checks[check]["mistake"])
    assert checks["module_output_shape"]["status"] == "passed"  # every branch keeps H, W and its channels
    assert checks["module_parameter_count"]["status"] == "passed"


def test_wrong_padding_breaks_the_concatenation(grade):
    result = grade("inception", source=variant("inception", (_END3, _END3.replace("padding=2", "padding=1"))))
    st = statuses(result)
    assert st["module_forward"] == "error" and st["module_output_shape"] == "error"
    assert "Sizes of tensors must match" in next(c for c in result["checks"] if c["name"] == "module_forward")["message"]


def test_convolutions_without_bias_get_the_keys_listed(grade):
    src = variant("inception", ("        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU())",
                                "        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1, bias=False), nn.ReLU())"))
    result = grade("inception", source=src)
    forward = next(c for c in result["checks"] if c["name"] == "module_forward")
    assert forward["status"] == "failed"
    assert "missing keys: branch1.0.bias" in forward["message"]
    st = statuses(result)
    assert st["module_parameter_count"] == "failed"
    assert st["params_values"] == st["params_other_configs"] == "passed"  # the count is judged on its own


# d2l's current GoogLeNet builds its Inception block from nn.LazyConv2d, adapted here to the contract.
_D2L_LAZY = """from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class InceptionModule(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = nn.Sequential(nn.LazyConv2d(ch1x1, kernel_size=1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.LazyConv2d(ch3x3red, kernel_size=1), nn.ReLU(),
                                     nn.LazyConv2d(ch3x3, kernel_size=3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.LazyConv2d(ch5x5red, kernel_size=1), nn.ReLU(),
                                     nn.LazyConv2d(ch5x5, kernel_size=5, padding=2), nn.ReLU())
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                     nn.LazyConv2d(pool_proj, kernel_size=1), nn.ReLU())

    def forward(self, x):
        b1, b2, b3, b4 = self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)
        return torch.cat((b1, b2, b3, b4), dim=1)
"""


def test_lazy_convolutions_get_full_marks(grade):
    reference = (ROOT / "solutions" / "inception.py").read_text(encoding="utf-8")
    counts = reference[reference.index("def _check_channels"):reference.index("class InceptionModule")]
    counts += reference[reference.index("def inception_params"):]
    result = grade("inception", source=_D2L_LAZY + "\n\n" + counts)
    assert result["score"] == result["max_score"], {c["name"]: c["message"] for c in result["checks"] if c["status"] != "passed"}


def test_correct_count_is_not_judged_against_a_different_module(grade):
    # A module with an extra 1x1 convolution (another design) costs the module's points only:
    # inception_params is compared with the contract's figures, never with the student's module.
    src = variant("inception", (_END1, "nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU(), nn.Conv2d(ch1x1, ch1x1, 1), nn.ReLU())"))
    result = grade("inception", source=src)
    st = statuses(result)
    assert st["module_forward"] == st["module_parameter_count"] == "failed"
    assert st["params_values"] == st["params_other_configs"] == st["naive_params_values"] == "passed"


def test_renamed_branches_get_the_keys_listed(grade):
    src = variant("inception", ("self.branch4 = ", "self.pool_branch = "), ("self.branch4(x)", "self.pool_branch(x)"))
    result = grade("inception", source=src)
    message = next(c for c in result["checks"] if c["name"] == "module_forward")["message"]
    assert "missing keys: branch4.1.weight" in message and "unexpected keys: pool_branch.1.weight" in message


def test_reference_counts_match_the_modules_they_describe():
    from grader.engine.oracles import load_reference

    ref = load_reference("inception")
    assert ref.inception_params(192, 64, 96, 128, 16, 32, 32) == 163_696
    assert ref.naive_inception_params(192, 64, 128, 32) == 387_296
    naive = nn.ModuleList([nn.Conv2d(192, 64, 1), nn.Conv2d(192, 128, 3, padding=1), nn.Conv2d(192, 32, 5, padding=2)])
    assert sum(p.numel() for p in naive.parameters()) == 387_296
    for cfg in [(3, 5, 2, 7, 4, 1, 6), (17, 1, 9, 2, 30, 4, 11)]:
        assert ref.inception_params(*cfg) == sum(p.numel() for p in ref.InceptionModule(*cfg).parameters())


def test_mistakes_are_distinguishable():
    assert audit("inception") == []
