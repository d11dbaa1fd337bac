"""A class's submissions: finding them, unpacking them safely, and locating what to grade.

`SUBMISSIONS` is a folder, or one `.zip` of the whole class (unpacked into a private folder first,
`class_submissions`). In it, each student is found by name (`discover`):

- our own layout: one folder or `.zip` per student, whose name (without `.zip`) is the student's id;
- the flat folders that learning platforms export, the student taken from each file's name:
  Canvas `smithjohn_12345_67890_conv.py` (`name[_LATE]_userid_submissionid_file`; a resubmitted
  `conv-1.py` counts as `conv.py`), Moodle `Ada Lovelace_12345_assignsubmission_file_conv.py` (or
  one folder per student, `Ada Lovelace_12345_assignsubmission_file_`), Blackboard
  `Assignment 1_alovelace_attempt_2025-01-31-10-00-00_conv.py` (the latest attempt is graded, and
  the others are named in the student's problems). A `.zip` a student uploaded there is unpacked
  into the submission.

Nothing is left out without a word: hidden files, links and files that are neither a folder, a
`.zip` nor named as a platform names them are listed in `Discovery.left_out`. Ids never start with
`.` or `_`, so they never collide with the batch's own files (`_batch.json`).

Each submission is unpacked into a private folder before grading, so a student's code never touches
the collected originals. A zip is opened with limits (`Limits`): no absolute paths or `..`, no
symbolic links or special files, no encrypted entries, at most `max_files` files and `max_bytes`
uncompressed bytes in all (counted while writing, not trusted from the header). A folder is copied
with the same limits, regular files only. Anything refused refuses the whole submission, with the
reason, which the student's result carries.

In the unpacked folder each exercise's `<name>.py` is looked for at any depth (the shallowest is
graded; several copies are a problem that names them all), and the quiz results that
`grade quiz --json` wrote are any `*.json` whose `format` is `cnn-grader/quiz-results` (the newest
by `generated_at` when there are several). An empty submission, or one without any exercise file,
is a problem too. Problems travel in the student's result (`problems`) to the report and the CSV.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.instructor.classdata import QUIZ_FORMAT, validate_quiz

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")
_SKIPPED_PARTS = {"__MACOSX", "__pycache__", ".git"}
_SKIPPED_NAMES = {".DS_Store", "Thumbs.db"}
_QUIZ_MAX_BYTES = 5 * 1024 * 1024


class SubmissionError(ValueError):
    """A submission was refused (the message says why, for the student's result)."""


class DiscoveryError(ValueError):
    """The submissions cannot be told apart or read (the message says why and what to do)."""


@dataclass(frozen=True)
class Limits:
    max_files: int = 500  # a student's folder holds a dozen files; thousands means something else
    max_bytes: int = 50 * 1024 * 1024  # uncompressed, in all: stubs are kilobytes


CLASS_LIMITS = Limits(max_files=100_000, max_bytes=4 * 1024**3)  # one zip of a whole class

# Flat exports of learning platforms (see the module docstring): the student and the file's own name.
_CANVAS = re.compile(r"^(?P<name>[a-z][a-z-]*?)(?:_late)?_(?P<uid>\d+)_\d+_(?P<file>.+)$", re.IGNORECASE)
_CANVAS_RESUBMITTED = re.compile(r"^(?P<stem>.+)-\d+(?P<ext>\.[A-Za-z0-9]+)$")
_MOODLE = re.compile(r"^(?P<student>.+?_\d+)_assignsubmission_[a-z]+_(?P<file>.*)$")
_BLACKBOARD = re.compile(r"^.+_(?P<student>[^_]+)_attempt_(?P<when>\d{4}(?:-\d\d){5})(?:_(?P<file>.+)|\.txt)?$")


@dataclass(frozen=True)
class Submission:
    """One student's work: `source` (a folder or .zip) or, from a platform's flat export, `members`."""

    student: str  # the id: made safe for a file name
    source: Path  # the folder or the .zip; for a flat export, the folder that holds the members
    members: tuple[tuple[str, Path], ...] = ()  # flat export: (file name in the submission, exported file)
    notes: tuple[str, ...] = ()  # problems found while collecting it (e.g. several attempts)
    prefix: str = ""  # where it was found, for its name: "class.zip/" inside one zip of the class

    @property
    def name(self) -> str:
        """How results name the submission: "alice.zip", "class.zip/bob", "smithjohn_1_2_conv.py and 1 more"."""
        if not self.members:
            return self.prefix + self.source.name
        more = f" and {len(self.members) - 1} more" if len(self.members) > 1 else ""
        return self.prefix + self.members[0][1].name + more

    def digest(self, limits: Limits = Limits()) -> str:
        """A digest of the submission's content (names and bytes), whatever folder it was found in:
        a result graded from other content is stale. Past `limits.max_bytes` (such a submission is
        refused anyway) the rest counts by name and size."""
        h = hashlib.sha256()
        budget = limits.max_bytes + 1
        for name, path in self._files():
            h.update(f"\0{name}\0".encode())
            try:
                size = path.stat().st_size
                if size > budget:
                    h.update(f"{size} bytes".encode())
                    continue
                budget -= size
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 16):
                        h.update(chunk)
            except OSError as exc:
                h.update(f"unreadable: {exc.strerror}".encode())
        return h.hexdigest()[:32]

    def origin(self, rel: str) -> str:
        """How results name the file at `rel` (a posix path) in the unpacked submission."""
        for name, path in self.members:
            if Path(name).name == rel:
                return self.prefix + path.name
        return f"{self.name}/{rel}"

    def _files(self) -> list[tuple[str, Path]]:
        """(name, path) of every regular file of the submission, in a fixed order."""
        entries = self.members or (("", self.source),)
        found = []
        for name, path in sorted(entries):
            if not path.is_dir():
                found.append((name, path))
                continue
            for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_PARTS)
                for file in sorted(filenames):
                    inner = Path(dirpath, file)
                    if file not in _SKIPPED_NAMES and inner.is_file() and not inner.is_symlink():
                        found.append((f"{name}/{inner.relative_to(path).as_posix()}", inner))
        return found


