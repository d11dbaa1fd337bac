"""A class's results: the per-student JSON that `grade batch` writes, and what the report reads.

One file per student, `RESULTS_DIR/<student>.json`: the schema-1 document of `grade all --json`
plus who and what was graded:

    {"schema": 1, "student": "ada", "submission": "ada.zip", "score": 31.0, "max_score": 43,
     "seed": 0, "grader_version": "0.1.0", "graded_at": "2025-01-31T10:00:00+00:00",
     "sandbox": "landlock-abi-7", "submission_digest": "9f86d081884c7d65...",
     "exercises": [<schema-1 exercise result>, ...],
     "quiz": <the document `grade quiz --json` wrote, or null>,
     "problems": ["2 copies of conv.py: a/conv.py, b/conv.py; graded a/conv.py (...)", ...]}

`submission_digest` is the digest of the submission's content (`submissions.Submission.digest`):
`grade batch` grades a student again when it changed. `problems` are what the instructor should
look at: an empty submission, no exercise file, several copies of one, a refused zip...
`sandbox` is the weakest sandbox any of the student's code ran in (see `runner.sandbox`).

Everything the instructor tools read from a quiz document is read here, in one place
(`validate_quiz`, `quiz_item_scores`): `format`, `version` and, per statement id in
`statements`, `topic` and `first_correct` (the student's first answer to it was right).

Beside the results, `_batch.json` is the batch's manifest: its settings, the sandbox student code
ran in, and `"results": {student: SHA-256 of the file's bytes}` for every result the batch wrote.
`verify_results` compares the folder with it; the batch does so before it resumes and when it
ends, `grade report` before it reads anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.engine.results import SCHEMA_VERSION, STATUSES

MANIFEST = "_batch.json"
QUIZ_FORMAT = "cnn-grader/quiz-results"
QUIZ_VERSION = 1


# --- quiz documents -----------------------------------------------------------------------------
def validate_quiz(doc: Any) -> str | None:
    """None when `doc` is a quiz-results document this report can read, else what is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != QUIZ_FORMAT:
        return f"not a {QUIZ_FORMAT} document"
    if doc.get("version") != QUIZ_VERSION:
        return f"version {doc.get('version')!r}; this grader reads version {QUIZ_VERSION}"
    statements = doc.get("statements")
    if not isinstance(statements, dict):
        return "'statements' must be an object keyed by statement id"
    for sid, entry in statements.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("first_correct"), bool) \
                or not isinstance(entry.get("topic"), str):
            return f"statement {sid!r}: needs a string 'topic' and a boolean 'first_correct'"
    return None


def quiz_item_scores(doc: dict[str, Any] | None) -> dict[str, int]:
    """Statement id -> 1 when the student's first answer to it was right, else 0 (answered ones only)."""
    if not doc:
        return {}
    return {sid: int(entry["first_correct"]) for sid, entry in doc["statements"].items()}


def quiz_item_topics(doc: dict[str, Any] | None) -> dict[str, str]:
    return {sid: entry["topic"] for sid, entry in (doc or {}).get("statements", {}).items()}


