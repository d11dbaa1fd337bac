"""The HTML class report: self-contained, escaped, complete, and loading cleanly in headless Chromium."""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import io
import re
from pathlib import Path

import pytest

from conftest import needs_chromium
from grader.instructor.classdata import ClassResults
from grader.instructor.demo import demo_class
from grader.instructor.report import TEMPLATES, render_report

EVIL = "<script>alert('pwned')</script>"


@pytest.fixture(scope="module")
def class_results() -> ClassResults:
    docs = demo_class(30, seed=7, exercises=["conv", "pooling"])
    docs[0]["student"] = f"mallory{EVIL}"
    check = docs[1]["exercises"][0]["checks"][0]
    check.update(status="failed", points=0, message=f"printed {EVIL} & <b>bold</b>")
    docs[1]["exercises"][0]["score"] = sum(c["points"] for c in docs[1]["exercises"][0]["checks"])
    docs[1]["exercises"][0]["notices"] = [f"output during x: {EVIL}"]
    docs[2]["problems"] = [f"several conv.py{EVIL}"]
    return ClassResults(docs)


@pytest.fixture(scope="module")
def page(class_results) -> str:
    return render_report(class_results, title=f"Class {EVIL}")


def test_untrusted_text_is_escaped(page):
    assert EVIL not in page
    assert page.count("&lt;script&gt;alert(") >= 5  # title, id (twice), message, notice, problem
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert len(re.findall(r"<script\b", page)) == 1  # the report's own, and no other


