"""YAML data files read into typed records, every problem located as `file:line: field: message`.

The catalogue (`grader/catalog.yaml`), the hint files (`grader/study/hints/*.yaml`) and the quiz
bank (`quizzes/*.yaml`) are all read through here. `compose` parses a file into YAML nodes, which
keep their line numbers (a file that is not YAML is one problem, at the line where it breaks);
each reader below checks one field of a node, appends a `Problem` when it is wrong and returns
None, so a file's problems are all reported at once. Values are taken from the nodes' tags, so
`answer: "true"` (a string) and `answer: yes` (YAML 1.1's accidental boolean) are told apart.

PyYAML is imported only when a file is parsed (the quiz bank's cache skips parsing altogether);
nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yaml import Node

KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data file, located by file and line (0: the whole file)."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DataFileError(ValueError):
    """Data files could not be loaded; `problems` lists every problem found."""

    what = "the data files"  # subclasses name their files: "the quiz bank", "the hint files"...

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in {self.what}:\n{lines}")


def compose(path: Path, problems: list[Problem]) -> Node | None:
    """The YAML node tree of the file at `path`, or None (with a problem) when it cannot be read
    or is not YAML."""
    import yaml  # only when a file is really parsed: importing PyYAML is most of a quiz's cold start

    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append(Problem(str(path), mark.line + 1 if mark else 0, "", f"not valid YAML: {exc.problem or exc}"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), 0, "", f"cannot read the file: {exc}"))
    return None


def is_kind(node: Node | None, kind: str) -> bool:
    """Whether a node is a "scalar", "sequence" or "mapping" (without importing yaml)."""
    return node is not None and getattr(node, "id", None) == kind


def line(node: Node | None) -> int:
    """The 1-based line where a node starts (0 when unknown)."""
    return node.start_mark.line + 1 if node is not None and node.start_mark else 0


def mapping(node: Node, where: str, problems: list[Problem], allowed: Sequence[str],
            required: Sequence[str] = (), field: str = "") -> dict[str, Node]:
    """The values of a mapping node by key, reporting unknown, repeated and missing keys.
    `field` is the mapping's own place in the file ("parts.conv2d"), prefixed to its keys."""
    prefix = f"{field}." if field else ""
    out: dict[str, Node] = {}
    for key, value in node.value:
        name = key.value if is_kind(key, "scalar") else str(key)
        if name not in allowed:
            problems.append(Problem(where, line(key), prefix + name, f"unknown key; allowed keys are {', '.join(allowed)}"))
        elif name in out:
            problems.append(Problem(where, line(key), prefix + name, f"given twice (also at line {line(out[name])})"))
        else:
            out[name] = value
    for name in required:
        if name not in out:
            problems.append(Problem(where, line(node), prefix + name, "missing"))
    return out


def versioned_fields(path: Path, problems: list[Problem], keys: Sequence[str], described: str) -> dict[str, Node] | None:
    """The top-level fields of a version-1 data file whose keys are exactly `keys`; None (with a
    problem appended) when the file is not YAML or not a mapping. `described` completes "the file
    must be a mapping with ..." in that problem. A version other than 1 is a problem too."""
    where = str(path)
    root = compose(path, problems)
    if root is None:
        return None
    if not is_kind(root, "mapping"):
        problems.append(Problem(where, line(root), "", f"the file must be a mapping with {described}"))
        return None
    fields = mapping(root, where, problems, keys, keys)
    version = integer(fields.get("version"), where, "version", problems)
    if version is not None and version != 1:
        problems.append(Problem(where, line(fields["version"]), "version", f"must be 1, got {version}"))
    return fields


def text(node: Node | None, where: str, field: str, problems: list[Problem], *, collapse: bool = True) -> str | None:
    """A non-empty string; with `collapse`, its whitespace collapsed (folded YAML keeps stray
    newlines), else only stripped."""
    if node is None:
        return None
    if not is_kind(node, "scalar") or node.tag == _NULL:
        problems.append(Problem(where, line(node), field, "must be a non-empty text"))
        return None
    if node.tag != _STR:
        problems.append(Problem(where, line(node), field, f"{node.value!r} is read by YAML as a "
                                f"{node.tag.rsplit(':', 1)[-1]}, not text; put it in quotes"))
        return None
    value = " ".join(node.value.split()) if collapse else node.value.strip()
    if not value:
        problems.append(Problem(where, line(node), field, "is empty"))
        return None
    return value


def boolean(node: Node | None, where: str, field: str, problems: list[Problem]) -> bool | None:
    """A boolean written `true` or `false` (not yes/no/on/off, not a quoted string)."""
    if node is None:
        return None
    if is_kind(node, "scalar") and node.tag == _BOOL and node.value.lower() in ("true", "false"):
        return node.value.lower() == "true"
    if is_kind(node, "scalar") and node.tag == _BOOL:
        problems.append(Problem(where, line(node), field, f"{node.value!r} is a YAML 1.1 boolean by accident; write true or false"))
    elif is_kind(node, "scalar") and node.tag == _STR:
        problems.append(Problem(where, line(node), field, f"must be a boolean, got the string {node.value!r}; write true or false without quotes"))
    else:
        shown = node.value if is_kind(node, "scalar") else type(node).__name__
        problems.append(Problem(where, line(node), field, f"must be true or false, got {shown!r}"))
    return None


def integer(node: Node | None, where: str, field: str, problems: list[Problem], *, minimum: int | None = None) -> int | None:
    """An integer (at least `minimum`, when given)."""
    if node is None:
        return None
    try:
        if not is_kind(node, "scalar") or node.tag != _INT:
            raise ValueError
        value = int(node.value.replace("_", ""))
    except ValueError:
        shown = node.value if is_kind(node, "scalar") else type(node).__name__
        problems.append(Problem(where, line(node), field, f"must be an integer, got {shown!r}"))
        return None
    if minimum is not None and value < minimum:
        problems.append(Problem(where, line(node), field, f"must be at least {minimum}, got {value}"))
        return None
    return value


def text_list(node: Node, where: str, field: str, problems: list[Problem], *, kebab: bool = False,
              example: str = "[a, b]") -> tuple[str, ...]:
    """A list of texts (kebab-case names with `kebab`)."""
    if not is_kind(node, "sequence"):
        problems.append(Problem(where, line(node), field, f"must be a list, e.g. {example}"))
        return ()
    items = []
    for item in node.value:
        value = text(item, where, field, problems)
        if value is not None and kebab and not KEBAB.match(value):
            problems.append(Problem(where, line(item), field, f"{value!r} must be kebab-case"))
        elif value is not None:
            items.append(value)
    return tuple(items)