# --- per-student results ------------------------------------------------------------------------
def validate_result(doc: Any) -> str | None:
    """None when `doc` is a per-student result this report can read, else what is wrong."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_VERSION:
        return f"not a schema-{SCHEMA_VERSION} result"
    if not isinstance(doc.get("student"), str) or not isinstance(doc.get("exercises"), list):
        return "needs a string 'student' and a list 'exercises'"
    for ex in doc["exercises"]:
        error = validate_exercise(ex)
        if error:
            return error
    if doc.get("quiz") is not None and validate_quiz(doc["quiz"]):
        return f"quiz: {validate_quiz(doc['quiz'])}"
    return None


def validate_exercise(ex: Any) -> str | None:
    """None when `ex` is a schema-1 exercise result with valid checks, else what is wrong."""
    if not isinstance(ex, dict) or not isinstance(ex.get("exercise"), str) or not isinstance(ex.get("checks"), list):
        return "each exercise needs 'exercise' and a list 'checks'"
    if not isinstance(ex.get("score"), (int, float)) or not isinstance(ex.get("max_score"), (int, float)):
        return f"{ex['exercise']}: needs numeric 'score' and 'max_score'"
    for c in ex["checks"]:
        if not isinstance(c, dict) or c.get("status") not in STATUSES or not isinstance(c.get("name"), str):
            return f"{ex['exercise']}: a check without a valid 'name' and 'status'"
        if not isinstance(c.get("points"), (int, float)) or not isinstance(c.get("max_points"), (int, float)):
            return f"{ex['exercise']}: check {c['name']!r} needs numeric 'points' and 'max_points'"
        diagnosis = c.get("diagnosis") or []
        if not isinstance(diagnosis, list) or not all(isinstance(d, dict) and isinstance(d.get("kind"), str)
                                                      and isinstance(d.get("text"), str) for d in diagnosis):
            return f"{ex['exercise']}: check {c['name']!r}: 'diagnosis' must be a list of objects with a string 'kind' and 'text'"
    return None


def student_document(student: str, submission: str, exercises: list[dict[str, Any]], *, seed: int,
                     grader_version: str, graded_at: str, sandbox: str, quiz: dict[str, Any] | None = None,
                     problems: list[str] | None = None, submission_digest: str = "") -> dict[str, Any]:
    """The per-student result document (see the module docstring); `sandbox` is the weakest
    sandbox any of the student's code ran in."""
    return {
        "schema": SCHEMA_VERSION, "student": student, "submission": submission,
        "score": sum(e["score"] for e in exercises), "max_score": sum(e["max_score"] for e in exercises),
        "seed": seed, "grader_version": grader_version, "graded_at": graded_at, "sandbox": sandbox,
        "submission_digest": submission_digest,
        "exercises": exercises, "quiz": quiz, "problems": list(problems or []),
    }


# --- the manifest -------------------------------------------------------------------------------
def result_digest(data: bytes) -> str:
    """The digest the manifest keeps of a result file's bytes."""
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The batch's manifest in `folder`, or None when there is none that records digests."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("results"), dict):
        return None
    return manifest


def verify_results(folder: Path, digests: dict[str, str], *, others: bool = True) -> list[str]:
    """One line per student whose result in `folder` does not match `digests` (student -> SHA-256),
    and with `others`, per result file `digests` does not know: "ada: changed after the batch wrote it"."""
    folder = Path(folder)
    problems = []
    for student, expected in sorted(digests.items()):
        try:
            actual = result_digest((folder / f"{student}.json").read_bytes())
        except OSError:
            problems.append(f"{student}: its result is missing")
            continue
        if actual != expected:
            problems.append(f"{student}: changed after the batch wrote it")
    for path in sorted(folder.glob("*.json")) if others else ():
        if not path.name.startswith(("_", ".")) and path.stem not in digests:
            problems.append(f"{path.stem}: a result the batch did not write")
    return problems


@dataclass
class ClassResults:
    """Every student's result of one batch, sorted by student id."""

    students: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)  # "file: why" for files that were not results

    @property
    def exercise_names(self) -> list[str]:
        """The exercises graded, in catalogue order (then any unknown ones by name)."""
        from grader.catalog import exercise_names

        seen = {e["exercise"] for s in self.students for e in s["exercises"]}
        ordered = [n for n in exercise_names() if n in seen]
        return ordered + sorted(seen - set(ordered))

    @property
    def quiz_topics(self) -> list[str]:
        return sorted({t for s in self.students for t in quiz_item_topics(s.get("quiz")).values()})


def load_results(folder: Path) -> ClassResults:
    """Read `folder/*.json` (files starting with `_` or `.` are the batch's own and left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of results; pass the --out folder of `grade batch`")
    students, skipped = [], []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(("_", ".")):
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            skipped.append(f"{path.name}: unreadable ({exc})")
            continue
        error = validate_result(doc)
        if error:
            skipped.append(f"{path.name}: {error}")
            continue
        students.append(doc)
    students.sort(key=lambda s: s["student"])
    return ClassResults(students, skipped)