@dataclass
class Discovery:
    """What `discover` found: the submissions (sorted by id) and what it left out, with why."""

    submissions: list[Submission]
    left_out: list[str] = field(default_factory=list)


@dataclass
class Unpacked:
    """What was found in one unpacked submission."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)  # exercise -> its module
    quiz: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)  # notes for the instructor, e.g. duplicates


def student_id(name: str) -> str:
    """A file-name-safe id for a submission called `name` (`ada lovelace.zip` -> `ada_lovelace`);
    never starting with `.` or `_` (the batch's own files), never empty."""
    stem = name[:-4] if name.lower().endswith(".zip") else name
    safe = _ID_UNSAFE.sub("_", stem).lstrip("._")[:120]
    return safe or "student-" + hashlib.sha256(name.encode()).hexdigest()[:8]


def platform_entry(name: str) -> tuple[str, str, str] | None:
    """(student, file name inside the submission, attempt) when `name` is named as Canvas, Moodle or
    Blackboard name the entries of their exports; the file is "" for a Moodle folder or a Blackboard
    receipt, the attempt "" except for Blackboard. None for any other name."""
    m = _MOODLE.match(name)
    if m:
        return m["student"], m["file"], ""
    m = _BLACKBOARD.match(name)
    if m:
        return m["student"], m["file"] or "", m["when"]
    m = _CANVAS.match(name)
    if m:
        resubmitted = _CANVAS_RESUBMITTED.match(m["file"])
        file = resubmitted["stem"] + resubmitted["ext"] if resubmitted else m["file"]
        return f"{m['name'].lower()}_{m['uid']}", file, ""
    return None


def discover(folder: Path, exclude: tuple[Path, ...] = (), prefix: str = "") -> Discovery:
    """The submissions in `folder` (see the module docstring); `exclude` (e.g. the output folder)
    is left out with a note. Raises `DiscoveryError` for two submissions with the same id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DiscoveryError(f"{folder} is not a folder of submissions (one folder or .zip per student)")
    excluded = {p.resolve() for p in exclude}
    found: dict[str, Submission] = {}
    sources: dict[str, str] = {}
    grouped: dict[str, list[tuple[str, str, Path]]] = {}  # student -> (attempt, file name, entry)
    left_out: list[str] = []

    def add(sid: str, entry_name: str, sub: Submission) -> None:
        if sid in found:
            raise DiscoveryError(f"{sources[sid]} and {entry_name} are both student {sid!r}; rename one of them")
        found[sid], sources[sid] = sub, entry_name

    for entry in sorted(folder.iterdir()):
        if entry.name in _SKIPPED_PARTS or entry.name in _SKIPPED_NAMES:
            continue  # what operating systems and tools leave beside files: never a submission
        if entry.resolve() in excluded:
            left_out.append(f"{entry.name} (the output folder)")
        elif entry.is_symlink():
            left_out.append(f"{entry.name} (a symbolic link)")
        elif entry.name.startswith("."):
            left_out.append(f"{entry.name} (a hidden file)")
        elif (lms := platform_entry(entry.name)) is not None and (entry.is_file() or not lms[1]):
            student, file, attempt = lms
            grouped.setdefault(student, []).append((attempt, file, entry))
        elif entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".zip"):
            sid = student_id(entry.name)
            add(sid, entry.name, Submission(sid, entry, prefix=prefix))
        else:
            left_out.append(f"{entry.name} (not a folder or .zip, nor named as Canvas, Moodle or Blackboard "
                            "name the files of their exports)")
    for student, entries in sorted(grouped.items()):
        sid = student_id(student)
        attempts = sorted({attempt for attempt, _, _ in entries})
        notes = (f"{len(attempts)} attempts in the export ({', '.join(attempts)}); graded the latest",) \
            if len(attempts) > 1 else ()
        kept = tuple(sorted((file or entry.name, entry) for attempt, file, entry in entries if attempt == attempts[-1]))
        add(sid, kept[0][1].name, Submission(sid, folder, members=kept, notes=notes, prefix=prefix))
    return Discovery([found[k] for k in sorted(found)], left_out)


@contextmanager
def class_submissions(path: Path, exclude: tuple[Path, ...] = ()) -> Iterator[Discovery]:
    """`discover` a folder, or one .zip of the whole class unpacked (with `CLASS_LIMITS`) into a
    private folder that is removed afterwards; a zip whose only entry is a folder is read from it."""
    path = Path(path)
    if not path.is_file():
        yield discover(path, exclude)
        return
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grader-class-"))
    try:
        try:
            extract_zip(path, scratch, CLASS_LIMITS)
        except SubmissionError as exc:
            raise DiscoveryError(f"{path} cannot be read as one zip of all submissions: {exc}") from None
        root, prefix = scratch, f"{path.name}/"
        entries = [e for e in root.iterdir() if e.name not in _SKIPPED_PARTS | _SKIPPED_NAMES]
        if len(entries) == 1 and entries[0].is_dir() and platform_entry(entries[0].name) is None:
            root, prefix = entries[0], f"{path.name}/{entries[0].name}/"
        yield discover(root, prefix=prefix)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- unpacking ----------------------------------------------------------------------------------
def _safe_parts(name: str) -> list[str]:
    """The path components of an archive member, or `SubmissionError` when it could escape."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise SubmissionError(f"the zip holds an absolute path {name!r}")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SubmissionError(f"the zip holds a path that leaves its folder: {name!r}")
    if any("\0" in p for p in parts):
        raise SubmissionError(f"the zip holds a file name with a NUL byte: {name!r}")
    return parts


def _skipped(parts: list[str]) -> bool:
    return any(p in _SKIPPED_PARTS for p in parts) or (bool(parts) and parts[-1] in _SKIPPED_NAMES)


def _copy_bounded(src: Any, dest: Path, budget: int) -> int:
    """Copy the stream `src` to the new file `dest`, at most `budget` bytes; returns the bytes written."""
    written = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(dest, flags, 0o600), "wb") as out:
        while chunk := src.read(1 << 16):
            written += len(chunk)
            if written > budget:
                raise SubmissionError("the submission is larger than the size limit once unpacked")
            out.write(chunk)
    return written


