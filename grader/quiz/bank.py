"""The quiz bank: `quizzes/*.yaml` loaded into typed records, or every problem reported at once.

One file per section of the notes; the file name (without `.yaml`) is the topic a student types in
`grade quiz TOPIC`. A file looks like this:

    title: Global average pooling      # shown in summaries and exports
    order: 2                           # optional: position in menus (then by file name)
    statements:
      - id: gap-no-trainable-params    # kebab-case, unique across files; progress is keyed on it,
                                       # so fixing a typo in the text never resets a history
        text: GAP has no trainable params.
        answer: true                   # a real YAML boolean, written true or false
        explanation: >-                # why, in one to three sentences
          It only averages each channel over height and width.
        section: GlobalAvgPooling      # the notes' section it comes from (`sections` in catalog.yaml)
        tags: [gap, parameters]        # optional, kebab-case
        exercise: gap                  # optional: the exercise that demonstrates it (catalog.yaml)
        from_notes: true               # optional: a statement of the notes' True/False lists
        notes_text: GAP has no ...     # optional, with from_notes: the notes' own wording, where
                                       # `text` rewords it (spelled-out jargon, an ambiguity removed)
        notes_answer: true             # optional: the notes' key, only where it differs from answer
        source: Lin et al. 2013, 3.2   # optional (required where the explanation states a number
                                       # or quotes a paper): where to check the fact
        related: [gap-with-batchnorm]  # optional: statements of the same file on a neighbouring
                                       # fact, reviewed as separate questions; a session asks
                                       # them apart (see `scheduler.select`), since the
                                       # explanation of one could give the other away

`answer: yes` is refused although YAML 1.1 reads it as a boolean: `yes/no/on/off` turn into
booleans by accident elsewhere (a text of `no` becomes False), so the bank spells `true`/`false`.
Problems are reported as `file:line: field: message` (`grader.datafile`). A file with a problem blocks only its own
topic: `load_bank(strict=False)` returns the topics that loaded, with the problems in
`Bank.problems`, so a student can still practise the others; `strict=True` (the default, and
`grade quiz --check`) raises `BankError` listing them all.

A valid bank is cached as JSON in the user's cache folder (`$XDG_CACHE_HOME/cnn-grader`, else
`~/.cache/cnn-grader`), keyed by the files' names, sizes and modification times, so that
`grade quiz` shows its first statement without importing or running the YAML parser; any
change to a file (the catalogue's included), or any problem with the cache, falls back to parsing. Only a bank without
problems is cached, so a broken file is parsed (and reported) again each time until it is fixed.
`--check` never uses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader import datafile
from grader.catalog import CATALOG_PATH, exercise_names, sections  # sections and exercise names live there
from grader.datafile import KEBAB, DataFileError, Problem

if TYPE_CHECKING:
    from yaml import Node

REQUIRED = ("id", "text", "answer", "explanation", "section")
OPTIONAL = ("tags", "exercise", "from_notes", "notes_text", "notes_answer", "source", "related")
FILE_KEYS = ("title", "order", "statements")

CACHE_VERSION = 2


@dataclass(frozen=True)
class Statement:
    """One true/false statement of the bank."""

    id: str
    text: str
    answer: bool
    explanation: str
    section: str
    topic: str  # the file it comes from, without .yaml
    tags: tuple[str, ...] = ()
    exercise: str | None = None
    from_notes: bool = False
    notes_text: str | None = None  # the notes' wording where `text` rewords a statement of their lists
    notes_answer: bool | None = None  # set only where the notes' key differs from `answer`
    source: str | None = None
    related: tuple[str, ...] = ()  # as declared here; the relation is symmetric
    file: str = ""
    line: int = 0

    @property
    def notes_disagree(self) -> bool:
        """True where the notes give the other answer (the quiz flags it)."""
        return self.notes_answer is not None and self.notes_answer != self.answer

    @property
    def notes_flag(self) -> str | None:
        """What the notes say, where their answer differs (shown after the answer and in exports)."""
        if not self.notes_disagree:
            return None
        said = "TRUE" if self.notes_answer else "FALSE"
        if self.from_notes:
            return f"The notes' True/False list marks this statement {said}"
        return f"The notes say otherwise (by them, this is {said})"

    @property
    def text_hash(self) -> str:
        """A short hash of text and answer: tells a reworded or re-keyed statement apart in reports."""
        return hashlib.sha256(f"{self.text}\0{self.answer}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Topic:
    """One file of the bank."""

    name: str
    title: str
    order: int
    file: Path
    statements: tuple[Statement, ...]


class BankError(DataFileError):
    """The bank could not be loaded; `problems` lists every problem found."""

    what = "the quiz bank"


@dataclass(frozen=True)
class Bank:
    """Every topic of the bank, in menu order."""

    directory: Path
    topics: tuple[Topic, ...]
    problems: tuple[Problem, ...] = ()  # only with load_bank(strict=False): why topics were left out
    _by_id: dict[str, Statement] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({s.id: s for t in self.topics for s in t.statements})

    @property
    def statements(self) -> tuple[Statement, ...]:
        return tuple(s for t in self.topics for s in t.statements)

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    def get(self, statement_id: str) -> Statement | None:
        return self._by_id.get(statement_id)

    @property
    def broken_topics(self) -> dict[str, list[Problem]]:
        """Topic name -> the problems of its file, for every file left out of the bank."""
        broken: dict[str, list[Problem]] = {}
        for p in self.problems:
            broken.setdefault(Path(p.file).stem, []).append(p)
        return broken

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def fingerprint(self) -> str:
        """A hash of every id, text and answer: which version of the bank an answer was given to."""
        digest = hashlib.sha256()
        for s in sorted(self.statements, key=lambda s: s.id):
            digest.update(f"{s.id}\0{s.text_hash}\n".encode())
        return digest.hexdigest()[:16]

    def resolve_topics(self, names: tuple[str, ...] | list[str]) -> list[str]:
        """Topic names from what a student typed: exact names or unique prefixes (`seg`).

        Raises `ValueError` naming the unknown word and the topics there are, or the problem of a
        topic whose file is broken.
        """
        chosen: list[str] = []
        broken = self.broken_topics
        every = (*self.topic_names, *broken)
        for raw in names:
            word = raw.strip().lower().removesuffix(".yaml")
            matches = [t for t in every if t == word] or [t for t in every if t.startswith(word)]
            if len(matches) == 1 and matches[0] in broken:
                first, *more = broken[matches[0]]
                also = f" (and {len(more)} more problem(s))" if more else ""
                raise ValueError(
                    f"topic {matches[0]!r} cannot be asked: {first}{also}. Fix the file, then check "
                    "it with `grade quiz --check`."
                )
            if len(matches) != 1:
                import difflib

                kind = "ambiguous" if matches else "unknown"
                close = difflib.get_close_matches(word, self.topic_names, n=2, cutoff=0.6)
                hint = f" Did you mean {' or '.join(close)}?" if close and not matches else ""
                raise ValueError(
                    f"{kind} topic {raw!r}.{hint} The topics are: {', '.join(self.topic_names)} "
                    "(a unique prefix is enough)."
                )
            if matches[0] not in chosen:
                chosen.append(matches[0])
        return chosen


def default_directory() -> Path:
    """The bank of the course: the checkout's `quizzes/`, else the copy installed in the package."""
    from grader import paths

    return paths.data_dir("quizzes")


