"""The student edition: no solutions, and grading there gives exactly the results of the references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import ROOT, copy_course, reference_oracle, reference_source, with_mistake
from grader.catalog import load_catalog
from grader.cli import cli
from grader.engine import oracles
from grader.engine.oracles import LiveOracle, RecordedOracle, SetupError
from grader.engine.recording import FORMAT
from grader.engine.session import GradingSession
from grader.engine.spec import load_checks
from grader.instructor.demo import SKEW
from grader.instructor.release import find_leaks, student_pyproject
from grader.stubs import stub_source

slow = pytest.mark.slow  # the tests that use the student edition: it records every exercise

EXERCISES = [e.name for e in load_catalog()]
TIMING = ("duration_s", "started_at")


SOLVED = "conv"  # the instructor tried this exercise in the checkout the edition is made from


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> Path:
    """The student edition of this checkout, written by `grade release` in this process, with two
    jobs: this process and a pool of one record the exercises side by side. This process asks the
    references through the test process's cache (`conftest.reference_oracle`), which the
    autoencoder's tests read too (they run in this test process: `conftest.XDIST_GROUPS`), so that
    its models are trained once for both."""
    out = tmp_path_factory.mktemp("student-edition") / "course"
    cached = {name: reference_oracle(name) for name in EXERCISES}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oracles, "LiveOracle", cached.__getitem__)
        made = CliRunner().invoke(cli, ["release", "--out", str(out), "--jobs", "2"])
    assert made.exit_code == 0, made.output[-3000:]
    return out


def _first_mistake(name: str) -> tuple[str, str] | None:
    """(the part, the name) of the first named mistake of the exercise's checks, if they know one."""
    return next(((c.part, m.name) for c in load_checks(name) for m in c.mistakes), None)


def _variants(name: str) -> dict[str, str]:
    """The reference, the stub, and a wrong answer: a named mistake where the checks know one."""
    mistake = _first_mistake(name)
    return {"reference": reference_source(name), "stub": (ROOT / "exercises" / f"{name}.py").read_text(encoding="utf-8"),
            "wrong": with_mistake(name, mistake[1]) if mistake is not None else reference_source(name) + SKEW}


def _untimed(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in TIMING}


def _unpictured(result: dict) -> dict:
    return {**result, "checks": [{k: v for k, v in c.items() if k != "picture"} for c in result["checks"]]}


@slow
@pytest.mark.parametrize("name", EXERCISES)
def test_recorded_grading_equals_live_grading(name, release, worker, sessions, tmp_path):
    """Slow where it must be: the first of these builds the student edition (every exercise
    recorded, every known mistake on every case: about 10 s), the autoencoder's variants train
    their models twice each, graded live and replayed, and nms's wrong variant has its many-boxes
    mistakes computed live. The wrong variant is graded on the part of its mistake: elsewhere it
    is the reference, graded already."""
    recorded = RecordedOracle.load(release / "grader" / "recorded" / f"{name}.pt")
    replaying = GradingSession(worker=worker, oracle_for=lambda _: recorded)
    mistake = _first_mistake(name)
    full_marks = {}
    for label, source in _variants(name).items():
        path = tmp_path / label / f"{name}.py"
        path.parent.mkdir()
        path.write_text(source, encoding="utf-8")
        parts = (mistake[0],) if label == "wrong" and mistake is not None else ()
        live = sessions().grade(name, path, parts=parts).to_dict()  # the references run once for the three variants
        replayed = replaying.grade(name, path, parts=parts).to_dict()
        assert _untimed(replayed) == _untimed(live), f"{name}, {label}: the student edition grades differently"
        full_marks[label] = live["score"] == live["max_score"]
    assert full_marks == {"reference": True, "stub": False, "wrong": False}


END_TO_END = {"conv": "reference", "pooling": "wrong", "gap": "stub", "segmentation": "reference"}


