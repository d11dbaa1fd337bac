"""`grade batch`: safe unpacking, and a real class where bad submissions cost only their own points.

The end-to-end tests run the command in a copy of the course (grader, references, stubs), so that a
submission that tampers with the grader's files changes the copy and never this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, reference_source, statuses
from grader.instructor.submissions import (Limits, Submission, SubmissionError, discover, extract_zip, student_id,
                                       unpack)

QUIZ = {"format": "cnn-grader/quiz-results", "version": 1, "generated_at": "2025-01-30T10:00:00+00:00",
        "statements": {"gap-no-trainable-params": {"topic": "gap", "first_correct": True},
                       "conv-is-cross-correlation": {"topic": "convolution", "first_correct": False}}}


def _zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


# --- unpacking ----------------------------------------------------------------------------------
@pytest.mark.parametrize("entries, symlinks, why", [
    ({"/etc/evil.py": b"x"}, None, "absolute path"),
    ({"../evil.py": b"x"}, None, "leaves its folder"),
    ({"a/../../evil.py": b"x"}, None, "leaves its folder"),
    ({"a\\..\\..\\evil.py": b"x"}, None, "leaves its folder"),
    ({"C:/evil.py": b"x"}, None, "absolute path"),
    ({"ok.py": b"x"}, {"link.py": "/etc/passwd"}, "symbolic link"),
    ({f"f{i}.py": b"x" for i in range(6)}, None, "at most 5"),
    ({"big.bin": b"0" * 2000}, None, "at most 1000"),
])
def test_unsafe_zips_are_refused(tmp_path, entries, symlinks, why):
    archive = _zip(tmp_path / "s.zip", entries, symlinks)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match=why):
        extract_zip(archive, dest, Limits(max_files=5, max_bytes=1000))
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil.py").exists()


def test_a_zip_that_lies_about_its_sizes_is_refused(tmp_path, monkeypatch):
    archive = _zip(tmp_path / "s.zip", {"a.py": b"1" * 600, "b.py": b"2" * 600})
    monkeypatch.setattr(zipfile.ZipInfo, "file_size", property(lambda self: 1, lambda self, v: None))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SubmissionError, match="cannot be unpacked|size limit"):
        extract_zip(archive, dest, Limits(max_bytes=1000))
    assert sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) <= 1000


def test_unpack_finds_the_shallowest_module_and_the_quiz(tmp_path):
    archive = _zip(tmp_path / "Ada Lovelace.zip", {
        "work/pooling.py": b"# graded", "work/old/pooling.py": b"# older copy", "work/conv.py": b"#",
        "work/quiz.json": json.dumps(QUIZ).encode(), "notes.json": b'{"format": "something else"}',
        "__MACOSX/work/._pooling.py": b"\0\0", "work/": b""})
    (sub,) = discover(tmp_path)
    assert sub == Submission("Ada_Lovelace", archive)
    found = unpack(sub, tmp_path / "unpacked", ["conv", "pooling", "gap"])
    assert found.files["pooling"].read_text() == "# graded"
    assert set(found.files) == {"conv", "pooling"}
    assert found.quiz == QUIZ and found.problems == []
    assert not (tmp_path / "unpacked" / "__MACOSX").exists()


def test_unpack_reports_a_bad_quiz_file_and_copies_folders_without_links(tmp_path):
    folder = tmp_path / "subs" / "bob"
    folder.mkdir(parents=True)
    (folder / "pooling.py").write_text("# mine")
    (folder / "quiz.json").write_text(json.dumps({**QUIZ, "statements": {"x": {"topic": "gap"}}}))
    (folder / "conv.py").symlink_to("/etc/hostname")
    found = unpack(Submission("bob", folder), tmp_path / "unpacked", ["conv", "pooling"])
    assert list(found.files) == ["pooling"] and found.quiz is None
    assert "first_correct" in found.problems[0]


def test_discover_ids(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "_batch").mkdir()
    (tmp_path / "notes.txt").write_text("")
    _zip(tmp_path / "bo b.zip", {"a.py": b""})
    assert [s.student for s in discover(tmp_path)] == ["ann", "bo_b"]
    assert student_id("../../etc.zip") == "etc"
    assert student_id("ü.zip").startswith("student-") and student_id("_x") == "x"
    (tmp_path / "bo_b").mkdir()
    with pytest.raises(ValueError, match="both student 'bo_b'"):
        discover(tmp_path)


# --- a real class, end to end ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A private copy of the course: what students do to it cannot touch this checkout."""
    dest = tmp_path_factory.mktemp("course")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("grader", "solutions", "exercises", "quizzes"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _grade_cli(course: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(course)}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _pooling_with(code: str, old: str = "", new: str = "") -> str:
    src = reference_source("pooling")
    anchor = "from __future__ import annotations\n"
    src = src.replace(anchor, anchor + code, 1)
    if old:
        assert old in src
        src = src.replace(old, new, 1)
    return src


MAX_POOL_BODY = '    kh, kw = _pair(kernel_size, "kernel_size")\n'


@pytest.fixture(scope="module")
def graded_class(course, tmp_path_factory):
    subs = tmp_path_factory.mktemp("class") / "submissions"
    subs.mkdir()
    _zip(subs / "good.zip", {"ada/pooling.py": reference_source("pooling").encode(),
                             "ada/quiz.json": json.dumps(QUIZ).encode(), "__MACOSX/ada/._pooling.py": b"\0"})
    (subs / "killer").mkdir()
    # The worker's parent is the zygote that forked it; the grading process is the zygote's parent.
    (subs / "killer" / "pooling.py").write_text(_pooling_with(
        "import os\n"
        "grader_pid = int(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])\n"
        "os.kill(grader_pid, 9)\nos.kill(os.getppid(), 9)\n"))
    (subs / "chaos").mkdir()
    chaos = _pooling_with("print('spam ' * 1_000_000)\n", MAX_POOL_BODY,
                          "    while x.dtype == torch.float64:\n        pass\n" + MAX_POOL_BODY)
    chaos = chaos.replace("def avg_pool2d(x: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> torch.Tensor:\n",
                          "def avg_pool2d(x: torch.Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> torch.Tensor:\n"
                          "    if x.dtype == torch.float32:\n        torch.ones(1024, 1024, 1024, 8)\n", 1)
    (subs / "chaos" / "pooling.py").write_text(chaos)
    _zip(subs / "evil.zip", {"pooling.py": b"x = 1", "../escaped.py": b"x = 2"})
    (subs / "nothing").mkdir()
    (subs / "nothing" / "README.txt").write_text("I did not do it")
    out = subs.parent / "results"
    run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--exercise", "pooling", "--timeout", "1",
                     "--jobs", "2")
    docs = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json") if not p.name.startswith("_")}
    return subs, out, run, docs


