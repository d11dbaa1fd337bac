"""The static scan of forbidden names resolves aliases, from-imports and constant getattr; the
run-time guard refuses operators in the dispatcher and gives them back."""

from __future__ import annotations

import pytest

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


def test_refused_operators_come_back_when_another_set_is_refused():
    import torch
    import torch.nn.functional as F

    from grader.runner.guard import ForbiddenCall, RuntimeGuard

    guard = RuntimeGuard()
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    expected = F.conv2d(x, w)
    guard.activate((), get_exercise("conv").forbidden_ops)
    try:
        with pytest.raises(ForbiddenCall) as refused:
            F.conv2d(x, w)
        assert refused.value.name.startswith("aten::conv")  # aten::conv2d itself, before it decomposes
        guard.activate((), get_exercise("pooling").forbidden_ops)
        assert torch.equal(F.conv2d(x, w), expected)
        with pytest.raises(ForbiddenCall):
            F.max_pool2d(x, 2)
    finally:
        guard.activate((), ())
    assert torch.equal(F.max_pool2d(x, 2), x.unfold(2, 2, 2).unfold(3, 2, 2).amax(dim=(-2, -1)))


def test_an_operator_registered_after_the_refusal_is_watched_by_the_dispatch_mode():
    """As torchvision's `nms` when the student imports torchvision: the dispatcher had no kernel of
    it to refuse when the request began."""
    import torch

    from grader.runner.guard import ForbiddenCall, RuntimeGuard

    guard = RuntimeGuard()
    guard.activate((), {"late_op"})
    library = torch.library.Library("cnn_grader_guard_test", "DEF")
    try:
        library.define("late_op(Tensor x) -> Tensor")
        library.impl("late_op", lambda x: x * 2, "CompositeExplicitAutograd")
        with guard.dispatch_mode(), pytest.raises(ForbiddenCall) as refused:
            torch.ops.cnn_grader_guard_test.late_op(torch.ones(2))
        assert refused.value.name.startswith("cnn_grader_guard_test::late_op")
        assert guard.hits and torch.equal(torch.ops.cnn_grader_guard_test.late_op(torch.ones(2)), torch.full((2,), 2.0))
    finally:
        library._destroy()
        guard.activate((), ())


def test_an_operator_whose_kernels_cannot_be_refused_is_watched_by_the_dispatch_mode(monkeypatch):
    """A torch whose dispatcher lists a kernel at a key it cannot register for: the operator is
    left to the mode, and the call is still caught."""
    import torch
    import torch.nn.functional as F

    from grader.runner import guard as guard_module

    monkeypatch.setattr(guard_module, "_kernel_keys", lambda qualified: ["NoSuchDispatchKey"])
    guard = guard_module.RuntimeGuard()
    guard.activate((), {"max_pool2d_with_indices"})
    try:
        assert guard._watched == {"max_pool2d_with_indices"}
        x = torch.randn(1, 1, 4, 4)
        F.max_pool2d(x, 2, return_indices=True)  # not refused outside the mode: nothing could be registered
        with guard.dispatch_mode(), pytest.raises(guard_module.ForbiddenCall) as refused:
            F.max_pool2d(x, 2, return_indices=True)
        assert refused.value.name.startswith("aten::max_pool2d_with_indices")
    finally:
        guard.activate((), ())


def test_a_pattern_refuses_every_operator_it_matches_and_watches_none():
    import torch
    import torch.nn.functional as F

    from grader.runner.guard import ForbiddenCall, RuntimeGuard

    guard = RuntimeGuard()
    guard.activate((), {"*avg_pool*", "*no_such_operator_family*", "no_such_operator"})
    x = torch.randn(1, 2, 4, 4, 4)
    try:
        assert guard._watched == {"no_such_operator"}  # a name it may hold later; a pattern refuses what it matches now
        for call in (lambda: F.avg_pool3d(x, 2), lambda: torch.ops.aten.adaptive_avg_pool1d(x[0, 0], [1]),
                     lambda: F.avg_pool1d(x[0], 2)):
            with pytest.raises(ForbiddenCall) as refused:
                call()
            assert "avg_pool" in refused.value.name
        assert torch.equal(F.max_pool3d(x, 4), x.amax(dim=(2, 3, 4), keepdim=True))  # not matched: not refused
    finally:
        guard.activate((), ())


