"""The numbers of the class report: score distribution, pass rates, frequent failures, quiz items.

Quiz item analysis follows Moodle's quiz statistics, on the 0/1 score of each student's *first*
answer to each statement (a matrix `scores (Tensor-like [S, K])`: S students, K statements, NaN
where a student never answered a statement):

- facility index of an item: its mean score (the share of right first answers), over the students
  who answered it;
- discrimination index: the item-rest correlation, Pearson's r between the item's score and the
  student's score on the rest of the quiz. With missing answers the rest score is the share right
  of the student's other answered statements; with complete data that is (total - item) / (K - 1),
  a linear function of Moodle's rest score, so r is the same as Moodle's;
- KR-20 = K / (K - 1) * (1 - sum(p * q) / var(total)), p the facility, q = 1 - p, var the
  population variance of the totals (so it equals Cronbach's alpha), on a complete matrix: the
  statements that every quiz-taker answered.

Diagnoses (the `diagnosis` of each check, see `grader.engine.diagnose`) are counted like named
mistakes, per (exercise, part, kind, `diagnosis_key`): the key is the finding's text with the
numbers of a case or a student taken out, so that the same finding in two checks of a part, or
with another factor or index, counts once per student (see `diagnosis_key`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.catalog import get_exercise
from grader.instructor.classdata import ClassResults, quiz_item_scores, quiz_item_topics


# --- item statistics ----------------------------------------------------------------------------
def _as_matrix(scores: Any) -> np.ndarray:
    m = np.asarray(scores, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"scores must be a 2-D (students, items) matrix, got shape {m.shape}")
    finite = m[~np.isnan(m)]
    if finite.size and not np.isin(finite, (0.0, 1.0)).all():
        raise ValueError("scores must be 0, 1 or NaN (not answered)")
    return m


def facility(scores: Any) -> np.ndarray:
    """Mean score of each item over the students who answered it.

    Args:
        scores (array[S, K]): 0/1 item scores, NaN where not answered.
    Returns:
        array[K]: the facility indices in [0, 1]; NaN for an item nobody answered.
    """
    m = _as_matrix(scores)
    answered = (~np.isnan(m)).sum(axis=0)
    total = np.nansum(m, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(answered > 0, total / np.maximum(answered, 1), np.nan)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return float((dx * dy).sum()) / denom if denom > 0 else math.nan


def discrimination(scores: Any) -> np.ndarray:
    """Item-rest correlation of each item (see the module docstring for missing answers).

    Args:
        scores (array[S, K]): 0/1 item scores, NaN where not answered.
    Returns:
        array[K]: r in [-1, 1]; NaN where undefined (fewer than 2 students, or no spread).
    """
    m = _as_matrix(scores)
    answered = ~np.isnan(m)
    right = np.nan_to_num(m)
    out = np.full(m.shape[1], np.nan)
    for i in range(m.shape[1]):
        others = answered.sum(axis=1) - answered[:, i]
        rows = answered[:, i] & (others > 0)
        rest = (right.sum(axis=1) - right[:, i])[rows] / others[rows]
        out[i] = _pearson(right[rows, i], rest)
    return out


def kr20(scores: Any) -> float:
    """Kuder-Richardson 20 of a complete 0/1 matrix (array[S, K], no NaN); NaN if undefined."""
    m = _as_matrix(scores)
    if np.isnan(m).any():
        raise ValueError("kr20 needs a complete matrix: keep only the items every student answered")
    students, k = m.shape
    if k < 2 or students < 2:
        return math.nan
    p = m.mean(axis=0)
    variance = float(m.sum(axis=1).var())
    if variance == 0:
        return math.nan
    return k / (k - 1) * (1 - float((p * (1 - p)).sum()) / variance)


# --- the class's quiz ---------------------------------------------------------------------------
@dataclass(frozen=True)
class QuizItem:
    id: str
    topic: str
    answered: int
    facility: float  # NaN when nobody answered
    discrimination: float  # NaN when undefined
    text: str = ""
    answer: bool | None = None
    notes_disagree: bool = False
    in_bank: bool = False


@dataclass(frozen=True)
class QuizAnalysis:
    students: int  # students with quiz results
    items: list[QuizItem]  # in bank order, then unknown ids by name
    kr20: float  # NaN when undefined
    kr20_items: int  # the statements every quiz-taker answered, on which KR-20 is computed
    most_missed: list[QuizItem]


def quiz_matrix(results: ClassResults) -> tuple[list[str], list[str], np.ndarray]:
    """(student ids, statement ids, scores array[S, K]) of the students who have quiz results."""
    docs = [(s["student"], quiz_item_scores(s.get("quiz"))) for s in results.students if s.get("quiz")]
    items = sorted({sid for _, scores in docs for sid in scores})
    m = np.full((len(docs), len(items)), np.nan)
    col = {sid: j for j, sid in enumerate(items)}
    for i, (_, scores) in enumerate(docs):
        for sid, v in scores.items():
            m[i, col[sid]] = v
    return [d[0] for d in docs], items, m


def analyse_quiz(results: ClassResults, bank: Any = None, most_missed: int = 10) -> QuizAnalysis:
    """Item analysis of the class's quiz answers; `bank` (a `grader.quiz.bank.Bank`) adds texts and flags."""
    students, ids, m = quiz_matrix(results)
    topics: dict[str, str] = {}
    for s in results.students:
        topics.update(quiz_item_topics(s.get("quiz")))
    fac, dis = (facility(m), discrimination(m)) if ids else (np.array([]), np.array([]))
    answered = (~np.isnan(m)).sum(axis=0) if ids else np.array([], dtype=int)
    items = []
    for j, sid in enumerate(ids):
        st = bank.get(sid) if bank is not None else None
        items.append(QuizItem(sid, st.topic if st else topics.get(sid, ""), int(answered[j]), float(fac[j]),
                              float(dis[j]), st.text if st else "", st.answer if st else None,
                              bool(st and st.notes_disagree), st is not None))
    if bank is not None:
        order = {s.id: i for i, s in enumerate(bank.statements)}
        items.sort(key=lambda it: (order.get(it.id, len(order)), it.id))
    complete = [j for j in range(len(ids)) if answered[j] == len(students)]
    reliability = kr20(m[:, complete]) if len(complete) >= 2 else math.nan
    missed = sorted((it for it in items if it.answered), key=lambda it: (it.facility, -it.answered, it.id))
    return QuizAnalysis(len(students), items, reliability, len(complete), missed[:most_missed])