@pytest.mark.slow
def test_every_student_gets_a_result_and_only_their_own_points(graded_class, grade):
    subs, out, run, docs = graded_class
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(docs) == ["chaos", "evil", "good", "killer", "nothing"]

    good = docs["good"]
    assert (good["score"], good["max_score"]) == (18, 18) and good["quiz"] == QUIZ
    assert good["exercises"][0]["path"] == "good.zip/ada/pooling.py"
    direct = grade("pooling", reference_source("pooling"))
    assert [(c["name"], c["status"], c["message"]) for c in good["exercises"][0]["checks"]] == \
        [(c["name"], c["status"], c["message"]) for c in direct["checks"]]

    (killer,) = docs["killer"]["exercises"]
    assert set(statuses(killer).values()) == {"crashed"}
    assert "killed by signal 9" in killer["checks"][0]["message"]

    (chaos,) = docs["chaos"]["exercises"]
    assert statuses(chaos) == {"max_pool2d_forward": "passed", "max_pool2d_float64_gradients": "timeout",
                               "avg_pool2d_forward": "error", "avg_pool2d_float64_gradients": "passed",
                               "kernel_larger_than_input": "passed"}
    assert "out of memory" in chaos["checks"][2]["message"]
    assert any("printed" in n and "bytes" in n for n in chaos["notices"])

    (evil,) = docs["evil"]["exercises"]
    assert set(statuses(evil).values()) == {"error"} and "leaves its folder" in evil["checks"][0]["message"]
    assert not list(subs.parent.rglob("escaped.py"))
    (nothing,) = docs["nothing"]["exercises"]
    assert set(statuses(nothing).values()) == {"not_implemented"}
    assert nothing["checks"][0]["message"] == "pooling.py was not found in the submission"

    assert "5/5 students" in run.stderr and "left ~" in run.stderr
    assert "graded 4" in run.stdout and "refused 1 (evil)" in run.stdout


@pytest.mark.slow
def test_a_second_run_resumes_and_skips_everyone(course, graded_class):
    subs, out, _, _ = graded_class
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--exercise", "pooling", "--timeout", "1")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "skipped 5 already graded" in run.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == before
    run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--exercise", "conv", "--timeout", "1")
    assert run.returncode == 0  # nothing to do: every student has a result, whatever was graded
    (subs / "late").mkdir()
    run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--seed", "5", "--exercise", "pooling")
    assert run.returncode == 1 and "seed 0" in run.stderr and "--force" in run.stderr


@pytest.mark.slow
def test_tampering_stops_the_batch_and_keeps_no_result_for_the_suspect(course, tmp_path):
    subs = tmp_path / "subs"
    (subs / "tamperer").mkdir(parents=True)
    (subs / "bystander").mkdir()
    target = course / "grader" / "checks" / "pooling.py"
    (subs / "tamperer" / "pooling.py").write_text(
        _pooling_with(f"with open({str(target)!r}, 'a') as fh:\n    fh.write('# changed by a student')\n"))
    out = tmp_path / "results"
    out.mkdir()
    (out / "bystander.json").write_text("{}")  # graded before: skipped, not touched
    original = target.read_text()
    try:
        run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--exercise", "pooling", "--jobs", "1")
    finally:
        target.write_text(original)
    assert run.returncode == 1
    assert "changed during the batch" in run.stderr and "tamperer" in run.stderr
    assert not (out / "tamperer.json").exists()
    assert json.loads((out / "_tampering.json").read_text())["suspects"] == ["tamperer"]
    assert (out / "bystander.json").read_text() == "{}"


def test_batch_help_lists_the_options():
    from click.testing import CliRunner

    from grader.cli import cli

    for command in ("batch", "report", "gradescope-autograder", "release"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert "--jobs" in CliRunner().invoke(cli, ["batch", "--help"]).output
