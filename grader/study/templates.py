"""The templates of the study commands, kept with the report's in `grader/instructor/templates/`:
`progress.html.j2` (the personal report of `grade progress --html`, which includes the instructor
report's stylesheet and per-student section) and `init_readme.md.j2` (the README of `grade init`).

HTML is rendered with the instructor report's own jinja2 environment (its filters, autoescaping),
so the two reports share templates and look alike; Markdown with `grader.instructor.report.render_text`.
No torch here.
"""

from __future__ import annotations

import re
from typing import Any


def _code_spans(text: str) -> Any:
    """Escape `text` for HTML and turn its `backquoted` spans into <code> elements."""
    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def render_html(name: str, **context: Any) -> str:
    """Render an HTML template with the instructor report's environment (autoescaped)."""
    from grader.instructor.report import environment

    env = environment()
    env.filters["code_spans"] = _code_spans
    return env.get_template(name).render(**context)
