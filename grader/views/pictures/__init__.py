"""Pictures of a failing case: what the learner's code produced beside what it should have.

`draw(picture, case, expected, got)` turns the first failing case of a check into one inline SVG
(text): expected | got | difference, labelled with the case's inputs. The check's `Picture`
(`grader.engine.spec`) says which kind to draw and where its values are:

- "maps": heat maps per channel, expected and got on one shared colour scale, the difference on
  a diverging one (conv, pooling, GAP/CAM, U-Net, fully-convolutional heat maps...);
- "boxes", "kept", "iou": boxes on one canvas, right, wrong, missing and extra (or kept,
  wrongly kept, missing and suppressed) told apart;
- "confusion": prediction against target, ignored pixels shown;
- "values": numbers as bars, integer results as index strips, tensors as got-against-expected
  scatters (distances, losses, counts, shapes);
- "curve": a loss's gradient against each logit; "training": losses per epoch against the
  reference's, and output images beside their inputs; "spectrum": a Jacobian's singular values;
  "window": a window that does not fit.

One module per family of kinds (`maps`, `boxes`, `numbers`, `training`, `confusion`), built from
`reading` (values out of the results, without torch) and `painting` (colour scales, PNG heat maps
written with zlib, and the blocks that the jinja2 templates of `grader/views/templates/pictures/`
draw, autoescaped). Nothing is fetched. `safe_svg` (`safety`) tells whether stored text holds only
what these functions draw, for pages that embed pictures read back from files.
"""


from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from grader.engine.spec import Picture
from grader.views.pictures.boxes import kind_boxes, kind_iou, kind_kept
from grader.views.pictures.confusion import kind_confusion
from grader.views.pictures.maps import kind_maps, kind_window
from grader.views.pictures.numbers import kind_curve, kind_spectrum, kind_values
from grader.views.pictures.painting import png, text_block
from grader.views.pictures.reading import TENSOR_KEY, as_array, describe, differs, value_at
from grader.views.pictures.safety import safe_svg
from grader.views.pictures.training import kind_training

__all__ = ["TEMPLATES", "TENSOR_KEY", "as_array", "differs", "draw", "png", "safe_svg"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "pictures"
# kind -> (picture, case, expected, got, arg_names) -> (blocks to stack, summary lines)
_KINDS = {"maps": kind_maps, "boxes": kind_boxes, "kept": kind_kept, "iou": kind_iou, "confusion": kind_confusion,
          "values": kind_values, "curve": kind_curve, "training": kind_training, "spectrum": kind_spectrum,
          "window": kind_window}


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def draw(picture: Picture, case: Any, expected: Any, got: Any, *, title: str = "",
         arg_names: Sequence[str] = ()) -> str | None:
    """The SVG of one failing case: `expected` and `got` are the probe's sanitized results (the
    reference's and the learner's), `case` the `Case` (its label, arguments and tolerances),
    `title` a heading (the check's name) and `arg_names` the called function's parameter names.
    None when there is nothing to draw (no values came back, or nothing differs where the picture looks)."""
    raised = _raise_lines(case, expected, got)
    if raised is not None:  # a case about raising: what should have happened, and the window that does not fit
        blocks, summary = kind_window(picture, case, expected, got, arg_names) if picture.kind == "window" else ([], [])
        summary = raised + summary
    else:
        if expected is None or got is None or not differs(expected, got, case):
            return None
        blocks, summary = _KINDS[picture.kind](picture, case, expected, got, arg_names)
        if not blocks and not summary and picture.kind != "values":  # nothing of this kind differs: the numbers
            blocks, summary = kind_values(Picture("values"), case, expected, got, arg_names)
        if not blocks and not summary:
            return None
    return _frame(title, getattr(case, "label", ""), summary, blocks)


def _raise_lines(case: Any, expected: Any, got: Any) -> list[str] | None:
    """What was to be raised and what your code did, for a case that must raise (`Case.raises`)
    or one judged as data by `grader.checks.probe_outcome` ({"raised": [names]} or {"returned": value});
    None for any other case."""
    if getattr(case, "raises", ()):
        returned = value_at(got, "out") if isinstance(got, dict) else got
        return [f"expected: {' or '.join(case.raises)} raised; your code returned {describe(returned)}"]
    if not (isinstance(expected, dict) and ("raised" in expected or "returned" in expected)):
        return None
    yours = (f"raised {got['raised'][0]}" if isinstance(got, dict) and got.get("raised")
             else f"returned {describe(got.get('returned') if isinstance(got, dict) else got)}")
    if expected.get("raised"):
        accept = getattr(getattr(case, "assess", None), "keywords", {}).get("accept") or expected["raised"][:1]
        return [f"expected: {' or '.join(accept)} raised; your code {yours}"]
    return [f"these arguments are valid: expected {describe(expected.get('returned'))}; your code {yours}"]


def _frame(title: str, label: str, summary: Sequence[str], blocks: list[dict]) -> str:
    width = max([b["w"] for b in blocks] + [560.0]) + 24
    header = [text_block([title or "the first failing case"], width - 24, size=14, colour="#111")]
    if label:
        header.append(text_block(["inputs: " + label], width - 24, colour="#333"))
    if summary:
        header.append(text_block(summary, width - 24, colour="#7a1f1f"))
    y = 10.0
    placed = []
    for block in header + blocks:
        placed.append({**block, "x": 12.0, "y": y})
        y += block["h"] + 8
    aria = (title + ": " if title else "") + "; ".join(summary)
    svg = _environment().get_template("picture.svg.j2").render(width=round(width), height=round(y + 6), blocks=placed, aria=aria)
    return "\n".join(line.rstrip() for line in svg.splitlines() if line.strip())
