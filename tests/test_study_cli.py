"""`grade init`, `reset`, `hint`, `progress` and `solution` through the CLI, in a course made by
`grade init` under tmp_path (GRADE_HOME and GRADE_PROGRESS_DB point there too), and the promise
that none of them imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.catalog import exercise_names, get_exercise, load_catalog
from grader.cli import cli
from grader.paths import data_dir, find_course_root
from grader.study.workspace import pristine_stub

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A working copy made by `grade init` in tmp_path/course, the working directory."""
    home = tmp_path / "home"
    monkeypatch.setenv("GRADE_HOME", str(home))
    monkeypatch.setenv("GRADE_PROGRESS_DB", str(home / "progress.db"))
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init", "course"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "course")
    return tmp_path / "course"


def run(*args: str, input: str | None = None, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), input=input, env=env)


def record(name: str, parts_passed: set[str] | None = None, *, not_implemented: bool = False) -> dict:
    """Store a result of `name` with one check per part: passed where listed (all by default)."""
    from grader.store import Store

    ex = get_exercise(name)
    passed = {p.name for p in ex.parts} if parts_passed is None else parts_passed
    checks = [{"name": f"{p.name}_check", "part": p.name, "points": p.points if p.name in passed else 0,
               "max_points": p.points, "status": "passed" if p.name in passed else
               ("not_implemented" if not_implemented else "failed"), "message": "", "mistake": None}
              for p in ex.parts]
    result = {"schema": 1, "exercise": name, "path": f"exercises/{name}.py", "seed": 0, "grader_version": "test",
              "started_at": datetime.now(timezone.utc).isoformat(), "duration_s": 0.1, "notices": [],
              "score": sum(c["points"] for c in checks), "max_score": ex.max_points, "checks": checks}
    with Store.open() as store:
        store.record_exercise_result(result)
    return result


# --- grade init ---------------------------------------------------------------------------------
def test_init_creates_a_course_that_is_found(env):
    names = [n for n in exercise_names() if (data_dir("exercises") / f"{n}.py").is_file()]
    assert names, "no stub in this checkout"
    for name in names:
        assert (env / "exercises" / f"{name}.py").read_text(encoding="utf-8") == pristine_stub(name)
    assert (env / ".grade").is_dir()
    assert "grade watch" in (env / "README.md").read_text(encoding="utf-8")
    assert find_course_root(env / "exercises") == env.resolve()


def test_init_stubs_are_the_committed_stubs(env):
    for name in ("conv", "pooling"):
        assert (env / "exercises" / f"{name}.py").read_text(encoding="utf-8") == \
            (ROOT / "exercises" / f"{name}.py").read_text(encoding="utf-8")


def test_init_refuses_a_non_empty_exercises_folder(env):
    mine = env / "exercises" / "conv.py"
    mine.write_text("# my work\n", encoding="utf-8")
    result = run("init", str(env))
    assert result.exit_code == 2
    assert "not empty" in result.output and "grade reset" in result.output
    assert "Traceback" not in result.output
    assert mine.read_text(encoding="utf-8") == "# my work\n"


def test_init_into_existing_folder_keeps_its_readme(tmp_path):
    target = tmp_path / "mine"
    (target / "exercises").mkdir(parents=True)
    (target / "README.md").write_text("my notes\n", encoding="utf-8")
    result = run("init", str(target))
    assert result.exit_code == 0, result.output
    assert (target / "README.md").read_text(encoding="utf-8") == "my notes\n"
    assert (target / "exercises" / "conv.py").is_file()


def test_init_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x", encoding="utf-8")
    result = run("init", str(tmp_path / "f"))
    assert result.exit_code == 2 and "not a folder" in result.output


# --- grade reset --------------------------------------------------------------------------------
def test_reset_keeps_a_backup_after_confirmation(env):
    mine = env / "exercises" / "conv.py"
    mine.write_text("def conv2d(x):\n    return x  # my attempt\n", encoding="utf-8")
    result = run("reset", "conv", input="y\n")
    assert result.exit_code == 0, result.output
    assert mine.read_text(encoding="utf-8") == pristine_stub("conv")
    backups = list((Path(os.environ["GRADE_HOME"]) / "backups").glob("conv-*.py"))
    assert len(backups) == 1
    assert backups[0].read_text(encoding="utf-8") == "def conv2d(x):\n    return x  # my attempt\n"
    assert str(backups[0]) in result.output


