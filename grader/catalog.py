"""The course catalogue (`catalog.yaml`): the sections of the notes and the exercises, in course
order, parsed into typed records.

It is the one place where sections and exercise names live: the hints, the quiz bank and the
notes take theirs from here. Loading reports every problem as `catalog.yaml:line: field: message`
(`grader.datafile`); nothing here imports torch. A catalogue looks like this:

    version: 1
    sections: [Convolution, GlobalAvgPooling]
    exercises:
      - name: pooling                    # the module name: exercises/pooling.py, grader/checks/pooling.py
        title: Max and average pooling
        section: Convolution             # one of `sections`
        parts:                           # in the order the report shows them
          max_pool2d: {points: 8, summary: "max pooling with stride"}
        forbidden: [torch.nn.functional.*pool*]   # optional: built-ins the student may not call
        forbidden_ops: ["*pool[0-9]d*"]            # optional: the operators behind them (names or fnmatch patterns)
        trains: false                    # optional: whether its checks train models (optimizer steps)

A catalogue that parsed is kept as JSON in the user's cache folder (`paths.cache_dir()`), keyed by
the modification times and sizes of `catalog.yaml` and of the code that parses it, so that `grade list` and
every other command start without importing PyYAML; any problem with the cache means parsing again.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from grader import datafile
from grader.datafile import DataFileError, Problem

if TYPE_CHECKING:
    from yaml import Node

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
_FILE_KEYS = ("version", "sections", "exercises")
_EXERCISE_KEYS = ("name", "title", "section", "parts", "forbidden", "forbidden_ops", "trains")
_PART_KEYS = ("points", "summary")


class CatalogError(DataFileError):
    """The catalogue file is malformed (a maintainer error); `problems` says where."""

    what = "the catalogue"


@dataclass(frozen=True)
class Part:
    name: str
    points: int
    summary: str


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    section: str
    parts: tuple[Part, ...]
    forbidden: tuple[str, ...] = ()
    forbidden_ops: tuple[str, ...] = ()
    trains: bool = False  # its checks take optimizer steps: its workers need `zygote.TRAINING_MODULES`

    @property
    def max_points(self) -> int:
        return sum(p.points for p in self.parts)

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True)
class Catalog:
    """The sections of the course notes and the exercises, both in course order."""

    sections: tuple[str, ...]
    exercises: tuple[Exercise, ...]


def read_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The catalogue in the file at `path`; `CatalogError` listing every problem."""
    problems: list[Problem] = []
    catalog = _parse(Path(path), problems)
    if problems or catalog is None:
        raise CatalogError(problems)
    return catalog


def _parse(path: Path, problems: list[Problem]) -> Catalog | None:
    where = str(path)
    fields = datafile.versioned_fields(path, problems, _FILE_KEYS, "version, sections and exercises")
    if fields is None:
        return None
    sections = datafile.text_list(fields["sections"], where, "sections", problems) if "sections" in fields else ()
    _unique(sections, fields.get("sections"), where, "sections", problems)
    exercises: list[Exercise] = []
    node = fields.get("exercises")
    if node is not None and not datafile.is_kind(node, "sequence"):
        problems.append(Problem(where, datafile.line(node), "exercises", "must be a list of exercises"))
    elif node is not None:
        for index, item in enumerate(node.value):
            exercise = _exercise(item, f"exercises[{index}]", sections, where, problems)
            if exercise is not None:
                exercises.append(exercise)
        _unique([e.name for e in exercises], node, where, "exercises", problems)
    return Catalog(tuple(sections), tuple(exercises))


