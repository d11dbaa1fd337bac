"""Module exercises receive the reference's weights through state_dict; a key or shape
mismatch is reported with the missing, unexpected and mis-shaped keys."""

from __future__ import annotations

import torch

from grader.checks import module_case, reference_state
from grader.engine.judge import judge
from grader.runner import probes
from grader.runner.handle import Outcome


class _Ref:
    class Tiny(torch.nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(c, 4, 3)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.conv(x).mean(dim=(2, 3)))


class _Renamed:
    class Tiny(torch.nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(c, 4, 3)  # wrong name
            self.head = torch.nn.Linear(4, 3)  # wrong shape

        def forward(self, x):
            return self.head(self.conv1(x).mean(dim=(2, 3)))


class _Student:
    class Tiny(_Ref.Tiny):
        pass


def _case(grad=True):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    return module_case("Tiny", (3,), (x,), reference_state(_Ref, "Tiny", 3), grad=grad, label="tiny")


def test_matching_module_passes_with_gradients():
    case = _case()
    expected = probes.sanitize(probes.module(_Ref, *case.args, **case.kwargs))
    got = probes.sanitize(probes.module(_Student, *case.args, **case.kwargs))
    assert "param:conv.weight" in expected["grads"]
    status, msg = judge(case, Outcome("reply", {"kind": "ok", "value": got}), expected, timeout=1, device="cpu", arg_names=[])
    assert (status, msg) == ("passed", "")


def test_key_and_shape_mismatch_lists_keys_with_expected_shapes():
    case = _case()
    expected = probes.sanitize(probes.module(_Ref, *case.args, **case.kwargs))
    got = probes.sanitize(probes.module(_Renamed, *case.args, **case.kwargs))
    assert "state_dict_shapes" in got
    status, msg = judge(case, Outcome("reply", {"kind": "ok", "value": got}), expected, timeout=1, device="cpu", arg_names=[])
    assert status == "failed"
    assert "missing keys: conv.weight (4, 3, 3, 3), conv.bias (4,)" in msg
    assert "unexpected keys: conv1.weight (4, 3, 3, 3), conv1.bias (4,)" in msg
    assert "head.weight is (3, 4), expected (2, 4)" in msg


def test_wrong_weights_use_is_a_value_failure():
    class Wrong:
        class Tiny(_Ref.Tiny):
            def forward(self, x):
                return self.head(self.conv(x).amax(dim=(2, 3)))

    case = _case(grad=False)
    expected = probes.sanitize(probes.module(_Ref, *case.args, **case.kwargs))
    got = probes.sanitize(probes.module(Wrong, *case.args, **case.kwargs))
    status, msg = judge(case, Outcome("reply", {"kind": "ok", "value": got}), expected, timeout=1, device="cpu", arg_names=[])
    assert status == "failed" and "output" in msg and "elements differ" in msg