def load_bank(directory: Path | None = None, *, use_cache: bool = True, strict: bool = True) -> Bank:
    """Load and validate every `*.yaml` of `directory`.

    `strict`: raise `BankError` listing every problem. Otherwise a file with problems is left out
    and its problems are kept in `Bank.problems`; `BankError` only when no file loads at all.
    With `use_cache`, a bank unchanged since it was last validated is read from the JSON cache.
    """
    directory = (Path(directory) if directory is not None else default_directory()).resolve()
    if not directory.is_dir():
        raise BankError([Problem(str(directory), 0, "", "no quiz bank here (the folder does not exist)")])
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise BankError([Problem(str(directory), 0, "", "no quiz bank here (no *.yaml file)")])
    key = [[name, f.stat().st_mtime_ns, f.stat().st_size]
           for name, f in [*((f.name, f) for f in files), (str(CATALOG_PATH), CATALOG_PATH)]]
    if use_cache and (cached := _read_cache(directory, key)) is not None:
        return cached
    bank = _parse_bank(directory, files)
    if bank.problems and (strict or not bank.topics):
        raise BankError(list(bank.problems))
    if use_cache and not bank.problems:
        _write_cache(directory, key, bank)
    return bank


def _parse_bank(directory: Path, files: list[Path]) -> Bank:
    """Every file that loads without a problem, and the problems of the others."""
    problems: list[Problem] = []
    topics = [t for f in files if (t := _load_file(f, problems)) is not None]
    seen: dict[str, Statement] = {}
    for topic in topics:
        for s in topic.statements:
            if s.id in seen:
                first = seen[s.id]
                problems.append(Problem(s.file, s.line, "id", f"duplicate id {s.id!r} (first at {first.file}:{first.line})"))
            else:
                seen[s.id] = s
    broken = {p.file for p in problems}
    topics = sorted((t for t in topics if str(t.file) not in broken), key=lambda t: (t.order, t.name))
    return Bank(directory=directory, topics=tuple(topics), problems=tuple(problems))


