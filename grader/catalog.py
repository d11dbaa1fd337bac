"""The exercise catalogue (`catalog.yaml`) parsed into typed records.

Loading fails early with a message naming the entry and field; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class CatalogError(ValueError):
    """The catalogue file is malformed (a maintainer error, reported with the entry and field)."""


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

    @property
    def max_points(self) -> int:
        return sum(p.points for p in self.parts)

    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(name)


_EXERCISE_KEYS = {"name", "title", "section", "parts", "forbidden", "forbidden_ops"}


def _parse_exercise(entry: object, index: int) -> Exercise:
    where = f"{CATALOG_PATH.name}: exercises[{index}]"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _EXERCISE_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("name", "title", "section", "parts"):
        if key not in entry:
            raise CatalogError(f"{where}: missing field {key!r}")
    parts_raw = entry["parts"]
    if not isinstance(parts_raw, dict) or not parts_raw:
        raise CatalogError(f"{where} ({entry['name']}): 'parts' must be a non-empty mapping")
    parts = []
    for pname, spec in parts_raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("points"), int) or spec["points"] <= 0:
            raise CatalogError(f"{where} ({entry['name']}): part {pname!r} needs a positive int 'points'")
        parts.append(Part(str(pname), spec["points"], str(spec.get("summary", ""))))
    return Exercise(
        name=str(entry["name"]),
        title=str(entry["title"]),
        section=str(entry["section"]),
        parts=tuple(parts),
        forbidden=tuple(entry.get("forbidden") or ()),
        forbidden_ops=tuple(entry.get("forbidden_ops") or ()),
    )


@lru_cache(maxsize=1)
def load_catalog() -> tuple[Exercise, ...]:
    """All exercises in course order."""
    data = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("exercises"), list):
        raise CatalogError(f"{CATALOG_PATH.name}: expected 'version: 1' and a list 'exercises'")
    exercises = tuple(_parse_exercise(e, i) for i, e in enumerate(data["exercises"]))
    names = [e.name for e in exercises]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise CatalogError(f"{CATALOG_PATH.name}: duplicate exercise names {sorted(dupes)}")
    return exercises


def exercise_names() -> list[str]:
    return [e.name for e in load_catalog()]


def get_exercise(name: str) -> Exercise:
    """The exercise called `name`; `KeyError` carries close-name suggestions for the CLI."""
    for e in load_catalog():
        if e.name == name:
            return e
    raise KeyError(name)
