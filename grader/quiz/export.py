"""`grade quiz export`: the bank as files that Moodle and Anki import, or as plain JSON.

- `gift`: Moodle's GIFT text format, one category per topic, each statement a true/false question
  `::id::[plain]text{TRUE#feedback if wrong#feedback if right####explanation}`; the characters
  `~ = # { } :` and the backslash are escaped with a backslash, newlines written `\\n`.
- `moodle-xml`: Moodle XML, `<question type="truefalse">` with the explanation as general feedback,
  answers `true`/`false` with fractions 100/0 and per-answer feedback, the id as `idnumber`.
- `anki-csv`: a comma-separated file with Anki's header lines (`#separator`, `#html`,
  `#guid column`, `#tags column`...): columns guid, Front (the statement), Back (the answer and
  why), Tags. The guid is derived from the id, so re-importing after a fix updates the notes.
- `json`: every field of every statement, grouped by topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from grader.quiz.bank import Bank, Statement

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

# The format modules (xml, csv, json) are imported inside the writers: `grade quiz` imports this
# module for FORMATS and must stay quick to start.

FORMATS = ("gift", "moodle-xml", "anki-csv", "json")
CATEGORY_ROOT = "cnn-grader"
_GIFT_SPECIAL = "~=#{}:"


def export_bank(bank: Bank, fmt: str, topics: Sequence[str] | None = None) -> str:
    """The bank (or only `topics`) in format `fmt` (one of FORMATS), as text."""
    names = list(topics) if topics else list(bank.topic_names)
    writers = {"gift": _gift, "moodle-xml": _moodle_xml, "anki-csv": _anki_csv, "json": _json}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return writers[fmt](bank, names)


def gift_escape(text: str) -> str:
    """Escape GIFT's special characters (and the backslash itself) with a backslash."""
    out = text.replace("\\", "\\\\")
    for ch in _GIFT_SPECIAL:
        out = out.replace(ch, "\\" + ch)
    return out.replace("\r\n", "\n").replace("\n", "\\n")


def _general_feedback(s: Statement) -> str:
    text = s.explanation + (f" Source: {s.source}." if s.source else "")
    if s.notes_flag is not None:
        text += f" ({s.notes_flag}; the explanation says why the answer differs.)"
    return text


def _answer_feedback(s: Statement, right: bool) -> str:
    word = "true" if s.answer else "false"
    return f"Correct: the statement is {word}." if right else f"Not quite: the statement is {word}."


def _gift(bank: Bank, names: list[str]) -> str:
    out = ["// cnn-grader quiz bank: true/false statements on CNNs (import: Moodle > Question bank > Import > GIFT)", ""]
    for name in names:
        topic = bank.topic(name)
        out += [f"// {topic.title}", f"$CATEGORY: $course$/top/{CATEGORY_ROOT}/{name}", ""]
        for s in topic.statements:
            answer = "TRUE" if s.answer else "FALSE"
            out.append(f"// {s.id} ({s.section})")
            out.append(
                f"::{gift_escape(s.id)}::[plain]{gift_escape(s.text)}"
                f"{{{answer}#{gift_escape(_answer_feedback(s, False))}#{gift_escape(_answer_feedback(s, True))}"
                f"####{gift_escape(_general_feedback(s))}}}"
            )
            out.append("")
    return "\n".join(out)


def _moodle_xml(bank: Bank, names: list[str]) -> str:
    import xml.etree.ElementTree as ET

    quiz = ET.Element("quiz")
    for name in names:
        topic = bank.topic(name)
        category = ET.SubElement(quiz, "question", type="category")
        _text_child(category, "category", f"$course$/top/{CATEGORY_ROOT}/{name}")
        _text_child(category, "info", topic.title, format="plain_text")
        for s in topic.statements:
            q = ET.SubElement(quiz, "question", type="truefalse")
            _text_child(q, "name", s.id)
            _text_child(q, "questiontext", s.text, format="plain_text")
            _text_child(q, "generalfeedback", _general_feedback(s), format="plain_text")
            ET.SubElement(q, "defaultgrade").text = "1.0000000"
            ET.SubElement(q, "penalty").text = "1.0000000"
            ET.SubElement(q, "hidden").text = "0"
            ET.SubElement(q, "idnumber").text = s.id
            for value in (True, False):
                a = ET.SubElement(q, "answer", fraction="100" if value == s.answer else "0", format="moodle_auto_format")
                ET.SubElement(a, "text").text = "true" if value else "false"
                _text_child(a, "feedback", _answer_feedback(s, value == s.answer), format="plain_text")
            tags = ET.SubElement(q, "tags")
            for tag in (name, *s.tags):
                _text_child(tags, "tag", tag)
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


def _text_child(parent: Element, tag: str, text: str, **attrs: str) -> Element:
    import xml.etree.ElementTree as ET

    child = ET.SubElement(parent, tag, **attrs)
    ET.SubElement(child, "text").text = text
    return child


def _anki_csv(bank: Bank, names: list[str]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    buffer.write("#separator:Comma\n#html:false\n#notetype:Basic\n#deck:cnn-grader\n")
    buffer.write("#columns:guid,Front,Back,Tags\n#guid column:1\n#tags column:4\n")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    for name in names:
        for s in bank.topic(name).statements:
            back = f"{'TRUE' if s.answer else 'FALSE'}. {_general_feedback(s)}"
            tags = " ".join([f"{CATEGORY_ROOT}::{name}", *s.tags])
            writer.writerow([f"{CATEGORY_ROOT}:{s.id}", f"True or false? {s.text}", back, tags])
    return buffer.getvalue()


def _json(bank: Bank, names: list[str]) -> str:
    import json

    topics = []
    for name in names:
        topic = bank.topic(name)
        topics.append({
            "name": name,
            "title": topic.title,
            "statements": [
                {"id": s.id, "text": s.text, "answer": s.answer, "explanation": s.explanation,
                 "section": s.section, "tags": list(s.tags), "exercise": s.exercise,
                 "from_notes": s.from_notes, "notes_text": s.notes_text, "notes_answer": s.notes_answer,
                 "source": s.source}
                for s in topic.statements
            ],
        })
    doc = {"format": "cnn-grader/quiz-bank", "version": 1, "fingerprint": bank.fingerprint, "topics": topics}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