def _cache_file(directory: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")  # RuntimeError without a home
    return base / "cnn-grader" / f"quiz-bank-{zlib.crc32(str(directory).encode()):08x}.json"


def _read_cache(directory: Path, key: list[list]) -> Bank | None:
    """The cached bank when its key (names, mtimes, sizes) still matches, else None."""
    try:
        data = json.loads(_cache_file(directory).read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION or data.get("directory") != str(directory) or data.get("key") != key:
            return None
        topics = tuple(
            Topic(name=t["name"], title=t["title"], order=t["order"], file=Path(t["file"]),
                  statements=tuple(Statement(**{**s, "tags": tuple(s["tags"]), "related": tuple(s["related"])})
                                   for s in t["statements"]))
            for t in data["topics"]
        )
        return Bank(directory=directory, topics=topics)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError):
        return None


def _write_cache(directory: Path, key: list[list], bank: Bank) -> None:
    """Best effort: a cache that cannot be written only costs speed."""
    try:
        target = _cache_file(directory)
    except RuntimeError:
        return
    data = {
        "version": CACHE_VERSION, "directory": str(directory), "key": key,
        "topics": [{"name": t.name, "title": t.title, "order": t.order, "file": str(t.file),
                    "statements": [asdict(s) for s in t.statements]} for t in bank.topics],
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        pass


def _load_file(path: Path, problems: list[Problem]) -> Topic | None:
    """Parse one file; append its problems and return None when it has any."""
    name = path.stem
    where = str(path)
    before = len(problems)
    root = datafile.compose(path, problems)  # only when the cache misses: parsing is most of a cold start
    if root is None:
        return None
    if not KEBAB.match(name):
        problems.append(Problem(where, 0, "", f"file name {name!r} must be kebab-case (it is the topic name)"))
    if not datafile.is_kind(root, "mapping"):
        problems.append(Problem(where, datafile.line(root), "", "the file must be a mapping with title and statements"))
        return None
    fields = datafile.mapping(root, where, problems, FILE_KEYS, ("title", "statements"))
    title = datafile.text(fields.get("title"), where, "title", problems)
    order = datafile.integer(fields["order"], where, "order", problems) if "order" in fields else None
    items = fields.get("statements")
    statements: list[Statement] = []
    if items is not None:
        if not datafile.is_kind(items, "sequence"):
            problems.append(Problem(where, datafile.line(items), "statements", "must be a list of statements"))
        else:
            for item in items.value:
                s = _statement(item, name, where, problems)
                if s is not None:
                    statements.append(s)
            if not items.value:
                problems.append(Problem(where, datafile.line(items), "statements", "the list is empty"))
            if len(problems) == before:  # ids are known only when every statement parsed
                _check_related(statements, where, problems)
    if len(problems) > before or title is None:
        return None
    return Topic(name=name, title=title, order=1000 if order is None else order, file=path, statements=tuple(statements))


def _statement(node: Node, topic: str, where: str, problems: list[Problem]) -> Statement | None:
    if not datafile.is_kind(node, "mapping"):
        problems.append(Problem(where, datafile.line(node), "statements", "each statement must be a mapping (id, text, answer, ...)"))
        return None
    before = len(problems)
    f = datafile.mapping(node, where, problems, REQUIRED + OPTIONAL, REQUIRED)
    sid = datafile.text(f.get("id"), where, "id", problems)
    if sid is not None and not KEBAB.match(sid):
        problems.append(Problem(where, datafile.line(f["id"]), "id", f"{sid!r} must be kebab-case (a-z, 0-9 and single dashes)"))
    text = datafile.text(f.get("text"), where, "text", problems)
    answer = datafile.boolean(f.get("answer"), where, "answer", problems)
    explanation = datafile.text(f.get("explanation"), where, "explanation", problems)
    section = datafile.text(f.get("section"), where, "section", problems)
    if section is not None and section not in sections():
        problems.append(Problem(where, datafile.line(f["section"]), "section", f"{section!r} is not a section of the notes; use one of {', '.join(sections())}"))
    tags = datafile.text_list(f["tags"], where, "tags", problems, kebab=True, example="[gap, cam]") if "tags" in f else ()
    related = datafile.text_list(f["related"], where, "related", problems, kebab=True, example="[gap, cam]") if "related" in f else ()
    exercise = datafile.text(f.get("exercise"), where, "exercise", problems) if "exercise" in f else None
    if exercise is not None and exercise not in exercise_names():
        problems.append(Problem(where, datafile.line(f["exercise"]), "exercise", f"unknown exercise {exercise!r}; use one of {', '.join(exercise_names())}"))
    from_notes = bool(datafile.boolean(f.get("from_notes"), where, "from_notes", problems)) if "from_notes" in f else False
    notes_text = datafile.text(f.get("notes_text"), where, "notes_text", problems) if "notes_text" in f else None
    if notes_text is not None and not from_notes:
        problems.append(Problem(where, datafile.line(f["notes_text"]), "notes_text", "only for from_notes: true (the notes' wording of a statement of their lists)"))
    notes_answer = datafile.boolean(f.get("notes_answer"), where, "notes_answer", problems) if "notes_answer" in f else None
    if notes_answer is not None and answer is not None and notes_answer == answer:
        problems.append(Problem(where, datafile.line(f["notes_answer"]), "notes_answer", "equals answer; keep notes_answer only where the notes disagree"))
    source = datafile.text(f.get("source"), where, "source", problems) if "source" in f else None
    if len(problems) > before:
        return None
    assert sid and text and explanation and section and answer is not None  # checked above
    return Statement(
        id=sid, text=text, answer=answer, explanation=explanation, section=section, topic=topic,
        tags=tags, exercise=exercise, from_notes=from_notes, notes_text=notes_text, notes_answer=notes_answer,
        source=source, related=related, file=where, line=datafile.line(node),
    )


def _check_related(statements: list[Statement], where: str, problems: list[Problem]) -> None:
    """Every `related` id names another statement of the same file."""
    ids = {s.id for s in statements}
    for s in statements:
        for other in s.related:
            if other == s.id:
                problems.append(Problem(where, s.line, "related", f"{s.id!r} lists itself"))
            elif other not in ids:
                problems.append(Problem(where, s.line, "related", f"{other!r} is not a statement of this file"))
