"""One case's verdict, and which known mistake (if any) explains a failed check.

`judge` turns what the worker sent back for one case into a status and a message, comparing the
returned data with the expected value in the grader's process (`compare` says what differed); the
worker's own words never decide. Each graded case is kept as a `CaseRecord`, so that the steps
after a failed check (`name_mistake` here, and a diagnosis of the pattern across cases) see every
case's inputs, outcome, expected value and verdict.

`name_mistake` names a known mistake only when it explains the whole check: on every case the
student ran, the mistake variant gives the student's result where the student failed and passes
where the student passed (a case where the student's code raised says nothing either way). When
no variant, or more than one, does that, none is named.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from grader.engine.compare import TOLERANCES, compare, describe, pretty_where
from grader.engine.spec import Case
from grader.runner import probes
from grader.runner.handle import Outcome

_MATCHED = ("passed", "failed", "error")  # the statuses of a check whose mistake can be named
MATCH_RTOL, MATCH_ATOL = TOLERANCES[torch.float32]  # the least tolerance of matching a mistake


@dataclass(frozen=True)
class CaseRecord:
    """One case of a check as graded: its inputs, the worker's outcome, the expected value and the verdict."""

    index: int  # the case's position in its check
    case: Case
    outcome: Outcome
    expected: Any  # the reference's sanitized result (None for a case that must raise)
    status: str  # a status of `engine.results.STATUSES`
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def got(self) -> Any:
        """The student's sanitized result, or None when the case did not return one."""
        reply = self.outcome.reply or {}
        return reply.get("value") if reply.get("kind") == "ok" else None


def arg_names(reference: Any, case: Case) -> list[str]:
    """The parameter names of the function a "call" case calls (for messages); [] otherwise."""
    if case.probe != "call" or not case.args:
        return []
    try:
        return list(inspect.signature(getattr(reference, case.args[0])).parameters)
    except (AttributeError, TypeError, ValueError):
        return []


def _state_dict_message(got_shapes: dict[str, list[int]], expected: dict[str, Any]) -> str:
    exp_shapes = {k: v["__shape__"] for k, v in expected.items()}
    missing = [k for k in exp_shapes if k not in got_shapes]
    unexpected = [k for k in got_shapes if k not in exp_shapes]
    misshaped = [k for k in exp_shapes if k in got_shapes and list(got_shapes[k]) != list(exp_shapes[k])]
    lines = ["your module's parameters do not match the contract's layer names and shapes "
             "(the stub's docstrings; docs/EXERCISES.md in the course):"]
    if missing:
        lines.append("  missing keys: " + ", ".join(f"{k} {tuple(exp_shapes[k])}" for k in missing))
    if unexpected:
        lines.append("  unexpected keys: " + ", ".join(f"{k} {tuple(got_shapes[k])}" for k in unexpected))
    if misshaped:
        lines.append("  wrong shapes: " + ", ".join(f"{k} is {tuple(got_shapes[k])}, expected {tuple(exp_shapes[k])}" for k in misshaped))
    return "\n".join(lines)


def _state_dict_shapes(case: Case) -> dict[str, Any] | None:
    sd = case.kwargs.get("state_dict") if case.probe == "module" else None
    if sd is None:
        return None
    return {k: {"__shape__": list(v.shape)} for k, v in sd.items()}


def without_inputs(value: Any) -> Any:
    """A probe's result without the inputs it echoes back (`args_after`), for comparisons and diagnoses."""
    return {k: v for k, v in value.items() if k != "args_after"} if isinstance(value, dict) else value


