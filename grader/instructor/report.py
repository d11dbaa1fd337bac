"""The HTML class report: one self-contained page rendered from `templates/*.j2` with jinja2
(`render_text` renders the folder's text templates, the READMEs).

Everything is inline (CSS, SVG, one small script for sorting); a Content-Security-Policy allows no
network and only the report's own script (by its hash). Autoescaping is on: student ids, messages
and captured output are untrusted and always escaped. The numbers come from `analysis`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import math
import statistics
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from grader import __version__
from grader.instructor import analysis
from grader.instructor.classdata import ClassResults
from grader.views.html import picture_markup

TEMPLATES = Path(__file__).with_name("templates")
_HIST = {"left": 34.0, "right": 430.0, "base": 170.0, "height": 150.0, "bins": 10}


def render_text(name: str, **context: Any) -> str:
    """Render a text or Markdown template of `templates/` (not escaped): the READMEs of `grade init`
    and of the student edition."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template(name).render(**context)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True)
    env.filters["pct"] = pct
    env.filters["num"] = num
    env.filters["plural"] = plural
    env.filters["picture"] = picture_markup  # a stored picture, embedded only when it is one of ours
    return env


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(share: Any) -> str:
    """A share as a percentage with one decimal: 0.245 -> "24.5 %"; "–" when there is none."""
    return "–" if _missing(share) else f"{100 * share:.1f} %"


def num(x: Any, digits: int | None = None) -> str:
    """A number for a person: `digits` decimals, or at most two without trailing zeros (24.5, 18, 3.33)."""
    if _missing(x):
        return "–"
    if digits is not None:
        return f"{x:.{digits}f}"
    return f"{x:.2f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def plural(count: int, word: str, words: str | None = None) -> str:
    """"1 student", "2 students" (`words` for an irregular plural)."""
    return f"{count} {word if count == 1 else words or word + 's'}"


def _histogram(shares: list[float]) -> dict[str, Any]:
    counts = analysis.histogram(shares, _HIST["bins"])
    top = max(counts) or 1
    width = (_HIST["right"] - _HIST["left"]) / len(counts)
    bars = []
    for i, n in enumerate(counts):
        h = _HIST["height"] * n / top
        lo = 100 * i // len(counts)
        bars.append({"x": round(_HIST["left"] + i * width + 2, 1), "y": round(_HIST["base"] - h, 1),
                     "width": round(width - 4, 1), "height": round(h, 1), "count": n, "tick": lo,
                     "label": f"{lo}-{lo + 100 // len(counts)}%"})
    return {"bars": bars}


def _student_rows(results: ClassResults) -> list[dict[str, Any]]:
    rows = []
    for i, doc in enumerate(results.students):
        by_ex = {e["exercise"]: e for e in doc["exercises"]}
        cells = []
        for name in results.exercise_names:
            e = by_ex.get(name)
            cells.append({"text": f"{num(e['score'])} / {num(e['max_score'])}" if e else "–",
                          "sort": f"{e['score'] / e['max_score']:.4f}" if e and e["max_score"] else "-1"})
        quiz = analysis.quiz_share_by_topic(doc)
        right, answered = sum(r for r, _ in quiz.values()), sum(n for _, n in quiz.values())
        rows.append({
            "id": doc["student"], "anchor": f"student-{i + 1}", "doc": doc, "score": doc["score"],
            "max_score": doc["max_score"], "share": analysis.score_share(doc), "cells": cells,
            "quiz_text": f"{right}/{answered}" if answered else "–",
            "quiz_sort": f"{right / answered:.4f}" if answered else "-1",
            "quiz_topics": [(t, r, n) for t, (r, n) in sorted(quiz.items())],
            "crashes": sum(c["status"] in ("crashed", "timeout") for e in doc["exercises"] for c in e["checks"]),
            "problems": list(doc.get("problems") or []),
        })
    return rows


def _sandbox_counts(results: ClassResults) -> dict[str, int]:
    """How many students' code ran under each sandbox state ("unknown": results older than the field)."""
    counts: dict[str, int] = {}
    for student in results.students:
        state = str(student.get("sandbox", "unknown"))
        counts[state] = counts.get(state, 0) + 1
    return dict(sorted(counts.items()))


def _load_bank() -> Any:
    try:
        from grader.quiz.bank import load_bank

        return load_bank()
    except Exception:  # noqa: BLE001 - the report still works without statement texts
        return None


def render_report(results: ClassResults, *, title: str = "cnn-grader class report", bank: Any = None,
                  now: _dt.datetime | None = None) -> str:
    """The whole report as one HTML string; `bank` defaults to the course's quiz bank."""
    env = environment()
    script = env.get_template("_script.js.j2").render()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    shares = [analysis.score_share(s) for s in results.students]
    quiz = analysis.analyse_quiz(results, bank if bank is not None else _load_bank())
    students = _student_rows(results)
    context = {
        "title": title,
        "version": __version__,
        "generated_at": (now or _dt.datetime.now(_dt.timezone.utc)).isoformat(timespec="seconds"),
        "seeds": sorted({s.get("seed") for s in results.students if s.get("seed") is not None}),
        "sandboxes": _sandbox_counts(results),
        "summary": {
            "mean": statistics.fmean(shares) if shares else math.nan,
            "median": statistics.median(shares) if shares else math.nan,
            "low": min(shares, default=math.nan), "high": max(shares, default=math.nan),
            "full": sum(1 for s in results.students if s["max_score"] and s["score"] == s["max_score"]),
        },
        "hist": _histogram(shares),
        "exercise_rates": analysis.exercise_rates(results),
        "part_rates": analysis.part_rates(results),
        "failures": analysis.frequent_failures(results),
        "mistakes": analysis.frequent_mistakes(results),
        "diagnoses": analysis.frequent_diagnoses(results),
        "quiz": quiz,
        "exercise_names": results.exercise_names,
        "students": students,
        "problem_students": [s for s in students if s["problems"]],
        "script": Markup(script),
        "script_hash": f"sha256-{digest}",
    }
    return env.get_template("report.html.j2").render(**context)