def extract_zip(archive: Path, dest: Path, limits: Limits = Limits()) -> None:
    """Unpack `archive` into the existing empty folder `dest`, refusing anything unsafe."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{archive.name} is not a readable zip file ({exc})") from None
    with zf:
        members = []
        for info in zf.infolist():
            parts = _safe_parts(info.filename)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                raise SubmissionError(f"the zip holds a symbolic link {info.filename!r}")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise SubmissionError(f"the zip holds a special file {info.filename!r}")
            if info.flag_bits & 0x1:
                raise SubmissionError(f"the zip holds an encrypted file {info.filename!r}")
            if info.is_dir() or not parts or _skipped(parts):
                continue
            members.append((info, parts))
        if len(members) > limits.max_files:
            raise SubmissionError(f"the zip holds {len(members)} files; at most {limits.max_files} are accepted")
        declared = sum(info.file_size for info, _ in members)
        if declared > limits.max_bytes:
            raise SubmissionError(f"the zip unpacks to {declared} bytes; at most {limits.max_bytes} are accepted")
        budget = limits.max_bytes
        root = dest.resolve()
        for info, parts in members:
            target = root.joinpath(*parts)
            if not target.resolve().is_relative_to(root):
                raise SubmissionError(f"the zip holds a path that leaves its folder: {info.filename!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                raise SubmissionError(f"the zip holds {info.filename!r} twice")
            try:
                with zf.open(info) as src:
                    budget -= _copy_bounded(src, target, budget)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
                raise SubmissionError(f"{info.filename!r} cannot be unpacked ({exc})") from None


def copy_folder(folder: Path, dest: Path, limits: Limits = Limits()) -> None:
    """Copy the regular files of `folder` into the existing empty folder `dest`, with `limits`."""
    files, budget = 0, limits.max_bytes
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        rel = Path(dirpath).relative_to(folder)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_PARTS and not Path(dirpath, d).is_symlink())
        for name in sorted(filenames):
            src = Path(dirpath, name)
            if name in _SKIPPED_NAMES or not stat.S_ISREG(src.lstat().st_mode):
                continue  # symbolic links and special files are left behind
            files += 1
            if files > limits.max_files:
                raise SubmissionError(f"the folder holds more than {limits.max_files} files")
            target = dest / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as fh:
                budget -= _copy_bounded(fh, target, budget)


def _used(dest: Path) -> tuple[int, int]:
    files = [p for p in dest.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _left(limits: Limits, dest: Path) -> Limits:
    """What `limits` still allow once `dest` holds what it holds."""
    files, size = _used(dest)
    return Limits(max(0, limits.max_files - files), max(0, limits.max_bytes - size))


def _copy_members(members: tuple[tuple[str, Path], ...], dest: Path, limits: Limits) -> None:
    """Copy the files of a flat export under their own names; a folder's files go to the top."""
    for name, path in members:
        left = _left(limits, dest)
        try:
            if path.is_dir():
                copy_folder(path, dest, left)
                continue
            if left.max_files < 1:
                raise SubmissionError(f"the submission holds more than {limits.max_files} files")
            with open(path, "rb") as fh:
                _copy_bounded(fh, dest / Path(name).name, left.max_bytes)
        except FileExistsError as exc:
            raise SubmissionError(f"the export holds {Path(exc.filename).name!r} twice for this student") from None


