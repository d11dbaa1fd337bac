"""The static scan of forbidden names resolves aliases, from-imports and constant getattr."""

from __future__ import annotations

from grader.catalog import get_exercise
from grader.runner.guard import static_scan

SRC = '''import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.functional import max_pool2d as mp
def f(x):
    a = F.conv2d(x, x)
    b = getattr(F, "conv2d")
    c = nn.Conv2d(1, 1, 1)
    d = torch.conv2d
    ok = x.unfold(2, 3, 1)
    return mp(x, 2)
'''


def test_conv_findings():
    found = [(f.line, f.name) for f in static_scan(SRC, get_exercise("conv").forbidden)]
    assert found == [(6, "torch.nn.functional.conv2d"), (7, "torch.nn.functional.conv2d"),
                     (8, "torch.nn.Conv2d"), (9, "torch.conv2d")]


def test_pooling_findings_include_the_aliased_import():
    found = {(f.line, f.name) for f in static_scan(SRC, get_exercise("pooling").forbidden)}
    assert found == {(4, "torch.nn.functional.max_pool2d"), (11, "torch.nn.functional.max_pool2d")}


def test_clean_reference_and_syntax_errors_have_no_findings():
    from conftest import reference_source

    assert static_scan(reference_source("conv"), get_exercise("conv").forbidden) == []
    assert static_scan("def f(:\n", get_exercise("conv").forbidden) == []
