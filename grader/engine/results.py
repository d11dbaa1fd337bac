"""Result records and their JSON form (schema version 1, documented in the README).

`grade exercise --json` writes one `ExerciseResult`; `grade all --json` writes
`{"schema": 1, "score", "max_score", "exercises": [...]}`. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("passed", "failed", "error", "timeout", "crashed", "not_implemented", "forbidden")


@dataclass
class MistakeInfo:
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
    name: str
    part: str
    points: float
    max_points: int
    status: str
    message: str = ""
    mistake: MistakeInfo | None = None
    diagnosis: list[Diagnosis] = field(default_factory=list)  # empty when nothing specific was found
    picture: str | None = None  # inline SVG of the failing case (the first failed check of its part), or None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        for d in self.diagnosis:
            if d.kind not in DIAGNOSIS_KINDS:
                raise ValueError(f"unknown diagnosis kind {d.kind!r}")


@dataclass
class ExerciseResult:
    exercise: str
    path: str
    seed: int
    grader_version: str
    started_at: str
    duration_s: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # e.g. static-scan findings, captured output
    sandbox: str = "none"  # what confined the student's code: "landlock-abi-N", "uid" or "none"

    @property
    def score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.checks)

    @property
    def passed(self) -> bool:
        return all(c.status == "passed" for c in self.checks)

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
            "notices": list(self.notices),
            "checks": [asdict(c) for c in self.checks],
        }


def all_to_dict(results: list[ExerciseResult]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "score": sum(r.score for r in results),
        "max_score": sum(r.max_score for r in results),
        "exercises": [r.to_dict() for r in results],
    }


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`, so a crash
    never leaves half a file (and an existing file is replaced whole or not at all)."""
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
