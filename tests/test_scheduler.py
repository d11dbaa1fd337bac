"""The Leitner scheduler: intervals, promotions, lapses, and which statements a session asks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from grader.quiz.scheduler import (
    INTERVALS,
    MASTERED_BOX,
    MAX_BOX,
    CardState,
    interval,
    is_due,
    is_mastered,
    next_state,
    select,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def test_intervals_grow_and_match_the_documented_schedule():
    assert [i.days for i in INTERVALS] == [1, 3, 7, 16, 35]
    assert MAX_BOX == 5 and MASTERED_BOX == 4
    assert [interval(b) for b in range(1, MAX_BOX + 1)] == list(INTERVALS)
    with pytest.raises(ValueError, match="box must be in 1..5"):
        interval(0)


def test_first_right_answer_goes_to_box_2_and_first_wrong_to_box_1():
    right = next_state(None, True, T0)
    assert (right.box, right.due_at, right.reviews, right.lapses, right.last_correct) == (2, T0 + 3 * DAY, 1, 0, True)
    wrong = next_state(None, False, T0)
    assert (wrong.box, wrong.due_at, wrong.reviews, wrong.lapses, wrong.last_correct) == (1, T0 + DAY, 1, 1, False)


def test_right_answers_when_due_climb_one_box_each_up_to_the_last():
    state = next_state(None, True, T0)
    boxes = [state.box]
    now = T0
    for _ in range(6):
        now = state.due_at
        state = next_state(state, True, now)
        boxes.append(state.box)
        assert state.due_at == now + interval(state.box)
    assert boxes == [2, 3, 4, 5, 5, 5, 5]
    assert state.reviews == 7 and state.lapses == 0 and is_mastered(state)


def test_mastery_needs_three_spaced_right_answers_in_a_row():
    state = next_state(None, True, T0)
    state = next_state(state, True, state.due_at)
    assert not is_mastered(state)
    state = next_state(state, True, state.due_at)
    assert state.box == MASTERED_BOX and is_mastered(state)


def test_a_wrong_answer_sends_back_to_box_1_from_any_box():
    state = CardState(box=5, due_at=T0, last_answered_at=T0 - 35 * DAY, last_correct=True, reviews=9, lapses=2)
    after = next_state(state, False, T0 + DAY)
    assert (after.box, after.due_at, after.reviews, after.lapses) == (1, T0 + 2 * DAY, 10, 3)


def test_a_right_answer_before_due_keeps_the_box_and_restarts_the_interval():
    state = next_state(None, True, T0)  # box 2, due in 3 days
    early = T0 + DAY
    after = next_state(state, True, early)
    assert after.box == 2 and after.due_at == early + interval(2)


def test_is_due_and_naive_time_rejected():
    state = next_state(None, True, T0)
    assert not is_due(state, T0 + 2 * DAY)
    assert is_due(state, T0 + 3 * DAY)
    assert not is_due(None, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_state(None, True, datetime(2025, 1, 1))


@dataclass(frozen=True)
class Item:
    id: str
    related: tuple[str, ...] = ()


ITEMS = [Item(f"s{i}") for i in range(8)]


def _states() -> dict[str, CardState]:
    """s0 overdue by 5 days, s1 overdue by 1 day (wrong last), s2 due in 2 days, s3 due in 1 day
    (wrong last, answered most recently); s4..s7 are new."""
    def st(due: timedelta, correct: bool, answered: timedelta) -> CardState:
        return CardState(box=2, due_at=T0 + due, last_answered_at=T0 + answered, last_correct=correct,
                         reviews=1, lapses=0 if correct else 1)

    return {
        "s0": st(-5 * DAY, True, -8 * DAY),
        "s1": st(-1 * DAY, False, -2 * DAY),
        "s2": st(2 * DAY, True, -1 * DAY),
        "s3": st(1 * DAY, False, -timedelta(hours=1)),
    }


def test_review_asks_only_what_is_due_most_overdue_first():
    chosen = select(ITEMS, _states(), mode="review", count=10, now=T0, rng=random.Random(0))
    assert [c.id for c in chosen] == ["s0", "s1"]


def test_mistakes_asks_the_last_wrong_most_recent_first():
    chosen = select(ITEMS, _states(), mode="mistakes", count=10, now=T0, rng=random.Random(0))
    assert [c.id for c in chosen] == ["s3", "s1"]


def test_mixed_asks_due_then_new_then_the_rest_soonest_first():
    chosen = select(ITEMS, _states(), mode="mixed", count=10, now=T0, rng=random.Random(0))
    ids = [c.id for c in chosen]
    assert ids[:2] == ["s0", "s1"]
    assert sorted(ids[2:6]) == ["s4", "s5", "s6", "s7"]
    assert ids[6:] == ["s3", "s2"]


def test_count_limits_and_seed_makes_the_order_reproducible():
    a = select(ITEMS, {}, mode="mixed", count=5, now=T0, rng=random.Random(7))
    b = select(ITEMS, {}, mode="mixed", count=5, now=T0, rng=random.Random(7))
    assert len(a) == 5 and a == b
    orders = {tuple(x.id for x in select(ITEMS, {}, mode="mixed", count=8, now=T0, rng=random.Random(s))) for s in range(10)}
    assert len(orders) > 1, "different seeds should shuffle new statements differently"


def test_select_rejects_bad_mode_and_count():
    with pytest.raises(ValueError, match="mode"):
        select(ITEMS, {}, mode="cram", count=1, now=T0, rng=random.Random(0))
    with pytest.raises(ValueError, match="count"):
        select(ITEMS, {}, mode="mixed", count=0, now=T0, rng=random.Random(0))


def test_related_statements_are_kept_apart_unless_nothing_else_is_left():
    items = [Item("a", related=("b",)), Item("b"), Item("c", related=("d",)), Item("d"), Item("e")]
    states = {i.id: CardState(box=1, due_at=T0 - (5 - n) * DAY, last_answered_at=T0 - 9 * DAY, last_correct=True,
                              reviews=1, lapses=0) for n, i in enumerate(items)}  # due order: a, b, c, d, e
    assert [c.id for c in select(items, states, mode="review", count=3, now=T0, rng=random.Random(0))] == ["a", "c", "e"]
    # b waits for a (declared on a's side), d for c; they come last when the session has room for them
    assert [c.id for c in select(items, states, mode="review", count=5, now=T0, rng=random.Random(0))] == [
        "a", "c", "e", "b", "d"]
    plain = [Item(i.id) for i in items]
    assert [c.id for c in select(plain, states, mode="review", count=3, now=T0, rng=random.Random(0))] == ["a", "b", "c"]