# --- the class's exercises ----------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    label: str
    passed: int
    total: int
    mean_share: float = math.nan  # mean score / max score, where it applies
    not_attempted: int = 0  # students whose every check is not_implemented (exercises only)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else math.nan


@dataclass(frozen=True)
class FrequentFailure:
    exercise: str
    check: str
    part: str
    count: int  # students who attempted the check and did not pass it
    total: int  # students who attempted it (its status is not not_implemented)
    statuses: str  # e.g. "failed 7, timeout 1"


@dataclass(frozen=True)
class FrequentMistake:
    exercise: str
    name: str
    explanation: str
    section: str
    count: int  # students who made it
    picture: str | None = None  # the picture of a real failing case: the first such student's (SVG text)
    pictured: int | None = None  # that student's position in the class (0-based)


@dataclass(frozen=True)
class FrequentDiagnosis:
    """One finding of the diagnosis, counted over the class (the students whose result holds it)."""

    exercise: str
    part: str
    kind: str  # one of grader.engine.results.DIAGNOSIS_KINDS
    text: str  # the wording found most often; the others differ in their numbers only
    section: str  # the exercise's notes section (from the catalogue), "" for an unknown exercise
    count: int  # students with the finding in some check of the part
    checks: tuple[str, ...]  # the checks it was found in, in the order first seen
    wordings: int  # distinct texts counted together (1: every student's text is the same)


def score_share(student: dict[str, Any]) -> float:
    """The student's score as a share of the maximum (0 when the maximum is 0)."""
    return student["score"] / student["max_score"] if student["max_score"] else 0.0


def histogram(shares: list[float], bins: int = 10) -> list[int]:
    """Counts of `shares` (in [0, 1]) in `bins` equal bins; 1.0 falls in the last one."""
    counts = [0] * bins
    for s in shares:
        counts[min(bins - 1, max(0, int(s * bins)))] += 1
    return counts


