"""A class's submissions: finding them, unpacking them safely, and locating what to grade.

`SUBMISSIONS` holds one folder or `.zip` per student; the name (without `.zip`) is the student's
id. Each is unpacked into a private folder before grading, so a student's code never touches the
collected originals. A zip is opened with limits (`Limits`): no absolute paths or `..`, no
symbolic links or special files, no encrypted entries, at most `max_files` files and `max_bytes`
uncompressed bytes in all (counted while writing, not trusted from the header). A folder is copied
with the same limits, regular files only. Anything refused refuses the whole submission, with the
reason, which the student's result carries.

In the unpacked folder each exercise's `<name>.py` is looked for at any depth (the shallowest
wins), and the quiz results that `grade quiz --json` wrote are any `*.json` whose `format` is
`cnn-grader/quiz-results` (the newest by `generated_at` when there are several).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
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


@dataclass(frozen=True)
class Limits:
    max_files: int = 500  # a student's folder holds a dozen files; thousands means something else
    max_bytes: int = 50 * 1024 * 1024  # uncompressed, in all: stubs are kilobytes


@dataclass(frozen=True)
class Submission:
    student: str  # the id: the folder or zip name, made safe for a file name
    source: Path  # the folder or the .zip


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


def discover(folder: Path) -> list[Submission]:
    """The submissions in `folder`, sorted by id; raises `ValueError` for two with the same id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of submissions (one folder or .zip per student)")
    found: dict[str, Submission] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")) or entry.is_symlink():
            continue
        if not (entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".zip")):
            continue
        sid = student_id(entry.name)
        if sid in found:
            raise ValueError(f"{found[sid].source.name} and {entry.name} are both student {sid!r}; rename one of them")
        found[sid] = Submission(sid, entry)
    return [found[k] for k in sorted(found)]


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


def unpack(submission: Submission, dest: Path, exercises: list[str], limits: Limits = Limits()) -> Unpacked:
    """Unpack `submission` into `dest` (created) and locate its exercise modules and quiz results.

    Raises `SubmissionError` when the submission is refused."""
    dest.mkdir(parents=True, exist_ok=False)
    if submission.source.is_dir():
        copy_folder(submission.source, dest, limits)
    else:
        extract_zip(submission.source, dest, limits)
    found = Unpacked(dest)
    for name in exercises:
        candidates = sorted((p for p in dest.rglob(f"{name}.py") if p.is_file()),
                            key=lambda p: (len(p.relative_to(dest).parts), str(p)))
        if candidates:
            found.files[name] = candidates[0]
            same_depth = [c for c in candidates if len(c.parts) == len(candidates[0].parts)]
            if len(same_depth) > 1:
                found.problems.append(f"several {name}.py at the same depth; graded "
                                      f"{candidates[0].relative_to(dest).as_posix()}")
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


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
