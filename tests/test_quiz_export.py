"""`grade quiz export`: Moodle XML parsed back, GIFT and Anki CSV structure and escaping, JSON."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from quiz_fixtures import BANK, quiz_env, run_quiz_cli  # noqa: F401  (quiz_env is a fixture)

from grader.quiz.bank import load_bank
from grader.quiz.export import FORMATS, export_bank, gift_escape

SPECIAL = 'Alpha is true: {braces} # hash ~ tilde = equals \\ back <b>&amp;'


@pytest.fixture
def mini(quiz_env):
    return load_bank(quiz_env["bank"], use_cache=False)


def test_moodle_xml_parses_into_truefalse_questions_with_feedback(mini):
    root = ET.fromstring(export_bank(mini, "moodle-xml").encode("utf-8"))
    assert root.tag == "quiz"
    categories = [q.findtext("category/text") for q in root.findall("question[@type='category']")]
    assert categories == ["$course$/top/cnn-grader/alpha", "$course$/top/cnn-grader/beta"]
    questions = {q.findtext("name/text"): q for q in root.findall("question[@type='truefalse']")}
    assert set(questions) == {s.id for s in mini.statements}
    for s in mini.statements:
        q = questions[s.id]
        assert q.findtext("questiontext/text") == s.text
        assert q.find("questiontext").get("format") == "plain_text"
        assert q.findtext("idnumber") == s.id
        assert s.explanation in q.findtext("generalfeedback/text")
        answers = {a.findtext("text"): a for a in q.findall("answer")}
        assert set(answers) == {"true", "false"}
        right = "true" if s.answer else "false"
        wrong = "false" if s.answer else "true"
        assert (answers[right].get("fraction"), answers[wrong].get("fraction")) == ("100", "0")
        assert answers[right].findtext("feedback/text").startswith("Correct")
        assert answers[wrong].findtext("feedback/text").startswith("Not quite")
        assert [t.findtext("text") for t in q.findall("tags/tag")] == [s.topic, *s.tags]
    assert questions["alpha-true"].findtext("questiontext/text") == SPECIAL  # <, & and quotes round-trip
    assert questions["alpha-false"].findtext("generalfeedback/text").endswith(
        "(The notes say otherwise (by them, this is TRUE); the explanation says why the answer differs.)")
    assert questions["alpha-third"].findtext("generalfeedback/text") == "Third reason. Source: Third et al. (2020), sec. 1."


def _gift_unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def test_gift_escape():
    assert gift_escape("a~b=c#d{e}f:g\\h\ni") == "a\\~b\\=c\\#d\\{e\\}f\\:g\\\\h\\ni"
    for text in (SPECIAL, "x:: y", "\\n is not a newline", "{T}"):
        assert _gift_unescape(gift_escape(text)) == text


# ::name::[plain]text{TRUE|FALSE#wrong#right####general}, every special character escaped inside.
_FIELD = r"((?:[^\\~=#{}:]|\\.)*)"
GIFT_QUESTION = re.compile(rf"^::{_FIELD}::\[plain\]{_FIELD}\{{(TRUE|FALSE)#{_FIELD}#{_FIELD}####{_FIELD}\}}$")


def test_gift_structure_and_escaping(mini):
    text = export_bank(mini, "gift")
    blocks = [b for b in text.split("\n\n") if b.strip()]
    questions = [line for b in blocks for line in b.splitlines() if line.startswith("::")]
    assert len(questions) == len(mini.statements)
    assert [line for line in text.splitlines() if line.startswith("$CATEGORY:")] == [
        "$CATEGORY: $course$/top/cnn-grader/alpha", "$CATEGORY: $course$/top/cnn-grader/beta"]
    for block in blocks:  # a question never spans a blank line, comments start with //
        lines = block.splitlines()
        assert all(line.startswith(("//", "$CATEGORY:", "::")) for line in lines), block
    parsed = {}
    for line in questions:
        match = GIFT_QUESTION.match(line)
        assert match, f"not a GIFT true/false question: {line}"
        name, body, key, wrong, right, general = (_gift_unescape(g) if i != 2 else g for i, g in enumerate(match.groups()))
        parsed[name] = (body, key, wrong, right, general)
    for s in mini.statements:
        body, key, wrong, right, general = parsed[s.id]
        assert body == s.text and key == ("TRUE" if s.answer else "FALSE")
        assert wrong.startswith("Not quite") and right.startswith("Correct") and general.startswith(s.explanation)


def test_anki_csv_headers_and_rows(mini):
    text = export_bank(mini, "anki-csv")
    lines = text.splitlines()
    headers = [line for line in lines if line.startswith("#")]
    assert headers == ["#separator:Comma", "#html:false", "#notetype:Basic", "#deck:cnn-grader",
                       "#columns:guid,Front,Back,Tags", "#guid column:1", "#tags column:4"]
    assert lines[: len(headers)] == headers  # headers come first
    rows = list(csv.reader(io.StringIO("\n".join(lines[len(headers):]))))
    assert len(rows) == len(mini.statements) and all(len(r) == 4 for r in rows)
    by_guid = {r[0]: r for r in rows}
    for s in mini.statements:
        guid, front, back, tags = by_guid[f"cnn-grader:{s.id}"]
        assert front == f"True or false? {s.text}"
        assert back.startswith(("TRUE. " if s.answer else "FALSE. ") + s.explanation)
        assert tags.split() == [f"cnn-grader::{s.topic}", *s.tags]
    quoted = [line for line in lines if "alpha-true" in line][0]
    assert quoted.count('"') >= 4  # the comma and the quotes of the explanation force CSV quoting
    assert by_guid["cnn-grader:alpha-true"][1] == f"True or false? {SPECIAL}"


def test_json_export_round_trips_every_field(mini):
    doc = json.loads(export_bank(mini, "json"))
    assert (doc["format"], doc["version"], doc["fingerprint"]) == ("cnn-grader/quiz-bank", 1, mini.fingerprint)
    flat = {s["id"]: s for t in doc["topics"] for s in t["statements"]}
    for s in mini.statements:
        got = flat[s.id]
        assert (got["text"], got["answer"], got["explanation"], got["notes_answer"], got["notes_text"], tuple(got["tags"])) == (
            s.text, s.answer, s.explanation, s.notes_answer, s.notes_text, s.tags)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_real_bank_exports_in_every_format(fmt):
    bank = load_bank(BANK, use_cache=False)
    text = export_bank(bank, fmt, ["gap"])
    n = len(bank.topic("gap").statements)
    if fmt == "moodle-xml":
        assert len(ET.fromstring(text.encode()).findall("question[@type='truefalse']")) == n
    elif fmt == "gift":
        assert sum(bool(GIFT_QUESTION.match(line)) for line in text.splitlines()) == n
    elif fmt == "anki-csv":
        assert len([line for line in text.splitlines() if line.startswith("cnn-grader:")]) == n
    else:
        assert len(json.loads(text)["topics"][0]["statements"]) == n


def test_export_cli_to_stdout_and_file(quiz_env):
    out = run_quiz_cli(["export", "--format", "gift", "beta", "--bank", str(quiz_env["bank"])])
    assert out.exit_code == 0 and "::beta-one::" in out.output and "alpha" not in out.output
    target = quiz_env["tmp"] / "bank.xml"
    saved = run_quiz_cli(["export", "--format", "moodle-xml", "-o", str(target), "--bank", str(quiz_env["bank"])])
    assert saved.exit_code == 0 and "Wrote 5 statements" in saved.output
    assert len(ET.parse(target).getroot().findall("question[@type='truefalse']")) == 5


def test_export_cli_errors_exit_2(quiz_env):
    bad_format = run_quiz_cli(["export", "--format", "pdf", "--bank", str(quiz_env["bank"])])
    assert bad_format.exit_code == 2 and "'pdf' is not one of" in bad_format.output
    no_folder = run_quiz_cli(["export", "--format", "json", "-o", str(quiz_env["tmp"] / "no" / "x.json"),
                              "--bank", str(quiz_env["bank"])])
    assert no_folder.exit_code == 2 and "does not exist" in no_folder.output
