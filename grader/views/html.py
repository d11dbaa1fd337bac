"""HTML rendering of one exercise result, for notebooks (`_repr_html_`) and HTML files. No torch.

The fragment is self-contained (inline styles, no script, nothing fetched) and autoescaped:
messages quote the student's own output and code, which must never become markup.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from grader.engine.results import ExerciseResult

_LABELS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "crashed": "CRASH",
           "not_implemented": "TODO", "forbidden": "FORBIDDEN"}
_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#cf222e", "timeout": "#cf222e",
            "crashed": "#cf222e", "not_implemented": "#6e7781", "forbidden": "#cf222e"}


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(Path(__file__).with_name("templates"))), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def exercise_html(result: ExerciseResult, *, title: str = "") -> str:
    """An HTML fragment: the result part by part, as the terminal report shows it."""
    parts = [(part, [c for c in result.checks if c.part == part.name]) for part in result.parts]
    return _environment().get_template("result.html.j2").render(
        result=result, title=title, parts=parts, labels=_LABELS, colours=_COLOURS, points=lambda x: f"{x:g}")
