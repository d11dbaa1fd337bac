"""`grade quiz --json FILE`: a student's quiz answers in the JSON form the instructor report reads.

The document (format `cnn-grader/quiz-results`, version 1) is one object:

    {
      "format": "cnn-grader/quiz-results",
      "version": 1,
      "generated_at": "2025-01-31T10:00:00+00:00",     # ISO 8601, UTC
      "student": "ada" | null,                          # $GRADE_STUDENT when set
      "bank": {"fingerprint": "3f2a...", "statements": 160},
      "session": {                                      # the run that wrote the file, or null
        "id": 7, "started_at": "...", "finished_at": "...", "mode": "mixed" | "review" | "mistakes",
        "topics": ["gap"], "seed": 1 | null,
        "asked": 10, "answered": 9, "correct": 7, "skipped": 1, "quit_early": false
      },
      "answers": [                                      # every answer given, oldest first
        {"session_id": 7, "statement_id": "gap-no-trainable-params", "topic": "gap",
         "given": true, "key": true, "correct": true,
         "attempt": 1,                                  # 1 = the student's first answer to it
         "undone": false,                               # true: taken back with `u` (kept in the log)
         "answered_at": "...", "response_ms": 2300,
         "text_hash": "9c1e..."}                        # changes when the text or key changes
      ],
      "statements": {                                   # per statement answered at least once
        "gap-no-trainable-params": {
          "topic": "gap", "in_bank": true,              # false: the id left the bank since
          "attempts": 2, "correct": 1,                  # answers given (undone ones too), right ones
          "first_correct": false, "last_correct": true, # the first and the last answer given
          "box": 2, "due_at": "..."                     # the Leitner state (null: nothing counts)
        }
      }
    }

Facility of a statement over a class = mean of `first_correct`; discrimination = correlation of
`first_correct` with the student's total first-attempt score. `first_correct` is the first answer
the student gave, even when they undid it: undo changes the revision schedule, not the log.

These results come from the student's own machine and are formative: a student can edit the
database or the JSON. Summative quizzes belong in a proctored Moodle quiz made with
`grade quiz export --format moodle-xml` (or `gift`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from grader.quiz.bank import Bank
from grader.quiz.session import SessionReport
from grader.engine.results import write_text_atomic
from grader.store import Store, to_iso

FORMAT = "cnn-grader/quiz-results"
VERSION = 1


def build_results(store: Store, bank: Bank, now: datetime, report: SessionReport | None = None) -> dict[str, Any]:
    """The results document for the student whose store this is (see the module docstring)."""
    answers = store.quiz_answers(include_undone=True)
    states = store.card_states()
    per: dict[str, dict[str, Any]] = {}
    for a in answers:
        entry = per.setdefault(a.statement_id, {
            "topic": a.topic, "in_bank": bank.get(a.statement_id) is not None, "attempts": 0,
            "correct": 0, "first_correct": a.correct, "last_correct": a.correct, "box": None, "due_at": None,
        })
        entry["attempts"] += 1
        entry["correct"] += int(a.correct)
        entry["last_correct"] = a.correct
    for sid, entry in per.items():
        if sid in states:
            entry["box"] = states[sid].box
            entry["due_at"] = to_iso(states[sid].due_at)
    session = None
    if report is not None:
        stored = store.quiz_session(report.session_id) or {}
        session = {
            "id": report.session_id, "started_at": stored.get("started_at"),
            "finished_at": stored.get("finished_at"), "mode": stored.get("mode"),
            "topics": stored.get("topics"), "seed": stored.get("seed"),
            "asked": len(report.planned), "answered": len(report.answered), "correct": report.correct,
            "skipped": len(report.skipped), "quit_early": report.quit_early,
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": to_iso(now),
        "student": os.environ.get("GRADE_STUDENT") or None,
        "bank": {"fingerprint": bank.fingerprint, "statements": len(bank.statements)},
        "session": session,
        "answers": [
            {"session_id": a.session_id, "statement_id": a.statement_id, "topic": a.topic,
             "given": a.given, "key": a.key, "correct": a.correct, "attempt": a.attempt,
             "undone": a.undone, "answered_at": a.answered_at, "response_ms": a.response_ms, "text_hash": a.text_hash}
            for a in answers
        ],
        "statements": per,
    }


def check_writable(path: Path) -> None:
    """Raise `ValueError` now, before the quiz, if `path` cannot be written at the end."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as {path / 'quiz.json'}")
    if not path.parent.is_dir():
        raise ValueError(f"the folder {path.parent} does not exist; create it or choose another path")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"the folder {path.parent} is not writable; choose another path")


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write `document` as JSON, atomically."""
    write_text_atomic(path, json.dumps(document, indent=2) + "\n")