def test_self_contained_and_locked_down(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert "default-src 'none'" in page and f"script-src 'sha256-{digest}'" in page


def test_every_section_is_there(page, class_results):
    for anchor in ('id="glance"', 'id="quiz"', 'id="students"', "<svg", 'id="student-table"', 'id="quiz-items"',
                   "Pass rate per part", "Checks failed most often", "Named mistakes seen most often", "KR-20",
                   "Statements most often missed", "Diagnoses seen most often", 'id="diagnoses"'):
        assert anchor in page, anchor
    for i in range(1, 31):
        assert f'id="student-{i}"' in page and f'href="#student-{i}"' in page
    check_rows = sum(len(e["checks"]) for s in class_results.students for e in s["exercises"])
    assert page.count('class="status status-') == check_rows
    findings = sum(len(c["diagnosis"]) for s in class_results.students for e in s["exercises"] for c in e["checks"])
    assert findings and page.count('<p class="diagnosis">') == findings  # under each check of the student sections


def test_the_quiz_section_says_its_results_are_formative(page):
    quiz = page[page.index('<section id="quiz">'):page.index('<section id="students">')]
    text = " ".join(re.sub(r"<[^>]+>", " ", quiz).split())
    assert "These results are formative" in text
    assert "for a summative quiz, export the bank ( grade quiz export --format moodle-xml or gift )" in text


def test_student_sections_collapse_and_problems_are_flagged(page, class_results):
    assert page.count('<details class="student" id="student-') == 30
    assert '<details class="student" id="student-1" open' not in page
    assert "Submissions with problems" in page and "1 problem</span>" in page
    table = page.split('id="student-table"', 1)[1].split("</tbody>", 1)[0]
    assert table.count('class="num flag"') == 1  # one student has a problem: its count is flagged


def test_numbers_are_formatted_and_words_agree():
    from grader.instructor.report import num, pct, plural

    assert (pct(0.245), pct(1.0), pct(float("nan"))) == ("24.5 %", "100.0 %", "–")
    assert (num(24.5), num(18.0), num(10 / 3), num(7), num(0.123456, 4)) == ("24.5", "18", "3.33", "7", "0.1235")
    assert (plural(1, "student"), plural(2, "student"), plural(0, "student")) == ("1 student", "2 students",
                                                                                    "0 students")
    one = render_report(ClassResults(demo_class(1, seed=3, exercises=["conv"])))
    assert "1 student &middot;" in one and "1 students" not in one
    assert re.search(r"<b>\d+\.\d %</b>", one)  # the mean, with one decimal


def test_not_implemented_is_not_a_failure_but_a_non_attempt():
    docs = demo_class(4, seed=5, exercises=["pooling"])
    for doc in docs[:3]:  # three students never touched pooling
        (e,) = doc["exercises"]
        for c in e["checks"]:
            c.update(status="not_implemented", points=0, message="not implemented")
        e["score"] = doc["score"] = 0
    page = render_report(ClassResults(docs))
    failures = page.split("Checks failed most often", 1)[1].split("</table>", 1)[0]
    assert "not_implemented" not in failures and "/ 3<" not in failures
    rates = page.split("Pass rate per exercise", 1)[1].split("</table>", 1)[0]
    assert "3 students</td>" in rates


def test_templates_are_j2_files():
    names = sorted(p.name for p in TEMPLATES.iterdir())
    assert {"report.html.j2", "_student.html.j2", "_style.css.j2", "_script.js.j2", "_histogram.svg.j2"} <= set(names)
    assert all(n.endswith(".j2") for n in names)


@needs_chromium
def test_report_loads_in_chromium_without_errors(page, tmp_path, browser):
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    url = report.as_uri()
    shot, messages, dom = browser.load(url + "#sort=student-table:2:desc")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    # The page's own script ran (data-ready), reported no error, and the browser logged no console message
    # (a CSP violation or an uncaught exception would be one).
    assert 'data-ready="1"' in dom
    assert re.search(r'<pre id="js-errors"></pre>', dom), re.search(r'<pre id="js-errors">.*?</pre>', dom, re.S).group(0)
    assert not messages
    # ... and sorted the students by share, highest first, from the link.
    body = dom.split('id="student-table"', 1)[1].split("</tbody>", 1)[0]
    shares = [float(v) for v in re.findall(r'<td class="num" data-sort="([0-9.]+)">\d+\.\d %</td>', body)]
    assert len(shares) == 30 and shares == sorted(shares, reverse=True)
    # A link to a student opens that student's collapsed section.
    _, messages, dom = browser.load(url + "#student-3")
    assert re.search(r'<details class="student" id="student-3" open=""', dom) and not messages
    assert not re.search(r'<details class="student" id="student-4" open', dom)


TRANSPOSED = ("the right values with the axes permuted: yours = expected.permute(0, 1, 3, 2), the layout (N, C, W, H) "
              "where (N, C, H, W) is expected (height and width swapped)")
STRIDE = "dimension 2 (height) is {}, expected {} ({} more): the stride (2) is not applied"


def _diagnosed(docs):
    """Copies of the first five students: three with the transposed layout in conv2d (in one or two checks), two
    of them also with the ignored stride (other sizes in other checks), nobody else with a diagnosis."""
    docs = copy.deepcopy(docs[:5])
    for doc in docs:
        for e in doc["exercises"]:
            for c in e["checks"]:
                c["diagnosis"] = []
    conv2d = [[c for c in doc["exercises"][0]["checks"] if c["part"] == "conv2d"] for doc in docs]
    findings = [[[TRANSPOSED], [TRANSPOSED, STRIDE.format(6, 3, 3)]], [[TRANSPOSED, STRIDE.format(4, 2, 2)]], [[TRANSPOSED]]]
    for checks, texts in zip(conv2d, findings):
        for check, found in zip(checks, texts):
            check.update(status="failed", points=0, diagnosis=[{"kind": "shape" if t.startswith("dim") else "layout", "text": t}
                                                               for t in found])
    return docs


def test_report_command_writes_html_csv_and_junit(class_results, tmp_path):
    import json

    from click.testing import CliRunner

    from grader.cli import cli

    results = tmp_path / "results"
    results.mkdir()
    for i, doc in enumerate(_diagnosed(class_results.students)):
        (results / f"s{i}.json").write_text(json.dumps(doc))
    (results / "_batch.json").write_text("{}")  # the batch's own file: left out
    (results / "broken.json").write_text("{not json")
    bad = copy.deepcopy(class_results.students[5])
    bad["exercises"][0]["checks"][0]["diagnosis"] = ["transposed"]
    (results / "bad.json").write_text(json.dumps(bad))
    out = tmp_path / "report"
    run = CliRunner().invoke(cli, ["report", str(results), "--html", f"{out}.html", "--csv", f"{out}.csv",
                                   "--junit", f"{out}.xml"])
    assert run.exit_code == 0, run.output
    assert "left out broken.json" in run.output and "(5 students)" in run.output
    assert "left out bad.json: conv: check 'output_size_values': 'diagnosis' must be a list" in run.output
    html = Path(f"{out}.html").read_text()
    assert html.count('<details class="student"') == 5
    # The aggregated lines: the most common first, each student once, with the notes' section.
    table = html.split('id="diagnoses"', 1)[1].split("</table>", 1)[0]
    rows = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in table.split("<tr>")[2:]]
    assert rows[0].startswith("3 students: layout in conv / conv2d (checks ") and "height and width swapped" in rows[0]
    assert rows[0].endswith("swapped) Convolution")
    assert rows[1].startswith("2 students: shape in conv / conv2d (") and "2 wordings that differ in their numbers" in rows[1]
    assert STRIDE.format(6, 3, 3) in rows[1] and len(rows) == 2
    csv_rows = list(csv.DictReader(io.StringIO(Path(f"{out}.csv").read_text())))
    assert len(csv_rows) == 5 and [r["diagnoses"].count(" | ") + 1 if r["diagnoses"] else 0 for r in csv_rows] == [2, 2, 1, 0, 0]
    assert csv_rows[2]["diagnoses"] == f"conv / conv2d (layout): {TRANSPOSED}"
    junit = Path(f"{out}.xml").read_text()
    assert junit.count("<testsuite ") == 5 and junit.count("diagnosis (layout): the right values with the axes permuted") == 4
    assert CliRunner().invoke(cli, ["report", str(results)]).exit_code == 2  # nothing to write


def test_the_report_names_the_sandbox_and_flags_code_that_ran_without_one(class_results):
    docs = copy.deepcopy(class_results.students[:3])
    assert "sandbox landlock-abi-7" in render_report(ClassResults(docs))
    assert "without a sandbox" not in render_report(ClassResults(docs))
    docs[0]["sandbox"] = "none"
    page = render_report(ClassResults(docs))
    assert "1 student: code ran without a sandbox" in page
    assert "sandbox landlock-abi-7 (2), none (1)" in page
