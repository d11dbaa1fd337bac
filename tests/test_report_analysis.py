"""The report's numbers: item analysis against hand-computed values, and the class summaries."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from grader.instructor import analysis
from grader.instructor.classdata import QUIZ_FORMAT, ClassResults

# 4 students x 3 items, a Guttman pattern: totals 3, 2, 1, 0.
SMALL = [[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]]


def test_facility_is_the_mean_item_score():
    np.testing.assert_allclose(analysis.facility(SMALL), [0.75, 0.5, 0.25])


def test_discrimination_is_the_item_rest_correlation_by_hand():
    # item 0: x = [1,1,1,0], rest = [2,1,0,0]: cov 0.1875, var x 0.1875, var rest 0.6875 -> sqrt(3/11)
    # item 1: x = [1,1,0,0], rest = [2,1,1,0]: cov 0.25, var x 0.25, var rest 0.5 -> sqrt(1/2)
    np.testing.assert_allclose(analysis.discrimination(SMALL), [math.sqrt(3 / 11), math.sqrt(0.5), math.sqrt(3 / 11)])


def test_kr20_by_hand():
    # p = .75 .5 .25, sum pq = 0.625; totals 3 2 1 0 have population variance 1.25 -> 3/2 * (1 - 0.5)
    assert analysis.kr20(SMALL) == pytest.approx(0.75)


def test_discrimination_matches_moodle_rest_score_on_complete_data():
    rng = np.random.default_rng(0)
    m = (rng.random((40, 9)) < rng.random(9)).astype(float)
    total = m.sum(axis=1)
    moodle = [np.corrcoef(m[:, i], total - m[:, i])[0, 1] for i in range(m.shape[1])]
    np.testing.assert_allclose(analysis.discrimination(m), moodle, rtol=1e-12)


def test_kr20_equals_cronbach_alpha():
    rng = np.random.default_rng(1)
    m = (rng.random((25, 7)) < 0.6).astype(float)
    k = m.shape[1]
    alpha = k / (k - 1) * (1 - m.var(axis=0, ddof=1).sum() / m.sum(axis=1).var(ddof=1))
    assert analysis.kr20(m) == pytest.approx(alpha, rel=1e-12)


def test_missing_answers_are_left_out():
    m = np.array(SMALL, dtype=float)
    m[0, 2] = np.nan  # student 0 never answered item 2
    fac = analysis.facility(m)
    assert fac[2] == 0.0  # the three who answered it were all wrong
    assert math.isnan(analysis.discrimination(m)[2])  # no spread among them
    with pytest.raises(ValueError, match="complete"):
        analysis.kr20(m)


def test_undefined_values_are_nan_not_errors():
    assert math.isnan(analysis.kr20([[1], [0]]))  # one item
    assert math.isnan(analysis.kr20([[1, 1], [1, 1]]))  # no variance
    assert math.isnan(analysis.discrimination([[1, 0], [1, 1]])[0])  # everybody right on item 0
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        analysis.facility([[0.5, 1]])
    with pytest.raises(ValueError, match="2-D"):
        analysis.facility([1, 0])


def test_histogram_bins_and_the_top_score():
    assert analysis.histogram([0.0, 0.05, 0.1, 0.99, 1.0], bins=10) == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]


# --- class summaries on a tiny hand-made class --------------------------------------------------
def _check(name, part, status, points=2, mistake=None):
    return {"name": name, "part": part, "points": points if status == "passed" else 0, "max_points": points,
            "status": status, "message": "" if status == "passed" else "differs", "mistake": mistake}


def _student(sid, checks, quiz=None):
    ex = {"schema": 1, "exercise": "pooling", "path": "", "score": sum(c["points"] for c in checks),
          "max_score": sum(c["max_points"] for c in checks), "seed": 0, "grader_version": "x",
          "started_at": "", "duration_s": 1.0, "notices": [], "checks": checks}
    return {"schema": 1, "student": sid, "submission": sid, "score": ex["score"], "max_score": ex["max_score"],
            "seed": 0, "grader_version": "x", "graded_at": "", "exercises": [ex], "quiz": quiz, "problems": []}


def _quiz(answers):
    return {"format": QUIZ_FORMAT, "version": 1, "statements": {
        sid: {"topic": sid.split("-")[0], "first_correct": bool(v)} for sid, v in answers.items()}}


MISTAKE = {"name": "ceil-mode", "explanation": "rounded up", "section": "Convolution"}
CLASS = ClassResults([
    _student("a", [_check("fwd", "max_pool2d", "passed"), _check("err", "errors", "passed")],
             _quiz({"gap-x": 1, "gap-y": 1, "conv-z": 1})),
    _student("b", [_check("fwd", "max_pool2d", "failed", mistake=MISTAKE), _check("err", "errors", "passed")],
             _quiz({"gap-x": 1, "gap-y": 0, "conv-z": 0})),
    _student("c", [_check("fwd", "max_pool2d", "timeout"), _check("err", "errors", "failed")],
             _quiz({"gap-x": 0, "gap-y": 0})),
])


def test_pass_rates_per_exercise_and_part():
    (rate,) = analysis.exercise_rates(CLASS)
    assert (rate.label, rate.passed, rate.total) == ("pooling", 1, 3)
    assert rate.mean_share == pytest.approx((4 + 2 + 0) / 12)
    parts = {r.label: (r.passed, r.total) for r in analysis.part_rates(CLASS)}
    assert parts == {"pooling / max_pool2d": (1, 3), "pooling / errors": (2, 3)}


def test_frequent_failures_and_mistakes():
    top = analysis.frequent_failures(CLASS)
    assert [(f.check, f.count, f.total) for f in top] == [("fwd", 2, 3), ("err", 1, 3)]
    idle = ClassResults(CLASS.students + [_student("d", [_check("fwd", "max_pool2d", "not_implemented"),
                                                             _check("err", "errors", "not_implemented")])])
    assert [(f.check, f.count, f.total) for f in analysis.frequent_failures(idle)] == [("fwd", 2, 3), ("err", 1, 3)]
    assert analysis.exercise_rates(idle)[0].not_attempted == 1 and analysis.exercise_rates(CLASS)[0].not_attempted == 0
    assert top[0].statuses in ("failed 1, timeout 1", "timeout 1, failed 1")
    (m,) = analysis.frequent_mistakes(CLASS)
    assert (m.name, m.count, m.section) == ("ceil-mode", 1, "Convolution")


def test_quiz_analysis_marks_notes_disagreeing_and_uses_common_items_for_kr20():
    bank = SimpleNamespace(
        statements=[SimpleNamespace(id=i) for i in ("gap-x", "gap-y", "conv-z")],
        get=lambda sid: SimpleNamespace(id=sid, topic=sid.split("-")[0], text=f"text of {sid}", answer=True,
                                        notes_disagree=sid == "gap-y"))
    q = analysis.analyse_quiz(CLASS, bank)
    assert q.students == 3
    assert [it.id for it in q.items] == ["gap-x", "gap-y", "conv-z"]
    by_id = {it.id: it for it in q.items}
    assert by_id["gap-y"].notes_disagree and not by_id["gap-x"].notes_disagree
    assert by_id["conv-z"].answered == 2 and by_id["conv-z"].facility == 0.5
    assert q.kr20_items == 2  # conv-z was not answered by c
    assert q.kr20 == pytest.approx(analysis.kr20([[1, 1], [1, 0], [0, 0]]))
    assert q.most_missed[0].id == "gap-y"  # facility 1/3, the lowest
    assert analysis.quiz_share_by_topic(CLASS.students[1]) == {"gap": (1, 2), "conv": (0, 1)}