def test_torchs_python_implementations_are_refused_with_their_operator_and_given_back():
    """The decomposition and the helper only it and its kin use are refused; a helper that other
    operators' implementations share is not."""
    import torch
    import torch._decomp.decompositions as decomp

    from grader.runner.guard import ForbiddenCall, RuntimeGuard

    x = torch.randn(1, 2, 6, 6)
    expected = decomp.max_pool2d_with_indices(x, [2, 2])[0]
    shared = decomp._unsqueeze_to_dim.__code__  # used by adaptive_avg_pool2d and others
    guard = RuntimeGuard()
    guard.activate((), {"*pool[0-9]d*"})
    try:
        for call in (lambda: decomp.max_pool2d_with_indices(x, [2, 2]),
                     lambda: decomp._max_pool_nd_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1], False, 2)):
            with pytest.raises(ForbiddenCall) as refused:
                call()
            assert refused.value.name.startswith("torch._decomp.decompositions.")
        assert decomp._unsqueeze_to_dim.__code__ is shared
    finally:
        guard.activate((), ())
    assert torch.equal(decomp.max_pool2d_with_indices(x, [2, 2])[0], expected)


def test_an_operator_named_with_its_namespace_is_refused_before_its_library_defines_it():
    """As torchvision's `nms` when the catalogue says `torchvision::nms`: no dispatch mode, and the
    kernel its library registers later never runs, in inference mode either."""
    import torch

    from grader.runner.guard import ForbiddenCall, RuntimeGuard

    guard = RuntimeGuard()
    guard.activate((), {"cnn_grader_guard_later::late_op"})
    library = torch.library.Library("cnn_grader_guard_later", "DEF")
    try:
        assert not guard._watched
        library.define("late_op(Tensor x) -> Tensor")
        library.impl("late_op", lambda x: x * 2, "CPU")
        for context in (torch.enable_grad, torch.inference_mode):
            with context(), pytest.raises(ForbiddenCall) as refused:
                torch.ops.cnn_grader_guard_later.late_op(torch.ones(2))
            assert refused.value.name.startswith("cnn_grader_guard_later::late_op")
        guard.activate((), ())
        assert torch.equal(torch.ops.cnn_grader_guard_later.late_op(torch.ones(2)), torch.full((2,), 2.0))
    finally:
        guard.activate((), ())
        library._destroy()


def test_a_pattern_whose_operators_cannot_be_refused_is_watched_by_the_dispatch_mode(monkeypatch):
    """The fallback by pattern: each operator the pattern matches and the dispatcher did not take
    the refusal of is watched, under its own name."""
    import torch
    import torch.nn.functional as F

    from grader.runner import guard as guard_module

    monkeypatch.setattr(guard_module, "_kernel_keys", lambda qualified: ["NoSuchDispatchKey"])
    guard = guard_module.RuntimeGuard()
    guard.activate((), {"*pool[0-9]d*"})
    try:
        assert "max_pool2d_with_indices" in guard._watched
        with guard.dispatch_mode(), pytest.raises(guard_module.ForbiddenCall) as refused:
            F.max_pool2d(torch.randn(1, 1, 4, 4), 2, return_indices=True)
        assert "max_pool2d" in refused.value.name
    finally:
        guard.activate((), ())


def test_without_a_readable_dispatcher_the_mode_watches_every_entry_by_name_or_pattern(monkeypatch):
    import torch
    import torch.nn.functional as F

    from grader.runner import guard as guard_module

    monkeypatch.setattr(guard_module, "_dispatcher_readable", lambda: False)
    guard = guard_module.RuntimeGuard()
    guard.activate((), {"*avg_pool*", "torchvision::nms"})
    try:
        assert guard._watched == {"*avg_pool*", "nms"} and not guard._libraries
        F.avg_pool2d(torch.randn(1, 1, 4, 4), 2)  # nothing registered: refused only inside the mode
        with guard.dispatch_mode(), pytest.raises(guard_module.ForbiddenCall) as refused:
            F.avg_pool2d(torch.randn(1, 1, 4, 4), 2)
        assert "avg_pool2d" in refused.value.name
    finally:
        guard.activate((), ())


def test_every_forbidden_operator_of_the_catalogue_names_operators_of_this_torch():
    """A misspelt name or pattern would refuse nothing; one qualified with a namespace belongs to a
    library the student may load later (torchvision), so it need not be here."""
    from grader.catalog import load_catalog
    from grader.runner.guard import _is_pattern, _matching, overloads_by_name

    known = overloads_by_name()
    for exercise in load_catalog():
        for entry in exercise.forbidden_ops:
            if "::" in entry:
                continue
            found = _matching(frozenset({entry})) if _is_pattern(entry) else {entry} & set(known)
            assert found, f"{exercise.name}: forbidden_ops entry {entry!r} names no operator of this torch"
