"""GitHub Classroom: the workflow's steps, their points and commands, and grading in the edition it ships with."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT
from grader.catalog import load_catalog
from grader.cli import cli
from grader.instructor.classroom import render_workflow

CATALOG = list(load_catalog())


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(render_workflow(CATALOG, seed=7, torch_requirement="torch==2.13.0"))


def _grading_steps(workflow: dict) -> list[dict]:
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    return [s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-command-grader")]


def test_one_step_per_part_with_the_catalogues_points(workflow):
    steps = _grading_steps(workflow)
    parts = [(ex.name, p.name, p.points) for ex in CATALOG for p in ex.parts]
    assert len(steps) == len(parts)
    for step, (name, part, points) in zip(steps, parts):
        assert step["with"]["max-score"] == points
        assert shlex.split(step["with"]["command"]) == ["grade", "exercise", name, "--part", part, "--seed", "7"]
        assert "torch==2.13.0" in step["with"]["setup-command"] and "whl/cpu" in step["with"]["setup-command"]
    assert sum(s["with"]["max-score"] for s in steps) == sum(ex.max_points for ex in CATALOG)


def test_the_reporter_reads_every_step(workflow):
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    reporter = steps[-1]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter")
    ids = [s["id"] for s in _grading_steps(workflow)]
    assert reporter["with"]["runners"] == ",".join(ids) and len(set(ids)) == len(ids)
    assert set(reporter["env"]) == {f"{i.upper()}_RESULTS" for i in ids}
    assert all(v == f"${{{{ steps.{i}.outputs.result }}}}" for i, v in zip(ids, reporter["env"].values()))


def _run_step(command: str, folder) -> int:
    argv = shlex.split(command)[1:] + ["--path", str(folder)]
    return CliRunner().invoke(cli, argv).exit_code


@pytest.mark.slow
def test_every_step_passes_on_the_references_and_fails_on_the_stubs(workflow, monkeypatch, tmp_path):
    """Every part of every exercise, graded twice in this process (workers come from one zygote):
    about 15 s, most of it the autoencoder's training on the references."""
    monkeypatch.setenv("GRADE_HOME", str(tmp_path))
    for step in _grading_steps(workflow):
        command = step["with"]["command"].replace("--seed 7", "--seed 0")
        assert _run_step(command, ROOT / "solutions") == 0, command
        assert _run_step(command, ROOT / "exercises") != 0, command


def test_github_classroom_writes_an_edition_that_grades_from_recordings(tmp_path):
    """About 20 s: it writes a student edition (recording pooling) and runs three cold `grade` processes."""
    out = tmp_path / "assignment"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADE_HOME": str(tmp_path / ".grade")}
    made = subprocess.run([sys.executable, "-m", "grader.cli", "github-classroom", "--out", str(out), "--seed", "3",
                           "--exercise", "pooling"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    assert "formative" in made.stdout
    assert not (out / "solutions").exists()
    steps = _grading_steps(yaml.safe_load((out / ".github/workflows/classroom.yml").read_text()))
    assert [s["with"]["max-score"] for s in steps] == [p.points for p in CATALOG[1].parts]
    shutil.copy(ROOT / "solutions" / "pooling.py", out / "exercises" / "pooling.py")
    env["PYTHONPATH"] = str(out)
    for step in steps:
        run = subprocess.run([sys.executable, "-m", "grader.cli", *shlex.split(step["with"]["command"])[1:]],
                             cwd=out, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
