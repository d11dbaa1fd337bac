"""`grade batch`: safe unpacking, and a real class where bad submissions cost only their own points.

The end-to-end tests run the command in a copy of the course (grader, references, stubs), so that a
submission that tampers with the grader's files changes the copy and never this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import copy_course, imported_modules, interruptible, reference_source, statuses, wait_for_descendants
from grader.instructor.classdata import read_manifest, verify_results
from grader.instructor.submissions import (DiscoveryError, Limits, Submission, SubmissionError, class_submissions,
                                           discover, extract_zip, student_id, unpack)
from grader.runner import sandbox

SANDBOXED = sandbox.plan() != "none"
needs_sandbox = pytest.mark.skipif(not SANDBOXED, reason="no sandbox here: no Landlock (Linux 5.13+), not root")
UNSANDBOXED = () if SANDBOXED else ("--allow-unsandboxed",)

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


def test_unpack_finds_the_module_names_every_copy_and_the_quiz(tmp_path):
    archive = _zip(tmp_path / "Ada Lovelace.zip", {
        "work/pooling.py": b"# graded", "work/old/pooling.py": b"# older copy", "work/conv.py": b"#",
        "work/quiz.json": json.dumps(QUIZ).encode(), "notes.json": b'{"format": "something else"}',
        "__MACOSX/work/._pooling.py": b"\0\0", "work/": b""})
    (sub,) = discover(tmp_path).submissions
    assert sub == Submission("Ada_Lovelace", archive)
    found = unpack(sub, tmp_path / "unpacked", ["conv", "pooling", "gap"])
    assert found.files["pooling"].read_text() == "# graded"
    assert set(found.files) == {"conv", "pooling"}
    assert found.quiz == QUIZ
    # a second copy is never a silent pick: the problem names both, and which was graded
    assert found.problems == ["2 copies of pooling.py: work/pooling.py, work/old/pooling.py; graded "
                              "work/pooling.py (the shallowest)"]
    assert not (tmp_path / "unpacked" / "__MACOSX").exists()


def test_copies_at_the_same_depth_are_named_too(tmp_path):
    (tmp_path / "s" / "a").mkdir(parents=True)
    (tmp_path / "s" / "b").mkdir()
    (tmp_path / "s" / "a" / "conv.py").write_text("# a")
    (tmp_path / "s" / "b" / "conv.py").write_text("# b")
    found = unpack(Submission("s", tmp_path / "s"), tmp_path / "unpacked", ["conv"])
    assert found.problems == ["2 copies of conv.py: a/conv.py, b/conv.py; graded a/conv.py "
                              "(the first by name, at the same depth)"]


@pytest.mark.parametrize("files, problem", [
    ({}, "the submission is empty: no .py files found"),
    ({"README.txt": "I did not do it"}, "no .py files found; the submission holds README.txt"),
    ({"main.py": "", "notes.md": ""}, "no exercise file found (expected conv.py, pooling.py); the submission holds main.py"),
])
def test_a_submission_without_exercise_files_is_a_problem(tmp_path, files, problem):
    folder = tmp_path / "s"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    found = unpack(Submission("s", folder), tmp_path / "unpacked", ["conv", "pooling"])
    assert found.files == {} and found.problems == [problem]


def test_unpack_reports_a_bad_quiz_file_and_copies_folders_without_links(tmp_path):
    folder = tmp_path / "subs" / "bob"
    folder.mkdir(parents=True)
    (folder / "pooling.py").write_text("# mine")
    (folder / "quiz.json").write_text(json.dumps({**QUIZ, "statements": {"x": {"topic": "gap"}}}))
    (folder / "conv.py").symlink_to("/etc/hostname")
    found = unpack(Submission("bob", folder), tmp_path / "unpacked", ["conv", "pooling"])
    assert list(found.files) == ["pooling"] and found.quiz is None
    assert "first_correct" in found.problems[0]


def test_discover_ids_and_nothing_left_out_without_a_word(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "_batch").mkdir()  # a student's name, not the batch's: graded as "batch"
    (tmp_path / "_alice").mkdir()
    (tmp_path / "__MACOSX").mkdir()  # what an archiver leaves: not a submission, not worth a note
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "results").mkdir()
    _zip(tmp_path / "bo b.zip", {"a.py": b""})
    found = discover(tmp_path, exclude=(tmp_path / "results",))
    assert [s.student for s in found.submissions] == ["alice", "ann", "batch", "bo_b"]
    assert [n.split(" (")[0] for n in found.left_out] == [".hidden", "notes.txt", "results"]
    assert "output folder" in found.left_out[2] and "Canvas" in found.left_out[1]
    assert student_id("../../etc.zip") == "etc"
    assert student_id("ü.zip").startswith("student-") and student_id("_x") == "x"
    (tmp_path / "bo_b").mkdir()
    with pytest.raises(DiscoveryError, match="both student 'bo_b'"):
        discover(tmp_path)


def test_platform_exports_give_one_submission_per_student(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    files = {
        # Canvas: name[_LATE]_userid_submissionid_file; a resubmitted file gets "-1"
        "smithjohn_12345_67890_conv.py": "# john conv", "smithjohn_12345_67890_pooling-1.py": "# john pooling",
        "doejane_LATE_222_333_conv.py": "# jane conv",
        # Moodle, flat: Full Name_id_assignsubmission_file_file
        "Ada Lovelace_555_assignsubmission_file_conv.py": "# ada conv",
        # Blackboard: assignment_user_attempt_date[_file], a receipt per attempt; the latest attempt counts
        "Lab 1_ghopper_attempt_2025-01-30-09-00-00_conv.py": "# old", "Lab 1_ghopper_attempt_2025-01-30-09-00-00.txt": "",
        "Lab 1_ghopper_attempt_2025-01-31-10-00-00_conv.py": "# new", "Lab 1_ghopper_attempt_2025-01-31-10-00-00.txt": "",
    }
    for name, text in files.items():
        (export / name).write_text(text)
    _zip(export / "turingalan_7_8_work.zip", {"work/conv.py": b"# alan, in the zip he uploaded"})
    moodle_folder = export / "Emmy Noether_9_assignsubmission_file_"  # Moodle, one folder per student
    moodle_folder.mkdir()
    (moodle_folder / "conv.py").write_text("# emmy conv")
    found = discover(export)
    assert found.left_out == []
    subs = {s.student: s for s in found.submissions}
    assert sorted(subs) == ["Ada_Lovelace_555", "Emmy_Noether_9", "doejane_222", "ghopper", "smithjohn_12345",
                            "turingalan_7"]
    graded = {}
    for sid, sub in subs.items():
        got = unpack(sub, tmp_path / "unpacked" / sid, ["conv", "pooling"])
        graded[sid] = ({k: v.read_text() for k, v in got.files.items()}, got.problems)
    assert graded["smithjohn_12345"] == ({"conv": "# john conv", "pooling": "# john pooling"}, [])
    assert graded["doejane_222"][0] == {"conv": "# jane conv"}
    assert graded["Ada_Lovelace_555"][0] == {"conv": "# ada conv"}
    assert graded["Emmy_Noether_9"][0] == {"conv": "# emmy conv"}
    assert graded["turingalan_7"][0] == {"conv": "# alan, in the zip he uploaded"}
    files_of_ghopper, problems = graded["ghopper"]
    assert files_of_ghopper == {"conv": "# new"} and "2 attempts" in problems[0] and "latest" in problems[0]
    assert subs["smithjohn_12345"].origin("conv.py") == "smithjohn_12345_67890_conv.py"
    before = subs["Emmy_Noether_9"].digest()
    (moodle_folder / "conv.py").write_text("# emmy conv, changed")  # inside a member folder: a new digest
    assert next(s for s in discover(export).submissions if s.student == "Emmy_Noether_9").digest() != before


def test_one_zip_of_the_whole_class(tmp_path):
    with zipfile.ZipFile(tmp_path / "class.zip", "w") as zf:
        zf.writestr("submissions/alice/conv.py", "# alice")
        zf.writestr("submissions/bob.zip", (_zip(tmp_path / "bob.zip", {"conv.py": b"# bob"})).read_bytes())
    with class_submissions(tmp_path / "class.zip") as found:
        subs = {s.student: s for s in found.submissions}
        assert sorted(subs) == ["alice", "bob"] and subs["alice"].name == "class.zip/submissions/alice"
        got = unpack(subs["bob"], tmp_path / "unpacked", ["conv"])
        assert got.files["conv"].read_text() == "# bob"
        scratch = subs["alice"].source.parent.parent
    assert not scratch.exists()  # the unpacked class is removed afterwards
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(DiscoveryError, match="one zip of all submissions"):
        with class_submissions(tmp_path / "broken.zip"):
            pass


def test_the_digest_follows_the_content_not_the_folder(tmp_path):
    for where in ("a", "b"):
        (tmp_path / where / "ann").mkdir(parents=True)
        (tmp_path / where / "ann" / "conv.py").write_text("# mine")
    first, second = (Submission("ann", tmp_path / w / "ann").digest() for w in ("a", "b"))
    assert first == second
    (tmp_path / "b" / "ann" / "conv.py").write_text("# mine, changed")
    assert Submission("ann", tmp_path / "b" / "ann").digest() != first
    (tmp_path / "b" / "ann" / "conv.py").write_text("# mine")
    (tmp_path / "b" / "ann" / "pooling.py").write_text("")
    assert Submission("ann", tmp_path / "b" / "ann").digest() != first


# --- a real class, end to end ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A private copy of the course: what students do to it cannot touch this checkout."""
    return copy_course(tmp_path_factory.mktemp("course"))


