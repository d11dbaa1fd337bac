"""A synthetic class: result documents and submissions for trying out, testing and timing the tools.

`demo_class` makes per-student result documents (for the report, without grading anything);
`write_submissions` makes submission folders from the references and stubs (for `grade batch`).

Each student has an ability; each check and each quiz statement a difficulty; a student passes a
check, or answers a statement right the first time, with probability sigmoid(ability - difficulty),
so the quiz's statements discriminate as real ones do. Failing checks get a status, a message and
now and then one of the check's named mistakes, as the grader would write them, and a diagnosis:
what `grader.engine.diagnose` finds in a small made-up wrong result, mostly the one wrong result
typical of the check, with numbers that differ from student to student. Check names, parts and
points come from the real checks; statements from the quiz bank when it loads.
"""

from __future__ import annotations

import math
import random
from typing import Any

from grader import __version__
from grader.instructor.classdata import QUIZ_FORMAT, QUIZ_VERSION, student_document

_STATUSES = ("failed", "failed", "failed", "error", "timeout", "not_implemented")

# Made-up wrong results (of an expected (1, 2, n, n) result) that the demo's diagnoses describe.
_WRONG = (
    lambda e, rng: e.transpose(2, 3),  # height and width swapped
    lambda e, rng: e.permute(0, 2, 3, 1).reshape(e.shape),  # channels last, reshaped
    lambda e, rng: e.flip(3),  # mirrored
    lambda e, rng: e * rng.choice((1 / 4, 1 / 9, 4 / 9)),  # divided by the wrong count
    lambda e, rng: e + rng.choice((0.1, 0.5, 1.0)),  # a constant term
    lambda e, rng: 0 * e,  # nothing written
)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _statements(count: int) -> list[tuple[str, str]]:
    """(id, topic) of up to `count` statements of the bank, or made-up ones when it does not load."""
    try:
        from grader.quiz.bank import load_bank

        found = [(s.id, s.topic) for s in load_bank().statements]
        if found:
            return found[:count]
    except Exception:  # noqa: BLE001 - a synthetic class does not need the real bank
        pass
    return [(f"demo-statement-{i}", f"topic-{i % 3}") for i in range(count)]


def _diagnosis(typical: int, rng: random.Random) -> list[dict[str, str]]:
    """The findings of the diagnosis on a made-up wrong result: mostly the `typical` one of `_WRONG`."""
    import torch

    from grader.engine.diagnose import CaseFacts, diagnose_tensor

    n = rng.choice((4, 5, 6))
    expected = torch.randn(1, 2, n, n, generator=torch.Generator().manual_seed(rng.randrange(2**31)), dtype=torch.float64)
    wrong = _WRONG[typical if rng.random() < 0.7 else rng.randrange(len(_WRONG))]
    return [{"kind": d.kind, "text": d.text} for d in diagnose_tensor(wrong(expected, rng), expected, CaseFacts({}))]


