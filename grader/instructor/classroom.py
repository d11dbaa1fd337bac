"""GitHub Classroom: the autograding workflow that grades each push, one step per exercise part.

`classroom_steps` lists the steps: each runs `grade exercise NAME --part PART` with the part's
points, through GitHub's `classroom-resources/autograding-command-grader` action, and a final
`autograding-grading-reporter` step adds them up. `write_classroom` writes the student edition
(`release.make_release`: recorded outputs, no references) with `.github/workflows/classroom.yml`
in it: that folder becomes the assignment's template repository. The student's repository is
visible to the student, so this route is formative; graded work goes through Gradescope or
`grade batch` with a secret seed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from grader import __version__
from grader.catalog import Exercise, load_catalog

WORKFLOW_PATH = Path(".github") / "workflows" / "classroom.yml"
TIMEOUT_MINUTES = 10  # per step: installing torch once, then grading one part


@dataclass(frozen=True)
class ClassroomStep:
    id: str  # the step id the reporter reads (letters, digits and dashes)
    title: str
    command: str
    points: int


def classroom_steps(exercises: list[Exercise], seed: int) -> list[ClassroomStep]:
    """One step per part of each exercise, in catalogue order."""
    steps = []
    for ex in exercises:
        for part in ex.parts:
            step_id = re.sub(r"[^a-z0-9]+", "-", f"{ex.name}-{part.name}".lower()).strip("-")
            steps.append(ClassroomStep(step_id, f"{ex.name}: {part.name}",
                                       f"grade exercise {ex.name} --part {part.name} --seed {seed}", part.points))
    return steps


def _setup_command(torch_requirement: str) -> str:
    """Install the CPU build of torch and the course (pip skips both after the first step)."""
    return (f"python -m pip install --quiet --index-url https://download.pytorch.org/whl/cpu '{torch_requirement}'"
            " && python -m pip install --quiet -e .")


def render_workflow(exercises: list[Exercise], seed: int, torch_requirement: str) -> str:
    """The workflow file's text."""
    env = Environment(loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
                      undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("classroom.yml.j2").render(
        version=__version__, steps=classroom_steps(exercises, seed), setup_command=_setup_command(torch_requirement),
        timeout_minutes=TIMEOUT_MINUTES, python_version=f"{sys.version_info.major}.{sys.version_info.minor}")


def write_workflow(repo: Path, exercises: list[Exercise], seed: int, torch_requirement: str) -> Path:
    """Write `repo/.github/workflows/classroom.yml`; returns its path."""
    path = Path(repo) / WORKFLOW_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_workflow(exercises, seed, torch_requirement), encoding="utf-8")
    return path


def write_classroom(out: Path, *, seed: int, names: list[str] | None = None) -> Path:
    """The student edition in `out`, recorded for `seed`, with the workflow; returns the workflow's path."""
    from grader.instructor.release import course_torch_version, make_release

    release = make_release(out, exercises=names, seed=seed)
    chosen = [ex for ex in load_catalog() if ex.name in release.exercises]
    return write_workflow(release.root, chosen, seed, f"torch=={course_torch_version()}")
