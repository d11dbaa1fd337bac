"""HTML of one exercise result, with the pictures of its failing cases. No torch.

`exercise_html` is a fragment (for a notebook's `_repr_html_`); `exercise_page` a self-contained
page (`grade exercise NAME --html FILE`, the watch mode's "open the picture" key): inline style,
no script, nothing fetched, and a Content-Security-Policy that allows only inline data images.
Autoescaped: messages quote the student's own output and code. A picture is embedded only when
`views.pictures.safe_svg` accepts it, since results may be read back from files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from grader.engine.results import ExerciseResult

_LABELS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "crashed": "CRASH",
           "not_implemented": "TODO", "forbidden": "FORBIDDEN"}
_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#cf222e", "timeout": "#cf222e",
            "crashed": "#cf222e", "not_implemented": "#6e7781", "forbidden": "#cf222e"}


def picture_markup(svg: Any) -> Markup:
    """A stored picture as markup to embed, or nothing when it is not one of ours (see `safe_svg`)."""
    from grader.views.pictures import safe_svg

    return Markup(svg) if safe_svg(svg) else Markup("")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(Path(__file__).with_name("templates"))), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["picture"] = picture_markup
    return env


def _context(result: ExerciseResult, title: str) -> dict[str, Any]:
    parts = [(part, [c for c in result.checks if c.part == part.name]) for part in result.parts]
    return {"result": result, "title": title, "parts": parts, "labels": _LABELS, "colours": _COLOURS,
            "points": lambda x: f"{x:g}"}


def exercise_html(result: ExerciseResult, *, title: str = "") -> str:
    """An HTML fragment: the result part by part, as the terminal report shows it, each part's
    picture under its failed check."""
    return _environment().get_template("result.html.j2").render(**_context(result, title))


def exercise_page(result: ExerciseResult, *, title: str = "") -> str:
    """A whole HTML page of the result (the fragment in a self-contained document)."""
    return _environment().get_template("exercise.html.j2").render(**_context(result, title))


def has_pictures(result: ExerciseResult) -> bool:
    """Whether any check of the result carries a picture."""
    return any(c.picture for c in result.checks)
