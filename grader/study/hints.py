"""Progressive hints: `grader/study/hints/<exercise>.yaml` loaded into typed records, and who saw what.

Each part of each exercise has 2 to 4 hints, from a nudge to the key idea, each tied to a section
of the course notes; none of them is solution code. A hint file looks like this:

    version: 1
    exercise: pooling               # the file name without .yaml, and a name in catalog.yaml
    parts:
      max_pool2d:                   # every part of the exercise in catalog.yaml, no other
        - section: Convolution      # a section of the notes (`sections` in catalog.yaml)
          text: >-
            Pooling works on each feature map on its own ...

`grade hint NAME PART` shows hint k + 1 only after hint k was shown: `HintLog` remembers how far a
learner got in each part (in the progress store). Problems are reported as
`file:line: field: message`, all at once (`grader.datafile`). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader import datafile
from grader.catalog import Exercise, get_exercise, load_catalog, sections
from grader.datafile import DataFileError, Problem
from grader.engine.results import ExerciseResult

if TYPE_CHECKING:
    from yaml import Node

HINTS_DIR = Path(__file__).with_name("hints")
MIN_HINTS, MAX_HINTS = 2, 4  # at least a nudge and the key idea; more than four is a solution in instalments
_FILE_KEYS = ("version", "exercise", "parts")
_HINT_KEYS = ("section", "text")


@dataclass(frozen=True)
class Hint:
    """One hint: its rank in its part (1 = the first nudge), its text and the notes' section."""

    level: int
    text: str
    section: str

    def label(self, count: int) -> str:
        """'nudge', 'direction' or 'key idea', by rank among `count` hints."""
        if self.level == 1:
            return "nudge"
        return "key idea" if self.level == count else "direction"


@dataclass(frozen=True)
class ExerciseHints:
    """The hints of one exercise, part by part in catalogue order."""

    exercise: str
    parts: dict[str, tuple[Hint, ...]]
    file: Path

    def part(self, name: str) -> tuple[Hint, ...]:
        return self.parts[name]


class HintError(DataFileError):
    """Hint files could not be loaded; `problems` lists every problem found."""

    what = "the hint files"


# --- loading ------------------------------------------------------------------------------------
def load_hints(name: str, directory: Path | None = None) -> ExerciseHints:
    """The hints of exercise `name`; raises `HintError` listing every problem of its file."""
    directory = directory or HINTS_DIR
    exercise = get_exercise(name)
    problems: list[Problem] = []
    hints = _load_file(directory / f"{name}.yaml", exercise, problems)
    if problems or hints is None:
        raise HintError(problems)
    return hints


def validate_all(directory: Path | None = None) -> list[Problem]:
    """Every problem of every hint file, and every catalogue exercise without one."""
    directory = directory or HINTS_DIR
    problems: list[Problem] = []
    catalog = {e.name: e for e in load_catalog()}
    for exercise in catalog.values():
        _load_file(directory / f"{exercise.name}.yaml", exercise, problems)
    for path in sorted(directory.glob("*.yaml")):
        if path.stem not in catalog:
            problems.append(Problem(str(path), 0, "", f"no exercise {path.stem!r} in catalog.yaml (rename or remove the file)"))
    return problems


def _load_file(path: Path, exercise: Exercise, problems: list[Problem]) -> ExerciseHints | None:
    where = str(path)
    before = len(problems)
    if not path.is_file():
        problems.append(Problem(where, 0, "", f"no hint file for exercise {exercise.name!r}: write one with at least {MIN_HINTS} hints per part"))
        return None
    fields = datafile.versioned_fields(path, problems, _FILE_KEYS, "version, exercise and parts")
    if fields is None:
        return None
    named = datafile.text(fields.get("exercise"), where, "exercise", problems)
    if named is not None and named != exercise.name:
        problems.append(Problem(where, datafile.line(fields["exercise"]), "exercise", f"says {named!r} but the file is for {exercise.name!r}"))
    parts_node = fields.get("parts")
    parts: dict[str, tuple[Hint, ...]] = {}
    if parts_node is not None:
        if not datafile.is_kind(parts_node, "mapping"):
            problems.append(Problem(where, datafile.line(parts_node), "parts", "must map each part name to a list of hints"))
        else:
            found = _parts(parts_node, exercise, where, problems)
            parts = {p.name: found[p.name] for p in exercise.parts if p.name in found}
    if len(problems) > before:
        return None
    return ExerciseHints(exercise.name, parts, path)