def _unique(names: Sequence[str], node: Node | None, where: str, field: str, problems: list[Problem]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(Problem(where, datafile.line(node), field, f"names given more than once: {', '.join(repeated)}"))


def _exercise(node: Node, field: str, sections: tuple[str, ...], where: str, problems: list[Problem]) -> Exercise | None:
    if not datafile.is_kind(node, "mapping"):
        problems.append(Problem(where, datafile.line(node), field, "must be a mapping with name, title, section and parts"))
        return None
    before = len(problems)
    f = datafile.mapping(node, where, problems, _EXERCISE_KEYS, ("name", "title", "section", "parts"), field)
    name = datafile.text(f.get("name"), where, f"{field}.name", problems)
    if name is not None and not (name.isidentifier() and name.islower()):
        problems.append(Problem(where, datafile.line(f["name"]), f"{field}.name",
                                f"{name!r} must be a lowercase Python name: it names exercises/{name}.py and grader/checks/{name}.py"))
    field = f"{field} ({name})" if name else field
    title = datafile.text(f.get("title"), where, f"{field}.title", problems)
    section = datafile.text(f.get("section"), where, f"{field}.section", problems)
    if section is not None and sections and section not in sections:
        problems.append(Problem(where, datafile.line(f["section"]), f"{field}.section",
                                f"{section!r} is not one of the sections: {', '.join(sections)}"))
    parts = _parts(f.get("parts"), f"{field}.parts", where, problems)
    forbidden = datafile.text_list(f["forbidden"], where, f"{field}.forbidden", problems) if "forbidden" in f else ()
    forbidden_ops = datafile.text_list(f["forbidden_ops"], where, f"{field}.forbidden_ops", problems) if "forbidden_ops" in f else ()
    trains = datafile.boolean(f["trains"], where, f"{field}.trains", problems) if "trains" in f else False
    if len(problems) > before:
        return None
    return Exercise(name, title, section, parts, forbidden, forbidden_ops, bool(trains))


def _parts(node: Node | None, field: str, where: str, problems: list[Problem]) -> tuple[Part, ...]:
    if node is None:
        return ()
    if not datafile.is_kind(node, "mapping") or not node.value:
        problems.append(Problem(where, datafile.line(node), field, "must map each part's name to {points, summary}"))
        return ()
    parts = []
    for key, value in node.value:
        here = f"{field}.{key.value}"
        if not datafile.is_kind(value, "mapping"):
            problems.append(Problem(where, datafile.line(value), here, "must be a mapping {points: N, summary: ...}"))
            continue
        f = datafile.mapping(value, where, problems, _PART_KEYS, ("points",), here)
        points = datafile.integer(f.get("points"), where, f"{here}.points", problems, minimum=1)
        summary = datafile.text(f.get("summary"), where, f"{here}.summary", problems) if "summary" in f else ""
        if points is not None and summary is not None:
            parts.append(Part(str(key.value), points, summary))
    _unique([p.name for p in parts], node, where, field, problems)
    return tuple(parts)


@lru_cache(maxsize=1)
def _course() -> Catalog:
    """The course's catalogue: from the cache while it matches the files, else parsed (and cached)."""
    key = _cache_key()
    cached = _read_cache(key)
    if cached is not None:
        return cached
    catalog = read_catalog(CATALOG_PATH)
    _write_cache(key, catalog)
    return catalog


def load_catalog() -> tuple[Exercise, ...]:
    """All exercises in course order."""
    return _course().exercises


def sections() -> tuple[str, ...]:
    """The sections of the course notes, in course order."""
    return _course().sections


def _cache_key() -> list:
    """What the cached catalogue was parsed from: `catalog.yaml` and the code that parses it
    (this file and `grader.datafile`) as they are now."""
    files = (CATALOG_PATH.stat(), os.stat(__file__), os.stat(datafile.__file__))
    return [str(CATALOG_PATH), *(n for st in files for n in (st.st_mtime_ns, st.st_size))]


def _cache_file() -> Path:
    from grader.paths import cache_dir

    return cache_dir() / f"catalog-{zlib.crc32(str(CATALOG_PATH).encode()):08x}.json"  # one per copy of the course


def _read_cache(key: list) -> Catalog | None:
    """The cached catalogue when its key still matches, else None."""
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        exercises = tuple(Exercise(**{**e, "parts": tuple(Part(**p) for p in e["parts"]), "forbidden": tuple(e["forbidden"]),
                                      "forbidden_ops": tuple(e["forbidden_ops"])}) for e in data["exercises"])
        return Catalog(tuple(data["sections"]), exercises)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        return None


def _write_cache(key: list, catalog: Catalog) -> None:
    """Best effort: a cache that cannot be written only costs speed."""
    try:
        target = _cache_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, **asdict(catalog)}), encoding="utf-8")
        tmp.replace(target)
    except (OSError, RuntimeError):
        pass


def exercise_names() -> list[str]:
    return [e.name for e in load_catalog()]


def get_exercise(name: str) -> Exercise:
    """The exercise called `name`; `KeyError` when there is none."""
    for e in load_catalog():
        if e.name == name:
            return e
    raise KeyError(name)
