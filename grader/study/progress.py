"""`grade progress`: exercises passed, partial and not started; quiz mastery per topic; what is due
for revision; and the one next step to take.

`build_progress` is pure (results, catalogue, bank and Leitner states in, a `Progress` record out);
`collect` reads them from the store and the quiz bank; `progress_lines` and `render_html` present
the record in the terminal and as a personal HTML page. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from grader.catalog import Exercise, load_catalog
from grader.engine.results import ExerciseResult, PartScore, typed_results

PASSED, PARTIAL, NOT_STARTED = "passed", "partial", "not started"
HTML_TEMPLATE = "progress.html.j2"


@dataclass(frozen=True)
class ExerciseProgress:
    """One exercise as the learner's last graded run left it."""

    name: str
    title: str
    section: str
    status: str  # PASSED, PARTIAL or NOT_STARTED
    score: float | None  # None: never graded
    max_score: float
    graded_at: str | None
    parts: tuple[PartScore, ...] = ()  # in catalogue order
    best: float | None = None  # the best score of any stored run (None: never graded)

    @property
    def open_part(self) -> str | None:
        """The first part not fully passed (None when passed or never graded)."""
        return next((p.name for p in self.parts if not p.complete), None)


@dataclass(frozen=True)
class TopicProgress:
    """Quiz mastery of one topic (a file of the bank)."""

    name: str
    title: str
    sections: tuple[str, ...]
    statements: int
    seen: int
    mastered: int
    due_now: int


@dataclass(frozen=True)
class Progress:
    """Everything `grade progress` shows."""

    generated_at: datetime
    exercises: tuple[ExerciseProgress, ...]
    topics: tuple[TopicProgress, ...]
    quiz_note: str | None  # why there is no quiz part, if there is none
    next_due: datetime | None  # the soonest statement falling due after now
    next_steps: tuple[str, ...] = field(default=())  # the first one is "the" next step
    results: tuple[dict[str, Any], ...] = ()  # the last stored result of each graded exercise, course order

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.exercises)

    @property
    def due_now(self) -> int:
        return sum(t.due_now for t in self.topics)


# --- building -----------------------------------------------------------------------------------
def exercise_progress(exercise: Exercise, result: ExerciseResult | None, graded_at: str | None = None,
                      best: float | None = None) -> ExerciseProgress:
    """The status of one exercise from its last stored result (None: never graded) and its best score."""
    if result is None:
        return ExerciseProgress(exercise.name, exercise.title, exercise.section, NOT_STARTED, None,
                                exercise.max_points, None)
    status = PASSED if result.complete else NOT_STARTED if result.not_started else PARTIAL
    got = {p.name: p for p in result.parts}
    parts = [got.get(p.name, PartScore(p.name, 0.0, 0.0)) for p in exercise.parts]
    parts += [p for p in result.parts if p.name not in {q.name for q in exercise.parts}]
    return ExerciseProgress(
        exercise.name, exercise.title, exercise.section, status, result.score, result.max_score,
        graded_at or result.started_at,
        tuple(parts),
        max(result.score, best) if best is not None else result.score,
    )


def topic_progress(bank: Any, states: Mapping[str, Any], now: datetime) -> tuple[TopicProgress, ...]:
    """Mastery per topic of the bank (a `grader.quiz.bank.Bank`) from the Leitner states."""
    from grader.quiz.scheduler import is_due, is_mastered

    rows = []
    for topic in bank.topics:
        seen = [states[s.id] for s in topic.statements if s.id in states]
        rows.append(TopicProgress(
            topic.name, topic.title, tuple(sorted({s.section for s in topic.statements})),
            len(topic.statements), len(seen), sum(is_mastered(st) for st in seen),
            sum(is_due(st, now) for st in seen)))
    return tuple(rows)


def build_progress(results: Mapping[str, Mapping[str, Any]], *, catalog: Sequence[Exercise] | None = None,
                   bank: Any = None, states: Mapping[str, Any] | None = None, now: datetime | None = None,
                   quiz_note: str | None = None, best: Mapping[str, float] | None = None) -> Progress:
    """The learner's progress from the last result of each exercise, the best scores and the quiz states."""
    now = now or datetime.now(timezone.utc)
    catalog = load_catalog() if catalog is None else catalog
    states = states or {}
    typed = typed_results(results)
    best = best or {}
    exercises = tuple(exercise_progress(e, typed.get(e.name), (results.get(e.name) or {}).get("finished_at"),
                                        best.get(e.name)) for e in catalog)
    topics = topic_progress(bank, states, now) if bank is not None else ()
    later = sorted(st.due_at for st in states.values() if st.due_at > now)
    draft = Progress(now, exercises, topics, quiz_note, later[0] if later else None)
    graded = tuple(dict(results[e.name]) for e in catalog if results.get(e.name))
    return Progress(now, exercises, topics, quiz_note, draft.next_due, tuple(next_steps(draft)), graded)


