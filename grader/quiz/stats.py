"""`grade quiz --stats`: mastery per topic and what falls due when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from grader.quiz.bank import Bank, Statement
from grader.quiz.scheduler import MASTERED_BOX, CardState, is_due
from grader.quiz.session import due_line

# (label, upper bound of the wait) for the "due when" line; the last bucket is open-ended.
_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("within 24 h", timedelta(days=1)),
    ("in 1-7 days", timedelta(days=7)),
    ("in 8-30 days", timedelta(days=30)),
    ("later", None),
)


def stats_lines(bank: Bank, states: dict[str, CardState], topics: Sequence[str], now: datetime) -> list[str]:
    """A table per topic (statements, seen, mastered, last answer right, due) and a due timeline."""
    header = f"{'topic':<14}{'statements':>11}{'seen':>6}{'mastered':>10}{'last right':>12}{'due now':>9}{'due 7 d':>9}"
    lines = [f"Mastery by topic (mastered: box {MASTERED_BOX}+ of the Leitner schedule, i.e. right "
             "three times in a row, spaced out)", header, "-" * len(header)]
    scope: list[Statement] = []
    for name in topics:
        statements = bank.topic(name).statements
        scope += statements
        lines.append(_row(name, statements, states, now))
    if len(topics) > 1:
        lines.append("-" * len(header))
        lines.append(_row("all", scope, states, now))
    lines.append("")
    lines.append("Due when: " + _timeline(scope, states, now))
    lines.append(due_line(states, scope, now))
    return lines


def _row(name: str, statements: Sequence[Statement], states: dict[str, CardState], now: datetime) -> str:
    seen = [states[s.id] for s in statements if s.id in states]
    mastered = sum(st.box >= MASTERED_BOX for st in seen)
    right = f"{round(100 * sum(st.last_correct for st in seen) / len(seen))}%" if seen else "-"
    due_now = sum(is_due(st, now) for st in seen)
    due_week = sum(now < st.due_at <= now + timedelta(days=7) for st in seen)
    return f"{name:<14}{len(statements):>11}{len(seen):>6}{mastered:>10}{right:>12}{due_now:>9}{due_week:>9}"


def _timeline(statements: Sequence[Statement], states: dict[str, CardState], now: datetime) -> str:
    counts = {label: 0 for label, _ in _BUCKETS}
    due_now = new = 0
    for s in statements:
        st = states.get(s.id)
        if st is None:
            new += 1
        elif is_due(st, now):
            due_now += 1
        else:
            wait = st.due_at - now
            label = next(label for label, bound in _BUCKETS if bound is None or wait <= bound)
            counts[label] += 1
    parts = [f"now {due_now}"] + [f"{label} {n}" for label, n in counts.items()] + [f"never answered {new}"]
    return " | ".join(parts)
