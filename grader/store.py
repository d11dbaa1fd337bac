"""The progress store: one SQLite file per course that remembers a student's work.

It keeps exercise results (read by `grade list`, `grade progress` and the reports), every quiz
answer and the Leitner state of each statement (`CardState`, moved by the rules of
`grader.quiz.scheduler`). An undone answer is kept, marked `undone_at`, and still numbered as an
attempt: the Leitner state follows the corrected answer, while the log keeps what the student
answered first (the instructor report's facility and discrimination use first answers). Of the
grader it imports only `paths`, so every room can use it.

Where: `Store.open(path)`, else `$GRADE_PROGRESS_DB`, else `<course>/.grade/progress.db`.

Safety:
- The schema is versioned with `PRAGMA user_version`; `MIGRATIONS` are applied in order, each in
  its own transaction, and only ever add tables or columns.
- WAL journal with `synchronous=FULL`: each answer is committed before the next statement is
  shown, so a quiz killed at any moment loses no answer already given.
- The file is marked with `PRAGMA application_id`; a file that is not SQLite, belongs to another
  program, was made by a newer cnn-grader or fails SQLite's integrity check raises `StoreError`
  with what to do, and is never modified. Only stdlib `sqlite3` is used (no torch).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from grader.paths import PROGRESS_DB_ENV as ENV_VAR
from grader.paths import PROGRESS_DB_NAME as FILENAME
from grader.paths import progress_db

APPLICATION_ID = 0x434E4E47  # "CNNG": marks the file as cnn-grader's
_SQLITE_MAGIC = b"SQLite format 3\x00"

# (version, what it adds, SQL). Append only; never edit or reorder a released migration.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "exercise results", f"""
        PRAGMA application_id = {APPLICATION_ID};
        CREATE TABLE exercise_results (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            exercise    TEXT    NOT NULL,
            score       REAL    NOT NULL,
            max_score   REAL    NOT NULL,
            started_at  TEXT    NOT NULL,   -- ISO 8601, UTC
            finished_at TEXT    NOT NULL,
            duration_s  REAL,
            record      TEXT    NOT NULL    -- the whole result as JSON (checks included)
        );
        CREATE INDEX exercise_results_by_exercise ON exercise_results (exercise, id);
    """),
    (2, "quiz sessions, answers and Leitner boxes", """
        CREATE TABLE quiz_sessions (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at  TEXT    NOT NULL,
            finished_at TEXT,               -- NULL: quit by a kill or a crash
            mode        TEXT    NOT NULL,   -- mixed | review | mistakes
            topics      TEXT    NOT NULL,   -- JSON list of topic names
            seed        INTEGER,
            bank        TEXT                -- fingerprint of the bank the answers were given to
        );
        CREATE TABLE quiz_answers (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id   INTEGER NOT NULL REFERENCES quiz_sessions (id),
            statement_id TEXT    NOT NULL,
            topic        TEXT    NOT NULL,
            given        INTEGER NOT NULL CHECK (given IN (0, 1)),
            key          INTEGER NOT NULL CHECK (key IN (0, 1)),   -- the bank's answer then
            correct      INTEGER NOT NULL CHECK (correct IN (0, 1)),
            attempt      INTEGER NOT NULL,  -- 1 for the student's first answer to the statement
            answered_at  TEXT    NOT NULL,
            response_ms  INTEGER,
            text_hash    TEXT    NOT NULL,  -- tells a reworded or re-keyed statement apart
            undone_at    TEXT               -- set by `u`; the row is kept but no longer counts
        );
        CREATE INDEX quiz_answers_by_statement ON quiz_answers (statement_id, id);
        CREATE INDEX quiz_answers_by_session ON quiz_answers (session_id, id);
        CREATE TABLE leitner (
            statement_id     TEXT    PRIMARY KEY,
            box              INTEGER NOT NULL,
            due_at           TEXT    NOT NULL,
            last_answered_at TEXT    NOT NULL,
            last_correct     INTEGER NOT NULL,
            reviews          INTEGER NOT NULL,
            lapses           INTEGER NOT NULL
        );
    """),
    (3, "hints shown", """
        CREATE TABLE hints_shown (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            exercise  TEXT    NOT NULL,
            part      TEXT    NOT NULL,
            level     INTEGER NOT NULL CHECK (level >= 1),   -- hints 1..level of the part were shown
            shown_at  TEXT    NOT NULL                       -- ISO 8601, UTC
        );
        CREATE INDEX hints_shown_by_part ON hints_shown (exercise, part, level);
    """),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_EXERCISE_KEYS = ("exercise", "score", "max_score", "started_at", "duration_s", "checks")


class StoreError(Exception):
    """The progress file cannot be used; the message says why and what to do. Nothing was changed."""


@dataclass(frozen=True)
class CardState:
    """The revision state of one statement for one student (times are timezone-aware, UTC)."""

    box: int  # 1..MAX_BOX of the Leitner schedule (grader.quiz.scheduler)
    due_at: datetime  # asked again from this moment on
    last_answered_at: datetime
    last_correct: bool
    reviews: int  # answers counted so far (undone ones excluded)
    lapses: int  # wrong answers so far


@dataclass(frozen=True)
class QuizAnswer:
    """One answer given in a quiz session."""

    session_id: int
    statement_id: str
    topic: str
    given: bool
    key: bool  # the bank's answer when it was asked
    answered_at: datetime
    text_hash: str
    response_ms: int | None = None

    @property
    def correct(self) -> bool:
        return self.given == self.key


@dataclass(frozen=True)
class StoredAnswer:
    """A quiz answer as read back from the store."""

    id: int
    session_id: int
    statement_id: str
    topic: str
    given: bool
    key: bool
    correct: bool
    attempt: int
    answered_at: str
    response_ms: int | None
    text_hash: str
    undone: bool


def default_path() -> Path:
    """`$GRADE_PROGRESS_DB`, else `<course>/.grade/progress.db` (`paths.progress_db`)."""
    return progress_db()


def to_iso(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second (naive datetimes are taken as local time)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Store:
    """An open progress database. Use `Store.open()`; close it, or use it as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | Path | None = None) -> Store:
        """Open (creating if needed) the progress database at `path` (default: `default_path()`)."""
        path = Path(path).expanduser() if path is not None else default_path()
        _refuse_unusable_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the folder for the progress database {path}: {exc.strerror or exc}. "
                f"Choose a writable location with --db PATH or ${ENV_VAR}."
            ) from exc
        try:
            conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot open the progress database {path}: {exc}. "
                f"Check the path and its permissions, or choose another with --db PATH or ${ENV_VAR}."
            ) from exc
        try:
            _check_ownership(conn, path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn, path)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(_sqlite_message(path, exc)) from exc
        return cls(conn, path)

    @classmethod
    def open_copy(cls, source: str | Path | None, target: str | Path) -> Store:
        """Copy the database at `source` (default: `default_path()`) to `target` and open the copy.

        `source` is only read (a read-only connection and SQLite's backup API, so the copy holds
        what the write-ahead log has too); a missing `source` gives an empty store. This is how
        `grade quiz --now` tries out the schedule without writing into the real progress.
        """
        source = Path(source).expanduser() if source is not None else default_path()
        target = Path(target)
        _refuse_unusable_file(source)
        if source.is_file() and source.stat().st_size > 0:
            try:
                src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
                try:
                    _check_ownership(src, source)  # a foreign, newer or corrupt file is named as itself
                    dst = sqlite3.connect(target)
                    try:
                        src.backup(dst)
                    finally:
                        dst.close()
                finally:
                    src.close()
            except sqlite3.Error as exc:
                raise StoreError(_sqlite_message(source, exc)) from exc
        return cls.open(target)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    # ----------------------------------------------------------------- exercises

    def record_exercise_result(self, result: dict[str, Any]) -> int:
        """Store one graded run of an exercise and return its row id.

        `result` needs `exercise` (str), `score`, `max_score` (numbers), `started_at` (ISO string,
        datetime or epoch seconds), `duration_s` (number or None) and `checks` (a list of dicts);
        `finished_at` is optional. The whole dict is kept as JSON, except that only the latest
        result of an exercise keeps its checks' pictures (SVG text): the earlier ones lose them
        here. Raises `ValueError` naming what is missing or of the wrong type.
        """
        missing = [k for k in _EXERCISE_KEYS if k not in result]
        if missing:
            raise ValueError(f"exercise result lacks {', '.join(missing)} (got keys {sorted(result)})")
        exercise = result["exercise"]
        if not isinstance(exercise, str) or not exercise:
            raise ValueError(f"exercise must be a non-empty str, got {exercise!r}")
        for key in ("score", "max_score"):
            if not isinstance(result[key], (int, float)) or isinstance(result[key], bool):
                raise ValueError(f"{key} must be a number, got {result[key]!r}")
        duration = result["duration_s"]
        if duration is not None and (not isinstance(duration, (int, float)) or isinstance(duration, bool)):
            raise ValueError(f"duration_s must be a number or None, got {duration!r}")
        checks = result["checks"]
        if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
            raise ValueError(f"checks must be a list of dicts, got {type(checks).__name__}")
        started = _moment(result["started_at"], "started_at")
        if result.get("finished_at") is not None:
            finished = _moment(result["finished_at"], "finished_at")
        elif duration is not None:
            finished = to_iso(from_iso(started) + timedelta(seconds=float(duration)))
        else:
            finished = to_iso(datetime.now(timezone.utc))
        try:
            record = json.dumps(result, default=_json_default, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"exercise result is not JSON-serialisable: {exc}") from exc
        with self._transaction():
            cur = self._conn.execute(
                "INSERT INTO exercise_results (exercise, score, max_score, started_at, finished_at,"
                " duration_s, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (exercise, float(result["score"]), float(result["max_score"]), started, finished,
                 None if duration is None else float(duration), record),
            )
            self._drop_old_pictures(exercise, int(cur.lastrowid))
        return int(cur.lastrowid)

    def _drop_old_pictures(self, exercise: str, latest: int) -> None:
        """Set the pictures of the exercise's results before `latest` to None (kept only for the
        latest, which `grade progress --html` shows), so that re-grading does not grow the file."""
        rows = self._conn.execute(
            "SELECT id, record FROM exercise_results WHERE exercise = ? AND id < ? AND record LIKE ?",
            (exercise, latest, '%"picture": "<svg%')).fetchall()
        for row_id, record in rows:
            try:
                data = json.loads(record)
            except json.JSONDecodeError:
                continue
            for check in data.get("checks", []):
                if isinstance(check, dict) and check.get("picture"):
                    check["picture"] = None
            self._conn.execute("UPDATE exercise_results SET record = ? WHERE id = ?",
                               (json.dumps(data, default=_json_default, sort_keys=True), row_id))

    def last_exercise_results(self) -> dict[str, dict[str, Any]]:
        """The latest result of each exercise: the stored dict with `score`, `max_score`,
        `started_at`, `finished_at`, `duration_s` and `checks` normalised."""
        rows = self._conn.execute(
            "SELECT r.exercise, r.score, r.max_score, r.started_at, r.finished_at, r.duration_s, r.record"
            " FROM exercise_results r JOIN (SELECT MAX(id) AS id FROM exercise_results GROUP BY exercise) m"
            " ON r.id = m.id ORDER BY r.exercise"
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for exercise, score, max_score, started, finished, duration, record in rows:
            try:
                data = json.loads(record)
            except json.JSONDecodeError:
                data = {}
            data.update(exercise=exercise, score=score, max_score=max_score, started_at=started,
                        finished_at=finished, duration_s=duration, checks=data.get("checks", []))
            out[exercise] = data
        return out

    def best_exercise_scores(self) -> dict[str, float]:
        """The best score ever stored for each exercise (out of the same maximum as its last result)."""
        rows = self._conn.execute("SELECT exercise, MAX(score) FROM exercise_results GROUP BY exercise").fetchall()
        return {exercise: float(score) for exercise, score in rows}

    def exercise_history(self, exercise: str) -> list[dict[str, Any]]:
        """Every stored result of one exercise, oldest first (score, max_score, times)."""
        rows = self._conn.execute(
            "SELECT score, max_score, started_at, finished_at, duration_s FROM exercise_results"
            " WHERE exercise = ? ORDER BY id", (exercise,)
        ).fetchall()
        keys = ("score", "max_score", "started_at", "finished_at", "duration_s")
        return [dict(zip(keys, row)) for row in rows]

    # ----------------------------------------------------------------- quiz

    def start_quiz_session(self, *, mode: str, topics: list[str], seed: int | None, bank: str,
                           started_at: datetime) -> int:
        with self._transaction():
            cur = self._conn.execute(
                "INSERT INTO quiz_sessions (started_at, mode, topics, seed, bank) VALUES (?, ?, ?, ?, ?)",
                (to_iso(started_at), mode, json.dumps(list(topics)), seed, bank),
            )
        return int(cur.lastrowid)

    def finish_quiz_session(self, session_id: int, finished_at: datetime) -> None:
        with self._transaction():
            self._conn.execute("UPDATE quiz_sessions SET finished_at = ? WHERE id = ?",
                               (to_iso(finished_at), session_id))

    def quiz_session(self, session_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT id, started_at, finished_at, mode, topics, seed, bank FROM quiz_sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "started_at", "finished_at", "mode", "topics", "seed", "bank")
        data = dict(zip(keys, row))
        data["topics"] = json.loads(data["topics"])
        return data

    def record_quiz_answer(self, answer: QuizAnswer, state: CardState) -> int:
        """Store an answer and the statement's new Leitner state in one committed transaction."""
        with self._transaction():
            (previous,) = self._conn.execute(  # undone answers too: attempt 1 is the first answer given
                "SELECT COUNT(*) FROM quiz_answers WHERE statement_id = ?", (answer.statement_id,),
            ).fetchone()
            cur = self._conn.execute(
                "INSERT INTO quiz_answers (session_id, statement_id, topic, given, key, correct, attempt,"
                " answered_at, response_ms, text_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (answer.session_id, answer.statement_id, answer.topic, int(answer.given), int(answer.key),
                 int(answer.correct), previous + 1, to_iso(answer.answered_at), answer.response_ms,
                 answer.text_hash),
            )
            self._put_state(answer.statement_id, state)
        return int(cur.lastrowid)

    def undo_quiz_answer(self, answer_id: int, restored: CardState | None, undone_at: datetime) -> None:
        """Mark an answer undone (the row is kept) and put back the state it replaced (None: new)."""
        with self._transaction():
            row = self._conn.execute("SELECT statement_id FROM quiz_answers WHERE id = ?", (answer_id,)).fetchone()
            if row is None:
                raise ValueError(f"no quiz answer with id {answer_id}")
            self._conn.execute("UPDATE quiz_answers SET undone_at = ? WHERE id = ?", (to_iso(undone_at), answer_id))
            if restored is None:
                self._conn.execute("DELETE FROM leitner WHERE statement_id = ?", (row[0],))
            else:
                self._put_state(row[0], restored)

    def card_states(self) -> dict[str, CardState]:
        """The Leitner state of every statement answered at least once (undone answers excluded)."""
        rows = self._conn.execute(
            "SELECT statement_id, box, due_at, last_answered_at, last_correct, reviews, lapses FROM leitner"
        ).fetchall()
        return {
            sid: CardState(box=box, due_at=from_iso(due), last_answered_at=from_iso(last),
                           last_correct=bool(ok), reviews=reviews, lapses=lapses)
            for sid, box, due, last, ok, reviews, lapses in rows
        }

    def quiz_answers(self, session_id: int | None = None, include_undone: bool = False) -> list[StoredAnswer]:
        """Quiz answers, oldest first: of one session or of all, without undone ones by default."""
        sql = ("SELECT id, session_id, statement_id, topic, given, key, correct, attempt, answered_at,"
               " response_ms, text_hash, undone_at FROM quiz_answers WHERE 1 = 1")
        params: list[Any] = []
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
        if not include_undone:
            sql += " AND undone_at IS NULL"
        rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        return [
            StoredAnswer(id=r[0], session_id=r[1], statement_id=r[2], topic=r[3], given=bool(r[4]),
                         key=bool(r[5]), correct=bool(r[6]), attempt=r[7], answered_at=r[8],
                         response_ms=r[9], text_hash=r[10], undone=r[11] is not None)
            for r in rows
        ]

    # ----------------------------------------------------------------- hints

    def record_hint_shown(self, exercise: str, part: str, level: int, shown_at: datetime | None = None) -> int:
        """Remember that hints 1..level of `part` were shown (append only); returns the row id."""
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            raise ValueError(f"level must be an int >= 1, got {level!r}")
        with self._transaction():
            cur = self._conn.execute(
                "INSERT INTO hints_shown (exercise, part, level, shown_at) VALUES (?, ?, ?, ?)",
                (exercise, part, level, to_iso(shown_at or datetime.now(timezone.utc))),
            )
        return int(cur.lastrowid)

    def hint_levels(self) -> dict[tuple[str, str], int]:
        """{(exercise, part): the highest hint level shown}."""
        rows = self._conn.execute("SELECT exercise, part, MAX(level) FROM hints_shown GROUP BY exercise, part")
        return {(ex, part): int(level) for ex, part, level in rows}

    # ----------------------------------------------------------------- helpers

    def _put_state(self, statement_id: str, state: CardState) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO leitner (statement_id, box, due_at, last_answered_at, last_correct,"
            " reviews, lapses) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (statement_id, state.box, to_iso(state.due_at), to_iso(state.last_answered_at),
             int(state.last_correct), state.reviews, state.lapses),
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); SQLite errors become `StoreError`."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(_sqlite_message(self.path, exc)) from exc