def judge(case: Case, outcome: Outcome, expected: Any, *, timeout: float, device: str,
          arg_names: list[str]) -> tuple[str, str]:
    """(status, message) for one case. Only the returned data decides; never the worker's words."""
    label = f" [{case.label}]" if case.label else ""
    if outcome.kind == "timeout":
        return "timeout", f"did not finish within {timeout:g} s{label}: an infinite loop, or a Python loop over every element where a tensor operation would do?"
    if outcome.kind in ("crashed", "protocol"):
        return "crashed", f"{outcome.detail}{label}"
    reply = outcome.reply or {}
    kind = reply.get("kind")
    if kind == "forbidden":
        return "forbidden", f"called {reply.get('name')}, which is forbidden in this exercise: the point is to write it yourself{label}"
    if kind == "exception":
        mro = [str(x) for x in reply.get("mro", [])]
        etype = str(reply.get("type", "Exception"))
        tb = str(reply.get("traceback", ""))
        if reply.get("phase") == "import":  # before `raises`: a module that does not import passes nothing
            if etype == "SystemExit":
                return "error", f"your module called sys.exit() while being imported: {reply.get('message')}"
            return "error", f"importing your module failed:\n{tb}"
        if etype == "NotImplementedError":
            return "not_implemented", "not implemented yet (the stub still raises NotImplementedError)"
        if case.raises and any(r in mro for r in case.raises):
            return "passed", ""
        if etype == "MemoryError" or "can't allocate memory" in str(reply.get("message", "")):
            return "error", f"ran out of memory{label}: the worker is capped; are you building a huge intermediate tensor?\n{tb}"
        if case.raises:
            return "failed", f"expected {' or '.join(case.raises)}{label}, but it raised {etype}:\n{tb}"
        return "error", f"raised {etype}{label}:\n{tb}"
    if kind != "ok":
        return "crashed", f"the worker sent an unexpected reply{label}"
    value = reply.get("value")
    if case.raises:
        got = value.get("out") if isinstance(value, dict) else value
        return "failed", f"expected {' or '.join(case.raises)} to be raised{label}, but it returned {describe(got)}"
    if isinstance(value, dict) and "state_dict_shapes" in value:
        shapes = _state_dict_shapes(case) or {}
        return "failed", _state_dict_message(value["state_dict_shapes"], shapes)
    got_cmp, exp_cmp = without_inputs(value), without_inputs(expected)
    if case.check_inputs and isinstance(expected, dict) and "args_after" in expected:
        call_args = case.args[1:] if case.probe == "call" else ()
        originals = [probes.sanitize(a) if isinstance(a, torch.Tensor) else None for a in call_args]
        after = value.get("args_after") if isinstance(value, dict) else None
        for i, orig in enumerate(originals):
            if orig is None or not isinstance(after, (list, tuple)) or i >= len(after):
                continue
            if compare(after[i], orig, "x", 0.0, 0.0) is not None:
                name = arg_names[i] if i < len(arg_names) else f"argument {i}"
                return "failed", f"your function modified its input {name!r} in place{label}; inputs must never be changed (work on a copy or use out-of-place operations)"
    if case.assess is not None:
        msg = case.assess(got_cmp, exp_cmp)
        return ("failed", msg + (f"\n  inputs: {case.label}" if case.label else "")) if msg else ("passed", "")
    msg = compare(got_cmp, exp_cmp, "result", case.rtol, case.atol, device)
    if msg:
        return "failed", pretty_where(msg, arg_names) + (f"\n  inputs: {case.label}" if case.label else "")
    return "passed", ""


def _variant_passes(case: Case, value: Any, expected: Any, device: str) -> bool:
    """Whether a mistake variant's result `value` would have passed `case` too."""
    if case.raises:
        return value is None  # the variant raised, as the case asks (which exception is not recorded)
    if value is None:
        return False  # the variant raised where a result was expected
    got, exp = without_inputs(value), without_inputs(expected)
    if case.assess is not None:
        return case.assess(got, exp) is None
    return compare(got, exp, "result", case.rtol, case.atol, device) is None


def _variant_reproduces(record: CaseRecord, value: Any, device: str) -> bool:
    """Whether a mistake variant's result `value` is what the student's code returned on a failed
    case, within at least float32's tolerances: the same mistake written another way (an epsilon,
    another order of operations) is still that mistake, also in float64."""
    if value is None or record.got is None or record.message.startswith("your "):
        return False  # no result to match, or a contract message (layer names, inputs changed in place)
    rtol, atol = max(record.case.rtol or 0.0, MATCH_RTOL), max(record.case.atol or 0.0, MATCH_ATOL)
    return compare(without_inputs(record.got), without_inputs(value), "result", rtol, atol, device) is None


def name_mistake(records: list[CaseRecord], candidates: Sequence[str],
                 variant_results: Callable[[CaseRecord, list[str]], dict[str, Any]], device: str) -> str | None:
    """The one known mistake among `candidates` that explains the cases in `records` (the cases of
    a failed check): it returns the student's result on every failed case and passes every case
    the student passed. A case where the student's code raised is left out (the exception may come
    from the mistake itself, or from a check of the arguments the variant does not repeat). None
    when no variant, or more than one, explains them all, or when a case ended otherwise (a
    timeout, a crash...).

    `variant_results(record, names)` gives {name: that variant's result on the record's case} for
    the variants still in the running; failed cases are looked at first, where most variants drop out.
    """
    if not any(r.status == "failed" for r in records) or any(r.status not in _MATCHED for r in records):
        return None
    names = list(candidates)
    for record in sorted((r for r in records if r.status != "error"), key=lambda r: r.passed):
        values = variant_results(record, names)
        names = [n for n in names
                 if (_variant_passes(record.case, values.get(n), record.expected, device) if record.passed
                     else _variant_reproduces(record, values.get(n), device))]
        if not names:
            return None
    return names[0] if len(names) == 1 else None
