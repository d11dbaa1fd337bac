"""`python -m grader.maint`: `check` passes on the course and names what is inconsistent; `new`
scaffolds an exercise that grades, passes `check` and whose own tests pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, copy_course

def _copy_course(dest: Path) -> Path:
    """A copy of the course with its tests (the scaffolded test module runs there)."""
    copy_course(dest)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".grade*"))
    return dest


def _run(course: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(course), "GRADE_HOME": str(course / ".grade-test"),
           "XDG_CACHE_HOME": str(course / ".grade-test" / "cache")}
    return subprocess.run([sys.executable, *args], cwd=course, env=env, capture_output=True, text=True, timeout=timeout)


def test_check_passes_on_the_course(capsys):
    """In this process: `check` only reads the course (the tests below run it as a command)."""
    from grader.maint import main

    code, out = main(["check"]), capsys.readouterr().out
    assert code == 0 and "the course is consistent" in out, out


@pytest.mark.slow
def test_new_scaffolds_an_exercise_that_grades_and_passes_check(tmp_path):
    """About 8 s: `check` imports torch for the checks, and the scaffolded tests run in a pytest of
    their own (one process, not the suite's parallel workers) that starts a worker and grades the new
    exercise."""
    course = _copy_course(tmp_path)
    out = _run(course, "-m", "grader.maint", "new", "sharpen", "--title", "Sharpening", "--section", "Convolution",
               "--points", "3")
    assert out.returncode == 0, out.stderr
    for rel in ("solutions/sharpen.py", "exercises/sharpen.py", "grader/checks/sharpen.py",
                "grader/study/hints/sharpen.yaml", "tests/test_checks_sharpen.py"):
        assert (course / rel).is_file(), rel
    assert 'raise NotImplementedError("sharpen")' in (course / "exercises" / "sharpen.py").read_text()
    assert "- name: sharpen\n    title: Sharpening\n    section: Convolution" in (course / "grader" / "catalog.yaml").read_text()
    check = _run(course, "-m", "grader.maint", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    # The generic tests of every exercise and the scaffolded test module pass on it.
    tests = _run(course, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "tests/test_exercises.py",
                 "tests/test_checks_sharpen.py", "-k", "sharpen")
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout


def test_new_refuses_a_taken_name_and_a_bad_one(tmp_path):
    course = _copy_course(tmp_path)
    for name, message in (("conv", "already an exercise 'conv'"), ("Sharpen", "lowercase Python name")):
        out = _run(course, "-m", "grader.maint", "new", name)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    out = _run(course, "-m", "grader.maint", "new", "sharpen", "--section", "Painting")
    assert out.returncode == 2 and "not a section of the course" in out.stderr
    assert not (course / "solutions" / "sharpen.py").exists()


def test_check_names_what_is_inconsistent(tmp_path):
    course = _copy_course(tmp_path)
    stub = course / "exercises" / "pooling.py"
    stub.write_text(stub.read_text() + "\n# solved it\n")
    catalog = course / "grader" / "catalog.yaml"
    catalog.write_text(catalog.read_text().replace("max_pool2d: {points: 8", "max_pool2d: {points: 9"))
    hints = course / "grader" / "study" / "hints" / "gap.yaml"
    hints.write_text(hints.read_text().replace("section: GlobalAvgPooling", "section: Pooling", 1))
    (course / "solutions" / "orphan.py").write_text("def orphan():\n    pass\n")
    (course / "tests" / "test_checks_nms.py").unlink()
    out = _run(course, "-m", "grader.maint", "check")
    assert out.returncode == 1
    text = out.stdout
    assert f"{stub}: is not the stub of" in text and "grader.maint stubs pooling" in text
    assert "grader/checks/pooling.py: the checks of part 'max_pool2d' give 8 points, the catalogue says 9" in text
    assert "gap.yaml:" in text and "'Pooling' is not a section of the notes" in text
    assert "orphan.py: no exercise 'orphan' in the catalogue" in text
    assert "test_checks_nms.py: missing" in text
    assert "5 problem(s)" in text
