"""`grader.study.progress`: statuses from stored results, quiz mastery and due counts from Leitner states,
and the order of the suggested next steps (pure functions, no store)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from grader.catalog import Exercise, Part
from grader.engine.results import ExerciseResult
from grader.study.progress import NOT_STARTED, PARTIAL, PASSED, build_progress, exercise_progress, progress_lines
from grader.quiz.bank import Bank, Statement, Topic
from grader.quiz.scheduler import CardState

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
CATALOG = (
    Exercise("conv", "Convolution from scratch", "Convolution", (Part("a", 2, ""), Part("b", 3, ""))),
    Exercise("gap", "Global average pooling", "GlobalAvgPooling", (Part("c", 4, ""),)),
)


def _result(name: str, *checks: tuple[str, float, float, str]) -> dict:
    rows = [{"name": f"{part}_{i}", "part": part, "points": got, "max_points": mx, "status": status}
            for i, (part, got, mx, status) in enumerate(checks)]
    return {"exercise": name, "score": sum(r["points"] for r in rows), "max_score": sum(r["max_points"] for r in rows),
            "started_at": "2025-03-01T08:00:00+00:00", "checks": rows}


def _bank() -> Bank:
    def st(i: str, topic: str, section: str) -> Statement:
        return Statement(id=i, text=f"statement {i}", answer=True, explanation="because", section=section, topic=topic)

    conv = Topic("convolution", "Convolution", 1, Path("convolution.yaml"),
                 tuple(st(f"c{i}", "convolution", "Convolution") for i in range(4)))
    gap = Topic("gap", "GAP", 2, Path("gap.yaml"), tuple(st(f"g{i}", "gap", "GlobalAvgPooling") for i in range(3)))
    return Bank(directory=Path("."), topics=(conv, gap))


def _card(box: int, due_in: timedelta) -> CardState:
    return CardState(box=box, due_at=NOW + due_in, last_answered_at=NOW - timedelta(days=1), last_correct=True,
                     reviews=box, lapses=0)


def test_statuses_from_the_last_result():
    conv = CATALOG[0]
    def progress(*checks):
        return exercise_progress(conv, ExerciseResult.from_dict(_result("conv", *checks)))

    assert exercise_progress(conv, None).status == NOT_STARTED
    assert progress(("a", 0, 2, "not_implemented"), ("b", 0, 3, "not_implemented")).status == NOT_STARTED
    part = progress(("a", 2, 2, "passed"), ("b", 0, 3, "failed"))
    assert part.status == PARTIAL and part.open_part == "b" and part.score == 2
    assert progress(("a", 2, 2, "passed"), ("b", 3, 3, "passed")).status == PASSED


def test_mastery_and_due_per_topic():
    states = {"c0": _card(4, timedelta(days=3)), "c1": _card(2, -timedelta(hours=1)), "c2": _card(1, timedelta(hours=5)),
              "g0": _card(5, -timedelta(days=2))}
    p = build_progress({}, catalog=CATALOG, bank=_bank(), states=states, now=NOW)
    conv, gap = p.topics
    assert (conv.statements, conv.seen, conv.mastered, conv.due_now) == (4, 3, 1, 1)
    assert (gap.statements, gap.seen, gap.mastered, gap.due_now) == (3, 1, 1, 1)
    assert p.due_now == 2
    assert p.next_due == NOW + timedelta(hours=5)
    text = "\n".join(progress_lines(p))
    assert "1/4" in text and "1 due now" in text and "2 statement(s) due for revision now" in text


def test_next_steps_in_order_of_usefulness():
    bank = _bank()
    due = {"c0": _card(2, -timedelta(hours=1))}
    partial = {"conv": _result("conv", ("a", 2, 2, "passed"), ("b", 0, 3, "failed"))}
    steps = build_progress(partial, catalog=CATALOG, bank=bank, states=due, now=NOW).next_steps
    assert steps[0].startswith("Finish conv (2/5)") and "grade hint conv b" in steps[0]
    assert steps[1].startswith("Revise 1 quiz statement(s)")
    assert steps[2].startswith("Start gap")
    passed = {"conv": _result("conv", ("a", 2, 2, "passed"), ("b", 3, 3, "passed"))}
    steps = build_progress(passed, catalog=CATALOG, bank=bank, states={}, now=NOW).next_steps
    assert steps[0].startswith("Start gap") and "grade quiz convolution" in steps[1]
    done = {**passed, "gap": _result("gap", ("c", 4, 4, "passed"))}
    steps = build_progress(done, catalog=CATALOG, bank=None, states={}, now=NOW).next_steps
    assert steps == ("Every exercise passed and nothing is due. Compare your code with the references: `grade solution NAME`.",)


def test_no_quiz_bank_is_said_plainly():
    p = build_progress({}, catalog=CATALOG, bank=None, now=NOW, quiz_note="This course has no quiz bank.")
    assert "This course has no quiz bank." in "\n".join(progress_lines(p))


def test_progress_shows_the_last_score_and_the_best_when_it_was_higher():
    results = {"conv": _result("conv", ("a", 2, 2, "passed"), ("b", 0, 3, "failed"))}
    progress = build_progress(results, catalog=CATALOG, now=NOW, best={"conv": 5.0})
    conv = progress.exercises[0]
    assert (conv.score, conv.best) == (2, 5.0)
    line = next(line for line in progress_lines(progress) if line.strip().startswith("conv"))
    assert "2/5" in line and "best 5" in line
    same = build_progress(results, catalog=CATALOG, now=NOW, best={"conv": 2.0})
    line = next(line for line in progress_lines(same) if line.strip().startswith("conv"))
    assert "best" not in line