def _grade_cli(course: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """`grade ARGS` in its own process, with the copy `course` as the grader (see the module docstring)."""
    env = {**os.environ, "PYTHONPATH": str(course), **env}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _grade_here(*args: str):  # noqa: ANN202 - click.testing.Result
    """`grade ARGS` in this process (click's test runner): for the commands whose point is not a
    process of their own, and where no student code can reach the grader's files."""
    from click.testing import CliRunner

    from grader.cli import cli

    return CliRunner().invoke(cli, list(args))


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
    (subs / "empty").mkdir()
    (subs / "_alice").mkdir()  # a leading "_" once hid a student; the id is "alice"
    (subs / "_alice" / "pooling.py").write_text(reference_source("pooling"))
    (subs / "minimum").mkdir()  # max pooling that takes each window's minimum: a picture for the class report
    (subs / "minimum" / "pooling.py").write_text(_pooling_with("", "windows.flatten(-2).max(dim=-1)", "windows.flatten(-2).min(dim=-1)"))
    out = subs.parent / "results"
    # It waits for another student's result, then rewrites it, and its own too (only a sandbox stops it).
    if SANDBOXED:
        (subs / "forger").mkdir()
        forged = json.dumps({"forged": True})
        (subs / "forger" / "pooling.py").write_text(_pooling_with(
            "import os, time\n"
            f"victim = {str(out / 'killer.json')!r}\n"
            "deadline = time.monotonic() + 20\n"
            "while not os.path.exists(victim) and time.monotonic() < deadline:\n"
            "    time.sleep(0.2)\n"
            f"for name in ('killer.json', 'forger.json'):\n"
            f"    open(os.path.join({str(out)!r}, name), 'w').write({forged!r})\n"))
    seed_file = subs.parent / "seed.txt"
    seed_file.write_text("0\n")  # the public seed, read from a file as a secret one would be
    # The batch's own imports are listed on its stderr (its agents' go to their logs).
    run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--exercise", "pooling", "--timeout", "1",
                     "--jobs", "2", "--seed-file", str(seed_file), *UNSANDBOXED, PYTHONPROFILEIMPORTTIME="1")
    docs = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json") if not p.name.startswith("_")}
    return subs, out, run, docs


