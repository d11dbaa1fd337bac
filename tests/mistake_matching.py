"""Known mistakes replayed in this process, case by case, as the engine's rule has them.

The engine names a mistake only when the student's outputs equal that mistake variant's on every
failing case of a check, and names neither when two variants match. These helpers apply that rule
here, without a worker, to prove what the end-to-end tests cannot see on their own:
- a realistic wrong implementation matches its mistake on *every* failing case, not just the first
  (`assert_named`);
- the mistakes of a check are told apart (`indistinguishable`, and `audit` for every check of an
  exercise): on the cases where a mistake fails, every other mistake of the check differs from it
  at least once, so a student who makes exactly that mistake is matched by it alone; and on its
  first failing case, where an older rule stopped, no mistake listed before it matches;
- each mistake fails somewhere in its part (`audit`), else it could never be named.

The cases, the reference's results and every mistake's results come from `conftest.reference_oracle`,
the cache the `sessions` fixture grades with, so each is computed once per test process. As in the
engine, a mistake that raised has no result (None): it fails a case that expects a value, passes a
case that expects an exception, and matches nothing. The student's code (a variant written out as a
file) runs here too: it is the tests' own.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

import torch

from conftest import reference_oracle
from grader.engine.compare import compare
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
        except Exception as exc:  # noqa: BLE001 - a wrong implementation may raise
            return exc
    return probes.sanitize(value)


def _strip(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "args_after"} if isinstance(value, dict) else value


def same(a: Any, b: Any, case: Case) -> bool:
    """Whether results `a` and `b` agree within the case's tolerances (an exception or None, a
    mistake that raised, agrees with nothing)."""
    if a is None or b is None or isinstance(a, BaseException) or isinstance(b, BaseException):
        return False
    return compare(_strip(a), _strip(b), "result", case.rtol, case.atol) is None


def _fails(got: Any, expected: Any, case: Case) -> bool:
    if case.assess is not None:
        return case.assess(_strip(got), _strip(expected)) is not None
    return not same(got, expected, case)


def student_fails(got: Any, expected: Any, case: Case) -> bool:
    """Whether the student's result `got` (an exception where the code raised) fails the case."""
    if case.raises:
        return not isinstance(got, BaseException) or type(got).__name__ not in case.raises
    return isinstance(got, BaseException) or _fails(got, expected, case)


def _mistake_fails(value: Any, expected: Any, case: Case) -> bool:
    """Whether a mistake's result `value` (None where it raised) fails the case."""
    if case.raises:
        return value is not None
    return value is None or _fails(value, expected, case)


def check_named(exercise: str, name: str) -> Check:
    return next(c for c in importlib.import_module(f"grader.checks.{exercise}").CHECKS if c.name == name)


def _cases(exercise: str, check: Check, seed: int = 0) -> tuple[list[Case], list[Any], list[dict[str, Any]]]:
    """The check's cases, the reference's result on each and every mistake's result on each."""
    oracle = reference_oracle(exercise)
    cases = oracle.cases(check, derive_seed(seed, exercise, check.name))
    return (cases, [oracle.expected(check, i, c) for i, c in enumerate(cases)],
            [oracle.mistakes(check, i, c) for i, c in enumerate(cases)])


def matching(exercise: str, check: Check, student: Any) -> tuple[list[int], set[str]]:
    """(the failing case indices, the mistakes that match the student on every one of them)."""
    cases, expected, outputs = _cases(exercise, check)
    failing, candidates = [], {m.name for m in check.mistakes}
    for i, case in enumerate(cases):
        got = run(student, case)
        if not student_fails(got, expected[i], case):
            continue
        failing.append(i)
        candidates = {name for name in candidates if same(got, outputs[i][name], case)}
    return failing, candidates if failing else set()


def _told_apart(exercise: str, check: Check, seed: int = 0) -> tuple[dict[str, set[str]], set[str]]:
    """({mistake: the other mistakes that would be named for a student making exactly it}, the
    mistakes that return a wrong result on some case). A mistake's failing cases are those where it
    returns a wrong result (a case where it raises is an error, which the engine never names)."""
    cases, expected, outputs = _cases(exercise, check, seed)
    names = [m.name for m in check.mistakes]
    clashes, wrong = {}, set()
    for name in names:
        failing = [i for i, c in enumerate(cases) if outputs[i][name] is not None and _mistake_fails(outputs[i][name], expected[i], c)]
        if not failing:
            continue
        wrong.add(name)
        got = [outputs[i][name] for i in range(len(cases))]
        others = {o for o in names if o != name and all(same(got[i], outputs[i][o], cases[i]) for i in failing)}
        first = failing[0]
        named = next(o for o in names if same(got[first], outputs[first][o], cases[first]))
        if named != name:
            others.add(named)  # listed before it, and matching where the report may stop
        if others:
            clashes[name] = others
    return clashes, wrong


def indistinguishable(exercise: str, check: Check) -> dict[str, set[str]]:
    """For each mistake of the check that fails it: the *other* mistakes that would be named for a
    student making exactly that one (an empty dict when every mistake is told apart)."""
    return _told_apart(exercise, check)[0]


def audit(exercise: str, seed: int = 0) -> list[str]:
    """The problems of every check of `exercise`: mistakes not told apart, and mistakes that never
    give a wrong result in any check of their part."""
    problems, seen, named = [], set(), {}
    for check in importlib.import_module(f"grader.checks.{exercise}").CHECKS:
        clashes, wrong = _told_apart(exercise, check, seed)
        problems += [f"{check.name}: {', '.join(sorted(others))} also named for a student making {name}"
                     for name, others in clashes.items()]
        seen |= {(check.part, n) for n in wrong}
        named.update({(check.part, m.name): check.name for m in check.mistakes})
    return problems + [f"{part}: {name} never gives a wrong result in any check of the part"
                       for part, name in named if (part, name) not in seen]


def assert_named(result: dict, exercise: str, source: str, tmp_path, check: str, mistake: str) -> None:
    """End to end, `check` failed with `mistake` named; in this process, the source's outputs
    match that mistake, and no other, on every failing case of the check."""
    entry = next(c for c in result["checks"] if c["name"] == check)
    assert entry["status"] == "failed", (check, entry["status"], entry["message"])
    assert (entry.get("mistake") or {}).get("name") == mistake, (check, entry.get("mistake"), entry["message"])
    failing, matches = matching(exercise, check_named(exercise, check), load_source(exercise, source, tmp_path))
    assert failing and matches == {mistake}, (check, failing, matches)
