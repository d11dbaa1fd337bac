"""The study notes (`docs/notes/`) and `grade notes`: one page per section, every subsection a named
mistake points to exists, and the command lists, finds and shows the pages without torch."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from conftest import ROOT, variant
from grader.catalog import load_catalog
from grader.cli import cli
from grader.engine.spec import Mistake
from grader.paths import section_slug
from grader.study import notes

JARGON = re.compile(r"\b(InstSegm|SemSegm|OD|e2e|AE)\b")  # the course notes' private abbreviations


# --- the pages ----------------------------------------------------------------------------------
def test_one_page_per_section_and_no_other():
    assert sorted(p.stem for p in notes.notes_dir().glob("*.md")) == sorted(section_slug(s) for s in notes.sections())
    assert {e.section for e in load_catalog()} <= set(notes.sections())


@pytest.mark.parametrize("section", notes.sections())
def test_a_page_has_a_title_subsections_references_and_no_jargon(section):
    page = notes.load_page(section)
    assert page.title and len(page.subsections) >= 4, page.subsections
    assert page.subsections[-1] == "References"
    assert len(set(page.subsections)) == len(page.subsections), "two subsections with one name"
    assert not JARGON.search(page.text), JARGON.search(page.text)
    assert max(len(line) for line in page.text.splitlines()) <= 100


def _unknown_subsections(exercise: str, section: str, checks) -> list[str]:
    """`exercise/mistake: 'subsection'` for each mistake whose subsection is not a heading of its page."""
    bad = []
    for check in checks:
        for m in check.mistakes:
            page = notes.load_page(m.section or section)
            if m.subsection and m.subsection not in page.subsections:
                bad.append(f"{exercise}/{m.name}: {m.subsection!r} is not a subsection of {page.path.name}")
    return bad


@pytest.mark.parametrize("exercise", load_catalog(), ids=lambda e: e.name)
def test_every_subsection_a_mistake_names_exists(exercise):
    checks = importlib.import_module(f"grader.checks.{exercise.name}").CHECKS
    assert _unknown_subsections(exercise.name, exercise.section, checks) == []
    assert any(m.subsection for c in checks for m in c.mistakes), "no mistake of this exercise points to a subsection"


def test_a_misspelt_subsection_is_caught():
    from grader.engine.spec import Check

    wrong = Check("c", "p", 1, lambda g: [], (Mistake("m", "x", lambda ref: {}, subsection="Output sizes"),))
    right = Check("c", "p", 1, lambda g: [], (Mistake("m", "x", lambda ref: {}, subsection="Output size"),))
    assert _unknown_subsections("conv", "Convolution", [wrong]) == [
        "conv/m: 'Output sizes' is not a subsection of convolution.md"]
    assert _unknown_subsections("conv", "Convolution", [right]) == []


# --- Markdown as terminal text --------------------------------------------------------------------
def test_markdown_becomes_plain_text():
    text = ("# Title\n\nA **strong** word, a `code_span`, an *emphasis* and a [link](https://x.org),\n"
            "continued.\n\n## Part\n\n- an item that\n  goes on\n1. a numbered one\n\n```\ny = a * b\n```\n")
    out = click.unstyle(notes.render_markdown(text, 80))
    assert out.splitlines() == [
        "Title", "=====", "",
        "A strong word, a code_span, an emphasis and a link (https://x.org), continued.", "",
        "Part", "----", "",
        "  - an item that goes on", "  1. a numbered one", "",
        "    y = a * b",
    ]


def test_bold_survives_wrapping():
    rows = notes.render_markdown("plain words first, then **" + "bold " * 15 + "end** and plain again", 40).splitlines()
    assert len(rows) >= 3
    assert "\x1b[1m" in rows[0] and not rows[0].startswith("\x1b[1m")  # the bold span starts mid-row
    assert all(row.startswith("\x1b[1m") for row in rows[1:])  # and goes on, styled, on every later row
    assert rows[-1].endswith(" and plain again") and click.unstyle(" ".join(rows)).count("bold") == 15


# --- grade notes ----------------------------------------------------------------------------------
def test_notes_lists_every_section_with_its_exercises_and_quiz_topics(invoke):
    out = invoke("notes")
    assert out.exit_code == 0, out.output
    for section in notes.sections():
        assert f"`grade notes {section_slug(section)}`" in out.stdout
    for exercise in load_catalog():
        line = next(ln for ln in out.stdout.splitlines() if ln.strip().startswith("exercises:")
                    and exercise.name in ln.split(":", 1)[1].replace(",", " ").split())
        block = out.stdout[:out.stdout.index(line)]
        assert block.rfind(f"`grade notes {section_slug(exercise.section)}`") > max(
            block.rfind(f"`grade notes {section_slug(s)}`") for s in notes.sections() if s != exercise.section)
    assert "quiz: gap (" in out.stdout and "quiz: detection (" in out.stdout


@pytest.mark.parametrize("word, title", [
    ("Object Detection", "Object detection"), ("OBJECT-DETECTION", "Object detection"),
    ("detection", "Object detection"), ("unet", "Segmentation and U-Net"), ("segmentaton", "Segmentation and U-Net"),
    ("globalavgpooling", "Global average pooling"), ("gan", "Generative adversarial networks"),
])
def test_notes_finds_a_section_by_any_reasonable_name(word, title, invoke):
    out = invoke("notes", word)
    assert out.exit_code == 0, out.output
    rows = out.stdout.splitlines()
    assert rows[:2] == [title, "=" * len(title)]
    assert "```" not in out.stdout and "**" not in out.stdout and "\n## " not in out.stdout
    assert "Practise this section" in out.stdout


def test_notes_of_an_unknown_section_is_a_usage_error_listing_them(invoke):
    out = invoke("notes", "transformers")
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit)
    assert "Traceback" not in out.stderr
    assert "No notes section 'transformers'" in out.stderr
    for section in notes.sections():
        assert section in out.stderr


def test_notes_never_imports_torch(tmp_path):
    code = ("import sys; from grader.cli import cli\n"
            "for argv in (['notes'], ['notes', 'gans']):\n"
            "    try:\n        cli.main(argv, prog_name='grade')\n    except SystemExit:\n        pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"GRADE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


def test_a_long_page_is_paged_only_on_a_terminal(monkeypatch):
    paged: list[str] = []
    monkeypatch.setattr(notes.click, "echo_via_pager", lambda text: paged.append(text))
    monkeypatch.setattr(notes, "_terminal_size", lambda: (100, 30))
    result = CliRunner().invoke(cli, ["notes", "gans"])
    assert result.exit_code == 0 and "The minimax game" in result.output and paged == []
    monkeypatch.setattr(notes, "_stdout_is_terminal", lambda: True)
    result = CliRunner().invoke(cli, ["notes", "gans"])
    assert result.exit_code == 0 and len(paged) == 1 and "The minimax game" in paged[0]


def test_a_missing_page_is_a_setup_error(monkeypatch, tmp_path):
    monkeypatch.setattr(notes, "notes_dir", lambda: tmp_path)
    result = CliRunner().invoke(cli, ["notes", "gans"])
    assert result.exit_code == 2
    assert "The notes of GANs cannot be read" in result.output and "Traceback" not in result.output


# --- where the report points ----------------------------------------------------------------------
def test_a_named_mistake_points_to_its_subsection_and_the_command(tmp_path, invoke):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "pooling.py").write_text(variant("pooling", ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
                                                           "    return windows.sum(dim=(-2, -1)) / (kh * kh)")))
    out = invoke("exercise", "pooling", "--path", str(folder), "--json", str(tmp_path / "r.json"))
    assert out.exit_code == 1, out.output
    assert 'likely mistake: avg-wrong-divisor' in out.stdout
    assert 'revisit the notes: Convolution, "Pooling" (`grade notes convolution`)' in out.stdout
    mistake = next(c["mistake"] for c in json.loads((tmp_path / "r.json").read_text())["checks"] if c["mistake"])
    assert mistake == {"name": "avg-wrong-divisor", "explanation": mistake["explanation"], "section": "Convolution",
                       "subsection": "Pooling"}
    shown = invoke("notes", "convolution")
    assert "\nPooling\n-------\n" in shown.stdout
