"""The `grade` command line: help, list, exit codes, unknown names, JSON output, no torch import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import ROOT, interruptible
from grader.cli import _COMMANDS, cli


def _run(*args: str, cwd=ROOT, env_extra=None) -> subprocess.CompletedProcess:
    """`grade ARGS` as a user runs it: the console script's `main`, in a process of its own. Only
    for what needs one (the real exit path, a fresh interpreter); the rest runs in this process
    (conftest's `invoke`)."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADE_HOME": str(cwd / ".grade-test"), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.parametrize("argv", [["--help"], ["list"]])
def test_help_and_list_do_not_import_torch(argv, tmp_path):
    code = ("import sys; from grader.cli import cli\n"
            f"try:\n    cli.main({argv!r}, prog_name='grade')\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"GRADE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


def test_list_needs_neither_yaml_nor_sqlite_once_the_catalogue_is_cached(tmp_path):
    """`grade list` takes the parsed catalogue from the cache (the first run parses the YAML), and
    with nothing stored it neither opens nor creates the progress database."""
    code = ("import sys; from grader.cli import cli\n"
            "try:\n    cli.main(['list'], prog_name='grade')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('yaml', 'sqlite3', 'torch') if m in sys.modules))")
    env = {"GRADE_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
            for _ in range(2)]
    assert [r.stdout.strip().splitlines()[-1] for r in runs] == ["['yaml']", "[]"], [r.stdout + r.stderr for r in runs]
    assert not (tmp_path / "home" / "progress.db").exists()


def test_every_registered_command_has_help():
    runner = CliRunner()
    for name in _COMMANDS:
        if cli.get_command(None, name) is None:  # commands of later issues may not exist yet
            continue
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_list_shows_every_exercise_with_parts_and_points(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADE_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    from grader.catalog import load_catalog

    for ex in load_catalog():
        assert ex.name in result.output and f"{ex.max_points} pts" in result.output
        for part in ex.parts:
            assert part.name in result.output


def test_unknown_exercise_suggests_close_names():
    result = CliRunner().invoke(cli, ["exercise", "convv"])
    assert result.exit_code == 2
    assert "Did you mean conv" in result.output


@pytest.mark.parametrize("command", [["batch", "."], ["release", "--out", "edition"], ["github-classroom", "--out", "edition"]])
def test_instructor_commands_refuse_an_unknown_exercise_as_the_others_do(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [*command, "--exercise", "pooling", "--exercise", "convv"])
    assert result.exit_code == 2 and "Unknown exercise 'convv'. Did you mean conv?" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_wrong_path_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["exercise", "conv", "--path", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "is not a folder" in result.output and "Traceback" not in result.output


def test_missing_file_is_a_setup_error_without_traceback(invoke, tmp_path):
    out = invoke("exercise", "conv", "--path", str(tmp_path))
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit)
    assert "does not exist" in out.stderr and "grade reset conv" in out.stderr and "Traceback" not in out.stderr


def test_exercise_exit_code_0_json_and_notes_through_the_real_entry_point(tmp_path):
    """The console script's exit after grading (`cli._exit`: no interpreter teardown) keeps the
    exit code, the JSON file and both streams. About 3 s: a cold `grade exercise` process."""
    good = _run("exercise", "pooling", "--path", str(ROOT / "solutions"), "--json", str(tmp_path / "r.json"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "18/18" in good.stdout and "not saved to your progress" in good.stderr  # --path elsewhere: not recorded
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema"] == 1 and data["exercise"] == "pooling"
    assert data["score"] == data["max_score"] == 18
    assert set(data) >= {"schema", "exercise", "path", "score", "max_score", "seed", "grader_version",
                         "started_at", "duration_s", "checks"}
    assert set(data["checks"][0]) == {"name", "part", "points", "max_points", "status", "message", "mistake", "diagnosis",
                                      "picture"}
    assert all(c["diagnosis"] == [] and c["picture"] is None for c in data["checks"])  # nothing failed, nothing drawn
    from grader.runner import sandbox

    assert data["sandbox"] == sandbox.plan() and "no sandbox" not in good.stderr


def test_grade_all_writes_every_exercise(invoke, tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    for name in ("conv", "pooling"):
        (folder / f"{name}.py").write_text((ROOT / "solutions" / f"{name}.py").read_text())
    out = invoke("all", "--path", str(folder), "--json", str(tmp_path / "all.json"))
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "all.json").read_text())
    assert data["schema"] == 1 and [e["exercise"] for e in data["exercises"]] == ["conv", "pooling"]
    assert data["score"] == data["max_score"] == 43
    assert "total" in out.stdout
    assert out.stderr.count("not saved to your progress") == 1 and str(folder) in out.stderr  # one note for the folder


def test_grade_all_side_by_side_gives_the_same_output_and_results(tmp_path, monkeypatch):
    """--jobs 3 grades three exercises at once, each in its own worker: the same table, the same
    JSON (timings aside) and the same order as one at a time, with failures and a named mistake."""
    monkeypatch.setenv("GRADE_HOME", str(tmp_path / "home"))
    folder = tmp_path / "ex"
    folder.mkdir()
    for name in ("conv", "pooling", "gap"):
        (folder / f"{name}.py").write_text((ROOT / "solutions" / f"{name}.py").read_text())
    conv = folder / "conv.py"
    conv.write_text(conv.read_text().replace("out = (size + 2 * padding", "out = (size + padding"))
    runs = {jobs: CliRunner().invoke(cli, ["all", "--path", str(folder), "--jobs", str(jobs), "--json", str(tmp_path / f"{jobs}.json")])
            for jobs in (1, 3)}
    assert runs[1].exit_code == runs[3].exit_code == 1, runs[3].output
    assert runs[1].output == runs[3].output

    def untimed(jobs):
        data = json.loads((tmp_path / f"{jobs}.json").read_text())
        for e in data["exercises"]:
            del e["duration_s"], e["started_at"]
        return data

    assert untimed(1) == untimed(3)
    assert [e["exercise"] for e in untimed(3)["exercises"]] == ["conv", "pooling", "gap"]
    assert "padding-counted-once" in json.dumps(untimed(3))


def test_side_by_side_results_come_back_in_the_order_asked_and_errors_stop_every_job(monkeypatch, tmp_path):
    import time

    from grader.engine import session as engine
    from grader.engine.oracles import SetupError
    from grader.engine.results import ExerciseResult

    delays = {"conv": 0.6, "pooling": 0.0, "gap": 0.3}  # they finish in the reverse order

    def grade(self, name, path, stop=None, **kwargs):
        time.sleep(delays[name])
        if name == "nms":
            raise SetupError("no reference for nms")
        return ExerciseResult(name, str(path), 0, "", "")

    monkeypatch.setattr(engine.GradingSession, "grade", grade)
    files = [(n, tmp_path / f"{n}.py", ()) for n in delays]
    results, untouched = engine.grade_side_by_side(files, jobs=3)
    assert [r.exercise for r in results] == ["conv", "pooling", "gap"] and untouched
    delays["nms"] = 0.0
    with pytest.raises(SetupError, match="no reference for nms"):
        engine.grade_side_by_side([*files, ("nms", tmp_path / "nms.py", ())], jobs=2)


def test_a_stub_exits_1_through_the_real_entry_point_and_the_course_root_is_found_from_a_subfolder(tmp_path):
    """The stub of exercises/ (found from tests/), graded by the console script: exit code 1 and
    the report on stdout. About 3 s: a cold `grade exercise` process."""
    out = _run("exercise", "pooling", cwd=ROOT / "tests", env_extra={"GRADE_HOME": str(tmp_path / "home")})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "max_pool2d" in out.stdout and "TODO" in out.stdout and "Nothing implemented yet" in out.stdout


def test_grading_imports_what_training_needs_before_the_worker_only_for_references_that_run_here(monkeypatch, tmp_path):
    """For an exercise that trains, graded with its reference in this process, the grader imports
    the training modules when grading starts (while a cold zygote starts), not midway in a
    reference that trains; the student edition replays recorded outputs and trains nothing here."""
    from types import SimpleNamespace

    from grader.engine import oracles
    from grader.engine import session as engine
    from grader.engine.oracles import SetupError

    imported: list[str] = []
    monkeypatch.setattr(engine, "importlib", SimpleNamespace(import_module=imported.append))
    monkeypatch.setattr(engine, "zygote_for", lambda device, preload=(): None)
    recorded = SimpleNamespace(ref=None)  # stands for a RecordedOracle: no reference runs here
    training = list(engine.preload_for([engine.get_exercise("autoencoder")]))
    assert training  # the autoencoder trains
    for name, oracle_for, expected in (("autoencoder", oracles.LiveOracle, training),
                                       ("autoencoder", lambda _: recorded, []),
                                       ("conv", oracles.LiveOracle, [])):
        imported.clear()
        session = engine.GradingSession(oracle_for=oracle_for)
        try:
            with pytest.raises(SetupError, match="does not exist"):  # after that step: no file to grade
                session.grade(name, tmp_path / "missing.py")
        finally:
            session.close()
        assert imported == expected, (name, oracle_for)


def test_outside_a_course_is_a_clear_error(tmp_path):
    out = _run("exercise", "conv", cwd=tmp_path)
    assert out.returncode == 2
    assert "No course folder found" in out.stderr and "Traceback" not in out.stderr


def test_list_shows_the_last_result(invoke, tmp_path):
    """The course's own exercise file is recorded (a working copy made by `grade init`, solved)."""
    env = {"GRADE_HOME": str(tmp_path / "home")}
    course = tmp_path / "course"
    assert invoke("init", str(course), **env).exit_code == 0
    shutil.copy(ROOT / "solutions" / "pooling.py", course / "exercises" / "pooling.py")
    assert invoke("exercise", "pooling", cwd=course, **env).exit_code == 0
    listing = invoke("list", cwd=course, **env)
    assert "pooling - Max and average pooling  [18 pts, notes: Convolution]  last: 18/18" in listing.stdout
    assert "conv - Convolution from scratch  [25 pts, notes: Convolution]  not graded yet" in listing.stdout


def test_grading_without_a_sandbox_says_so_in_one_line(monkeypatch):
    from grader.runner import sandbox

    monkeypatch.setattr(sandbox, "plan", lambda: "none")
    result = CliRunner().invoke(cli, ["exercise", "pooling", "--path", str(ROOT / "solutions"), "-v"])
    assert result.exit_code == 0, result.output
    notices = [line for line in result.output.splitlines() if "no sandbox" in line]
    assert len(notices) == 1 and "Landlock" in notices[0]
    assert "sandbox: none" in result.output


@pytest.mark.parametrize("args", [["progress"], ["quiz", "--stats"], ["hint", "conv"], ["hint", "conv", "--list"],
                                  ["solution", "conv"]], ids=" ".join)
def test_an_unusable_progress_database_is_a_setup_error(args, invoke, tmp_path):
    bad = tmp_path / "progress.db"
    bad.write_text("not a database", encoding="utf-8")
    out = invoke(*args, GRADE_PROGRESS_DB=str(bad))
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit), out.output
    assert "not a SQLite database" in out.stderr and "Traceback" not in out.stderr


def test_a_path_to_the_exercise_file_is_accepted(invoke, tmp_path):
    out = invoke("exercise", "solutions/pooling.py", "--json", str(tmp_path / "r.json"))
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["exercise"] == "pooling" and data["path"] == str(ROOT / "solutions" / "pooling.py")
    both = invoke("exercise", "solutions/pooling.py", "--path", "solutions")
    assert both.exit_code == 2 and "either it or --path" in both.stderr


def test_hint_suggests_only_close_names():
    assert "Did you mean conv" in CliRunner().invoke(cli, ["hint", "convv"]).output
    result = CliRunner().invoke(cli, ["hint", "nope"])
    assert result.exit_code == 2 and "Unknown exercise 'nope'" in result.output and "Did you mean" not in result.output


def test_list_outside_a_course_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "grader.cli", "list"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "not inside a course folder" in out.stdout and "not graded yet" not in out.stdout
    assert "conv - Convolution from scratch" in out.stdout
    assert not (tmp_path / ".grade").exists()


def test_grading_a_file_outside_the_course_leaves_the_progress_record_alone(invoke, tmp_path):
    """The course's own exercises/ is recorded; --path elsewhere (here the references) is not."""
    home = tmp_path / "home"
    env = {"GRADE_HOME": str(home)}
    outside = invoke("exercise", "pooling", "--path", "solutions", **env)
    assert outside.exit_code == 0, outside.output
    assert "not saved to your progress" in outside.stderr
    from grader.store import Store

    if (home / "progress.db").exists():
        with Store.open(home / "progress.db") as store:
            assert "pooling" not in store.last_exercise_results()
    inside = invoke("exercise", "pooling", **env)
    assert inside.exit_code == 1 and "not saved" not in inside.stderr
    with Store.open(home / "progress.db") as store:
        assert store.last_exercise_results()["pooling"]["score"] == 0


def test_ctrl_c_during_the_torch_import_waits_for_the_import_then_interrupts(tmp_path):
    """Importing torch swallows a KeyboardInterrupt raised inside it, or aborts the process from C++
    (a batch then graded on, or hung); `grade` holds the interrupt until the import has finished.
    A stand-in `torch` package interrupts itself halfway through its import."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "end = time.monotonic() + 0.3\n"
        "while time.monotonic() < end:\n"
        "    pass\n"
        "FINISHED = True\n")
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from grader.cli import hold_interrupts_during_torch_imports\n"
        "hold_interrupts_during_torch_imports()\n"
        f"sys.path.insert(0, {str(tmp_path / 'fake')!r})\n"
        "try:\n"
        "    import torch\n"
        "    for _ in range(1000):  # short sleeps: a signal that lands just before one is seen after it\n"
        "        time.sleep(0.01)\n"
        "    print('never interrupted')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted; the import finished:', getattr(sys.modules.get('torch'), 'FINISHED', False))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, preexec_fn=interruptible)
    assert run.stdout == "interrupted; the import finished: True\n", run.stdout + run.stderr


@pytest.mark.parametrize("when", ["while-starting", "while-grading"])
def test_ctrl_c_ends_a_grading_command_with_130_and_leaves_nothing_running(when, tmp_path):
    """Whether it lands while torch is imported (0.5 s in) or while an endless loop is graded (once
    the worker is forked), Ctrl-C ends `grade exercise` with one line, exit code 130 and no process
    left behind."""
    import os
    import signal
    import time

    from conftest import descendants, variant, wait_for_descendants

    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "pooling.py").write_text(variant("pooling", ("    kh, kw = _pair(kernel_size, \"kernel_size\")\n",
                                                           "    kh, kw = _pair(kernel_size, \"kernel_size\")\n    while True:\n        pass\n")))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "exercise", "pooling", "--path", str(folder), "--timeout", "60"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=interruptible)
    if when == "while-starting":
        time.sleep(0.5)
        family = descendants(proc.pid)
    else:  # the zygote, then the worker it forks to grade the endless loop (which it enters meanwhile)
        family = wait_for_descendants(proc.pid, 2, timeout=120)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().endswith("interrupted.") and "Traceback" not in err, err[-2000:]
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in family if os.path.exists(f"/proc/{pid}")]


def test_grade_all_starts_the_exercises_that_took_longest_last_time_and_shares_a_dominant_one(tmp_path, monkeypatch):
    """The durations of the last grading of each exercise on this machine (in the cache, whatever
    file was graded) set the order in which side-by-side jobs start them; one that took more than
    half a job's share of the whole is handed out part by part, so that every job helps with it.
    Results keep the order asked, one per exercise."""
    from grader.commands import exercise as commands
    from grader.engine import session
    from grader.engine.results import ExerciseResult

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    took = {"conv": 1.0, "pooling": 1.2, "gap": 4.0}  # with 2 jobs, more than 6.2 / 4 is split: gap only
    started: list[list[tuple[str, tuple[str, ...]]]] = []

    def grade_side_by_side(units, *, jobs, **options):
        started.append([(name, parts) for name, _, parts in units])
        return [ExerciseResult(name, str(tmp_path / f"{name}.py"), 0, "test", "now", duration_s=took[name], sandbox="uid")
                for name in dict.fromkeys(name for name, _, _ in units)], True

    monkeypatch.setattr(session, "grade_side_by_side", grade_side_by_side)
    names = ["conv", "pooling", "gap"]
    first = commands.grade_files(names, tmp_path, seed=0, timeout=10, device="cpu", jobs=2)
    second = commands.grade_files(names, tmp_path, seed=0, timeout=10, device="cpu", jobs=2)
    one_job = commands.grade_files(names, tmp_path, seed=0, timeout=10, device="cpu", jobs=1)
    only = commands.grade_files(names, tmp_path, seed=0, timeout=10, device="cpu", jobs=2, parts=("errors",))
    assert started[0] == [(name, ()) for name in names]  # nothing known yet
    assert started[1] == [("gap", ("global_avg_pool",)), ("gap", ("GAPClassifier",)), ("gap", ("class_activation_map",)),
                          ("pooling", ()), ("conv", ())]
    assert started[2] == [(name, ()) for name in names]  # one job: nothing to share, nothing to order
    assert started[3] == [("gap", ("errors",)), ("pooling", ("errors",)), ("conv", ("errors",))]  # parts asked: never split
    assert [r.exercise for r in first.exercises] == [r.exercise for r in second.exercises] == names
    assert [r.exercise for r in one_job.exercises] == [r.exercise for r in only.exercises] == names
    assert commands.grading_durations() == took
