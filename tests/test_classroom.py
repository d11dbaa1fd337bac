"""GitHub Classroom: the workflow's steps, their points and commands, and grading in the edition it ships with."""

from __future__ import annotations

import json
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
def test_every_step_passes_on_the_references_and_fails_on_the_stubs(workflow, sessions, monkeypatch, tmp_path):
    """Every step's command, run in this process on every reference and every stub. The commands
    grade through the suite's shared sessions (one worker, the references' outputs computed once
    per exercise, not once per command); `grade exercise` is otherwise as a student runs it. About
    9 s alone: every part of every reference runs in the worker, and the autoencoder trains there
    and in this process (less where the process has graded the references before)."""
    from grader.engine import session

    def shared(units, *, jobs, seed, timeout, device, pictures, keep):  # noqa: ANN001, ANN202 - as grade_side_by_side
        assert (jobs, device) == (1, "cpu")
        graded = sessions(seed, timeout, pictures)
        return [graded.grade(name, path, parts=parts) for name, path, parts in units], graded.untouched()

    monkeypatch.setattr(session, "grade_side_by_side", shared)
    monkeypatch.setenv("GRADE_HOME", str(tmp_path))
    for step in _grading_steps(workflow):
        command = step["with"]["command"].replace("--seed 7", "--seed 0")
        assert _run_step(command, ROOT / "solutions") == 0, command
        assert _run_step(command, ROOT / "exercises") != 0, command


# The steps' commands run in one process of the edition's own grader, so that it grades from
# the recordings it ships (this process's grader has the references); click's runner gives each its exit code.
_STEPS_IN_THE_EDITION = """
import json, shlex, sys
from click.testing import CliRunner
from grader.cli import cli
runs = [CliRunner().invoke(cli, shlex.split(command)[1:]) for command in sys.argv[1:]]
print(json.dumps([[run.exit_code, run.output] for run in runs]))
"""


def test_github_classroom_writes_an_edition_that_grades_from_recordings(tmp_path, monkeypatch):
    """The command writes a student edition here (recording pooling for seed 3), and its steps run
    in one process of that edition (a torch import, a worker): about 4 s."""
    out = tmp_path / "assignment"
    monkeypatch.setenv("GRADE_HOME", str(tmp_path / ".grade"))
    made = CliRunner().invoke(cli, ["github-classroom", "--out", str(out), "--seed", "3", "--exercise", "pooling"])
    assert made.exit_code == 0, made.output
    assert "formative" in made.stdout
    assert not (out / "solutions").exists()
    steps = _grading_steps(yaml.safe_load((out / ".github/workflows/classroom.yml").read_text()))
    assert [s["with"]["max-score"] for s in steps] == [p.points for p in CATALOG[1].parts]
    shutil.copy(ROOT / "solutions" / "pooling.py", out / "exercises" / "pooling.py")
    env = {**os.environ, "PYTHONPATH": str(out), "GRADE_HOME": str(tmp_path / ".grade")}
    run = subprocess.run([sys.executable, "-c", _STEPS_IN_THE_EDITION, *(s["with"]["command"] for s in steps)],
                         cwd=out, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    for step, (code, output) in zip(steps, json.loads(run.stdout.splitlines()[-1]), strict=True):
        assert code == 0, (step["with"]["command"], output)
