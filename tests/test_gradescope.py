"""The Gradescope autograder zip, and its run_autograder script against a fake /autograder tree."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, copy_course, descendants, imported_modules, reference_source
from grader.instructor.gradescope import CONFIG_NAME, build_autograder_zip, run
from grader.instructor.exports import validate_gradescope
from grader.instructor.release import course_torch_version
from grader.stubs import stub_source


SEED = 918273645  # long enough that finding it in a command line or an environment cannot be chance


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    info = build_autograder_zip(out, seed=SEED, exercises=["pooling"], timeout=5.0, visibility="after_due_date")
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
    assert config == {"seed": SEED, "exercises": ["pooling"], "timeout": 5.0, "visibility": "after_due_date",
                      "allow_unsandboxed": False, "grader_version": config["grader_version"]}
    assert f"torch=={course_torch_version()}" in setup and "'jinja2>=3.1'" in setup
    assert "torch>=" not in setup  # pinned, not the pyproject's range


def _run_setup(setup: str, tmp_path: Path, gpu: bool) -> list[str]:
    """Run setup.sh with stand-ins for apt-get, python3 and nvidia-smi; returns the pip calls."""
    bin_dir, log = tmp_path / "bin", tmp_path / "pip.log"
    bin_dir.mkdir()
    fake_pip = f'#!/bin/sh\necho "$*" >> {log}\n'
    fakes = {"apt-get": "#!/bin/sh\nexit 0\n",
             "python3": '#!/bin/sh\n[ "$1 $2" = "-m venv" ] || exit 3\nmkdir -p "$3/bin"\n'
                        f"cat > \"$3/bin/pip\" <<'PIP'\n{fake_pip}PIP\nchmod +x \"$3/bin/pip\"\n",
             "nvidia-smi": f"#!/bin/sh\nexit {0 if gpu else 9}\n"}  # present on GPU machines, failing without a GPU
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "setup.sh").write_text(setup)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "VENV": str(tmp_path / "venv"), "HOME": str(tmp_path)}
    done = subprocess.run(["bash", str(tmp_path / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return log.read_text().splitlines()


@pytest.mark.parametrize("gpu", [False, True])
def test_setup_pins_torch_and_takes_the_cpu_wheel_without_a_gpu(autograder_zip, tmp_path, gpu):
    with zipfile.ZipFile(autograder_zip) as zf:
        setup = zf.read("setup.sh").decode()
    calls = _run_setup(setup, tmp_path, gpu)
    (torch_call,) = [c for c in calls if "torch==" in c]
    assert torch_call.split()[-1] == f"torch=={course_torch_version()}"
    assert ("download.pytorch.org/whl/cpu" in torch_call) is not gpu
    assert any("jinja2" in c and "torch" not in c for c in calls)


def test_the_zip_ships_fresh_stubs_not_a_solved_exercise(tmp_path):
    course = copy_course(tmp_path / "course")
    solved = reference_source("conv")
    (course / "exercises" / "conv.py").write_text(solved)  # the instructor tried the exercise here
    out = tmp_path / "autograder.zip"
    env = {**os.environ, "PYTHONPATH": str(course), "PYTHONPROFILEIMPORTTIME": "1"}  # its imports, on stderr
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope-autograder", "--out", str(out), "--seed",
                           "7", "--exercise", "conv", "--torch", "2.5.1"], cwd=course, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "warning: exercises/conv.py differs" in done.stderr and "torch 2.5.1" in done.stdout
    imported = imported_modules(done.stderr)
    assert "grader.instructor.gradescope" in imported and "torch" not in imported  # packing files needs no torch
    with zipfile.ZipFile(out) as zf:
        shipped = zf.read("exercises/conv.py").decode()
        assert "torch==2.5.1\n" in zf.read("setup.sh").decode()
        stubs = {n for n in zf.namelist() if n.startswith("exercises/")}
    assert shipped == stub_source(solved) != solved
    assert stubs == {f"exercises/{p.name}" for p in (ROOT / "solutions").glob("*.py")}


def _fake_autograder(zip_path: Path, root: Path, source: str) -> tuple[list[str], dict[str, str]]:
    """Lay out /autograder as Gradescope does under `root`, with `source` as the student's pooling.py;
    returns the command and environment that run it."""
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())  # as Gradescope does
    (root / "submission" / "my work").mkdir(parents=True)
    (root / "submission" / "my work" / "pooling.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), PYTHON=sys.executable)
    return ["bash", str(root / "run_autograder")], env


@pytest.fixture(scope="module")
def autograder_run(autograder_zip, tmp_path_factory) -> tuple[Path, dict[int, bytes]]:
    """run_autograder on a fake /autograder tree whose student handed in the reference, which sleeps
    2 s when imported; while it runs, the command line and environment of every process of the run
    are sampled. Returns the tree and what each process showed."""
    root = tmp_path_factory.mktemp("gradescope-run") / "autograder"
    source = reference_source("pooling").replace("from __future__ import annotations\n",
                                                 "from __future__ import annotations\nimport time\ntime.sleep(2)\n", 1)
    command, env = _fake_autograder(autograder_zip, root, source)
    with open(root.parent / "output.txt", "wb") as output:
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        seen: dict[int, bytes] = {}
        try:
            while proc.poll() is None:
                for pid in [proc.pid, *descendants(proc.pid)]:
                    for part in ("cmdline", "environ"):
                        try:
                            with open(f"/proc/{pid}/{part}", "rb") as fh:
                                seen[pid] = seen.get(pid, b"") + fh.read()
                        except OSError:
                            pass
                time.sleep(0.1)
        finally:
            proc.wait(timeout=600)
    assert proc.returncode == 0, (root.parent / "output.txt").read_text()[-3000:]
    return root, seen


@pytest.mark.slow
def test_run_autograder_grades_a_fake_submission(autograder_run):
    """Slow where it comes first: `autograder_run` is a whole Gradescope run in processes of its own
    (the grader, an agent and its zygote each import torch) with a student whose code sleeps 2 s."""
    root, _ = autograder_run
    results = json.loads((root / "results" / "results.json").read_text())
    assert validate_gradescope(results) == []
    assert results["score"] == 18.0 and len(results["tests"]) == 5
    assert {t["status"] for t in results["tests"]} == {"passed"}
    assert {t["visibility"] for t in results["tests"]} == {"after_due_date"}
    from grader.runner import sandbox

    assert f"sandbox: {sandbox.plan()}" in results["output"]
    assert stat.S_IMODE((root / "source").stat().st_mode) == 0o700  # the references and the seed: root's only


@pytest.mark.slow
def test_the_seed_and_the_references_stay_off_command_lines_and_environments(autograder_run):
    """Every process of the Gradescope run, sampled while the student's code runs: none carries the
    seed or the path of the references where another process could read it."""
    root, seen = autograder_run
    secrets = (str(SEED).encode(), str(root / "source").encode())
    assert len(seen) >= 4  # the grader, an agent, its zygote, the worker
    leaks = {pid: [s.decode() for s in secrets if s in text] for pid, text in seen.items()}
    assert not {pid: found for pid, found in leaks.items() if found}


def test_an_empty_upload_is_told_no_py_files_were_found(tmp_path):
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / CONFIG_NAME).write_text(json.dumps({"seed": 3, "exercises": ["pooling"], "timeout": 5.0}))
    (tmp_path / "submission").mkdir()
    results = run(tmp_path)
    assert validate_gradescope(results) == []
    assert results["output"].startswith("Problem: the submission is empty: no .py files found")
    assert results["score"] == 0.0 and {t["status"] for t in results["tests"]} == {"failed"}


def test_a_broken_setup_still_writes_results(tmp_path):
    (tmp_path / "source").mkdir()  # no configuration file in it
    (tmp_path / "submission").mkdir()
    results = run(tmp_path)
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == results
    assert results["score"] == 0.0 and "could not grade" in results["output"]
    assert validate_gradescope(results) == []
