"""The terminal report (`views.terminal`): what several checks of a part share is explained once, and
the report sends the learner to the notes' section (and subsection) of a named mistake."""

from __future__ import annotations

import click
import pytest

from grader.engine.results import ExerciseResult
from grader.study import notes
from grader.views.terminal import exercise_report, notes_pointer

FLIPPED = {"name": "flipped-kernel", "explanation": "You flipped the kernel (textbook convolution).", "section": "Convolution"}
STRIDE = {"kind": "across_cases", "text": "passes every case with stride 1 (2) and fails every case with stride > 1 (3)"}
CEIL = {"name": "ceil-instead-of-floor", "explanation": "Rounded up.", "section": "Object Detection",
        "subsection": "Intersection over union"}


def _check(name, part="conv2d", mistake=None, diagnosis=(), status="failed"):
    return {"name": name, "part": part, "points": 0, "max_points": 3, "status": status, "message": f"{name}: values differ",
            "mistake": mistake, "diagnosis": list(diagnosis)}


def _report(checks, exercise="conv", **kwargs) -> str:
    """The report of a result with these checks, without its colours."""
    result = {"exercise": exercise, "path": f"/x/{exercise}.py", "score": 0, "max_score": 3 * len(checks),
              "duration_s": 0.1, "notices": [], "checks": checks}
    return click.unstyle(exercise_report(ExerciseResult.from_dict(result), **kwargs))


def _iou_report(mistake, status="failed", **kwargs) -> str:
    return _report([_check("box_iou_forward", part="box_iou", mistake=mistake, status=status)], exercise="nms", **kwargs)


# --- what checks share is explained once -----------------------------------------------------------
def test_a_mistake_shared_by_three_checks_is_explained_once():
    text = _report([_check("conv2d_forward", mistake=FLIPPED), _check("conv2d_float64", mistake=FLIPPED),
                    _check("conv2d_gradients", mistake=FLIPPED)])
    assert text.count("You flipped the kernel") == 1
    assert text.count("revisit the notes: Convolution") == 1
    assert "the same in 3 checks (conv2d_forward, conv2d_float64, conv2d_gradients):" in text
    assert text.count("likely mistake: flipped-kernel (the same in 3 checks: see below)") == 3


def test_shared_and_own_diagnoses():
    own = {"kind": "shape", "text": "dimension 2 (height) is 7, expected 4 (3 more): the stride (2) is not applied"}
    text = _report([_check("conv2d_forward", diagnosis=[own, STRIDE]), _check("conv2d_gradients", diagnosis=[STRIDE]),
                    _check("pool", part="max_pool2d", mistake=FLIPPED)], section="Convolution")
    assert text.count("passes every case with stride 1") == 1
    assert "the same in 2 checks (conv2d_forward, conv2d_gradients):\n      diagnosis (across cases): passes every case" in text
    assert "diagnosis (shape): dimension 2 (height) is 7" in text
    assert text.count("revisit the notes: Convolution") == 2  # the shared diagnosis, and the lone mistake of another part
    assert "the same in" not in text.split("max_pool2d")[1]  # one check alone: explained in place


def test_nothing_shared_across_parts():
    text = _report([_check("a", part="conv2d", mistake=FLIPPED), _check("b", part="conv_transpose2d", mistake=FLIPPED)])
    assert text.count("You flipped the kernel") == 2 and "the same in" not in text


# --- where the report points ------------------------------------------------------------------------
@pytest.mark.parametrize("section", notes.sections())
def test_the_pointer_names_a_command_that_shows_the_section(section):
    pointer = notes_pointer(section)
    command = pointer[pointer.index("`grade notes ") + len("`grade notes "):-2]
    assert pointer == f"{section} (`grade notes {command}`)"
    assert notes.resolve_section(command) == section


def test_a_mistake_points_to_its_subsection():
    assert 'revisit the notes: Object Detection, "Intersection over union" (`grade notes object-detection`)' in _iou_report(CEIL)


def test_a_mistake_without_a_subsection_points_to_its_section():
    old = {k: v for k, v in CEIL.items() if k != "subsection"}  # results saved before subsections existed
    assert "revisit the notes: Object Detection (`grade notes object-detection`)" in _iou_report(old)
    assert "revisit the notes: Object Detection (`grade notes object-detection`)" in _iou_report({**CEIL, "subsection": ""})


def test_nothing_implemented_points_to_the_notes():
    text = _iou_report(None, "not_implemented", section="Object Detection")
    assert "The notes' section: Object Detection (`grade notes object-detection`)." in text