def test_reset_declined_changes_nothing(env):
    mine = env / "exercises" / "conv.py"
    mine.write_text("# mine\n", encoding="utf-8")
    result = run("reset", "conv", input="n\n")
    assert result.exit_code == 1
    assert mine.read_text(encoding="utf-8") == "# mine\n"
    assert not (Path(os.environ["GRADE_HOME"]) / "backups").exists()


def test_reset_twice_in_a_second_keeps_both_backups(env):
    mine = env / "exercises" / "pooling.py"
    for text in ("# first\n", "# second\n"):
        mine.write_text(text, encoding="utf-8")
        assert run("reset", "pooling", "--yes").exit_code == 0
    kept = sorted(p.read_text(encoding="utf-8") for p in (Path(os.environ["GRADE_HOME"]) / "backups").glob("pooling-*.py"))
    assert kept == ["# first\n", "# second\n"]


def test_reset_of_an_untouched_or_missing_file(env):
    assert "nothing to do" in run("reset", "conv").output
    (env / "exercises" / "conv.py").unlink()
    result = run("reset", "conv")
    assert result.exit_code == 0
    assert (env / "exercises" / "conv.py").read_text(encoding="utf-8") == pristine_stub("conv")


def test_reset_unknown_exercise_is_a_usage_error(env):
    result = run("reset", "convv", "--yes")
    assert result.exit_code == 2 and "conv" in result.output and "Traceback" not in result.output


# --- grade hint ---------------------------------------------------------------------------------
def test_hints_come_one_at_a_time_and_run_out(env):
    from grader.study.hints import load_hints

    hints = load_hints("pooling").part("max_pool2d")
    first = run("hint", "pooling", "max_pool2d")
    assert first.exit_code == 0, first.output
    assert f"1/{len(hints)} nudge" in first.output and f"2/{len(hints)}" not in first.output
    assert "notes: " in first.output
    for level in range(2, len(hints) + 1):
        out = run("hint", "pooling", "max_pool2d").output
        assert f"{level}/{len(hints)}" in out and f"{level + 1}/{len(hints)}" not in out
    last = run("hint", "pooling", "max_pool2d")
    assert last.exit_code == 0 and "No more hints" in last.output
    from grader.store import Store

    with Store.open() as store:  # the hint progress lives in the progress store
        assert store.hint_levels() == {("pooling", "max_pool2d"): len(hints)}


def test_hint_picks_the_first_part_not_passed(env):
    ex = get_exercise("conv")
    record("conv", {ex.parts[0].name})
    out = run("hint", "conv").output
    assert f"conv / {ex.parts[1].name}" in out
    record("conv")
    out = run("hint", "conv").output
    assert "passed every part" in out and "grade solution conv" in out


def test_hint_usage_errors(env):
    unknown = run("hint", "pooling", "max_pool")
    assert unknown.exit_code == 2 and "max_pool2d" in unknown.output
    misspelt = run("hint", "poolin")
    assert misspelt.exit_code == 2 and "pooling" in misspelt.output
    assert "Traceback" not in unknown.output + misspelt.output


def test_hint_list(env):
    run("hint", "pooling", "errors")
    out = run("hint", "pooling", "--list").output
    assert "errors: 1/" in out and "max_pool2d: 0/" in out


# --- grade progress -----------------------------------------------------------------------------
def test_progress_of_a_new_learner(env):
    result = run("progress")
    assert result.exit_code == 0, result.output
    first = load_catalog()[0]
    assert f"0 passed, 0 partial, {len(load_catalog())} not started" in result.output
    assert f"Next: Start {first.name}" in result.output


def test_progress_counts_and_next_step(env):
    record("conv")
    record("pooling", {"max_pool2d"})
    out = run("progress").output
    assert "1 passed, 1 partial" in out
    assert "Next: Finish pooling (8/18)" in out and "grade hint pooling avg_pool2d" in out


def test_progress_shows_quiz_mastery_and_what_is_due(env):
    from grader.quiz.bank import load_bank
    from grader.quiz.scheduler import next_state
    from grader.store import QuizAnswer, Store

    topic = load_bank().topics[0]
    statement = topic.statements[0]
    past = datetime.now(timezone.utc) - timedelta(days=2)  # a right first answer is due again after 3 days;
    with Store.open() as store:                             # a wrong one after 1 day: due now
        session = store.start_quiz_session(mode="mixed", topics=[topic.name], seed=None, bank="test", started_at=past)
        store.record_quiz_answer(QuizAnswer(session, statement.id, topic.name, given=not statement.answer,
                                            key=statement.answer, answered_at=past, text_hash=statement.text_hash),
                                 next_state(None, False, past))
    out = run("progress").output
    row = next(line for line in out.splitlines() if line.strip().startswith(topic.name))
    assert f"0/{len(topic.statements)}" in row and "1 seen" in row and "1 due now" in row
    assert "1 statement(s) due for revision now" in out
    assert "Next: Revise 1 quiz statement(s) due now: `grade quiz --review`." in out