@pytest.mark.slow
def test_every_student_gets_a_result_and_only_their_own_points(graded_class, grade):
    """Slow by design: the class is graded end to end by `grade batch` in its own process (a
    fresh worker per student, one of which kills the grader, one hangs, one floods its output)."""
    subs, out, run, docs = graded_class
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(docs) == ["alice", "chaos", "empty", "evil", *(["forger"] if SANDBOXED else []), "good", "killer",
                            "minimum", "nothing"]
    assert docs["alice"]["score"] == 18 and docs["alice"]["submission"] == "_alice"
    assert {d["sandbox"] for d in docs.values()} == {sandbox.plan()}

    good = docs["good"]
    assert (good["score"], good["max_score"]) == (18, 18) and good["quiz"] == QUIZ
    assert good["exercises"][0]["path"] == "good.zip/ada/pooling.py"
    direct = grade("pooling", reference_source("pooling"))
    assert [(c["name"], c["status"], c["message"]) for c in good["exercises"][0]["checks"]] == \
        [(c["name"], c["status"], c["message"]) for c in direct["checks"]]

    (killer,) = docs["killer"]["exercises"]
    if SANDBOXED:  # it cannot read /proc of its grader (Landlock), or cannot signal it (another user)
        assert set(statuses(killer).values()) == {"error"}
        assert "PermissionError" in killer["checks"][0]["message"]
    else:
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
    # flagged for the instructor, not taken for untouched stubs
    assert docs["nothing"]["problems"] == ["no .py files found; the submission holds README.txt"]
    assert docs["empty"]["problems"] == ["the submission is empty: no .py files found"]
    assert docs["good"]["problems"] == [] and len(docs["good"]["submission_digest"]) == 32

    assert f"{len(docs)}/{len(docs)} students" in run.stderr and "left ~" in run.stderr
    # Both slots began with code to grade, so the checks' outline came from an agent: the batch's
    # own process imported neither the checks nor torch, not even for the placeholders above.
    imported = imported_modules(run.stderr)
    assert "grader.instructor.batch" in imported and not [m for m in imported if m.split(".")[0] == "torch"]
    assert f"graded {len(docs) - 1}" in run.stdout and "refused 1 (evil)" in run.stdout
    assert f"sandbox: {sandbox.plan()}" in run.stdout

    # the one wrong result has its picture (the first failed check of max_pool2d), the others none
    pictured = [(d, c["name"]) for d, doc in docs.items() for e in doc["exercises"] for c in e["checks"] if c.get("picture")]
    assert pictured == [("minimum", "max_pool2d_forward")]