def _refuse_unusable_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a path that is a folder or a file that is not SQLite."""
    if path.is_dir():
        raise StoreError(
            f"The progress database path {path} is a folder. Give a file path with --db PATH or "
            f"${ENV_VAR} (for example {path / FILENAME})."
        )
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"Cannot read the progress database {path}: {exc.strerror or exc}. Check its permissions.") from exc
    if head != _SQLITE_MAGIC:
        raise StoreError(_foreign_message(path, "is not a SQLite database (it is corrupt or another program's file)"))


def _check_ownership(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database of another program, of a newer cnn-grader, or one SQLite finds corrupt."""
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (tables,) = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables != 0):
        raise StoreError(_foreign_message(path, "is a SQLite database of another program"))
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"The progress database {path} was written by a newer cnn-grader (schema {version}; this "
            f"one knows up to {SCHEMA_VERSION}). Upgrade cnn-grader (pip install -U cnn-grader); "
            "the file was left untouched."
        )
    (check,) = conn.execute("PRAGMA quick_check").fetchone()
    if check != "ok":
        raise StoreError(_corrupt_message(path, check))


def _migrate(conn: sqlite3.Connection, path: Path, upto: int = SCHEMA_VERSION) -> None:
    """Apply the migrations after the file's version, each in its own transaction."""
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    for version, _what, sql in MIGRATIONS:
        if current < version <= upto:
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


