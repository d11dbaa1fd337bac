"""The SQLite progress store: paths, schema and migrations, exercise results, quiz answers, and the
refusal to touch a corrupt, foreign or newer database."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from quiz_fixtures import quiz_env, run_python, subprocess_env  # noqa: F401  (quiz_env is a fixture)

from grader.quiz.scheduler import next_state
from grader.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    QuizAnswer,
    Store,
    StoreError,
    _migrate,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def _result(exercise: str, score: float, started: str = "2025-03-01T09:00:00+00:00") -> dict:
    return {
        "exercise": exercise, "score": score, "max_score": 25, "started_at": started, "duration_s": 2.5,
        "checks": [{"name": "shape", "status": "passed", "points": 4}],
    }


def test_open_creates_a_versioned_wal_database(tmp_path):
    path = tmp_path / "sub" / "progress.db"
    with Store.open(path) as store:
        assert store.path == path and path.is_file()
        assert store.schema_version == SCHEMA_VERSION == MIGRATIONS[-1][0]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_path_from_env_var_and_explicit_path_wins(quiz_env, tmp_path):
    with Store.open() as store:
        assert store.path == quiz_env["db"]
    other = tmp_path / "other.db"
    with Store.open(other) as store:
        assert store.path == other


def test_default_path_is_in_the_course_progress_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GRADE_PROGRESS_DB", raising=False)
    monkeypatch.setenv("GRADE_HOME", str(tmp_path / ".grade"))
    from grader.store import default_path

    assert default_path() == tmp_path / ".grade" / "progress.db"


def test_exercise_results_latest_per_exercise_with_checks(tmp_path):
    with Store.open(tmp_path / "p.db") as store:
        store.record_exercise_result(_result("conv", 10))
        store.record_exercise_result(_result("pooling", 7))
        store.record_exercise_result(_result("conv", 21, started="2025-03-02T10:00:00+00:00"))
        last = store.last_exercise_results()
        history = store.exercise_history("conv")
    assert set(last) == {"conv", "pooling"}
    conv = last["conv"]
    assert (conv["score"], conv["max_score"], conv["started_at"]) == (21, 25, "2025-03-02T10:00:00+00:00")
    assert conv["finished_at"] == "2025-03-02T10:00:02+00:00"  # started + duration
    assert conv["checks"] == [{"name": "shape", "status": "passed", "points": 4}]
    assert [h["score"] for h in history] == [10, 21]


def test_only_the_latest_result_of_an_exercise_keeps_its_pictures(tmp_path):
    def pictured(exercise: str, score: float) -> dict:
        return {**_result(exercise, score), "checks": [{"name": "shape", "status": "failed", "points": 0,
                                                        "picture": f"<svg>{exercise} {score}</svg>"}]}

    with Store.open(tmp_path / "p.db") as store:
        store.record_exercise_result(pictured("conv", 10))
        store.record_exercise_result(pictured("pooling", 7))
        store.record_exercise_result(pictured("conv", 12))
        rows = store._conn.execute("SELECT exercise, record FROM exercise_results ORDER BY id").fetchall()
        last = store.last_exercise_results()
    assert [("<svg>" in record) for _, record in rows] == [False, True, True]  # the first conv run lost its picture
    assert '"picture": null' in rows[0][1] and '"score": 10' in rows[0][1]  # and kept everything else
    assert last["conv"]["checks"][0]["picture"] == "<svg>conv 12</svg>"
    assert last["pooling"]["checks"][0]["picture"] == "<svg>pooling 7</svg>"


def test_exercise_result_accepts_epoch_and_datetime_and_keeps_extra_keys(tmp_path):
    with Store.open(tmp_path / "p.db") as store:
        store.record_exercise_result({**_result("gap", 3), "started_at": 0, "finished_at": T0, "seed": 4})
        got = store.last_exercise_results()["gap"]
    assert got["started_at"] == "1970-01-01T00:00:00+00:00"
    assert got["finished_at"] == "2025-03-01T09:00:00+00:00"
    assert got["seed"] == 4


@pytest.mark.parametrize("change, message", [
    ({"exercise": None}, "exercise must be a non-empty str"),
    ({"score": "10"}, "score must be a number"),
    ({"checks": "all good"}, "checks must be a list of dicts"),
    ({"started_at": "yesterday"}, "started_at must be an ISO 8601"),
    ({"duration_s": True}, "duration_s must be a number"),
])
def test_exercise_result_validation_names_the_bad_field(tmp_path, change, message):
    with Store.open(tmp_path / "p.db") as store:
        with pytest.raises(ValueError, match=message):
            store.record_exercise_result({**_result("conv", 1), **change})
        with pytest.raises(ValueError, match="lacks duration_s, checks"):
            store.record_exercise_result({"exercise": "conv", "score": 1, "max_score": 2, "started_at": "2025-01-01"})
        assert store.last_exercise_results() == {}


def test_migrations_upgrade_an_old_database_and_keep_its_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    _migrate(conn, path, upto=1)  # a database written by a version that knew only migration 1
    conn.execute(
        "INSERT INTO exercise_results (exercise, score, max_score, started_at, finished_at, duration_s, record)"
        " VALUES ('conv', 5, 25, '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:01+00:00', 1.0, '{\"checks\": []}')"
    )
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.last_exercise_results()["conv"]["score"] == 5
        assert store.card_states() == {}  # the quiz tables of migration 2 exist now


def test_migration_numbers_are_consecutive():
    assert [v for v, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "progress.db"
    path.write_text("my thesis notes, not a database\n" * 50)
    before = _bytes(path)
    with pytest.raises(StoreError, match="is not a SQLite database.*left untouched.*Move it aside"):
        Store.open(path)
    assert _bytes(path) == before


def test_another_programs_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "progress.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('pesto')")
    conn.commit()
    conn.close()
    before = _bytes(path)
    with pytest.raises(StoreError, match="another program"):
        Store.open(path)
    assert _bytes(path) == before
    assert not Path(f"{path}-wal").exists()


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "progress.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = _bytes(path)
    with pytest.raises(StoreError, match="newer cnn-grader.*Upgrade"):
        Store.open(path)
    assert _bytes(path) == before


def test_a_damaged_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "progress.db"
    with Store.open(path) as store:
        for i in range(20):  # enough rows for several b-tree pages
            store.record_exercise_result({**_result(f"ex{i}", i), "checks": [{"name": f"check {j}", "log": "x" * 200} for j in range(10)]})
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page:3 * page] = b"\xde\xad\xbe\xef" * (page // 4)  # garbage over a b-tree page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged|not a SQLite"):
        Store.open(path)
    assert path.read_bytes() == bytes(data)


def test_a_folder_path_is_refused_with_advice(tmp_path):
    with pytest.raises(StoreError, match="is a folder.*--db PATH"):
        Store.open(tmp_path)


def _answer(session: int, sid: str, given: bool, key: bool, at: datetime) -> QuizAnswer:
    return QuizAnswer(session_id=session, statement_id=sid, topic="gap", given=given, key=key,
                      answered_at=at, text_hash="abc123", response_ms=900)


def test_quiz_answers_attempts_states_and_undo(tmp_path):
    with Store.open(tmp_path / "p.db") as store:
        session = store.start_quiz_session(mode="mixed", topics=["gap"], seed=1, bank="f00", started_at=T0)
        first = next_state(None, True, T0)
        a1 = store.record_quiz_answer(_answer(session, "gap-a", True, True, T0), first)
        wrong = next_state(first, False, T0 + timedelta(minutes=1))
        a2 = store.record_quiz_answer(_answer(session, "gap-a", True, False, T0 + timedelta(minutes=1)), wrong)
        assert store.card_states()["gap-a"] == wrong
        store.undo_quiz_answer(a2, first, T0 + timedelta(minutes=2))
        assert store.card_states()["gap-a"] == first
        a3 = store.record_quiz_answer(_answer(session, "gap-a", True, True, T0 + timedelta(minutes=3)), first)
        store.finish_quiz_session(session, T0 + timedelta(minutes=4))
        counted = store.quiz_answers(session)
        everything = store.quiz_answers(include_undone=True)
        store.undo_quiz_answer(a3, None, T0 + timedelta(minutes=5))
        assert "gap-a" not in store.card_states()  # None: back to "never answered"
        meta = store.quiz_session(session)
    assert [a.id for a in counted] == [a1, a3]
    assert [(a.id, a.undone, a.attempt) for a in everything] == [(a1, False, 1), (a2, True, 2), (a3, False, 3)]
    # the undone answer keeps its place in the attempt log; only the Leitner state forgets it
    assert everything[1].correct is False and everything[1].key is False
    assert meta["finished_at"] == "2025-03-01T09:04:00+00:00" and meta["topics"] == ["gap"]


def test_undo_to_new_removes_the_state(tmp_path):
    with Store.open(tmp_path / "p.db") as store:
        session = store.start_quiz_session(mode="mixed", topics=[], seed=None, bank="x", started_at=T0)
        answer_id = store.record_quiz_answer(_answer(session, "s", False, True, T0), next_state(None, False, T0))
        store.undo_quiz_answer(answer_id, None, T0)
        assert store.card_states() == {}
        with pytest.raises(ValueError, match="no quiz answer with id 999"):
            store.undo_quiz_answer(999, None, T0)


def test_store_does_not_import_torch(tmp_path):
    code = (
        "import sys\nfrom grader.store import Store\n"
        f"s = Store.open({str(tmp_path / 'p.db')!r}); s.last_exercise_results(); s.close()\n"
        "print('TORCH', 'torch' in sys.modules)"
    )
    done = run_python(code, subprocess_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "TORCH False" in done.stdout


def test_open_copy_reads_the_source_and_writes_only_the_copy(tmp_path):
    source = tmp_path / "real.db"
    with Store.open(source) as real:  # still open: the answer may sit in the write-ahead log only
        session = real.start_quiz_session(mode="mixed", topics=["gap"], seed=None, bank="b", started_at=T0)
        real.record_quiz_answer(_answer(session, "gap-a", True, True, T0), next_state(None, True, T0))
        with Store.open_copy(source, tmp_path / "copy.db") as copy:
            assert [a.statement_id for a in copy.quiz_answers()] == ["gap-a"]
            assert "gap-a" in copy.card_states()
            copy.record_quiz_answer(_answer(session, "gap-b", False, True, T0), next_state(None, False, T0))
        assert [a.statement_id for a in real.quiz_answers()] == ["gap-a"]
        assert set(real.card_states()) == {"gap-a"}


def test_open_copy_of_a_missing_or_foreign_store(tmp_path):
    with Store.open_copy(tmp_path / "none.db", tmp_path / "copy.db") as copy:
        assert copy.quiz_answers() == [] and copy.card_states() == {}
    assert not (tmp_path / "none.db").exists()
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=f"{re.escape(str(foreign))} is a SQLite database of another program"):
        Store.open_copy(foreign, tmp_path / "copy2.db")


def test_best_exercise_scores_keep_the_highest_run(quiz_env):
    with Store.open() as store:
        for score in (10, 25, 12):
            store.record_exercise_result({"exercise": "conv", "score": score, "max_score": 25, "duration_s": 1.0,
                                          "started_at": "2026-01-01T00:00:00+00:00", "checks": []})
        assert store.best_exercise_scores() == {"conv": 25.0}
        assert store.last_exercise_results()["conv"]["score"] == 12
