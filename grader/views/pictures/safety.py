"""Checking stored pictures: `safe_svg` accepts only what these pictures draw (no script, no
event handler, no link, images only as PNG data), for pages that embed pictures read from files."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

_SVG_NS = "{http://www.w3.org/2000/svg}"
_ALLOWED_TAGS = {"svg", "g", "rect", "line", "polyline", "polygon", "circle", "text", "tspan", "title", "image", "path"}
_ALLOWED_ATTRS = {"x", "y", "dx", "dy", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "viewBox", "fill", "stroke",
                  "stroke-width", "stroke-dasharray", "opacity", "fill-opacity", "stroke-opacity", "font-size",
                  "font-family", "font-weight", "text-anchor", "dominant-baseline", "transform", "points", "d",
                  "role", "aria-label", "href", "preserveAspectRatio", "style", "class"}


def safe_svg(text: Any) -> bool:
    """True when `text` is one SVG element of the tags and attributes these pictures use: no
    script, no event handler, no link, images only as PNG data. For pictures read back from files."""
    if not isinstance(text, str) or not text.lstrip().startswith("<svg") or len(text) > 2_000_000:
        return False
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return False
    for element in root.iter():
        tag = element.tag.replace(_SVG_NS, "")
        if tag not in _ALLOWED_TAGS:
            return False
        for name, value in element.attrib.items():
            name = name.split("}")[-1]
            if name not in _ALLOWED_ATTRS:
                return False
            if name == "href" and not (tag == "image" and value.startswith("data:image/png;base64,")):
                return False
            if name == "style" and value != "image-rendering:pixelated":
                return False
    return True
