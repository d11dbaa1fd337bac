"""Exports of a class's results: CSV for spreadsheets, JUnit XML for CI systems, Gradescope's results.json.

- CSV: one row per student: `student`, `score`, `max_score`, `percent`, one column per exercise (its
  score), one `quiz:<topic>` column per quiz topic (the share of first answers that were right, in
  percent; empty when the student answered none), `quiz_answered`, `problems` (what the instructor
  should look at, e.g. an empty submission; joined by "; ") and `diagnoses` (what kind of wrong the
  grader found: "exercise / part (kind): text", each finding of a part once, as the class report
  counts them, joined by " | "). Cells that a spreadsheet would run as a formula (starting with
  = + - @) are prefixed with a quote.
- JUnit XML: `<testsuites>` with one `<testsuite name=student>` per student and one `<testcase
  classname="student.exercise.part" name=check>` per check; failed, not implemented and forbidden
  are `<failure type=status>`, error, timeout and crashed are `<error type=status>`; their text is
  the message, then the named mistake and each diagnosis ("diagnosis (kind): text").
- Gradescope (`gradescope_results`): the fields of Gradescope's autograder specification,
  https://gradescope-autograders.readthedocs.io/en/latest/specs/ - `score`, `output`,
  `execution_time`, `stdout_visibility`, and `tests`, one per check with `name`, `number`, `score`,
  `max_score`, `status` ("passed"/"failed"), `output` and `visibility`. `validate_gradescope` checks
  a document against the documented fields.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from typing import Any

from grader.instructor.analysis import quiz_share_by_topic, student_diagnoses
from grader.instructor.classdata import ClassResults
from grader.engine.results import write_text_atomic
from grader.views.terminal import notes_pointer

# --- Gradescope's documented fields (autograder specification, "Output format") ----------------
GRADESCOPE_TOP_FIELDS = frozenset({"score", "execution_time", "output", "output_format", "test_output_format",
                                   "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
                                   "leaderboard"})
GRADESCOPE_TEST_FIELDS = frozenset({"score", "max_score", "status", "name", "name_format", "number", "output",
                                    "output_format", "tags", "visibility", "extra_data"})
GRADESCOPE_VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
GRADESCOPE_STATUS = ("passed", "failed")
GRADESCOPE_FORMATS = ("text", "html", "simple_format", "md", "ansi")

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FAILURE_STATUSES = {"failed", "not_implemented", "forbidden"}


write_text = write_text_atomic  # the one atomic writer (grader.engine.results)


# --- CSV ----------------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _num(x: float) -> str:
    return f"{x:.6g}" if not math.isnan(x) else ""


def _kind(kind: str) -> str:
    return kind.replace("_", " ")  # across_cases -> across cases, as the terminal and the report say it


def class_csv(results: ClassResults) -> str:
    """One row per student (see the module docstring)."""
    exercises, topics = results.exercise_names, results.quiz_topics
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", "percent", *exercises, *[f"quiz:{t}" for t in topics],
                     "quiz_answered", "problems", "diagnoses"])
    for s in results.students:
        by_ex = {e["exercise"]: e for e in s["exercises"]}
        quiz = quiz_share_by_topic(s)
        row = [_cell(s["student"]), _num(s["score"]), _num(s["max_score"]),
               _num(100 * s["score"] / s["max_score"]) if s["max_score"] else ""]
        row += [_num(by_ex[n]["score"]) if n in by_ex else "" for n in exercises]
        row += [_num(100 * quiz[t][0] / quiz[t][1]) if t in quiz and quiz[t][1] else "" for t in topics]
        row.append(sum(n for _, n in quiz.values()))
        row.append(_cell("; ".join(s.get("problems") or [])))
        row.append(_cell(" | ".join(f"{ex} / {part} ({_kind(d['kind'])}): {d['text']}"
                                    for ex, part, _, d in student_diagnoses(s))))
        writer.writerow(row)
    return buffer.getvalue()


# --- JUnit XML ----------------------------------------------------------------------------------
def _xml_text(text: str) -> str:
    return _XML_ILLEGAL.sub("?", text)


def junit_xml(results: ClassResults) -> str:
    """JUnit XML of every student's checks (see the module docstring)."""
    root = ET.Element("testsuites", name="cnn-grader")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for s in results.students:
        suite = ET.SubElement(root, "testsuite", name=_xml_text(s["student"]))
        counts = {"tests": 0, "failures": 0, "errors": 0}
        time_s = 0.0
        for e in s["exercises"]:
            time_s += float(e.get("duration_s") or 0)
            for c in e["checks"]:
                counts["tests"] += 1
                case = ET.SubElement(suite, "testcase", classname=_xml_text(f"{s['student']}.{e['exercise']}.{c['part']}"),
                                     name=_xml_text(c["name"]))
                if c["status"] == "passed":
                    continue
                tag = "failure" if c["status"] in _FAILURE_STATUSES else "error"
                counts["failures" if tag == "failure" else "errors"] += 1
                message = c.get("message") or c["status"]
                if c.get("mistake"):
                    message += f"\nlikely mistake: {c['mistake']['name']}: {c['mistake']['explanation']}"
                message += "".join(f"\ndiagnosis ({_kind(d['kind'])}): {d['text']}" for d in c.get("diagnosis") or [])
                node = ET.SubElement(case, tag, type=c["status"], message=_xml_text(message.splitlines()[0][:500]))
                node.text = _xml_text(message)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{time_s:.3f}")
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- Gradescope ---------------------------------------------------------------------------------
def _check_output(c: dict[str, Any]) -> str:
    lines = [f"{c['status']}: {c['message']}" if c.get("message") else c["status"]]
    m = c.get("mistake")
    if m:
        lines.append(f"Likely mistake, {m['name']}: {m['explanation']} (notes: "
                     f"{notes_pointer(m['section'], m.get('subsection', ''))})")
    lines += [f"Diagnosis: {d['text']}" for d in c.get("diagnosis") or []]
    return "\n".join(lines)


