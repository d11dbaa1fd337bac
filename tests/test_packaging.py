"""A non-editable install carries the exercises, references, quizzes and docs (contract and study
notes) inside the package, and `grade` works from it, outside any checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No module named" in build.stderr and "setuptools" in build.stderr:
        pytest.skip("setuptools is not available to build a wheel")
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(tmp.glob("cnn_grader-*.whl"))
    target = tmp / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(target)
    return target, names


def test_wheel_carries_the_course_data(installed):
    _, names = installed
    for required in ("grader/catalog.yaml", "grader/_data/exercises/conv.py", "grader/_data/solutions/conv.py",
                     "grader/checks/conv.py", "grader/runner/worker.py", "grader/_data/docs/EXERCISES.md",
                     "grader/_data/docs/notes/convolution.md", "grader/views/templates/pictures/picture.svg.j2"):
        assert required in names
    assert any(n.startswith("grader/_data/quizzes/") and n.endswith(".yaml") for n in names)
    for init in sorted((ROOT / "grader").rglob("__init__.py")):  # every package of the source tree
        module = init.relative_to(ROOT).as_posix()
        assert module in names, f"{module} is not in the wheel: list its package in pyproject.toml"


def test_installed_grade_runs_outside_a_checkout(installed, tmp_path):
    target, _ = installed
    course = tmp_path / "course"
    (course / "exercises").mkdir(parents=True)
    (course / ".grade").mkdir()
    (course / "exercises" / "pooling.py").write_text((ROOT / "solutions" / "pooling.py").read_text())
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("GRADE_HOME", None)
    out = subprocess.run([sys.executable, "-m", "grader.cli", "exercise", "pooling"], cwd=course, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "18/18 points" in out.stdout
    listing = subprocess.run([sys.executable, "-m", "grader.cli", "list"], cwd=course, env=env,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "pooling" in listing.stdout
    shown = subprocess.run([sys.executable, "-m", "grader.cli", "notes", "gans"], cwd=course, env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.startswith("Generative adversarial networks\n"), shown.stderr
