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


def _student(sid, checks, quiz=None, exercise="pooling"):
    ex = {"schema": 1, "exercise": exercise, "path": "", "score": sum(c["points"] for c in checks),
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


# --- diagnoses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    # a case's sizes, a student's factor, offset, index or list: the same finding
    ("dimension 2 (height) is 6, expected 3 (3 more): the stride (2) is not applied",
     "dimension 2 (height) is 4, expected 2 (2 more): the stride (2) is not applied"),
    ("every value is 1/4 of the expected one: divided by 4 once too often (a mean where a sum was needed?)",
     "every value is 1/9 of the expected one: divided by 9 once too often (a mean where a sum was needed?)"),
    ("every value is off by the same +0.1 (yours = expected + 0.1): a constant term is added or missing",
     "every value is off by the same +0.3127 (yours = expected + 0.3127): a constant term is added or missing"),
    ("the relative error is ~3e-07: about float32's precision", "the relative error is ~1e-08: about float32's precision"),
    ("4 elements where 5 are expected: [3, 7, ...] in yours are not expected and [4] is missing",
     "1 elements where 5 are expected: [2] in yours is not expected and [1, 4] are missing"),
    ("laid out as (N, H, W, C) (shape (2, 6, 6, 4)) and then reshaped to (2, 4, 6, 6)",
     "laid out as (N, H, W, C) (shape (1, 5, 5, 2)) and then reshaped to (1, 2, 5, 5)"),
    # singular and plural, and a clause said once per piece
    ("only channel 1 of 4 is wrong; 0 and 2-3 are right", "only channels 0-1 of 4 are wrong; 2-3 are right"),
    ("plus 1 row at the bottom and 1 column at the right", "plus 2 rows at the bottom and 2 columns at the right"),
    ("in another order: yours 0 is the expected 1; yours 1 is the expected 0; yours 2-3 are the expected 2-3: put them",
     "in another order: yours 0-1 are the expected 2-3; yours 2-3 are the expected 0-1: put them"),
    ("passes every case with stride 1 (2) and fails every case with stride > 1 (3): is the stride applied?",
     "passes every case with stride 1 (1) and fails every case with stride > 1 (4): is the stride applied?"),
])
def test_diagnosis_key_groups_the_same_finding_with_other_numbers(a, b):
    assert analysis.diagnosis_key("kind", a) == analysis.diagnosis_key("kind", b)


@pytest.mark.parametrize("a, b", [
    # numbers that are the finding: which axes, which dimension, which element, which input, the sign
    ("yours = expected.permute(0, 2, 1)", "yours = expected.permute(1, 0, 2)"),
    ("the right values flipped along dimension 2: yours = expected.flip(2)",
     "the right values flipped along dimension 3: yours = expected.flip(3)"),
    ("dimension 0 is 5, expected 4 (1 more)", "dimension 1 is 5, expected 4 (1 more)"),
    ("result[0]: every value is 0", "result[1]: every value is 0"),
    ("the output is right, but no gradient reaches argument 0", "the output is right, but no gradient reaches argument 1"),
    ("every value is off by the same +0.5", "every value is off by the same -0.5"),
    # words and names
    ("yours holds int64 indices where float32 values are expected",
     "yours holds int64 indices where float64 values are expected"),
    ("every value is 1/9 of the expected one: divided by kH*kW = 9", "every value is 1/3 of the expected one: divided by kW = 3"),
    ("dimension 2 (height) is 6, expected 3 (3 more)", "dimension 2 (height) is 3, expected 6 (3 fewer)"),
])
def test_diagnosis_key_keeps_what_tells_findings_apart(a, b):
    assert analysis.diagnosis_key("kind", a) != analysis.diagnosis_key("kind", b)
    assert analysis.diagnosis_key("layout", a) != analysis.diagnosis_key("shape", a)


