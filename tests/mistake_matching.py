"""Named mistakes replayed in this process, case by case, as the engine's rule has them.

The engine names a mistake only when the student's outputs equal that mistake variant's on every
failing case of a check, and names neither when two variants match. These helpers apply that rule
here, without a worker, to prove two things the end-to-end tests cannot see on their own:
- a realistic wrong implementation matches its mistake on *every* failing case, not just the first;
- the mistakes of a check are distinguishable: a student who makes exactly one of them is never
  also matched by another (the cases tell them apart).
The code run here is the tests' own (references, variants of them, hand-written wrong files).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

import torch

from grader.engine.compare import compare
from grader.engine.oracles import load_reference, mistake_namespace
from grader.engine.spec import Case, Check, derive_seed
from grader.runner import probes


def load_source(name: str, source: str, tmp_path) -> ModuleType:
    """`source` imported as a module (the way the worker imports a student's file)."""
    path = tmp_path / f"inprocess_{name}_{abs(hash(source))}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def run(target: Any, case: Case) -> Any:
    """The case's probe on `target`, sanitized; an exception is returned as itself."""
    fn = probes.resolve(case.probe)
    with torch.random.fork_rng(devices=[]):
        try:
            value = fn(target, *copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except Exception as exc:  # noqa: BLE001 - a variant that raises just cannot match
            return exc
    return probes.sanitize(value)


def _strip(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "args_after"} if isinstance(value, dict) else value


def same(a: Any, b: Any, case: Case) -> bool:
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return False
    return compare(_strip(a), _strip(b), "result", case.rtol, case.atol) is None


def fails(got: Any, expected: Any, case: Case) -> bool:
    if case.raises:
        return not isinstance(got, BaseException) or type(got).__name__ not in case.raises
    if isinstance(got, BaseException):
        return True
    if case.assess is not None:
        return case.assess(_strip(got), _strip(expected)) is not None
    return not same(got, expected, case)


def cases_of(exercise: str, check: Check) -> list[Case]:
    ref = load_reference(exercise)
    seed = derive_seed(0, exercise, check.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return list(check.cases(torch.Generator().manual_seed(seed), ref))


def check_named(exercise: str, name: str) -> Check:
    return next(c for c in importlib.import_module(f"grader.checks.{exercise}").CHECKS if c.name == name)


def matching(exercise: str, check: Check, student: Any) -> tuple[list[int], set[str]]:
    """(the failing case indices, the mistakes that match the student on every one of them)."""
    ref = load_reference(exercise)
    cases = cases_of(exercise, check)
    failing, candidates = [], {m.name for m in check.mistakes}
    for i, case in enumerate(cases):
        got, expected = run(student, case), run(ref, case)
        if not fails(got, expected, case):
            continue
        failing.append(i)
        for m in check.mistakes:
            if m.name in candidates and not same(got, run(mistake_namespace(ref, m), case), case):
                candidates.discard(m.name)
    return failing, candidates if failing else set()


def indistinguishable(exercise: str, check: Check, first_case_too: bool = True) -> dict[str, set[str]]:
    """For each mistake of the check that fails it: the *other* mistakes that would be named for a
    student making exactly that one (an empty dict when every mistake is told apart).

    Two rules are applied: the engine's (the student matches on every failing case, and no other
    mistake does), and, with `first_case_too`, the earlier rule that looked at the first failing
    case only and named the first mistake in the check's order that matched there."""
    ref = load_reference(exercise)
    cases = cases_of(exercise, check)
    expected = [run(ref, c) for c in cases]
    values = {m.name: [run(mistake_namespace(ref, m), c) for c in cases] for m in check.mistakes}
    clashes = {}
    for name, got in values.items():
        failing = [i for i, c in enumerate(cases) if fails(got[i], expected[i], c)]
        if not failing:
            continue
        others = {o for o, vals in values.items() if o != name and all(same(got[i], vals[i], cases[i]) for i in failing)}
        if first_case_too:
            first = failing[0]
            named = next(o for o, vals in values.items() if same(got[first], vals[first], cases[first]))
            if named != name:
                others.add(named)
        if others:
            clashes[name] = others
    return clashes


def assert_named(result: dict, exercise: str, source: str, tmp_path, check: str, mistake: str) -> None:
    """End to end, `check` failed with `mistake` named; in this process, the source's outputs
    match that mistake, and no other, on every failing case of the check."""
    entry = next(c for c in result["checks"] if c["name"] == check)
    assert entry["status"] == "failed", (check, entry["status"], entry["message"])
    assert (entry.get("mistake") or {}).get("name") == mistake, (check, entry.get("mistake"), entry["message"])
    failing, matches = matching(exercise, check_named(exercise, check), load_source(exercise, source, tmp_path))
    assert failing and matches == {mistake}, (check, failing, matches)
