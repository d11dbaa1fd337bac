"""The terminal quiz end to end: scripted answers through the CLI, undo, skip and quit, revision
modes, the JSON results, errors, single keys in a real pseudo-terminal, and no answer lost when
the process is killed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from quiz_fixtures import (  # noqa: F401  (quiz_env is a fixture)
    MINI_BANK,
    ROOT,
    python_cli,
    quiz_env,
    read_until,
    run_python,
    run_quiz_cli,
    subprocess_env,
)

from grader.quiz.session import Action, parse_answer
from grader.store import Store

# With --seed 1 and no history, the mini bank is asked in this order (a property of the seeded
# shuffle; test_order_is_reproducible pins it).
ORDER = ["alpha-third", "beta-one", "beta-two", "alpha-true", "alpha-false"]
KEY = {"alpha-true": True, "alpha-false": False, "alpha-third": True, "beta-one": False, "beta-two": True}


# The statements' texts (as shown, whitespace collapsed) -> their ids: the quiz shows no id before the answer.
TEXT_TO_ID = {" ".join(s["text"].split()): s["id"]
              for text in MINI_BANK.values() for s in yaml.safe_load(text)["statements"]}


def _ids_in_order(output: str) -> list[str]:
    """The ids of the statements asked, in order, recognised by their texts."""
    shown = re.findall(r"\[\d+/\d+\] [^\n]*\n(.*?)\n  true or false\?", output, flags=re.DOTALL)
    return [TEXT_TO_ID[" ".join(text.split())] for text in shown]


def _plain(raw: bytes) -> bytes:
    """Terminal output without its colour codes."""
    return re.sub(rb"\x1b\[[0-9;]*m", b"", raw)


def _answers(db) -> list:
    with Store.open(db) as store:
        return store.quiz_answers(include_undone=True)


@pytest.mark.parametrize("raw, action", [
    ("t", Action.TRUE), ("y", Action.TRUE), ("1", Action.TRUE), ("TRUE", Action.TRUE), ("yes", Action.TRUE),
    ("f", Action.FALSE), ("n", Action.FALSE), ("0", Action.FALSE), (" false ", Action.FALSE), ("no", Action.FALSE),
    ("s", Action.SKIP), ("u", Action.UNDO), ("q", Action.QUIT), ("quit", Action.QUIT), ("?", Action.HELP),
    ("", None), ("x", None), ("tf", None),
])
def test_parse_answer(raw, action):
    assert parse_answer(raw) is action


def test_feedback_says_when_a_statement_of_the_notes_is_reworded():
    from grader.quiz.bank import Statement
    from grader.quiz.session import feedback_lines

    base = {"id": "gap-x", "text": "Detectors do not end with a whole-image GAP.", "answer": True,
            "explanation": "Y.", "section": "GlobalAvgPooling", "topic": "gap", "from_notes": True}
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in feedback_lines(Statement(**base), True)]
    assert plain[-1] == "  (From the notes' True/False list; the notes agree.)"
    reworded = Statement(**base, notes_text="GAP is not used in OD networks")
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in feedback_lines(reworded, True)]
    assert plain[-1] == "  (From the notes' True/False list, reworded; the notes agree.)"


def test_order_is_reproducible(quiz_env):
    args = ["--bank", str(quiz_env["bank"]), "--seed", "1"]
    first = run_quiz_cli(args, input="q\n")
    assert _ids_in_order(first.output) == ORDER[:1]
    everything = run_quiz_cli([*args, "--db", str(quiz_env["tmp"] / "other.db")], input="s\n" * 5)
    assert _ids_in_order(everything.output) == ORDER


def test_scripted_quiz_end_to_end(quiz_env):
    given = [KEY[sid] if i % 2 == 0 else not KEY[sid] for i, sid in enumerate(ORDER)]  # right, wrong, ...
    words = {True: ["t", "yes", "1"], False: ["f", "no", "0"]}
    lines = [words[g][i % 3] for i, g in enumerate(given)]
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = result.output
    assert _ids_in_order(out) == ORDER
    assert out.count("RIGHT: you said") == 3 and out.count("WRONG: you said") == 2
    assert "WRONG: you said true; the statement is FALSE." in out  # beta-one
    assert "Why: Beta one reason." in out
    assert "  Why: Third reason.\n  Source: Third et al. (2020), sec. 1\n" in out  # the source, where there is one
    assert "!! The notes say otherwise (by them, this is TRUE); the answer above follows" in out  # alpha-false
    assert "RIGHT: you said true; the statement is TRUE.  [alpha-third]" in out  # the id, after the answer
    assert "From the notes' True/False list; the notes agree." in out  # alpha-true
    assert "Score: 3/5 right (60%)." in out
    assert re.search(r"Alpha topic\s+2/3\s+67%", out) and re.search(r"Beta topic\s+1/2\s+50%", out)
    assert "Missed (revisit them with `grade quiz --mistakes`):" in out
    assert "Beta one is false. -> FALSE  [beta-one]" in out and re.search(r"-> TRUE\s+\[alpha-true\]", out)
    assert "Next: nothing due now; the next in 24 h" in out
    stored = _answers(quiz_env["db"])
    assert [(a.statement_id, a.given, a.correct) for a in stored] == [
        (sid, g, i % 2 == 0) for i, (sid, g) in enumerate(zip(ORDER, given))]


def test_no_id_is_shown_before_its_statement_is_answered(quiz_env):
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1"], input="t\ns\nu\nf\nf\nt\nt\nf\n")
    assert result.exit_code == 0, result.output
    asked = re.split(r"\n(?=\[\d+/\d+\] )", result.output)[1:]
    assert len(asked) == 7  # five statements; the skipped one shown again after `u` on the next one
    for chunk, sid in zip(asked, _ids_in_order(result.output)):
        before, after = chunk.split("true or false?", 1)
        assert not [i for i in KEY if i in before], f"an id is shown before the answer:\n{chunk}"
        verdict = re.search(r"(RIGHT|WRONG): you said [^\n]*", after)
        if verdict is None:  # skipped, or left with `u`: no id either
            assert after.split("\n")[1] in ("  Skipped.", "  Back to the statement you skipped."), chunk
        else:
            assert verdict.group(0).endswith(f"[{sid}]"), chunk  # the id comes with the answer
    assert "Back to the statement you skipped." in result.output


def test_undo_goes_back_and_the_schedule_takes_the_new_answer(quiz_env):
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1", "--count", "3"], input="t\nt\nu\nf\nq\n")
    assert result.exit_code == 0, result.output
    assert "Undone: answer it again. Your revision schedule takes the new answer; the log keeps the first." in result.output
    assert _ids_in_order(result.output) == ["alpha-third", "beta-one", "beta-two", "beta-one", "beta-two"]
    assert "Score: 2/2 right (100%)." in result.output
    stored = _answers(quiz_env["db"])
    assert [(a.statement_id, a.given, a.undone, a.attempt) for a in stored] == [
        ("alpha-third", True, False, 1), ("beta-one", True, True, 1), ("beta-one", False, False, 2)]
    with Store.open(quiz_env["db"]) as store:
        state = store.card_states()["beta-one"]
    assert (state.box, state.reviews, state.lapses) == (2, 1, 0)  # as if only the right answer was given


def test_undo_of_a_skip_returns_to_it_and_undo_at_start_is_harmless(quiz_env):
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1", "--count", "2"], input="u\ns\nu\nt\nf\n")
    assert "Nothing to undo yet." in result.output
    assert "Back to the statement you skipped." in result.output
    assert [a.statement_id for a in _answers(quiz_env["db"])] == ["alpha-third", "beta-one"]


def test_quit_saves_what_was_answered(quiz_env):
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1"], input="t\nq\nt\n")
    assert result.exit_code == 0
    assert "Stopped after 1 of 5 statements; every answer is saved." in result.output
    assert "Score: 1/1 right (100%)." in result.output
    assert len(_answers(quiz_env["db"])) == 1


def test_end_of_input_quits_like_q_and_nonsense_is_explained(quiz_env):
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1"], input="maybe\n\nno\n")
    assert "'maybe' is not an answer." in result.output
    assert "Stopped after 1 of 5" in result.output
    assert [(a.statement_id, a.given) for a in _answers(quiz_env["db"])] == [("alpha-third", False)]


def test_topics_filter_by_name_or_prefix(quiz_env):
    result = run_quiz_cli(["be", "--bank", str(quiz_env["bank"]), "--seed", "1"], input="s\ns\n")
    assert set(_ids_in_order(result.output)) == {"beta-one", "beta-two"}


def test_unknown_topic_is_a_usage_error(quiz_env):
    result = run_quiz_cli(["gamma", "--bank", str(quiz_env["bank"])], input="")
    assert result.exit_code == 2
    assert "unknown topic 'gamma'. The topics are: alpha, beta" in result.output
    assert "Traceback" not in result.output and not quiz_env["db"].exists()


def test_review_and_mistakes(quiz_env):
    # --now keeps its answers only in a store named with --db (not the real one): a practice record
    bank = ["--bank", str(quiz_env["bank"]), "--db", str(quiz_env["tmp"] / "practice.db")]
    run_quiz_cli([*bank, "--seed", "1", "--now", "2025-03-01T09:00:00+00:00"], input="t\nt\nt\nt\nt\n")
    same_day = run_quiz_cli([*bank, "--review", "--now", "2025-03-01T12:00:00+00:00"], input="")
    assert "Nothing is due for revision now." in same_day.output
    assert "Next: nothing due now; the next in 21 h" in same_day.output
    # next day: the two wrong ones (box 1, due after 1 day) are due, the right ones (3 days) are not
    review = run_quiz_cli([*bank, "--review", "--now", "2025-03-02T10:00:00+00:00"], input="f\nf\n")
    assert sorted(_ids_in_order(review.output)) == ["alpha-false", "beta-one"]
    assert "Score: 2/2 right" in review.output
    assert "No statement was answered wrong last time" in run_quiz_cli([*bank, "--mistakes"], input="").output
    run_quiz_cli([*bank, "alpha", "--seed", "3", "--now", "2025-03-10T10:00:00+00:00"], input="f\nf\nf\n")
    mistakes = run_quiz_cli([*bank, "--mistakes", "--now", "2025-03-10T11:00:00+00:00"], input="q\n")
    assert len(_ids_in_order(mistakes.output)) == 1
    assert _ids_in_order(mistakes.output)[0] in {"alpha-true", "alpha-third"}


def _history(db) -> tuple[list, dict]:
    with Store.open(db) as store:
        return ([(a.statement_id, a.given, a.undone) for a in store.quiz_answers(include_undone=True)],
                store.card_states())


def test_now_tries_the_schedule_on_a_copy_and_never_writes_the_real_store(quiz_env):
    bank = ["--bank", str(quiz_env["bank"]), "--seed", "1"]
    run_quiz_cli([*bank, "--count", "2", "--now", "2025-03-01T09:00:00+00:00", "--db", str(quiz_env["db"])], input="t\nt\n")
    run_quiz_cli([*bank, "--count", "2"], input="t\nt\n")  # alpha-third right, beta-one wrong: the real history
    before = _history(quiz_env["db"])
    assert [a[:2] for a in before[0]] == [("alpha-third", True), ("beta-one", True)]  # the --now run left nothing
    later = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    for where in ([], ["--db", str(quiz_env["db"])]):  # $GRADE_PROGRESS_DB, or the same file named with --db
        review = run_quiz_cli([*bank, *where, "--review", "--now", later], input="f\n")
        assert "--now: working on a scratch copy of your progress; nothing from this run is saved." in review.output
        assert _ids_in_order(review.output) == ["beta-one"]  # the copy holds the real history
        assert "RIGHT: you said false" in review.output
        stats = run_quiz_cli([*bank, *where, "--stats", "--now", later, "--json", str(quiz_env["tmp"] / "r.json")])
        assert stats.exit_code == 0 and re.search(r"beta\s+2\s+1\s+0\s+0%\s+1", stats.output), stats.output
    assert _history(quiz_env["db"]) == before


def test_now_in_a_course_leaves_its_progress_file_alone(quiz_env, monkeypatch):
    course = quiz_env["tmp"] / "course"
    (course / "exercises").mkdir(parents=True)
    (course / ".grade").mkdir()
    monkeypatch.delenv("GRADE_PROGRESS_DB")
    monkeypatch.chdir(course)
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1", "--now", "2030-01-01T09:00"], input="t\nf\n")
    assert result.exit_code == 0 and "RIGHT: you said true" in result.output, result.output
    assert list((course / ".grade").iterdir()) == []  # not even an empty database
    run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1"], input="t\n")
    assert (course / ".grade" / "progress.db").is_file()  # without --now, the answers land here


def test_review_and_mistakes_together_is_a_usage_error(quiz_env):
    result = run_quiz_cli(["--review", "--mistakes", "--bank", str(quiz_env["bank"])])
    assert result.exit_code == 2 and "Choose one of --review and --mistakes" in result.output


def test_stats_show_mastery_and_due_dates(quiz_env):
    bank = ["--bank", str(quiz_env["bank"]), "--db", str(quiz_env["tmp"] / "practice.db")]
    run_quiz_cli([*bank, "--seed", "1", "--now", "2025-03-01T09:00:00+00:00"], input="t\nt\nt\nt\nt\n")
    result = run_quiz_cli([*bank, "--stats", "--now", "2025-03-01T10:00:00+00:00"])
    assert result.exit_code == 0, result.output
    assert re.search(r"alpha\s+3\s+3\s+0\s+67%\s+0\s+3", result.output), result.output
    assert re.search(r"beta\s+2\s+2\s+0\s+50%\s+0\s+2", result.output), result.output
    assert "Due when: now 0 | within 24 h 2 | in 1-7 days 3 | in 8-30 days 0 | later 0 | never answered 0" in result.output


def test_json_results_document(quiz_env, monkeypatch):
    monkeypatch.setenv("GRADE_STUDENT", "ada")
    path = quiz_env["tmp"] / "results.json"
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--seed", "1", "--json", str(path)], input="t\nt\nu\nf\ns\nq\n")
    assert result.exit_code == 0, result.output
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"], doc["student"]) == ("cnn-grader/quiz-results", 1, "ada")
    assert doc["bank"]["statements"] == 5 and len(doc["bank"]["fingerprint"]) == 16
    session = doc["session"]
    assert {k: session[k] for k in ("mode", "topics", "seed", "asked", "answered", "correct", "skipped", "quit_early")} == {
        "mode": "mixed", "topics": ["alpha", "beta"], "seed": 1, "asked": 5, "answered": 2, "correct": 2,
        "skipped": 1, "quit_early": True}
    # beta-one was answered true (wrong), undone, then answered false: the log keeps the first answer
    assert [(a["statement_id"], a["given"], a["key"], a["correct"], a["attempt"], a["undone"]) for a in doc["answers"]] == [
        ("alpha-third", True, True, True, 1, False), ("beta-one", True, False, False, 1, True),
        ("beta-one", False, False, True, 2, False)]
    assert set(doc["answers"][0]) == {"session_id", "statement_id", "topic", "given", "key", "correct", "attempt",
                                      "undone", "answered_at", "response_ms", "text_hash"}
    per = doc["statements"]["beta-one"]
    assert per == {"topic": "beta", "in_bank": True, "attempts": 2, "correct": 1, "first_correct": False,
                   "last_correct": True, "box": 2, "due_at": per["due_at"]}  # the schedule took the new answer


def test_outside_a_course_the_quiz_asks_where_to_keep_answers(quiz_env, monkeypatch):
    monkeypatch.delenv("GRADE_PROGRESS_DB")
    monkeypatch.chdir(quiz_env["tmp"])
    result = run_quiz_cli(["--bank", str(quiz_env["bank"])], input="t\n")
    assert result.exit_code == 2
    assert "No course folder found" in result.output and "--db PATH" in result.output
    assert not (quiz_env["tmp"] / ".grade").exists()
    with_db = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--db", str(quiz_env["db"]), "--seed", "1"], input="t\nq\n")
    assert with_db.exit_code == 0 and len(_answers(quiz_env["db"])) == 1


def test_bad_json_path_is_refused_before_the_quiz(quiz_env):
    result = run_quiz_cli(["--bank", str(quiz_env["bank"]), "--json", str(quiz_env["tmp"] / "no" / "r.json")], input="t\n")
    assert result.exit_code == 2
    assert "the folder" in result.output and "does not exist" in result.output
    assert not quiz_env["db"].exists()


def test_corrupt_database_gives_advice_and_is_not_overwritten(quiz_env):
    quiz_env["db"].write_bytes(b"garbage" * 1000)
    result = run_quiz_cli(["--bank", str(quiz_env["bank"])], input="t\n")
    assert result.exit_code == 2
    assert "is not a SQLite database" in result.output and "Move it aside" in result.output
    assert "Traceback" not in result.output
    assert quiz_env["db"].read_bytes() == b"garbage" * 1000


def test_help_documents_every_option_and_the_export_command():
    from grader.commands.quiz import quiz

    result = run_quiz_cli(["--help"])
    assert result.exit_code == 0
    run = quiz.commands["run"]
    for param in run.params:
        for opt in param.opts:
            if opt.startswith("-"):
                assert opt in result.output, f"{opt} is missing from `grade quiz --help`"
    assert "export" in result.output and "[TOPIC]..." in result.output
    assert "GRADE_PROGRESS_DB" in result.output
    export = run_quiz_cli(["export", "--help"])
    assert export.exit_code == 0 and "gift" in export.output and "moodle-xml" in export.output and "anki-csv" in export.output


def test_scripted_quiz_leaves_torch_out(tmp_path):
    bank = ROOT / "quizzes"
    code = ("import io, sys\nsys.stdin = io.StringIO('t\\nq\\n')\nfrom grader.cli import cli\n"
            f"cli.main(['quiz', '--bank', {str(bank)!r}, '--seed', '1'], prog_name='grade', standalone_mode=False)\n"
            "print('TORCH', 'torch' in sys.modules)")
    done = run_python(code, subprocess_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "RIGHT" in done.stdout or "WRONG" in done.stdout
    assert "TORCH False" in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_single_keys_answer_in_a_real_terminal(quiz_env):
    import pty

    env = subprocess_env(quiz_env["tmp"])
    argv = python_cli("quiz", "--bank", str(quiz_env["bank"]), "--seed", "1", "--count", "3")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the quiz, with the pseudo-terminal as its terminal
        try:
            os.chdir(ROOT)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    buffer = bytearray()
    try:
        read_until(fd, b"[1/3]", buffer)
        assert b"alpha-third" not in read_until(fd, b"> ", buffer)  # the id only comes with the answer
        os.write(fd, b"t")  # one key, no Enter: a line-mode reader would hang here
        assert b"RIGHT: you said true; the statement is TRUE.  [alpha-third]" in _plain(read_until(fd, b"[2/3]", buffer))
        read_until(fd, b"> ", buffer)
        os.write(fd, b"u")
        read_until(fd, b"Undone: answer it again.", buffer)
        read_until(fd, b"[1/3]", buffer)
        read_until(fd, b"> ", buffer)
        os.write(fd, b"n")  # n means false
        assert b"WRONG: you said false" in _plain(read_until(fd, b"[2/3]", buffer))
        read_until(fd, b"> ", buffer)
        os.write(fd, b"q")
        read_until(fd, b"Stopped after 1 of 3", buffer)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "the quiz did not exit after q"
            time.sleep(0.05)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    stored = _answers(quiz_env["db"])
    assert [(a.statement_id, a.given, a.undone) for a in stored] == [("alpha-third", True, True), ("alpha-third", False, False)]


def test_answers_survive_a_killed_process(quiz_env):
    env = subprocess_env(quiz_env["tmp"])
    proc = subprocess.Popen(python_cli("quiz", "--bank", str(quiz_env["bank"]), "--seed", "1"), cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buffer = bytearray()
    try:
        read_until(proc.stdout.fileno(), b"[1/5]", buffer)
        proc.stdin.write(b"t\n")
        proc.stdin.flush()
        read_until(proc.stdout.fileno(), b"[2/5]", buffer)
        proc.stdin.write(b"f\n")
        proc.stdin.flush()
        read_until(proc.stdout.fileno(), b"[3/5]", buffer)  # both answers were committed before this
        proc.kill()  # SIGKILL: no cleanup, no summary
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stdin.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with Store.open(quiz_env["db"]) as store:
        answers = store.quiz_answers()
        states = store.card_states()
        session = store.quiz_session(answers[0].session_id)
    assert [(a.statement_id, a.given) for a in answers] == [("alpha-third", True), ("beta-one", False)]
    assert set(states) == {"alpha-third", "beta-one"}
    assert session["finished_at"] is None  # killed before the end