def exercise_rates(results: ClassResults) -> list[Rate]:
    """Per exercise: students who passed every check, the mean share of the points, and the
    students who did not attempt it (every check not implemented)."""
    rates = []
    for name in results.exercise_names:
        found = [e for s in results.students for e in s["exercises"] if e["exercise"] == name]
        passed = sum(all(c["status"] == "passed" for c in e["checks"]) for e in found)
        shares = [e["score"] / e["max_score"] for e in found if e["max_score"]]
        idle = sum(bool(e["checks"]) and all(c["status"] == "not_implemented" for c in e["checks"]) for e in found)
        rates.append(Rate(name, passed, len(found), sum(shares) / len(shares) if shares else math.nan, idle))
    return rates


def part_rates(results: ClassResults) -> list[Rate]:
    """Per exercise part ("exercise / part"): students who passed every check of the part."""
    tallies: dict[str, list[int]] = {}
    for name in results.exercise_names:
        for s in results.students:
            for e in s["exercises"]:
                if e["exercise"] != name:
                    continue
                parts: dict[str, bool] = {}
                for c in e["checks"]:
                    parts[c["part"]] = parts.get(c["part"], True) and c["status"] == "passed"
                for part, ok in parts.items():
                    t = tallies.setdefault(f"{name} / {part}", [0, 0])
                    t[0] += ok
                    t[1] += 1
    return [Rate(label, p, n) for label, (p, n) in tallies.items()]


def frequent_failures(results: ClassResults, top: int = 10) -> list[FrequentFailure]:
    """The checks that most students who attempted them did not pass. A check not implemented was
    not attempted: it counts neither here nor in the total (`exercise_rates` counts those students)."""
    counts: dict[tuple[str, str], Counter] = {}
    parts: dict[tuple[str, str], str] = {}
    totals: Counter = Counter()
    for s in results.students:
        for e in s["exercises"]:
            for c in e["checks"]:
                if c["status"] == "not_implemented":
                    continue
                key = (e["exercise"], c["name"])
                totals[key] += 1
                parts[key] = c["part"]
                if c["status"] != "passed":
                    counts.setdefault(key, Counter())[c["status"]] += 1
    rows = [FrequentFailure(ex, check, parts[(ex, check)], sum(cnt.values()), totals[(ex, check)],
                            ", ".join(f"{st} {n}" for st, n in cnt.most_common()))
            for (ex, check), cnt in counts.items()]
    rows.sort(key=lambda r: (-r.count, r.exercise, r.check))
    return rows[:top]


def frequent_mistakes(results: ClassResults, top: int = 10) -> list[FrequentMistake]:
    seen: dict[tuple[str, str], set[str]] = {}
    info: dict[tuple[str, str], dict[str, Any]] = {}
    example: dict[tuple[str, str], tuple[str, int]] = {}  # the first student whose check with it has a picture
    for i, s in enumerate(results.students):
        for e in s["exercises"]:
            for c in e["checks"]:
                m = c.get("mistake")
                if isinstance(m, dict) and m.get("name"):
                    key = (e["exercise"], m["name"])
                    seen.setdefault(key, set()).add(s["student"])
                    info[key] = m
                    if key not in example and isinstance(c.get("picture"), str) and c["picture"]:
                        example[key] = (c["picture"], i)
    rows = [FrequentMistake(ex, name, str(info[(ex, name)].get("explanation", "")),
                            str(info[(ex, name)].get("section", "")), len(students),
                            *example.get((ex, name), (None, None)))
            for (ex, name), students in seen.items()]
    rows.sort(key=lambda r: (-r.count, r.exercise, r.name))
    return rows[:top]


# --- diagnoses ----------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])(?<!dimension )(?<!argument )(?<!input )\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_CODE = re.compile(r"\w[(\[]")  # the start of a call or an index: expected.permute(, x[, result[
_NUMBERS = re.compile(r"#(?:(?:,\s*| and |-)(?:#|\.\.\.))+")
_PLURAL_AFTER = re.compile(r"(#[)\]]*,?\s+)([a-z]{2,}?)s\b")
_PLURAL_BEFORE = re.compile(r"\b([a-z]{2,}?)s(\s+#)")
_REPEATED = re.compile(r"(?:^|(?<=: |; ))([^;:]+)(?:; \1)+(?=[;:.]|$)")