@slow
def test_the_student_edition_grades_end_to_end_like_the_references(release, sessions, tmp_path):
    """`grade all` run inside the student edition (no references: it must pick the recordings), in a
    process of its own (a torch import, a worker): about 3 s."""
    folder = tmp_path / "work"
    folder.mkdir()
    chosen = [n for n in END_TO_END if n in EXERCISES]
    for name in chosen:
        (folder / f"{name}.py").write_text(_variants(name)[END_TO_END[name]], encoding="utf-8")
    out = tmp_path / "all.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-m", "grader.cli", "all", "--path", str(folder), "--json", str(out)],
                         cwd=release, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    edition = {r["exercise"]: r for r in json.loads(out.read_text())["exercises"]}
    assert set(edition) == set(chosen)
    from grader.views.pictures import draw

    for name in chosen:
        live = sessions(pictures=draw).grade(name, folder / f"{name}.py").to_dict()
        # The pictures are drawn on the same checks from the recorded values; their text may name
        # arguments by position where the references are absent, so only where they are is compared.
        assert [c["picture"] is not None for c in edition[name]["checks"]] == [c["picture"] is not None for c in live["checks"]]
        assert _untimed(_unpictured(edition[name])) == _untimed(_unpictured(live)), name


@slow
def test_other_seeds_need_the_references(release, worker):
    name = EXERCISES[0]
    recorded = RecordedOracle.load(release / "grader" / "recorded" / f"{name}.pt")
    with pytest.raises(SetupError, match="public seed 0"):
        GradingSession(worker=worker, seed=12345, oracle_for=lambda _: recorded).grade(name, ROOT / "solutions" / f"{name}.py")


