"""The vocabulary of hidden checks: cases, known mistakes and checks, as plain dataclasses.

A *check* tests one part of an exercise's contract. It builds its *cases* from a seeded
`torch.Generator`; each case names a *probe* (a small, trusted function in `grader.runner.probes`
or `grader.checks.<exercise>`) and its arguments. The same probe runs twice: in the worker on the
student's module, and in the grader's own process on the reference. The two results are compared
in the grader's process. A *mistake* is a variant of the reference that reproduces a common wrong
answer; when a failing result equals a mistake's result, the report names the mistake.

`load_checks` reads an exercise's checks (`grader/checks/<name>.py`) and `make_cases` runs a
check's case generator for a seed: the same code whether the reference is at hand (live grading,
recording) or not (replaying a recording, `engine.recording`).

This module imports no torch at import time, so the catalogue and CLI can use its types freely.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

# A mistake's `build(ref)` returns {public name: replacement callable/class} for the reference
# module `ref`; everything not replaced stays the reference's.
MistakeBuilder = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Mistake:
    """A named, explained wrong answer that the report recognises."""

    name: str  # kebab-case, stable: tests and reports refer to it
    explanation: str  # one sentence: what the student probably did and why it is wrong
    build: MistakeBuilder
    section: str = ""  # the notes' section to revisit; defaults to the exercise's section
    subsection: str = ""  # optional: the `## ` heading of that section's notes that explains it


@dataclass(frozen=True)
class Case:
    """One call of a probe with fixed inputs.

    `probe` is a name in `grader.runner.probes` (e.g. "call", "module") or "package.module:function".
    `raises` lists exception class names that count as the right answer (e.g. ("ValueError",)).
    """

    probe: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    raises: tuple[str, ...] = ()
    rtol: float | None = None
    atol: float | None = None
    check_inputs: bool = True  # report in-place modification of tensor arguments
    # Behavioural cases: `assess(got, expected) -> None or a message`, run in the grader on the
    # sanitized values, replaces the equality comparison (e.g. "error below the baseline").
    assess: Callable[[Any, Any], str | None] | None = None


@dataclass(frozen=True)
class Check:
    """A named, pointed test of one contract part, with its cases and known mistakes."""

    name: str
    part: str
    points: int
    cases: Callable[[Any, Any], list[Case]]  # (torch.Generator, reference module) -> cases
    mistakes: tuple[Mistake, ...] = ()
    description: str = ""


def derive_seed(base_seed: int, exercise: str, check: str) -> int:
    """A check's seed: stable, derived from the base seed and the check's name (63 bits)."""
    digest = hashlib.sha256(f"{base_seed}:{exercise}:{check}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


DEFAULT_SEED = 0


def load_checks(name: str) -> list[Check]:
    """The checks of exercise `name`, in order (`grader.checks.<name>.CHECKS`)."""
    return list(importlib.import_module(f"grader.checks.{name}").CHECKS)


def make_cases(check: Check, seed: int, reference: Any) -> list[Case]:
    """The seeded cases of `check`: its generator gets `torch.Generator().manual_seed(seed)` and
    torch's global RNG is seeded with `seed` too (and restored afterwards)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return list(check.cases(generator, reference))
