"""Result records and their JSON form (schema version 1, documented in the README).

Grading returns an `ExerciseResult` (one per exercise, its `CheckResult`s inside); `grade all`
returns a `GradingRun`. They stay typed until they are shown or stored: whether an exercise is
complete, its score and its per-part totals are properties here, and every front end (terminal,
watch, progress, hints, solution, commands) asks them rather than adding points itself. A stored
result (the progress store, a batch's JSON) becomes a record again with `ExerciseResult.from_dict`.

`grade exercise --json` writes one `ExerciseResult.to_dict()`; `grade all --json` writes
`GradingRun.to_dict()`: `{"schema": 1, "score", "max_score", "exercises": [...]}`. What the
student's code printed during a check is kept on that check (`output`) and written to JSON as the
notice "output during CHECK: ...". The first failed check of each part may carry the picture of
its failing case (`picture`, SVG text drawn by `views.pictures`; `null` in JSON otherwise). Nothing
here imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("passed", "failed", "error", "timeout", "crashed", "not_implemented", "forbidden")
_OUTPUT_NOTICE = "output during "


@dataclass(frozen=True)
class MistakeInfo:
    """A known mistake named in a failed check: what it is, why it is wrong, what to reread."""

    name: str
    explanation: str
    section: str
    subsection: str = ""  # a heading of the section's notes (docs/notes/), or "" when none is named


@dataclass(frozen=True)
class Diagnosis:
    """A precise finding on a failed check: what kind of wrong it is (see `grader.engine.diagnose`)."""

    kind: str  # one of DIAGNOSIS_KINDS
    text: str  # one or two sentences for the student: the pattern found and its usual cause


DIAGNOSIS_KINDS = ("shape", "layout", "arithmetic", "location", "structure", "across_cases", "gradients")


@dataclass
class CheckResult:
    """The verdict of one check: its points, status, message and, when one explains the failure,
    the known mistake."""

    name: str
    part: str
    points: float
    max_points: int
    status: str
    message: str = ""
    mistake: MistakeInfo | None = None
    diagnosis: list[Diagnosis] = field(default_factory=list)  # empty when nothing specific was found
    picture: str | None = None  # inline SVG of the failing case (the first failed check of its part), or None
    output: str = ""  # what the student's code printed during this check (bounded)
    # The graded cases of a failed check (`engine.judge.CaseRecord`s: inputs, outcome, expected,
    # verdict), for the steps that explain a failure; never stored or shown as such.
    cases: tuple = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        for d in self.diagnosis:
            if d.kind not in DIAGNOSIS_KINDS:
                raise ValueError(f"unknown diagnosis kind {d.kind!r}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        mistake = self.mistake
        return {"name": self.name, "part": self.part, "points": self.points, "max_points": self.max_points,
                "status": self.status, "message": self.message,
                "mistake": None if mistake is None else
                {"name": mistake.name, "explanation": mistake.explanation, "section": mistake.section,
                 "subsection": mistake.subsection},
                "diagnosis": [{"kind": d.kind, "text": d.text} for d in self.diagnosis],
                "picture": self.picture}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CheckResult":
        """The record of a check's schema-1 dict; `ValueError` when it is not one."""
        try:
            mistake = data.get("mistake")
            return cls(str(data["name"]), str(data["part"]), float(data["points"]), int(data["max_points"]),
                       str(data["status"]), str(data.get("message") or ""),
                       MistakeInfo(str(mistake["name"]), str(mistake["explanation"]), str(mistake["section"]),
                                   str(mistake.get("subsection") or "")) if mistake else None,
                       [Diagnosis(str(d["kind"]), str(d["text"])) for d in data.get("diagnosis") or []],
                       data.get("picture") if isinstance(data.get("picture"), str) else None)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a check result: {exc!r} in {dict(data)!r:.200}") from None


@dataclass(frozen=True)
class PartScore:
    """The points of one part of an exercise (the sum over its checks)."""

    name: str
    points: float
    max_points: float

    @property
    def complete(self) -> bool:
        return self.points >= self.max_points


@dataclass
class ExerciseResult:
    """One graded run of one exercise."""

    exercise: str
    path: str
    seed: int
    grader_version: str
    started_at: str
    duration_s: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # static-scan findings, output while importing...
    sandbox: str = "none"  # what confined the student's code: "landlock-abi-N", "uid" or "none"

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.checks)

    @property
    def complete(self) -> bool:
        """Every check passed (and there is something to pass): the exercise is done."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def not_started(self) -> bool:
        """Every check still meets the stub's NotImplementedError."""
        return bool(self.checks) and all(c.status == "not_implemented" for c in self.checks)

    @property
    def parts(self) -> tuple[PartScore, ...]:
        """The points per part, in the order the checks name the parts."""
        totals: dict[str, list[float]] = {}
        for c in self.checks:
            got_max = totals.setdefault(c.part, [0.0, 0.0])
            got_max[0] += c.points
            got_max[1] += c.max_points
        return tuple(PartScore(name, got, mx) for name, (got, mx) in totals.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "exercise": self.exercise,
            "path": self.path,
            "score": self.score,
            "max_score": self.max_score,
            "seed": self.seed,
            "grader_version": self.grader_version,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "sandbox": self.sandbox,
            "notices": [*self.notices, *(f"{_OUTPUT_NOTICE}{c.name}: {c.output}" for c in self.checks if c.output)],
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExerciseResult":
        """The record of a schema-1 exercise dict (as `to_dict` wrote it, or as the progress store
        gives it back); `ValueError` naming what is wrong when it is not one."""
        try:
            checks = [CheckResult.from_dict(c) for c in data["checks"]]
            result = cls(str(data["exercise"]), str(data.get("path") or ""), int(data.get("seed") or 0),
                         str(data.get("grader_version") or ""), str(data.get("started_at") or ""),
                         float(data.get("duration_s") or 0.0), checks, sandbox=str(data.get("sandbox") or "none"))
            by_name = {c.name: c for c in checks}
            for notice in data.get("notices") or []:
                name, sep, text = str(notice).removeprefix(_OUTPUT_NOTICE).partition(": ")
                if str(notice).startswith(_OUTPUT_NOTICE) and sep and name in by_name:
                    by_name[name].output = text
                else:
                    result.notices.append(str(notice))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an exercise result: {exc!r}") from None
        return result


def typed_results(stored: Mapping[str, Mapping[str, Any]]) -> dict[str, ExerciseResult]:
    """{exercise: record} from stored dicts (e.g. `Store.last_exercise_results()`); a record that
    cannot be read counts as never graded."""
    out = {}
    for name, data in stored.items():
        try:
            out[name] = ExerciseResult.from_dict(data)
        except ValueError:
            continue
    return out


@dataclass
class GradingRun:
    """The results of `grade all`: one `ExerciseResult` per exercise graded."""

    exercises: list[ExerciseResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(r.max_score for r in self.exercises)

    @property
    def complete(self) -> bool:
        return bool(self.exercises) and all(r.complete for r in self.exercises)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "score": self.score, "max_score": self.max_score,
                "exercises": [r.to_dict() for r in self.exercises]}


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`, so a crash
    never leaves half a file (and an existing file is replaced whole or not at all)."""
    import tempfile

    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
