"""The Gradescope autograder zip, and its run_autograder script against a fake /autograder tree."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import reference_source
from grader.instructor.gradescope import CONFIG_NAME, build_autograder_zip, run
from grader.instructor.exports import validate_gradescope


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    info = build_autograder_zip(out, seed=4242, exercises=["pooling"], timeout=5.0, visibility="after_due_date")
    assert info["exercises"] == ["pooling"]
    return out


def test_zip_layout_follows_gradescope(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        infos = {i.filename: i for i in zf.infolist()}
        config = json.loads(zf.read(CONFIG_NAME))
        setup = zf.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "pyproject.toml", "grader/cli.py", "solutions/pooling.py",
            "grader/instructor/templates/report.html.j2"} <= names
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("grader/recorded/")]
    assert config == {"seed": 4242, "exercises": ["pooling"], "timeout": 5.0, "visibility": "after_due_date",
                      "grader_version": config["grader_version"]}
    assert "download.pytorch.org/whl/cpu" in setup and "'jinja2>=3.1'" in setup


@pytest.mark.slow
def test_run_autograder_grades_a_fake_submission(autograder_zip, tmp_path):
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())  # as Gradescope does
    (root / "submission" / "my work").mkdir(parents=True)
    (root / "submission" / "my work" / "pooling.py").write_text(reference_source("pooling"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), PYTHON=sys.executable)
    run_ = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert run_.returncode == 0, run_.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert validate_gradescope(results) == []
    assert results["score"] == 18.0 and len(results["tests"]) == 5
    assert {t["status"] for t in results["tests"]} == {"passed"}
    assert {t["visibility"] for t in results["tests"]} == {"after_due_date"}


def test_a_broken_setup_still_writes_results(tmp_path):
    (tmp_path / "source").mkdir()  # no configuration file in it
    (tmp_path / "submission").mkdir()
    results = run(tmp_path)
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == results
    assert results["score"] == 0.0 and "could not grade" in results["output"]
    assert validate_gradescope(results) == []
