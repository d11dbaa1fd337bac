"""The terminal report: where it sends the learner to read about a named mistake."""

from __future__ import annotations

import click
import pytest

from grader.engine.results import ExerciseResult
from grader.study import notes
from grader.views.terminal import exercise_report, notes_pointer

MISTAKE = {"name": "ceil-instead-of-floor", "explanation": "Rounded up.", "section": "Object Detection",
           "subsection": "Intersection over union"}


def _result(mistake: dict | None, status: str = "failed") -> ExerciseResult:
    return ExerciseResult.from_dict(
        {"exercise": "nms", "path": "/x/nms.py", "score": 0, "max_score": 2, "duration_s": 0.1, "notices": [],
         "checks": [{"name": "box_iou_forward", "part": "box_iou", "points": 0, "max_points": 2,
                     "status": status, "message": "differs", "mistake": mistake}]})


@pytest.mark.parametrize("section", notes.sections())
def test_the_pointer_names_a_command_that_shows_the_section(section):
    pointer = notes_pointer(section)
    command = pointer[pointer.index("`grade notes ") + len("`grade notes "):-2]
    assert pointer == f"{section} (`grade notes {command}`)"
    assert notes.resolve_section(command) == section


def test_a_mistake_points_to_its_subsection():
    text = click.unstyle(exercise_report(_result(MISTAKE)))
    assert 'revisit the notes: Object Detection, "Intersection over union" (`grade notes object-detection`)' in text


def test_a_mistake_without_a_subsection_points_to_its_section():
    old = {k: v for k, v in MISTAKE.items() if k != "subsection"}  # results saved before subsections existed
    assert "revisit the notes: Object Detection (`grade notes object-detection`)" in click.unstyle(exercise_report(_result(old)))
    assert "revisit the notes: Object Detection (`grade notes object-detection`)" in click.unstyle(
        exercise_report(_result({**MISTAKE, "subsection": ""})))


def test_nothing_implemented_points_to_the_notes():
    text = click.unstyle(exercise_report(_result(None, "not_implemented"), section="Object Detection"))
    assert "The notes' section: Object Detection (`grade notes object-detection`)." in text