def _sqlite_message(path: Path, exc: sqlite3.Error) -> str:
    """A user-facing message for an SQLite error on `path`."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return (f"The progress database {path} is busy ({text}): another `grade` command is writing "
                "to it. Let it finish (or close it) and run this again.")
    if "readonly" in lowered or "unable to open" in lowered or "permission" in lowered:
        return (f"Cannot write the progress database {path} ({text}). Check the permissions of the "
                f"file and its folder, or choose another file with --db PATH or ${ENV_VAR}.")
    return _corrupt_message(path, text)


def _foreign_message(path: Path, what: str) -> str:
    return (
        f"The progress database {path} {what}, so cnn-grader will not use it; it was left untouched. "
        f"Move it aside (for example rename it to {path.name}.bad) to start a fresh progress file, "
        f"or point --db PATH / ${ENV_VAR} at another file."
    )


def _corrupt_message(path: Path, detail: str) -> str:
    return (
        f"The progress database {path} is damaged ({detail}); it was left untouched. Keep a copy, "
        f"then try `sqlite3 {path} .recover > recovered.sql` to save what is readable, or move it "
        f"aside to start afresh, or point --db PATH / ${ENV_VAR} at another file."
    )


def _moment(value: Any, name: str) -> str:
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return to_iso(datetime.fromtimestamp(value, timezone.utc))
    if isinstance(value, str):
        try:
            return to_iso(from_iso(value))
        except ValueError:
            pass
    raise ValueError(f"{name} must be an ISO 8601 string, a datetime or epoch seconds, got {value!r}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
