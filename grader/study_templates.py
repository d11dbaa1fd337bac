"""The jinja2 templates of the study commands: the personal progress report and the README that
`grade init` writes. Templates are `.j2` files; the report package's folder is searched first, so
a shared base template or stylesheet there is used by both reports. No torch here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from grader.paths import PACKAGE_DIR

TEMPLATE_DIRS = (PACKAGE_DIR / "report" / "templates", PACKAGE_DIR / "templates_progress")


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> Any:
    import jinja2

    loader = jinja2.FileSystemLoader([str(d) for d in TEMPLATE_DIRS])
    env = jinja2.Environment(loader=loader, autoescape=autoescape, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["code_spans"] = _code_spans
    return env


def _code_spans(text: str) -> Any:
    """Escape `text` for HTML and turn its `backquoted` spans into <code> elements."""
    import re

    from markupsafe import Markup, escape

    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def render(name: str, **context: Any) -> str:
    """Render template `name`; HTML templates (`*.html.j2`) are autoescaped."""
    return _environment(name.endswith(".html.j2")).get_template(name).render(**context)