def test_progress_html_report(env, tmp_path):
    record("conv")
    target = tmp_path / "me.html"
    result = run("progress", "--html", str(target))
    assert result.exit_code == 0, result.output
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Your progress" in html
    for ex in load_catalog():
        assert f"<b>{ex.name}</b>" in html
    assert "<code>grade watch" in html  # the next step, with its command as code
    # the instructor report's stylesheet and per-student section render the stored checks
    assert "--bar:" in html and 'class="student"' in html
    checks = html.split('id="checks"', 1)[1]
    assert checks.count('class="status status-passed"') == len(get_exercise("conv").parts)


def test_progress_html_into_missing_folder(env, tmp_path):
    result = run("progress", "--html", str(tmp_path / "nope" / "me.html"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_progress_reports_an_unusable_store(env, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("not a database", encoding="utf-8")
    result = run("progress", env={"GRADE_PROGRESS_DB": str(bad)})
    assert result.exit_code == 2 and "not a SQLite database" in result.output
    assert "Traceback" not in result.output


# --- grade solution -----------------------------------------------------------------------------
def test_solution_refused_before_passing(env):
    result = run("solution", "pooling")
    assert result.exit_code == 1
    assert "not passed pooling" in result.output and "--force" in result.output
    assert "def max_pool2d" not in result.output


def test_solution_forced_warns_and_shows_a_diff(env):
    result = run("solution", "pooling", "--force", "--layout", "diff")
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr
    stub = (env / "exercises" / "pooling.py").read_text(encoding="utf-8").splitlines()
    reference = (data_dir("solutions") / "pooling.py").read_text(encoding="utf-8").splitlines()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("--- your code:") and lines[1] == "+++ reference: solutions/pooling.py"
    body = next(ln for ln in reference if ln.strip() and ln not in stub)  # a line of the reference's own code
    assert "+" + body in lines and any(ln.startswith("-") and "NotImplementedError" in ln for ln in lines)
    shared = next(ln for ln in stub if len(ln.strip()) > 20 and ln in reference)  # e.g. a docstring line
    # the two files are not printed one after the other: a shared line appears once at most, as context
    assert sum(shared in ln for ln in lines) <= 1


def test_solution_after_passing_side_by_side(env):
    record("pooling")
    result = run("solution", "pooling", "--layout", "side", env={"COLUMNS": "260"})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    rows = result.stdout.splitlines()
    assert "your code:" in rows[0] and "reference:" in rows[0]
    # rows are aligned: a shared signature faces itself, the stub's `raise` faces the reference's code
    for function in ("def max_pool2d(", "def avg_pool2d("):
        assert next(r for r in rows if function in r).count(function) == 2, function
    raise_row = next(r for r in rows if "NotImplementedError" in r)
    left, mark, right = raise_row.partition(" | ")
    assert mark and "NotImplementedError" in left and right.strip() and "NotImplementedError" not in right


def test_solution_narrow_terminal_gets_the_diff(env):
    record("pooling")
    result = run("solution", "pooling", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("--- your code:")


def test_solution_partial_result_is_not_passed(env):
    record("pooling", {"max_pool2d", "avg_pool2d"})
    result = run("solution", "pooling")
    assert result.exit_code == 1 and "16/18" in result.output


@pytest.mark.parametrize("args", [["progress"], ["hint", "conv"], ["solution", "conv"]])
def test_outside_a_course_nothing_is_created(tmp_path, monkeypatch, args):
    monkeypatch.delenv("GRADE_HOME", raising=False)
    monkeypatch.delenv("GRADE_PROGRESS_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2 and "grade init" in result.output
    assert list(tmp_path.iterdir()) == []


# --- no torch -----------------------------------------------------------------------------------
_PROBE = """
import sys
from grader.cli import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""


@pytest.mark.parametrize("args", [["hint", "conv"], ["progress"], ["init", "fresh"], ["reset", "conv", "--yes"],
                                  ["solution", "conv", "--force"]])
def test_commands_do_not_import_torch(env, args):
    record("conv")
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=env, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "NO-TORCH", proc.stdout + proc.stderr


def test_help_of_every_study_command():
    for name in ("init", "reset", "hint", "watch", "progress", "solution"):
        result = run(name, "--help")
        assert result.exit_code == 0 and "Usage: " in result.output, name