@pytest.mark.slow
@needs_sandbox
def test_a_student_cannot_forge_a_result(graded_class):
    subs, out, run, docs = graded_class
    (forger,) = docs["forger"]["exercises"]
    assert set(statuses(forger).values()) == {"error"} and "PermissionError" in forger["checks"][0]["message"]
    assert "forged" not in docs["killer"] and "forged" not in docs["forger"]
    manifest = read_manifest(out)
    assert manifest["sandbox"] == sandbox.plan() and sorted(manifest["results"]) == sorted(docs)
    assert verify_results(out, manifest["results"]) == []


@pytest.mark.slow
def test_the_report_names_a_result_changed_after_the_batch(graded_class, tmp_path):
    _, out, _, docs = graded_class
    copy = tmp_path / "results"
    shutil.copytree(out, copy)
    assert _grade_here("report", str(copy), "--csv", str(tmp_path / "class.csv")).exit_code == 0
    doc = json.loads((copy / "killer.json").read_text())
    doc["score"] = doc["max_score"]
    (copy / "killer.json").write_text(json.dumps(doc, indent=2) + "\n")
    (copy / "nothing.json").unlink()
    run = _grade_here("report", str(copy), "--csv", str(tmp_path / "class.csv"))
    assert run.exit_code == 2
    assert "killer: changed after the batch wrote it" in run.stderr and "nothing: its result is missing" in run.stderr
    assert "good" not in run.stderr.split("do not match")[1].split("Do not use")[0]


@pytest.mark.slow
def test_a_second_run_keeps_what_is_current_and_grades_again_what_is_not(graded_class):
    """The batches run in this process: none of them runs student code (what is kept needs none,
    the changed submission holds no exercise file and nobody handed in gap.py), so none starts an agent."""
    subs, out, _, _ = graded_class
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    students = len(before) - 1  # all but the manifest
    run = _grade_here("batch", str(subs), "--out", str(out), "--exercise", "pooling", "--timeout", "1", *UNSANDBOXED)
    assert run.exit_code == 0, run.output[-3000:]
    assert f"kept {students} already graded" in run.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == before
    # a changed submission is graded again, and only it
    (subs / "nothing" / "README.txt").write_text("I still did not do it")
    run = _grade_here("batch", str(subs), "--out", str(out), "--exercise", "pooling", "--timeout", "1", *UNSANDBOXED)
    assert run.exit_code == 0, run.output[-3000:]
    assert "graded again 1 (1 changed submission)" in run.stdout and f"kept {students - 1}" in run.stdout
    # another exercise set: everyone again
    run = _grade_here("batch", str(subs), "--out", str(out), "--exercise", "gap", "--timeout", "1", *UNSANDBOXED)
    assert run.exit_code == 0, run.output[-3000:]
    assert f"graded again {students} ({students} other exercises)" in run.stdout
    assert [e["exercise"] for e in json.loads((out / "good.json").read_text())["exercises"]] == ["gap"]
    # another seed is refused: one folder, one seed
    (subs / "late").mkdir()
    run = _grade_here("batch", str(subs), "--out", str(out), "--seed", "5", "--exercise", "gap", *UNSANDBOXED)
    assert run.exit_code == 2 and "another seed than 5" in run.stderr and "seed 0" in run.stderr
    assert "--force" in run.stderr and not (out / "late.json").exists()