def test_diagnosis_key_groups_real_findings_on_other_inputs():
    """The grader's own texts: one wrong implementation on the inputs of several checks gives one key; another
    wrong implementation on the same inputs gives another."""
    import torch

    from grader.engine.diagnose import CaseFacts, diagnose_tensor

    def findings(wrong, n, c):
        expected = torch.randn(2, c, n, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
        return {analysis.diagnosis_key(d.kind, d.text) for d in diagnose_tensor(wrong(expected), expected, CaseFacts({}))}

    transposed = [findings(lambda e: e.transpose(2, 3), n, c) for n, c in ((4, 2), (5, 3), (7, 4))]
    scaled = [findings(lambda e, k=k: e / k, n, 3) for n, k in ((4, 4), (6, 9), (5, 16))]
    channels = [findings(lambda e: e.roll(1, dims=1), n, c) for n, c in ((4, 3), (5, 4), (6, 5))]
    for same in (transposed, scaled, channels):
        assert len(same[0]) == 1 and same[0] == same[1] == same[2], same
    assert len({*transposed[0], *scaled[0], *channels[0]}) == 3


def _diag(kind, text):
    return {"kind": kind, "text": text}


TRANSPOSED = "the right values with the axes permuted: yours = expected.permute(0, 1, 3, 2), the layout (N, C, W, H)"
STRIDE = "dimension 2 (height) is {}, expected {} ({} more): the stride (2) is not applied"
SCALED = "every value is 1/{0} of the expected one: divided by {0} once too often"


def _failed(name, part, *diagnoses):
    return {**_check(name, part, "failed"), "diagnosis": list(diagnoses)}


DIAGNOSED = ClassResults([
    # a: the same stride finding in two checks of conv2d (other sizes): once for a
    _student("a", [_failed("fwd", "conv2d", _diag("shape", STRIDE.format(6, 3, 3))),
                   _failed("bias", "conv2d", _diag("shape", STRIDE.format(4, 2, 2)), _diag("layout", TRANSPOSED))],
             exercise="conv"),
    _student("b", [_failed("fwd", "conv2d", _diag("shape", STRIDE.format(6, 3, 3))), _check("bias", "conv2d", "passed")],
             exercise="conv"),
    _student("c", [_failed("fwd", "conv2d", _diag("arithmetic", SCALED.format(4))),
                   _failed("bias", "conv2d", _diag("shape", STRIDE.format(4, 2, 2)))], exercise="conv"),
    # the same words in another part, and in an exercise the catalogue does not know
    _student("d", [_failed("fwd", "conv_transpose2d", _diag("layout", TRANSPOSED)),
                   _failed("bias", "conv2d", _diag("arithmetic", SCALED.format(9)))], exercise="conv"),
    _student("e", [_failed("fwd", "conv2d", _diag("layout", TRANSPOSED))], exercise="homework"),
    _student("f", [_check("fwd", "conv2d", "passed")], exercise="conv"),
])


def test_frequent_diagnoses_count_students_per_part_and_finding():
    rows = analysis.frequent_diagnoses(DIAGNOSED)
    found = [(r.exercise, r.part, r.kind, r.count) for r in rows]
    assert found == [("conv", "conv2d", "shape", 3), ("conv", "conv2d", "arithmetic", 2), ("conv", "conv2d", "layout", 1),
                     ("conv", "conv_transpose2d", "layout", 1), ("homework", "conv2d", "layout", 1)]
    stride = rows[0]
    assert stride.checks == ("fwd", "bias") and stride.wordings == 2
    assert stride.text == STRIDE.format(6, 3, 3)  # the wording found most often
    assert stride.section == "Convolution" and rows[-1].section == ""  # from the catalogue; unknown exercise: none
    scaled = rows[1]
    assert scaled.checks == ("fwd", "bias") and scaled.wordings == 2 and scaled.text == SCALED.format(4)
    assert [r.kind for r in analysis.frequent_diagnoses(DIAGNOSED, top=2)] == ["shape", "arithmetic"]
    assert analysis.frequent_diagnoses(CLASS) == []  # results without diagnoses (older ones too) have none


def test_student_diagnoses_lists_each_finding_of_a_part_once():
    found = analysis.student_diagnoses(DIAGNOSED.students[0])
    assert [(ex, part, check, d["kind"]) for ex, part, check, d in found] == [
        ("conv", "conv2d", "fwd", "shape"), ("conv", "conv2d", "bias", "layout")]
