"""Exports: the class CSV, JUnit XML and Gradescope's results.json, against what each format documents."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from grader.instructor import exports
from grader.instructor.classdata import QUIZ_FORMAT, ClassResults


def _ex(name, checks):
    return {"schema": 1, "exercise": name, "path": f"s/{name}.py", "score": sum(c["points"] for c in checks),
            "max_score": sum(c["max_points"] for c in checks), "seed": 0, "grader_version": "x", "started_at": "",
            "duration_s": 1.25, "notices": ["output during fwd: hello"], "checks": checks}


def _c(name, part, status, points, message="", mistake=None, diagnosis=()):
    return {"name": name, "part": part, "points": points if status == "passed" else 0, "max_points": points,
            "status": status, "message": message, "mistake": mistake, "diagnosis": list(diagnosis)}


MISTAKE = {"name": "ceil-mode", "explanation": "Partial windows are kept.", "section": "Convolution"}
DIAGNOSIS = {"kind": "shape", "text": "dimension 2 (height) is 5, expected 4 (1 more)"}
ADA = {"schema": 1, "student": "ada", "submission": "ada.zip", "score": 6, "max_score": 10, "seed": 0,
       "grader_version": "x", "graded_at": "", "problems": ["two quiz files; used the newest"],
       "quiz": {"format": QUIZ_FORMAT, "version": 1, "statements": {
           "gap-a": {"topic": "gap", "first_correct": True}, "gap-b": {"topic": "gap", "first_correct": False},
           "conv-c": {"topic": "convolution", "first_correct": True}}},
       "exercises": [_ex("pooling", [_c("fwd", "max_pool2d", "passed", 4),
                                     _c("grad", "max_pool2d", "failed", 2, "output differs\n  at (0, 1)", MISTAKE, [DIAGNOSIS]),
                                     _c("err", "errors", "timeout", 2, "did not finish within 1 s")]),
                     _ex("conv", [_c("size", "conv2d_output_size", "passed", 2)])]}
EVE = {**ADA, "student": "=HYPERLINK(\"http://x\")", "submission": "eve", "quiz": None, "problems": [],
       "exercises": [_ex("pooling", [_c("fwd", "max_pool2d", "crashed", 4, "killed \x00\x1b[31m"),
                                     _c("grad", "max_pool2d", "not_implemented", 2),
                                     _c("err", "errors", "error", 2, "raised ValueError")])],
       "score": 0, "max_score": 8}
CLASS = ClassResults([ADA, EVE])


def test_csv_one_row_per_student_one_column_per_exercise_and_topic():
    rows = list(csv.DictReader(io.StringIO(exports.class_csv(CLASS))))
    assert list(rows[0]) == ["student", "score", "max_score", "percent", "conv", "pooling",
                             "quiz:convolution", "quiz:gap", "quiz_answered", "problems", "diagnoses"]
    ada = rows[0] if rows[0]["student"] == "ada" else rows[1]
    assert ada == {"student": "ada", "score": "6", "max_score": "10", "percent": "60", "conv": "2", "pooling": "4",
                   "quiz:convolution": "100", "quiz:gap": "50", "quiz_answered": "3",
                   "problems": "two quiz files; used the newest",
                   "diagnoses": "pooling / max_pool2d (shape): dimension 2 (height) is 5, expected 4 (1 more)"}
    eve = next(r for r in rows if r is not ada)
    assert eve["conv"] == "" and eve["quiz:gap"] == "" and eve["quiz_answered"] == "0" and eve["problems"] == ""
    assert eve["diagnoses"] == ""
    assert eve["student"].startswith("'=")  # a spreadsheet must not run it as a formula


def test_csv_diagnoses_each_finding_of_a_part_once():
    shifted = {"kind": "shape", "text": "dimension 2 (height) is 7, expected 6 (1 more)"}  # DIAGNOSIS, other sizes
    across = {"kind": "across_cases", "text": "passes every case with stride 1 (2) and fails every case with stride > 1 (3)"}
    bob = {**ADA, "student": "bob", "quiz": None, "problems": [],
           "exercises": [_ex("pooling", [_c("fwd", "max_pool2d", "failed", 4, "differs", None, [DIAGNOSIS, across]),
                                         _c("grad", "max_pool2d", "failed", 2, "differs", None, [shifted]),
                                         _c("err", "errors", "failed", 2, "differs", None, [shifted])])]}
    (row,) = csv.DictReader(io.StringIO(exports.class_csv(ClassResults([bob]))))
    assert row["diagnoses"].split(" | ") == [
        "pooling / max_pool2d (shape): dimension 2 (height) is 5, expected 4 (1 more)",
        "pooling / max_pool2d (across cases): passes every case with stride 1 (2) and fails every case with stride > 1 (3)",
        "pooling / errors (shape): dimension 2 (height) is 7, expected 6 (1 more)"]


def test_junit_one_case_per_check_with_failures_and_errors():
    text = exports.junit_xml(CLASS)
    root = ET.fromstring(text.encode())  # also proves the control characters were made XML-safe
    assert root.tag == "testsuites" and root.get("tests") == "7"
    assert (root.get("failures"), root.get("errors")) == ("2", "3")
    ada = root.find("testsuite[@name='ada']")
    assert [c.get("name") for c in ada.iter("testcase")] == ["fwd", "grad", "err", "size"]
    grad = ada.find("testcase[@name='grad']")
    assert grad.get("classname") == "ada.pooling.max_pool2d"
    failure = grad.find("failure")
    assert failure.get("type") == "failed" and failure.get("message") == "output differs"
    assert "ceil-mode" in failure.text and "at (0, 1)" in failure.text
    assert "diagnosis (shape): dimension 2 (height) is 5, expected 4 (1 more)" in failure.text
    assert ada.find("testcase[@name='err']/error").get("type") == "timeout"
    assert ada.find("testcase[@name='fwd']/failure") is None and ada.find("testcase[@name='fwd']/error") is None
    eve = root.find("testsuite[@name='=HYPERLINK(\"http://x\")']")
    assert eve.find("testcase[@name='grad']/failure").get("type") == "not_implemented"
    assert eve.find("testcase[@name='fwd']/error").text == "killed ??[31m"


def test_gradescope_results_use_only_documented_fields():
    doc = exports.gradescope_results(ADA, visibility="after_published")
    assert exports.validate_gradescope(doc) == []
    json.dumps(doc)  # serialisable as is
    assert doc["score"] == 6.0 and sum(t["score"] for t in doc["tests"]) == 6.0
    assert sum(t["max_score"] for t in doc["tests"]) == 10.0
    assert [t["status"] for t in doc["tests"]] == ["passed", "failed", "failed", "passed"]
    grad = doc["tests"][1]
    assert grad["name"] == "pooling / max_pool2d / grad" and grad["number"] == "1.2"
    assert "ceil-mode" in grad["output"] and "Convolution" in grad["output"]
    assert "Diagnosis: dimension 2 (height) is 5, expected 4 (1 more)" in grad["output"]
    assert {t["visibility"] for t in doc["tests"]} == {"after_published"}
    assert doc["output"].startswith("Problem: two quiz files")  # problems first: they explain the rest
    with pytest.raises(ValueError, match="visibility"):
        exports.gradescope_results(ADA, visibility="secret")


@pytest.mark.parametrize("bad, problem", [
    ({"score": 1, "tests": [], "grade": 3}, "unknown top-level field 'grade'"),
    ({"score": "1"}, "'score' must be a number"),
    ({"tests": [{"name": "a"}]}, "'score' is required"),
    ({"score": 1, "tests": [{"score": 1, "status": "ok"}]}, "status 'ok'"),
    ({"score": 1, "tests": [{"score": 1, "visibility": "public"}]}, "visibility 'public'"),
    ({"score": 1, "tests": [{"score": 1, "points": 2}]}, "unknown field 'points'"),
    ({"score": 1, "stdout_visibility": "always"}, "stdout_visibility"),
])
def test_gradescope_validator_catches_departures(bad, problem):
    assert any(problem in p for p in exports.validate_gradescope(bad))


def test_write_text_replaces_atomically(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    exports.write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