@pytest.mark.slow
def test_tampering_with_the_grader_is_refused_or_stops_the_batch(course, tmp_path):
    """`grade batch` in its own process on the copy of the course, so that the grader a student
    changes is the copy's: that process, an agent and its zygote each import torch (about 5 s)."""
    subs = tmp_path / "subs"
    (subs / "tamperer").mkdir(parents=True)
    (subs / "bystander").mkdir()
    target = course / "grader" / "checks" / "pooling.py"
    (subs / "tamperer" / "pooling.py").write_text(
        _pooling_with(f"with open({str(target)!r}, 'a') as fh:\n    fh.write('# changed by a student')\n"))
    out = tmp_path / "results"
    original = target.read_text()
    try:
        run = _grade_cli(course, "batch", str(subs), "--out", str(out), "--exercise", "pooling", "--jobs", "1",
                         *UNSANDBOXED)
        changed = target.read_text() != original
    finally:
        target.write_text(original)
    # graded before the tampering (one job, in order of ids): not a suspect, so its result stays
    assert json.loads((out / "bystander.json").read_text())["problems"] == ["the submission is empty: no .py files found"]
    if SANDBOXED:  # the write is refused: nothing changed, the student's code failed on it
        assert run.returncode == 0 and not changed, run.stderr[-3000:]
        (tamperer,) = json.loads((out / "tamperer.json").read_text())["exercises"]
        assert set(statuses(tamperer).values()) == {"error"} and "PermissionError" in tamperer["checks"][0]["message"]
        return
    assert run.returncode == 2
    assert "changed during the batch" in run.stderr and "tamperer" in run.stderr
    assert not (out / "tamperer.json").exists()
    assert json.loads((out / "_tampering.json").read_text())["suspects"] == ["tamperer"]


# --- the supervisor's own checks, in this process ----------------------------------------------
def _one_student(tmp_path: Path, source: str | None) -> list[Submission]:
    """One student, ada, who handed in `source` as pooling.py; None: a note and no exercise file
    (nothing to run, so no agent starts: for what the batch checks around the grading)."""
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    if source is None:
        (tmp_path / "subs" / "ada" / "notes.txt").write_text("I ran out of time")
    else:
        (tmp_path / "subs" / "ada" / "pooling.py").write_text(source)
    return discover(tmp_path / "subs").submissions


def _options(tmp_path: Path, **kw: object) -> "BatchOptions":
    from grader.instructor.batch import BatchOptions

    kw.setdefault("allow_unsandboxed", not SANDBOXED)
    kw.setdefault("jobs", 1)
    return BatchOptions(out=tmp_path / "results", exercises=("pooling",), timeout=5, **kw)


def test_an_outline_of_the_checks_is_taken_only_when_well_formed():
    from grader.instructor.agent import checks_outline
    from grader.instructor.batch import _valid_outline

    good = checks_outline(["pooling", "gap"])
    assert _valid_outline(good, ["gap", "pooling"])
    bad = [good["pooling"], {"pooling": good["pooling"]}, {**good, "conv": good["gap"]}, {**good, "gap": []},
           {**good, "gap": [["global_avg_pool_forward", "global_avg_pool", -1]]},
           {**good, "gap": [["global_avg_pool_forward", "global_avg_pool", True]]},
           {**good, "gap": [["global_avg_pool_forward", 3, 2]]}, {**good, "gap": [["only", "two"]]}]
    assert not [o for o in bad if _valid_outline(o, ["pooling", "gap"])]


def test_a_change_of_the_grader_files_during_the_batch_stops_it(tmp_path, monkeypatch):
    """What the batch does when the grader's files change under it (only possible without a sandbox)."""
    from grader.engine import session
    from grader.instructor.batch import TamperingError, run_batch

    snapshots = iter(["before", "after"])
    monkeypatch.setattr(session, "integrity_snapshot", lambda: next(snapshots, "after"))
    with pytest.raises(TamperingError, match="changed during the batch") as caught:
        run_batch(_one_student(tmp_path, None), _options(tmp_path))
    assert caught.value.suspects == ["ada"]
    assert not (tmp_path / "results" / "ada.json").exists()