def _parts(node: Node, exercise: Exercise, where: str, problems: list[Problem]) -> dict[str, tuple[Hint, ...]]:
    known = [p.name for p in exercise.parts]
    found: dict[str, tuple[Hint, ...]] = {}
    for key, value in node.value:
        name = key.value
        if name not in known:
            problems.append(Problem(where, datafile.line(key), f"parts.{name}", f"no part {name!r} in {exercise.name}; its parts are {', '.join(known)}"))
            continue
        if name in found:
            problems.append(Problem(where, datafile.line(key), f"parts.{name}", "listed twice"))
            continue
        found[name] = _hints(value, f"parts.{name}", where, problems)
    for name in known:
        if name not in found:
            problems.append(Problem(where, datafile.line(node), f"parts.{name}", f"no hints for part {name!r} (at least {MIN_HINTS} are needed)"))
    return found


def _hints(node: Node, field: str, where: str, problems: list[Problem]) -> tuple[Hint, ...]:
    if not datafile.is_kind(node, "sequence"):
        problems.append(Problem(where, datafile.line(node), field, "must be a list of hints (each with section and text)"))
        return ()
    if not MIN_HINTS <= len(node.value) <= MAX_HINTS:
        problems.append(Problem(where, datafile.line(node), field, f"has {len(node.value)} hints; write {MIN_HINTS} to {MAX_HINTS}, from a nudge to the key idea"))
    known_sections = sections()
    hints = []
    for level, item in enumerate(node.value, 1):
        here = f"{field}[{level - 1}]"
        if not datafile.is_kind(item, "mapping"):
            problems.append(Problem(where, datafile.line(item), here, "must be a mapping with section and text"))
            continue
        fields = datafile.mapping(item, where, problems, _HINT_KEYS, _HINT_KEYS, here)
        text = datafile.text(fields.get("text"), where, f"{here}.text", problems, collapse=False) or ""
        section = datafile.text(fields.get("section"), where, f"{here}.section", problems) or ""
        if section and section not in known_sections:
            problems.append(Problem(where, datafile.line(fields["section"]), f"{here}.section", f"{section!r} is not a section of the notes; use one of {', '.join(known_sections)}"))
        if text and ("```" in text or "\ndef " in text or text.startswith("def ")):
            problems.append(Problem(where, datafile.line(fields["text"]), f"{here}.text", "looks like solution code; a hint points the way, it never gives the code"))
        hints.append(Hint(level, " ".join(text.split()), section))
    return tuple(hints)


# --- who saw what -------------------------------------------------------------------------------
class HintLog:
    """How many hints of each part a learner has seen, kept in the progress store
    (`hints_shown`, append only, so the instructor report can also count hint use)."""

    def __init__(self, db_path: Path | None = None):
        self.db_path = db_path

    @classmethod
    def default(cls) -> "HintLog":
        return cls(None)

    def _open(self):  # noqa: ANN202 - grader.store.Store
        from grader.store import Store

        return Store.open(self.db_path)

    def shown(self, exercise: str, part: str) -> int:
        """How many hints of `part` were shown (0: none yet)."""
        with self._open() as store:
            return store.hint_levels().get((exercise, part), 0)

    def record(self, exercise: str, part: str, level: int) -> None:
        """Remember that hints 1..level of `part` were shown; never goes backwards."""
        with self._open() as store:
            if level > store.hint_levels().get((exercise, part), 0):
                store.record_hint_shown(exercise, part, level)


def next_hint(hints: ExerciseHints, part: str, log: HintLog) -> tuple[list[Hint], Hint | None]:
    """(the hints of `part` already shown, the next one or None when all were shown).

    Does not record anything: call `log.record(...)` once the hint has been shown.
    """
    all_hints = hints.part(part)
    seen = min(log.shown(hints.exercise, part), len(all_hints))
    return list(all_hints[:seen]), (all_hints[seen] if seen < len(all_hints) else None)


def first_open_part(exercise: Exercise, last_result: ExerciseResult | None) -> str | None:
    """The first part, in catalogue order, not fully passed in the last result; the first part
    when there is no result; None when every part passed."""
    if last_result is None:
        return exercise.parts[0].name
    scores = {p.name: p for p in last_result.parts}
    return next((p.name for p in exercise.parts if p.name not in scores or not scores[p.name].complete), None)
