"""When is a statement due again: Leitner boxes for true/false answers.

Each statement a student has answered sits in a box from 1 to `MAX_BOX`; box `b` is asked again
`INTERVALS[b - 1]` after the last answer. A right answer to a due (or new) statement moves it up one
box; a right answer given before it was due keeps the box and restarts its interval; a wrong answer
sends it back to box 1. A statement never answered has no state (it is "new").

Why Leitner and not FSRS: FSRS fits a model of recall probability to graded answers
(again/hard/good/easy) and needs many reviews per student to tune its parameters. A true/false
answer is binary and right half the time by guessing, so it carries too little evidence for that
model; the Leitner rule is transparent (a student can predict it), deterministic and needs no
extra dependency. Three right answers in a row, each after a growing gap, are needed to reach
`MASTERED_BOX` (a guesser gets there with probability 1/8).

A statement's state is a `grader.store.CardState`, the record the progress store keeps; this
module holds the rules that move it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from grader.store import CardState  # the record the store keeps; the rules for it are here

# Box b is asked again INTERVALS[b - 1] after its last answer: roughly doubling, as in Leitner's
# original schedule, capped at about a month so that a course's revision fits in a semester.
INTERVALS: tuple[timedelta, ...] = (
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=7),
    timedelta(days=16),
    timedelta(days=35),
)
MAX_BOX = len(INTERVALS)
MASTERED_BOX = 4  # reached after three spaced right answers in a row
MODES = ("mixed", "review", "mistakes")


def is_mastered(state: CardState) -> bool:
    """Whether a statement is mastered: in box MASTERED_BOX or above."""
    return state.box >= MASTERED_BOX


def interval(box: int) -> timedelta:
    """The wait after an answer that leaves a statement in `box` (1..MAX_BOX)."""
    if not 1 <= box <= MAX_BOX:
        raise ValueError(f"box must be in 1..{MAX_BOX}, got {box}")
    return INTERVALS[box - 1]


def is_due(state: CardState | None, now: datetime) -> bool:
    """Whether a seen statement should be asked now (a new statement, `None`, is not 'due')."""
    return state is not None and state.due_at <= now


def next_state(state: CardState | None, correct: bool, now: datetime) -> CardState:
    """The state after answering at `now`: up one box if right when due or new, box 1 if wrong."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (use datetime.now(timezone.utc))")
    if not correct:
        box = 1
    elif state is None:
        box = 2  # every statement starts in box 1; a first right answer promotes it
    elif state.due_at <= now:
        box = min(state.box + 1, MAX_BOX)
    else:
        box = state.box  # answered early: no promotion, the interval restarts
    if state is None:
        state = CardState(box=1, due_at=now, last_answered_at=now, last_correct=correct, reviews=0, lapses=0)
    return replace(
        state,
        box=box,
        due_at=now + interval(box),
        last_answered_at=now,
        last_correct=correct,
        reviews=state.reviews + 1,
        lapses=state.lapses + (0 if correct else 1),
    )


class _HasId(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def related(self) -> tuple[str, ...]: ...


S = TypeVar("S", bound=_HasId)


def select(statements: Sequence[S], states: Mapping[str, CardState], *, mode: str, count: int,
           now: datetime, rng: random.Random) -> list[S]:
    """The statements to ask, in order, at most `count`.

    - `mixed` (default): what is due (most overdue first), then new statements (shuffled), then
      the rest (soonest due first), so that a session is never empty while the bank is not.
    - `review`: only what is due, most overdue first.
    - `mistakes`: only statements whose last answer was wrong, most recent mistake first.
    Ties are broken by `rng`, so a seed makes the order reproducible. Statements declared
    `related` (in either direction) are kept apart: one that is related to a statement already
    chosen waits until every other candidate is placed, so that the explanation of one does not
    answer the other in the same session unless nothing else is left.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    pool = list(statements)
    rng.shuffle(pool)  # the tie-breaker for the stable sorts below
    seen = [s for s in pool if s.id in states]
    if mode == "review":
        chosen = sorted((s for s in seen if is_due(states[s.id], now)), key=lambda s: states[s.id].due_at)
    elif mode == "mistakes":
        chosen = sorted((s for s in seen if not states[s.id].last_correct),
                        key=lambda s: states[s.id].last_answered_at, reverse=True)
    else:
        due = sorted((s for s in seen if is_due(states[s.id], now)), key=lambda s: states[s.id].due_at)
        new = [s for s in pool if s.id not in states]
        rest = sorted((s for s in seen if not is_due(states[s.id], now)), key=lambda s: states[s.id].due_at)
        chosen = due + new + rest
    return _apart(chosen, count)


def _apart(ranked: list[S], count: int) -> list[S]:
    """The first `count` of `ranked`, passing over statements related to one already taken."""
    neighbours: dict[str, set[str]] = {}
    for s in ranked:
        for other in s.related:
            neighbours.setdefault(s.id, set()).add(other)
            neighbours.setdefault(other, set()).add(s.id)
    taken: list[S] = []
    taken_ids: set[str] = set()
    waiting: list[S] = []
    for s in ranked:
        if len(taken) == count:
            break
        if neighbours.get(s.id, set()) & taken_ids:
            waiting.append(s)
        else:
            taken.append(s)
            taken_ids.add(s.id)
    return (taken + waiting)[:count]