def _unpack_inner_zips(dest: Path, limits: Limits) -> None:
    """Unpack the .zip files a student uploaded (at the top of the submission, one level) in place."""
    for archive in sorted(p for p in dest.iterdir() if p.is_file() and p.suffix.lower() == ".zip"):
        inner = dest / archive.stem
        if inner.exists():
            inner = dest / f"{archive.stem}-zip"
        inner.mkdir()
        moved = archive.rename(dest / f".{archive.name}")  # not counted against the limits it is unpacked with
        extract_zip(moved, inner, _left(limits, dest))
        moved.unlink()


def _listing(paths: list[Path], root: Path, most: int = 6) -> str:
    names = [p.relative_to(root).as_posix() for p in paths]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def unpack(submission: Submission, dest: Path, exercises: list[str], limits: Limits = Limits()) -> Unpacked:
    """Unpack `submission` into `dest` (created) and locate its exercise modules and quiz results.

    Raises `SubmissionError` when the submission is refused."""
    dest.mkdir(parents=True, exist_ok=False)
    if submission.members:
        _copy_members(submission.members, dest, limits)
        _unpack_inner_zips(dest, limits)
    elif submission.source.is_dir():
        copy_folder(submission.source, dest, limits)
        _unpack_inner_zips(dest, limits)
    else:
        extract_zip(submission.source, dest, limits)
    found = Unpacked(dest, problems=list(submission.notes))
    for name in exercises:
        candidates = sorted((p for p in dest.rglob(f"{name}.py") if p.is_file()),
                            key=lambda p: (len(p.relative_to(dest).parts), str(p)))
        if candidates:
            found.files[name] = candidates[0]
        if len(candidates) > 1:
            tie = len(candidates[1].parts) == len(candidates[0].parts)
            found.problems.append(f"{len(candidates)} copies of {name}.py: {_listing(candidates, dest)}; graded "
                                  f"{candidates[0].relative_to(dest).as_posix()} "
                                  f"({'the first by name, at the same depth' if tie else 'the shallowest'})")
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    python = [p for p in files if p.suffix == ".py"]
    expected = ", ".join(f"{n}.py" for n in exercises)
    if not files:
        found.problems.insert(0, "the submission is empty: no .py files found")
    elif not python:
        found.problems.insert(0, f"no .py files found; the submission holds {_listing(files, dest)}")
    elif not found.files:
        found.problems.insert(0, f"no exercise file found (expected {expected}); the submission holds "
                                 f"{_listing(python, dest)}")
    found.quiz = _find_quiz(dest, found.problems)
    return found


def _find_quiz(root: Path, problems: list[str]) -> dict[str, Any] | None:
    docs = []
    for path in sorted(root.rglob("*.json")):
        if len(path.relative_to(root).parts) > 4 or path.stat().st_size > _QUIZ_MAX_BYTES:
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or doc.get("format") != QUIZ_FORMAT:
            continue
        error = validate_quiz(doc)
        if error:
            problems.append(f"{path.relative_to(root).as_posix()}: quiz results ignored: {error}")
            continue
        docs.append((str(doc.get("generated_at") or ""), path, doc))
    docs.sort(key=lambda d: (d[0], str(d[1])))
    if len(docs) > 1:
        problems.append(f"{len(docs)} quiz result files; used the newest, {docs[-1][1].relative_to(root).as_posix()}")
    return docs[-1][2] if docs else None