@slow
def test_the_student_edition_has_no_solutions(release):
    assert not (release / "solutions").exists() and not (release / "grader" / "_data" / "solutions").exists()
    assert (release / "exercises").is_dir() and (release / "grader" / "_data" / "exercises").is_dir()
    config = tomllib.loads((release / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert not any("solutions" in p for p in config["packages"]) and "package-dir" not in config
    for package in config["packages"]:
        assert (release / package.replace(".", "/")).is_dir(), package
    recordings = sorted((release / "grader" / "recorded").glob("*.pt"))
    assert [p.stem for p in recordings] == sorted(EXERCISES)
    for path in recordings:
        data = torch.load(path, weights_only=True)  # plain data only: no code can be in it
        assert data["format"] == FORMAT and data["seed"] == 0
    assert find_leaks(recordings, ROOT / "solutions", ROOT / "exercises") == []


def test_the_student_edition_ships_fresh_stubs_and_warns_about_a_solved_one(tmp_path):
    """`grade release --exercise conv`, as a command, in a copy of the course where exercises/conv.py was solved."""
    course = copy_course(tmp_path / "checkout")
    solved = reference_source(SOLVED)
    (course / "exercises" / f"{SOLVED}.py").write_text(solved, encoding="utf-8")
    release = tmp_path / "student-edition"
    run = subprocess.run([sys.executable, "-m", "grader.cli", "release", "--out", str(release), "--exercise", SOLVED],
                         cwd=course, env={**os.environ, "PYTHONPATH": str(course)}, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for folder in (release / "exercises", release / "grader" / "_data" / "exercises"):
        assert sorted(p.name for p in folder.glob("*.py")) == sorted(p.name for p in (ROOT / "solutions").glob("*.py"))
        assert (folder / f"{SOLVED}.py").read_text(encoding="utf-8") == stub_source(solved) != solved
    assert f"warning: exercises/{SOLVED}.py differs" in run.stderr
    assert "exercises/pooling.py" not in run.stderr  # untouched stubs are not named
    assert [p.stem for p in (release / "grader" / "recorded").glob("*.pt")] == [SOLVED]  # only what --exercise named


@slow
def test_the_student_edition_has_a_learners_readme(release):
    readme = (release / "README.md").read_text(encoding="utf-8")
    for word in ("batch", "gradescope", "solutions/", "release", "instructors grade"):
        assert word not in readme.lower(), word
    for name in EXERCISES:
        assert f"`exercises/{name}.py`" in readme
    assert "grade watch" in readme and "grade hint" in readme


@slow
def test_recordings_are_deflated_and_hold_each_tensor_once(release):
    import hashlib
    import zipfile

    path = release / "grader" / "recorded" / "autoencoder.pt"
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    seen: dict = {}

    def walk(value):
        if isinstance(value, torch.Tensor):
            key = (value.dtype, tuple(value.shape), value.stride(),
                   hashlib.sha256(value.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest())
            assert seen.setdefault(key, value) is value, "two equal tensors were saved twice"
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(torch.load(path, weights_only=True))
    assert len(seen) > 10


@slow
def test_leak_search_finds_a_line_of_a_reference(release, tmp_path):
    stub = {ln.strip() for ln in (ROOT / "exercises" / "pooling.py").read_text().splitlines()}
    code_line = next(ln.strip() for ln in reference_source("pooling").splitlines()
                     if len(ln.strip()) > 30 and ln.strip() not in stub)
    data = torch.load(release / "grader" / "recorded" / "pooling.pt", weights_only=True)
    first = next(iter(data["checks"].values()))["cases"][0]
    first["label"] += f" ({code_line})"
    planted = tmp_path / "pooling.pt"
    torch.save(data, planted)
    assert len(find_leaks([planted], ROOT / "solutions", ROOT / "exercises")) == 1


@slow
def test_a_stale_recording_is_refused(release):
    data = torch.load(release / "grader" / "recorded" / "pooling.pt", weights_only=True)
    data["checks_digest"] = "0" * 16
    with pytest.raises(SetupError, match="changed after its outputs were recorded"):
        RecordedOracle(data)


def test_release_refuses_an_unknown_exercise(tmp_path):
    made = CliRunner().invoke(cli, ["release", "--out", str(tmp_path / "edition"), "--exercise", "convv"])
    assert made.exit_code == 2 and "Unknown exercise 'convv'" in made.output
    assert not (tmp_path / "edition").exists()


def test_student_pyproject_drops_the_references():
    text = student_pyproject((ROOT / "pyproject.toml").read_text())
    assert "solutions" not in text and 'name = "cnn-grader"' in text


# --- how `assess` functions travel (fast: no student edition needed) -----------------------------
def _pooling_case(g, **extra):
    from grader.checks import call, randn

    return call("max_pool2d", randn(g, 1, 1, 4, 4), 2, label="4x4", **extra)


def test_named_assess_functions_and_partials_round_trip():
    import functools

    from grader.engine import compare
    from grader.engine.recording import _assess_from_spec, _assess_spec

    assert _assess_from_spec(_assess_spec(compare.describe)) is compare.describe
    part = _assess_from_spec(_assess_spec(functools.partial(compare.compare, where="x")))
    assert part.func is compare.compare and part.keywords == {"where": "x"}
    assert _assess_spec(lambda got, expected: None) is None  # not the grader's: cannot be named


def test_an_unnamed_assess_is_remade_from_the_seed(monkeypatch):
    import grader.engine.recording
    from grader.engine.recording import record_exercise
    from grader.engine.spec import Case, Check, derive_seed

    def judge(got, expected):  # defined here, so it cannot be named in the recording
        return None

    def cases(g, ref):
        c = _pooling_case(g)
        return [Case(c.probe, c.args, c.kwargs, label=c.label, assess=judge)]

    check = Check("custom", "max_pool2d", 1, cases)
    monkeypatch.setattr(grader.engine.recording, "load_checks", lambda name: [check])
    data = record_exercise("pooling", LiveOracle("pooling"))
    assert data["checks"]["custom"]["remake"] is True
    replayed = RecordedOracle(data).cases(check, derive_seed(0, "pooling", "custom"))
    assert replayed[0].assess is judge and torch.equal(replayed[0].args[1], data["checks"]["custom"]["cases"][0]["args"][1])


def test_an_assess_that_can_neither_be_named_nor_remade_is_refused(monkeypatch):
    import grader.engine.recording
    from grader.engine.recording import RecordingError, record_exercise
    from grader.engine.spec import Case, Check

    def cases(g, ref):
        c = _pooling_case(g)
        return [Case(c.probe, (ref.max_pool2d.__name__, *c.args[1:]), c.kwargs, assess=lambda got, exp: None)]

    monkeypatch.setattr(grader.engine.recording, "load_checks", lambda name: [Check("custom", "max_pool2d", 1, cases)])
    with pytest.raises(RecordingError, match=r"ref\.max_pool2d.*module-level function"):
        record_exercise("pooling", LiveOracle("pooling"))


class _Opaque:
    """What a reference could return that is not plain data (pickled by reference, refused by `weights_only`)."""


@pytest.mark.parametrize("odd", [_Opaque(), lambda: None], ids=["object", "function"])
def test_a_recording_that_is_not_plain_data_is_refused_and_left_out(odd, tmp_path, monkeypatch):
    from grader.engine.recording import RecordingError, write_recording

    live = LiveOracle("pooling")
    monkeypatch.setattr(live, "expected", lambda check, index, case: odd)
    with pytest.raises(RecordingError, match="not plain data"):
        write_recording("pooling", tmp_path, live)
    assert list(tmp_path.iterdir()) == []