def demo_class(students: int = 30, *, seed: int = 0, exercises: list[str] | None = None,
               statements: int = 24) -> list[dict[str, Any]]:
    """`students` per-student documents (see `classdata`), reproducible from `seed`."""
    from grader.catalog import exercise_names
    from grader.engine.spec import load_checks

    rng = random.Random(seed)
    found_rng = random.Random(f"{seed}/diagnosis")  # its own stream: the rest of the class stays as it was
    names = exercises or exercise_names()
    checks = {n: load_checks(n) for n in names}
    difficulty = {(n, c.name): rng.gauss(0, 1) for n in names for c in checks[n]}
    typical = {(n, c.name): found_rng.randrange(len(_WRONG)) for n in names for c in checks[n]}
    items = _statements(statements)
    item_difficulty = {sid: rng.gauss(0, 1.2) for sid, _ in items}
    docs = []
    for k in range(students):
        ability = rng.gauss(0.8, 1.2)
        exercises_out = []
        for n in names:
            out_checks = []
            for c in checks[n]:
                passed = rng.random() < _sigmoid(2 * (ability - difficulty[(n, c.name)]))
                status = "passed" if passed else rng.choice(_STATUSES)
                mistake = None
                if status == "failed" and c.mistakes and rng.random() < 0.6:
                    m = rng.choice(c.mistakes)
                    mistake = {"name": m.name, "explanation": m.explanation, "section": m.section or "Convolution"}
                message = "" if passed else f"{c.name}: output differs at index (0, {rng.randrange(8)})"
                diagnosis = _diagnosis(typical[(n, c.name)], found_rng) \
                    if status == "failed" and found_rng.random() < 0.5 else []
                out_checks.append({"name": c.name, "part": c.part, "points": c.points if passed else 0,
                                   "max_points": c.points, "status": status, "message": message, "mistake": mistake,
                                   "diagnosis": diagnosis})
            exercises_out.append({"schema": 1, "exercise": n, "path": f"student{k:02d}/{n}.py",
                                  "score": sum(c["points"] for c in out_checks),
                                  "max_score": sum(c["max_points"] for c in out_checks), "seed": 0,
                                  "grader_version": __version__, "started_at": "2025-01-31T10:00:00+00:00",
                                  "duration_s": round(rng.uniform(0.5, 3), 3), "notices": [], "checks": out_checks})
        quiz = None
        if rng.random() < 0.9:
            answered = {}
            for j, (sid, topic) in enumerate(items):
                if j < len(items) // 2 or rng.random() < 0.7:  # a common core, then what each chose
                    right = rng.random() < _sigmoid(ability - item_difficulty[sid])
                    answered[sid] = {"topic": topic, "in_bank": True, "attempts": 1, "correct": int(right),
                                     "first_correct": right, "last_correct": right, "box": 1, "due_at": None}
            quiz = {"format": QUIZ_FORMAT, "version": QUIZ_VERSION, "generated_at": "2025-01-30T10:00:00+00:00",
                    "student": None, "bank": {"fingerprint": "demo", "statements": len(items)}, "session": None,
                    "answers": [], "statements": answered}
        docs.append(student_document(f"student{k:02d}", f"student{k:02d}.zip", exercises_out, seed=0,
                                     grader_version=__version__, graded_at="2025-01-31T10:00:00+00:00",
                                     sandbox="landlock-abi-7", quiz=quiz))
    return docs


# --- synthetic submissions ----------------------------------------------------------------------
SKEW = """

# --- made wrong on purpose (grader.instructor.demo.SKEW): every public function's result is a little off
import functools as _functools

import torch as _torch


def _skew(_fn):
    @_functools.wraps(_fn)
    def _skewed(*args, **kwargs):
        out = _fn(*args, **kwargs)
        if isinstance(out, _torch.Tensor) and out.is_floating_point():
            return out * 1.001
        return out + 1 if type(out) is int else out
    return _skewed


for _name, _value in list(globals().items()):
    if callable(_value) and not isinstance(_value, type) and not _name.startswith("_") \\
            and getattr(_value, "__module__", None) == __name__:
        globals()[_name] = _skew(_value)
"""


def write_submissions(folder: Any, students: int, exercises: list[str] | None = None) -> list[str]:
    """Write `students` submission folders into `folder`: half references, a quarter stubs, a quarter
    references made slightly wrong (`SKEW`). Returns the student ids."""
    from pathlib import Path

    from grader.catalog import exercise_names
    from grader.paths import data_dir

    folder = Path(folder)
    names = exercises or exercise_names()
    ids = []
    for k in range(students):
        kind = ("reference", "reference", "stub", "skewed")[k % 4]
        sid = f"student{k:03d}-{kind}"
        (folder / sid).mkdir(parents=True)
        for n in names:
            source = (data_dir("exercises" if kind == "stub" else "solutions") / f"{n}.py").read_text(encoding="utf-8")
            (folder / sid / f"{n}.py").write_text(source + SKEW if kind == "skewed" else source, encoding="utf-8")
        ids.append(sid)
    return ids
