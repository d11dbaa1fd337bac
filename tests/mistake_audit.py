"""Known mistakes can be told apart: an audit run in the grader's process, without a worker.

For every check, each mistake's result is computed on every case (as `LiveOracle.mistakes` does).
On the cases where a mistake fails, every other mistake of the check must differ from it at
least once: a student who makes exactly that mistake is then matched by it alone, whether the
engine compares the failing cases or all of them. On its first failing case, where a report may
stop, no mistake listed before it may match it. And each mistake must fail somewhere in its part
(else it could never be named).
"""

from __future__ import annotations

import importlib
from typing import Any

from grader.engine.compare import compare
from grader.engine.oracles import LiveOracle
from grader.engine.spec import Check, derive_seed


def _strip(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "args_after"} if isinstance(value, dict) else value


def _same(got: Any, mistake: Any, case) -> bool:
    """Whether a student whose result is `got` would be matched by a mistake giving `mistake`."""
    if got is None or mistake is None:
        return False
    return compare(_strip(got), _strip(mistake), "result", case.rtol, case.atol) is None


def _fails(value: Any, expected: Any, case) -> bool:
    if value is None:  # the mistake raised: it cannot match a returned result
        return True
    got, exp = _strip(value), _strip(expected)
    return (case.assess(got, exp) if case.assess is not None else compare(got, exp, "result", case.rtol, case.atol)) is not None


def audit_check(oracle: LiveOracle, exercise: str, check: Check, seed: int = 0) -> tuple[list[str], set[str]]:
    """The problems of one check's mistakes, and the names of those that fail on some case."""
    cases = oracle.cases(check, derive_seed(seed, exercise, check.name))
    expected = [oracle.expected(check, i, c) for i, c in enumerate(cases)]
    outputs = [oracle.mistakes(check, i, c) for i, c in enumerate(cases)]
    problems, seen = [], set()
    for rank, m in enumerate(check.mistakes):
        failing = [i for i, c in enumerate(cases) if outputs[i][m.name] is not None and _fails(outputs[i][m.name], expected[i], c)]
        if not failing:
            continue
        seen.add(m.name)
        for other_rank, other in enumerate(check.mistakes):
            if other.name == m.name:
                continue
            if all(_same(outputs[i][m.name], outputs[i][other.name], cases[i]) for i in failing):
                problems.append(f"{check.name}: {other.name} matches {m.name} on every case where {m.name} fails")
            elif other_rank < rank and _same(outputs[failing[0]][m.name], outputs[failing[0]][other.name], cases[failing[0]]):
                problems.append(f"{check.name}: {other.name}, listed first, matches {m.name} on its first failing case {failing[0]}")
    return problems, seen


def audit(exercise: str, seed: int = 0) -> list[str]:
    """The problems of every check of `exercise`."""
    oracle = LiveOracle(exercise)
    checks = importlib.import_module(f"grader.checks.{exercise}").CHECKS
    problems, seen, named = [], set(), {}
    for check in checks:
        found, failing = audit_check(oracle, exercise, check, seed)
        problems += found
        seen |= {(check.part, n) for n in failing}
        named.update({(check.part, m.name): check.name for m in check.mistakes})
    problems += [f"{part}: {name} never gives a wrong result in any check of the part" for part, name in named if (part, name) not in seen]
    return problems