def gradescope_results(student: dict[str, Any], visibility: str = "visible") -> dict[str, Any]:
    """Gradescope's results.json for one per-student result document (see `classdata`)."""
    if visibility not in GRADESCOPE_VISIBILITY:
        raise ValueError(f"visibility {visibility!r}: Gradescope accepts {', '.join(GRADESCOPE_VISIBILITY)}")
    tests, seconds = [], 0.0
    lines = [f"Problem: {p}" for p in student.get("problems", [])]  # first: "no .py files found" explains the rest
    for i, e in enumerate(student["exercises"], 1):
        seconds += float(e.get("duration_s") or 0)
        lines.append(f"{e['exercise']}: {e['score']:g}/{e['max_score']:g}")
        for j, c in enumerate(e["checks"], 1):
            tests.append({
                "name": f"{e['exercise']} / {c['part']} / {c['name']}",
                "number": f"{i}.{j}",
                "score": float(c["points"]),
                "max_score": float(c["max_points"]),
                "status": "passed" if c["status"] == "passed" else "failed",
                "output": _check_output(c),
                "visibility": visibility,
            })
        for notice in e.get("notices", [])[:5]:
            lines.append(f"  note: {notice[:500]}")
    lines.append(f"sandbox: {student.get('sandbox', 'unknown')}")
    return {
        "score": float(student["score"]),
        "execution_time": int(round(seconds)),
        "output": "\n".join(lines),
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def validate_gradescope(doc: Any) -> list[str]:
    """What in `doc` departs from Gradescope's documented results.json fields (empty when none)."""
    problems = []
    if not isinstance(doc, dict):
        return ["the document must be a JSON object"]
    problems += [f"unknown top-level field {k!r}" for k in sorted(set(doc) - GRADESCOPE_TOP_FIELDS)]
    tests = doc.get("tests", [])
    if "score" not in doc and not (tests and all("score" in t for t in tests if isinstance(t, dict))):
        problems.append("'score' is required at the top level unless every test has one")
    if "score" in doc and not isinstance(doc["score"], (int, float)):
        problems.append("'score' must be a number")
    if not isinstance(tests, list):
        return problems + ["'tests' must be a list"]
    for key in ("visibility", "stdout_visibility"):
        if key in doc and doc[key] not in GRADESCOPE_VISIBILITY:
            problems.append(f"{key} {doc[key]!r} is not one of {GRADESCOPE_VISIBILITY}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in doc and doc[key] not in GRADESCOPE_FORMATS:
            problems.append(f"{key} {doc[key]!r} is not one of {GRADESCOPE_FORMATS}")
    for i, t in enumerate(tests):
        if not isinstance(t, dict):
            problems.append(f"tests[{i}] must be an object")
            continue
        problems += [f"tests[{i}]: unknown field {k!r}" for k in sorted(set(t) - GRADESCOPE_TEST_FIELDS)]
        for key in ("score", "max_score"):
            if key in t and not isinstance(t[key], (int, float)):
                problems.append(f"tests[{i}].{key} must be a number")
        if "status" in t and t["status"] not in GRADESCOPE_STATUS:
            problems.append(f"tests[{i}].status {t['status']!r} is not one of {GRADESCOPE_STATUS}")
        if "visibility" in t and t["visibility"] not in GRADESCOPE_VISIBILITY:
            problems.append(f"tests[{i}].visibility {t['visibility']!r} is not one of {GRADESCOPE_VISIBILITY}")
        for key in ("name", "output", "number"):
            if key in t and not isinstance(t[key], str):
                problems.append(f"tests[{i}].{key} must be a string")
    return problems
