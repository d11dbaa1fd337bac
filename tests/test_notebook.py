"""Grading from a notebook: `grader.check`, its HTML and text forms, and the IPython magics."""

from __future__ import annotations

import subprocess
import sys

import pytest

import grader
from conftest import ROOT
from grader.runner import sandbox


def test_check_grades_the_references_with_full_marks_and_renders_html():
    """Slow on a cold process (about 5 s): the first check starts the zygote, which imports torch."""
    result = grader.check("pooling", ROOT / "solutions")
    assert result.score == result.max_score == 18
    assert {c.status for c in result.checks} == {"passed"} and result.result.sandbox == sandbox.plan()
    html = result._repr_html_()
    assert "<table" in html and "max_pool2d" in html and "All checks passed." in html
    assert "\x1b[" not in repr(result) and "pooling: Max and average pooling" in repr(result)


def test_check_of_a_wrong_file_shows_the_failure_escaped(tmp_path):
    source = (ROOT / "solutions" / "pooling.py").read_text(encoding="utf-8")
    wrong = source.replace('"""Max pooling', '"""<b>not markup</b> Max pooling', 1).replace(
        "def max_pool2d(", "def _unused(", 1) + "\n\ndef max_pool2d(x, kernel_size, stride=None):\n    raise ValueError('<script>')\n"
    (tmp_path / "pooling.py").write_text(wrong, encoding="utf-8")
    result = grader.check("pooling", tmp_path)
    assert result.score < result.max_score
    html = result._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_check_grades_only_the_parts_asked_for():
    result = grader.check("pooling", ROOT / "solutions", parts=("avg_pool2d",))
    assert {c.part for c in result.checks} == {"avg_pool2d"} and result.score == result.max_score == 8


def test_check_explains_bad_input():
    with pytest.raises(ValueError, match="Unknown exercise 'convv'"):
        grader.check("convv")
    with pytest.raises(ValueError, match="is not a folder"):
        grader.check("conv", ROOT / "no-such-folder")
    with pytest.raises(ValueError, match="pooling has no part 'nope'. Its parts are: max_pool2d, avg_pool2d, errors"):
        grader.check("pooling", ROOT / "solutions", parts=("nope",))


def test_importing_grader_imports_neither_torch_nor_ipython():
    code = "import sys, grader; print(sorted(m for m in ('torch', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_magics(monkeypatch, tmp_path, capsys):
    pytest.importorskip("IPython", reason="IPython is a test extra: pip install -e '.[test]'")
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("GRADE_HOME", str(tmp_path))
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "grader")
        result = shell.run_line_magic("grade", f"pooling --part max_pool2d --part errors --path {ROOT / 'solutions'}")
        assert result.score == result.max_score == 10
        shell.run_line_magic("hint", "conv conv2d")
        out = capsys.readouterr().out
        assert "conv / conv2d" in out and "1/" in out
        assert shell.run_line_magic("grade", "nope") is None
        assert "Unknown exercise 'nope'" in capsys.readouterr().out
    finally:
        InteractiveShell.clear_instance()