def test_a_result_changed_during_the_batch_is_named_when_it_ends_and_before_it_resumes(tmp_path):
    from grader.instructor.batch import ForgedResultsError, run_batch

    def forge(event, done, total) -> None:  # what a student without a sandbox could do
        path = tmp_path / "results" / f"{event.student}.json"
        path.write_text(path.read_text().replace('"score": 0', '"score": 18', 1))

    subs = _one_student(tmp_path, None)
    with pytest.raises(ForgedResultsError, match="ada: changed after the batch wrote it") as caught:
        run_batch(subs, _options(tmp_path), on_event=forge)
    assert caught.value.students == ["ada"]
    with pytest.raises(ForgedResultsError, match="ada: changed after the batch wrote it"):
        run_batch(subs, _options(tmp_path))  # resuming would have kept the forged result
    (tmp_path / "results" / "ada.json").unlink()  # as the message says: delete it, run again
    assert run_batch(subs, _options(tmp_path)).graded == ["ada"]
    assert json.loads((tmp_path / "results" / "ada.json").read_text())["score"] == 0


def test_submissions_without_code_start_no_agent(tmp_path, monkeypatch):
    from grader.instructor import batch

    def no_agent(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("an agent was started, with no student code to grade")

    monkeypatch.setattr(batch, "_AgentProcess", no_agent)
    summary = batch.run_batch(_one_student(tmp_path, None), _options(tmp_path, jobs=2))
    assert summary.graded == ["ada"]
    (pooling,) = json.loads((tmp_path / "results" / "ada.json").read_text())["exercises"]
    assert {c["status"] for c in pooling["checks"]} == {"not_implemented"}


def test_no_sandbox_is_refused_unless_allowed(tmp_path, monkeypatch):
    from grader.instructor.batch import BatchError, run_batch

    monkeypatch.setattr(sandbox, "plan", lambda: "none")
    with pytest.raises(BatchError, match="--allow-unsandboxed") as caught:
        run_batch(_one_student(tmp_path, "x = 1\n"), _options(tmp_path, allow_unsandboxed=False))
    assert "read the references" in str(caught.value)
    assert not (tmp_path / "results" / "ada.json").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the uid fallback needs root")
def test_the_uid_fallback_is_refused_while_the_references_are_readable(tmp_path, monkeypatch):
    from grader.instructor.batch import BatchError, BatchOptions, check_sandbox

    monkeypatch.setattr(sandbox, "plan", lambda: "uid")
    readable = tmp_path / "open" / "conv.py"
    readable.parent.mkdir()
    readable.write_text("reference")
    monkeypatch.setattr(sandbox, "exposed_paths", lambda paths: [p for p in paths if p == readable])
    with pytest.raises(BatchError, match="chmod -R go-rwx") as caught:
        check_sandbox(BatchOptions(out=tmp_path), [readable, tmp_path / "results"])
    assert str(readable) in str(caught.value)
    assert check_sandbox(BatchOptions(out=tmp_path, allow_unsandboxed=True), [readable]) == "uid"


@pytest.mark.slow
def test_killing_the_batch_leaves_no_agent_behind(course, tmp_path):
    """The batch is a process of its own, killed once its agent, zygote and worker run (about 4 s)."""
    subs = tmp_path / "subs"
    (subs / "looper").mkdir(parents=True)
    (subs / "looper" / "pooling.py").write_text(_pooling_with("import time\nwhile True:\n    time.sleep(0.05)\n"))  # idle
    env = {**os.environ, "PYTHONPATH": str(course)}
    batch = subprocess.Popen([sys.executable, "-m", "grader.cli", "batch", str(subs), "--out", str(tmp_path / "out"),
                              "--exercise", "pooling", "--jobs", "1", "--timeout", "60", *UNSANDBOXED],
                             cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        family = wait_for_descendants(batch.pid, 3, timeout=180)  # the agent, its zygote and the looping worker
    finally:
        batch.send_signal(signal.SIGKILL)
        batch.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [p for p in family if _running(p)]:
        time.sleep(0.1)
    assert not [p for p in family if _running(p)]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_one_zip_of_a_canvas_export_through_the_command(tmp_path):
    with zipfile.ZipFile(tmp_path / "canvas.zip", "w") as zf:
        zf.writestr("submissions/lovelaceada_11_21_pooling-1.py", reference_source("pooling"))  # resubmitted
        zf.writestr("submissions/hopper_LATE_12_22_notes.txt", "I ran out of time")
        zf.writestr("submissions/readme.md", "from the instructor")
    out = tmp_path / "results"
    run = _grade_here("batch", str(tmp_path / "canvas.zip"), "--out", str(out), "--exercise", "pooling", *UNSANDBOXED)
    assert run.exit_code == 0, run.output[-3000:]
    assert "note: left out readme.md" in run.stderr and "graded 2" in run.stdout
    ada = json.loads((out / "lovelaceada_11.json").read_text())
    assert ada["score"] == 18 and ada["submission"] == "canvas.zip/submissions/lovelaceada_11_21_pooling-1.py"
    assert ada["exercises"][0]["path"] == "canvas.zip/submissions/lovelaceada_11_21_pooling-1.py"
    hopper = json.loads((out / "hopper_12.json").read_text())
    assert hopper["problems"] == ["no .py files found; the submission holds notes.txt"]


def _grading_processes(scratch: Path, workers_only: bool = False) -> list[int]:
    """Processes that belong to a batch run with TMPDIR=scratch: the batch, its agents, zygotes and
    workers (their folders, so their working directory or TMPDIR, are all inside scratch)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
        except OSError:
            continue
        tmpdir = next((v[7:].decode(errors="replace") for v in environ if v.startswith(b"TMPDIR=")), "")
        inside = any(p == str(scratch) or p.startswith(f"{scratch}/") for p in (cwd, tmpdir))
        if inside and (not workers_only or Path(cwd).name == "work"):
            found.append(int(entry))
    return found


@pytest.mark.slow
def test_ctrl_c_leaves_no_zygote_folder_or_process_behind(course, tmp_path):
    """A real batch in its own process, interrupted once a worker runs its student's endless loop
    (about 4 s: the batch, its agent and the agent's zygote each import torch)."""
    subs = tmp_path / "subs"
    (subs / "looper").mkdir(parents=True)
    (subs / "looper" / "pooling.py").write_text(_pooling_with("", MAX_POOL_BODY, "    while True:\n        pass\n"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(course), "TMPDIR": str(scratch)}
    batch = subprocess.Popen([sys.executable, "-m", "grader.cli", "batch", str(subs), "--out", str(tmp_path / "out"),
                              "--exercise", "pooling", "--timeout", "120", "--jobs", "1", *UNSANDBOXED], cwd=course, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=interruptible)
    try:
        deadline = time.monotonic() + 300
        while not _grading_processes(scratch, workers_only=True):  # a worker runs the student's endless loop
            assert batch.poll() is None, batch.communicate()
            assert time.monotonic() < deadline, "no worker started"
            time.sleep(0.2)
        assert list(scratch.rglob("cnn-grader-zygote-*"))
        os.killpg(batch.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        _, err = batch.communicate(timeout=120)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()
    assert batch.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-3000:]
    deadline = time.monotonic() + 10
    while _grading_processes(scratch) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _grading_processes(scratch) == []
    assert list(scratch.rglob("cnn-grader-*")) == []
    assert not (tmp_path / "out" / "looper.json").exists()  # its grading was cut short: no result, not a crash


def test_the_seed_comes_from_one_place(tmp_path):
    from click.testing import CliRunner

    from grader.cli import cli

    (tmp_path / "subs" / "ada").mkdir(parents=True)
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text("not a number\n")
    both = CliRunner().invoke(cli, ["batch", str(tmp_path / "subs"), "--seed", "3", "--seed-file", str(seed_file)])
    assert both.exit_code == 2 and "not both" in both.output
    garbage = CliRunner().invoke(cli, ["batch", str(tmp_path / "subs"), "--seed-file", str(seed_file)])
    assert garbage.exit_code == 2 and "integer" in garbage.output


def test_batch_help_lists_the_options():
    from click.testing import CliRunner

    from grader.cli import cli

    for command in ("batch", "report", "gradescope-autograder", "release"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert "--jobs" in CliRunner().invoke(cli, ["batch", "--help"]).output