def next_steps(progress: Progress) -> list[str]:
    """What to do next, most useful first: finish what is started, revise what is due, start the
    next exercise, then quiz the topics of passed exercises that were never answered."""
    steps: list[str] = []
    partial = [e for e in progress.exercises if e.status == PARTIAL]
    if partial:
        e = partial[0]
        part = e.open_part
        steps.append(f"Finish {e.name} ({e.score:g}/{e.max_score:g}): `grade watch {e.name}`; stuck on "
                     f"{part or 'a part'}? `grade hint {e.name}{' ' + part if part else ''}`.")
    if progress.due_now:
        steps.append(f"Revise {progress.due_now} quiz statement(s) due now: `grade quiz --review`.")
    fresh = [e for e in progress.exercises if e.status == NOT_STARTED]
    if fresh:
        e = fresh[0]
        steps.append(f"Start {e.name} ({e.title}; notes: {e.section}): open exercises/{e.name}.py and run `grade watch {e.name}`.")
    passed_sections = {e.section for e in progress.exercises if e.status == PASSED}
    for t in progress.topics:
        if t.seen < t.statements and passed_sections.intersection(t.sections):
            steps.append(f"Test yourself on {t.title} ({t.statements - t.seen} statement(s) never answered): `grade quiz {t.name}`.")
            break
    if not steps:
        if progress.exercises and all(e.status == PASSED for e in progress.exercises):
            steps.append("Every exercise passed and nothing is due. Compare your code with the references: `grade solution NAME`.")
        else:
            steps.append("Nothing is due. Run `grade list` to pick an exercise.")
    return steps


def collect(now: datetime | None = None) -> Progress:
    """Read the store and the quiz bank and build the progress. Raises `StoreError` for a bad store."""
    from grader.quiz.bank import BankError, load_bank
    from grader.store import Store

    with Store.open() as store:
        results = store.last_exercise_results()
        best = store.best_exercise_scores()
        states = store.card_states()
    bank, note = None, None
    try:
        bank = load_bank()
    except BankError as exc:
        missing = all("no quiz bank here" in p.message for p in exc.problems)
        note = ("This course has no quiz bank." if missing
                else f"The quiz bank has {len(exc.problems)} problem(s); run `grade quiz --check` to see them.")
    return build_progress(results, bank=bank, states=states, now=now, quiz_note=note, best=best)


# --- presenting ---------------------------------------------------------------------------------
_MARK = {PASSED: "passed", PARTIAL: "partial", NOT_STARTED: "not started"}


def progress_lines(progress: Progress, style: Any = None) -> list[str]:
    """The terminal view. `style(text, **kw)` colours text (click.style), or None for plain text."""
    st = style or (lambda text, **_: text)
    colour = {PASSED: "green", PARTIAL: "yellow", NOT_STARTED: None}
    lines = [st("Exercises", bold=True) + f"  ({progress.count(PASSED)} passed, {progress.count(PARTIAL)} partial, "
             f"{progress.count(NOT_STARTED)} not started; the score of your last run, your best beside it when higher)"]
    width = max((len(e.name) for e in progress.exercises), default=8)
    for e in progress.exercises:
        score = "-" if e.score is None else f"{e.score:g}/{e.max_score:g}"
        best = f"best {e.best:g}" if e.best is not None and e.best > (e.score or 0) else ""
        lines.append(f"  {e.name.ljust(width)}  {score.rjust(7)}  {best.ljust(8)}  "
                     f"{st(_MARK[e.status].ljust(11), fg=colour[e.status])}  {e.title}")
    lines.append("")
    lines.append(st("Quiz", bold=True) + "  (mastered: right three times in a row, spaced out)")
    if not progress.topics:
        lines.append(f"  {progress.quiz_note or 'No quiz topics.'}")
    else:
        tw = max(len(t.name) for t in progress.topics)
        for t in progress.topics:
            lines.append(f"  {t.name.ljust(tw)}  {t.mastered:>3}/{t.statements:<3} mastered  {t.seen:>3} seen  "
                         + (st(f"{t.due_now} due now", fg="yellow") if t.due_now else "nothing due"))
        due = f"{progress.due_now} statement(s) due for revision now" if progress.due_now else "Nothing due for revision now"
        if progress.next_due is not None:
            due += f"; the next falls due {progress.next_due:%Y-%m-%d %H:%M} UTC"
        lines.append("  " + due + ".")
    lines.append("")
    lines.append(st("Next: ", bold=True) + progress.next_steps[0])
    lines.extend(f"  then: {s}" for s in progress.next_steps[1:3])
    return lines


def render_html(progress: Progress, where: str = "your working copy") -> str:
    """The personal HTML report, with the instructor report's stylesheet and per-student section."""
    from grader import __version__
    from grader.study.templates import render_html as render

    score = sum(float(e.score or 0) for e in progress.exercises)
    max_score = sum(float(e.max_score) for e in progress.exercises)
    graded = [r.get("finished_at") or r.get("started_at") or "" for r in progress.results]
    student = {  # the shape `_student.html.j2` reads (see grader/instructor/report.py)
        "anchor": "checks-detail", "id": "Your last run of each exercise", "score": score, "max_score": max_score,
        "share": score / max_score if max_score else None, "quiz_topics": [],
        "doc": {"submission": where, "graded_at": max(graded, default="never"), "problems": [],
                "exercises": list(progress.results)},
    }
    return render(HTML_TEMPLATE, progress=progress, student=student, version=__version__, show_pictures=True,
                  PASSED=PASSED, PARTIAL=PARTIAL, NOT_STARTED=NOT_STARTED)
