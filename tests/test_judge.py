"""`grader.engine.judge`: one case's verdict, and a known mistake named only when it explains every
case of the check (issue 13, item 12)."""

from __future__ import annotations

import torch

from grader.engine.judge import CaseRecord, judge, name_mistake
from grader.engine.spec import Case
from grader.runner.handle import Outcome
from grader.runner.probes import sanitize

CASE = Case("call", ("f", torch.zeros(2)), label="x")
RAISES = Case("call", ("f", torch.zeros(2)), raises=("ValueError",))


def _value(*values: float) -> dict:
    return sanitize({"out": torch.tensor(values)})


def _ok(value) -> Outcome:
    return Outcome("reply", reply={"kind": "ok", "value": value})


def _raised(etype: str = "ValueError", phase: str = "run") -> Outcome:
    return Outcome("reply", reply={"kind": "exception", "phase": phase, "type": etype,
                                   "mro": [etype, "Exception", "BaseException", "object"],
                                   "message": "boom", "traceback": "Traceback: boom"})


def _record(index: int, got, expected, case: Case = CASE) -> CaseRecord:
    outcome = got if isinstance(got, Outcome) else _ok(got)
    status, message = judge(case, outcome, expected, timeout=1.0, device="cpu", arg_names=[])
    return CaseRecord(index, case, outcome, expected, status, message)


def _variants(table: dict[int, dict[str, object]]):
    """variant_results for name_mistake: {case index: {mistake: value}}, recording what was asked."""
    asked: list[tuple[int, tuple[str, ...]]] = []

    def results(record: CaseRecord, names: list[str]) -> dict:
        asked.append((record.index, tuple(names)))
        return {n: table[record.index][n] for n in names}

    return results, asked


def test_a_mistake_that_explains_every_case_is_named():
    records = [_record(0, _value(1, 2), _value(1, 2)), _record(1, _value(5, 5), _value(3, 4))]
    assert [r.status for r in records] == ["passed", "failed"]
    results, asked = _variants({0: {"m": _value(1, 2)}, 1: {"m": _value(5, 5)}})
    assert name_mistake(records, ["m"], results, "cpu") == "m"
    assert asked[0][0] == 1  # the failed case is looked at first


def test_a_mistake_that_would_have_failed_a_passed_case_is_not_named():
    # The variant reproduces the failure, but it gives a wrong answer where the student was right:
    # the student did something else (the +1-pixel NMS named as `>=`, in issue 13).
    records = [_record(0, _value(1, 2), _value(1, 2)), _record(1, _value(5, 5), _value(3, 4))]
    results, _ = _variants({0: {"m": _value(9, 9)}, 1: {"m": _value(5, 5)}})
    assert name_mistake(records, ["m"], results, "cpu") is None


def test_a_mistake_must_match_every_failed_case():
    records = [_record(0, _value(5, 5), _value(3, 4)), _record(1, _value(7, 7), _value(3, 4))]
    results, _ = _variants({0: {"m": _value(5, 5)}, 1: {"m": _value(6, 6)}})
    assert name_mistake(records, ["m"], results, "cpu") is None


def test_two_mistakes_that_both_explain_everything_name_neither():
    records = [_record(0, _value(5, 5), _value(3, 4))]
    results, _ = _variants({0: {"a": _value(5, 5), "b": _value(5, 5), "c": _value(0, 0)}})
    assert name_mistake(records, ["a", "b", "c"], results, "cpu") is None
    results, _ = _variants({0: {"a": _value(5, 5), "b": _value(4, 4), "c": _value(0, 0)}})
    assert name_mistake(records, ["a", "b", "c"], results, "cpu") == "a"


def test_a_case_that_raised_neither_confirms_nor_refutes_a_mistake():
    # The student forgot the +1 of a size formula and, on the smallest input, their own check of
    # the result raises where the variant returns 0: the mistake is still the cause.
    records = [_record(0, _value(5, 5), _value(3, 4)), _record(1, _raised(), _value(3, 4))]
    assert records[1].status == "error"
    raising, asked = _variants({0: {"m": _value(5, 5)}, 1: {"m": None}})
    assert name_mistake(records, ["m"], raising, "cpu") == "m" and [i for i, _ in asked] == [0]
    returning, _ = _variants({0: {"m": _value(5, 5)}, 1: {"m": _value(3, 4)}})
    assert name_mistake(records, ["m"], returning, "cpu") == "m"
    only_raised = [_record(0, _raised(), _value(3, 4)), _record(1, _value(3, 4), _value(3, 4))]
    assert name_mistake(only_raised, ["m"], returning, "cpu") is None  # no failed case: nothing to match


def test_a_timeout_in_the_check_names_nothing():
    records = [_record(0, _value(5, 5), _value(3, 4)), _record(1, Outcome("timeout"), _value(3, 4))]
    results, asked = _variants({0: {"m": _value(5, 5)}, 1: {"m": _value(5, 5)}})
    assert name_mistake(records, ["m"], results, "cpu") is None and asked == []


def test_a_variant_passes_a_raises_case_only_by_raising():
    records = [_record(0, _raised(), None, RAISES), _record(1, _value(5, 5), _value(3, 4))]
    assert records[0].status == "passed"
    raising, _ = _variants({0: {"m": None}, 1: {"m": _value(5, 5)}})
    assert name_mistake(records, ["m"], raising, "cpu") == "m"
    silent, _ = _variants({0: {"m": _value(0, 0)}, 1: {"m": _value(5, 5)}})
    assert name_mistake(records, ["m"], silent, "cpu") is None


def test_a_module_that_fails_to_import_passes_no_raises_case():
    # ValueError at import time is not the ValueError the case asks for.
    status, message = judge(RAISES, _raised("ValueError", phase="import"), None, timeout=1.0, device="cpu", arg_names=[])
    assert status == "error" and message.startswith("importing your module failed")


def test_a_mistake_written_another_way_is_named_within_float32_tolerances():
    # The student's variant divides by (max + 1e-8) where the known mistake divides by max: in
    # float64 the two differ by ~1e-7, beyond float64's tolerance but still the same mistake.
    expected = sanitize({"out": torch.tensor([1.0, 2.0], dtype=torch.float64)})
    got = sanitize({"out": torch.tensor([0.5, 1.0 - 4e-7], dtype=torch.float64)})
    records = [_record(0, got, expected)]
    close, _ = _variants({0: {"m": sanitize({"out": torch.tensor([0.5, 1.0], dtype=torch.float64)})}})
    assert name_mistake(records, ["m"], close, "cpu") == "m"
    other, _ = _variants({0: {"m": sanitize({"out": torch.tensor([0.5, 0.99], dtype=torch.float64)})}})
    assert name_mistake(records, ["m"], other, "cpu") is None