def _code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the bracketed arguments of calls and indexes in `text` (`permute(0, 2, 3, 1)`)."""
    spans = []
    for m in _CODE.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += text[i] in "(["
            depth -= text[i] in ")]"
            if depth == 0:
                break
            i += 1
        spans.append((m.end() - 1, i))
    return spans


def diagnosis_key(kind: str, text: str) -> str:
    """What one finding says, without the numbers that change from case to case or from student to
    student: two texts with the same key say the same thing about different values.

    - numbers become "#" (a size, a count of cases, a factor, an offset, an index, a shape); a sign
      stays ("+#" adds, "-#" removes). Kept are the numbers that are the finding itself: in code
      (`expected.permute(0, 1, 3, 2)`, `result[0]`, `bias.view(1, -1, 1, 1)`: which axes, which
      element) and in "dimension 2", "argument 1", "input 0" (which axis, which input);
    - lists, shapes and ranges of numbers ("[3, 7, ...]", "(2, 4, 6, 6)", "0-2 and 5") become one "#";
    - singular and plural agree ("1 row is" and "2 rows are" read the same);
    - a clause repeated for several pieces ("yours 0 is the expected 1; yours 1 is the expected 0")
      is kept once.
    Words, names (float32, kH*kW, bias) and the kind are kept.
    """
    spans = _code_spans(text)
    out = _NUMBER.sub(lambda m: m.group(0) if any(a <= m.start() < b for a, b in spans) else "#", text)
    out = _NUMBERS.sub("#", out)
    out = re.sub(r"\bare\b", "is", out)
    out = _PLURAL_BEFORE.sub(r"\1\2", _PLURAL_AFTER.sub(r"\1\2", out))
    out = _REPEATED.sub(r"\1", out)
    return f"{kind}: " + " ".join(out.split())


def student_diagnoses(student: dict[str, Any]) -> list[tuple[str, str, str, dict[str, str]]]:
    """(exercise, part, check, diagnosis) of every finding in one student's result, each
    (exercise, part, `diagnosis_key`) once, in the order of the result."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for e in student["exercises"]:
        for c in e["checks"]:
            for d in c.get("diagnosis") or []:
                key = (e["exercise"], c["part"], diagnosis_key(d["kind"], d["text"]))
                if key not in seen:
                    seen.add(key)
                    out.append((e["exercise"], c["part"], c["name"], d))
    return out


def _section(exercise: str) -> str:
    try:
        return get_exercise(exercise).section
    except KeyError:
        return ""


def frequent_diagnoses(results: ClassResults, top: int = 10) -> list[FrequentDiagnosis]:
    """The findings of the diagnosis held by the most students, per exercise part: a finding counts
    once per student however many checks of the part show it (see `diagnosis_key`)."""
    students: dict[tuple[str, str, str], set[str]] = {}
    checks: dict[tuple[str, str, str], dict[str, None]] = {}
    texts: dict[tuple[str, str, str], Counter] = {}
    kinds: dict[tuple[str, str, str], str] = {}
    for s in results.students:
        for e in s["exercises"]:
            for c in e["checks"]:
                for d in c.get("diagnosis") or []:
                    key = (e["exercise"], c["part"], diagnosis_key(d["kind"], d["text"]))
                    students.setdefault(key, set()).add(s["student"])
                    checks.setdefault(key, {})[c["name"]] = None
                    texts.setdefault(key, Counter())[d["text"]] += 1
                    kinds[key] = d["kind"]
    rows = [FrequentDiagnosis(ex, part, kinds[(ex, part, k)], texts[(ex, part, k)].most_common(1)[0][0], _section(ex),
                              len(who), tuple(checks[(ex, part, k)]), len(texts[(ex, part, k)]))
            for (ex, part, k), who in students.items()]
    rows.sort(key=lambda r: (-r.count, r.exercise, r.part, r.kind, r.text))
    return rows[:top]


def quiz_share_by_topic(student: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Topic -> (first answers right, statements answered) for one student."""
    scores, topics = quiz_item_scores(student.get("quiz")), quiz_item_topics(student.get("quiz"))
    out: dict[str, list[int]] = {}
    for sid, v in scores.items():
        t = out.setdefault(topics[sid], [0, 0])
        t[0] += v
        t[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}
