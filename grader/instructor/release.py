"""`grade release`: the student edition of the course, without `solutions/`.

The copy holds `grader/`, `exercises/`, `quizzes/`, `docs/` (the contract and the study notes),
`pyproject.toml`, a learner's README (`templates/student_readme.md.j2`: no instructors' tools) and
the other top-level documents. In place of the references it carries, in `grader/recorded/`, the
expected outputs that the references give for the public seed (see `grader.engine.recording`), so
grading there gives the same results as grading live; instructors grade collected work live with a
secret `--seed`.

The stubs it ships are made afresh from the references (`grader.stubs.generated_stubs`), never
copied from the working `exercises/`, where the instructor may have tried an exercise; the
exercises whose working file differs are named in `Release.edited`, for a warning.
The copy also holds `grader/_data/{exercises,quizzes,docs}` (the pristine stubs, the quiz bank and
the documents),
because without `solutions/` it is not recognised as a checkout (`grader.paths.data_dir`), and its
`pyproject.toml` is rewritten to package those folders and no `grader._data.solutions`.
Before returning, the recordings are searched for lines of the references' own code (none may be there).
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from grader.paths import PACKAGE_DIR, checkout_root, data_dir
from grader.engine.spec import DEFAULT_SEED

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp", ".pytest_cache")
_MIN_LEAK_LINE = 20  # shorter reference lines are too generic (`return out`) to mean anything


class ReleaseError(ValueError):
    """The student edition cannot be made (the message says why and what to do)."""


@dataclass(frozen=True)
class Release:
    root: Path
    exercises: tuple[str, ...]
    recorded_bytes: int
    edited: tuple[str, ...] = ()  # exercises whose working exercises/<name>.py is not the shipped stub


def course_torch_version() -> str:
    """The version of torch installed here, with which the course's checks ran ("2.13.0", no "+cpu")."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").split("+", 1)[0]
    except PackageNotFoundError:
        import torch

        return torch.__version__.split("+", 1)[0]


def write_stubs_into(folders: list[Path], solutions: Path) -> list[str]:
    """Write the stub of every reference in `solutions` into each of `folders`; returns the names."""
    from grader.stubs import generated_stubs

    stubs = generated_stubs(solutions)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in stubs.items():
            (folder / f"{name}.py").write_text(text, encoding="utf-8")
    return list(stubs)


def student_readme() -> str:
    """The learner's README of the student edition."""
    from grader.catalog import load_catalog
    from grader.instructor.report import render_text

    return render_text("student_readme.md.j2", exercises=load_catalog(), torch_version=course_torch_version())


def _record_one(name: str, directory: str, seed: int) -> int:
    """Record one exercise (in a process of the pool, or in this one); returns the file's size.
    The references run on one thread, as when grading computes the expected values live."""
    import torch

    from grader.engine.oracles import LiveOracle
    from grader.engine.recording import write_recording

    live = LiveOracle(name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return write_recording(name, Path(directory), live, seed).stat().st_size
    finally:
        torch.set_num_threads(threads)


def _record_all(names: list[str], directory: Path, seed: int, jobs: int) -> int:
    """Record `names` into `directory` in `jobs` processes, this one included; returns the bytes
    written. The `jobs - 1` processes of a pool take the exercises one at a time from the front of
    the list and this one takes them from the back, so that it records instead of waiting (also
    while the pool starts: a torch import per process). After a failure, no exercise is begun."""
    import multiprocessing
    import threading
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    if jobs == 1:
        return sum(_record_one(n, str(directory), seed) for n in names)
    todo, lock = deque(names), threading.Lock()

    def drain(front: bool, record: Callable[[str], int]) -> int:
        total = 0
        try:
            while True:
                with lock:
                    if not todo:
                        return total
                    name = todo.popleft() if front else todo.pop()
                total += record(name)
        except BaseException:
            with lock:
                todo.clear()
            raise

    with ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("spawn")) as pool, \
            ThreadPoolExecutor(jobs - 1) as feeders:
        slots = [feeders.submit(drain, True, lambda n: pool.submit(_record_one, n, str(directory), seed).result())
                 for _ in range(jobs - 1)]
        here = drain(False, lambda n: _record_one(n, str(directory), seed))
        return here + sum(slot.result() for slot in slots)


def make_release(out: Path, *, exercises: list[str] | None = None, seed: int = DEFAULT_SEED,
                 jobs: int | None = None) -> Release:
    """Write the student edition into `out` (a new or empty folder) and return what it holds.

    The exercises are recorded side by side in `jobs` processes, this one included (default: the
    number of cores); with one job (or one exercise), only in this one."""
    import os

    from grader.catalog import exercise_names

    root = checkout_root()
    if root is None:
        raise ReleaseError("`grade release` runs from a checkout of the course (with solutions/ beside grader/).")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} exists and is not an empty folder; choose a new folder for the student edition.")
    if out.resolve().is_relative_to(root.resolve()):
        raise ReleaseError(f"{out} is inside the course checkout {root}; write the student edition elsewhere.")
    names = list(exercises or exercise_names())
    missing = [n for n in names if not (data_dir("solutions") / f"{n}.py").is_file()]
    if missing:
        raise ReleaseError(f"no reference for {', '.join(missing)} in {data_dir('solutions')}: cannot record their outputs.")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PACKAGE_DIR, out / "grader", ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "*.tmp", "_data", "recorded"))
    from grader.stubs import edited_stubs

    write_stubs_into([out / "exercises", out / "grader" / "_data" / "exercises"], data_dir("solutions"))
    for kind in ("quizzes", "docs"):
        if data_dir(kind).is_dir():
            shutil.copytree(data_dir(kind), out / kind, ignore=_IGNORE)
            shutil.copytree(data_dir(kind), out / "grader" / "_data" / kind, ignore=_IGNORE)
    for doc in sorted(root.glob("*.md")) + sorted(root.glob("LICENSE*")):
        if doc.name != "README.md":
            shutil.copy2(doc, out / doc.name)
    (out / "README.md").write_text(student_readme(), encoding="utf-8")
    (out / "pyproject.toml").write_text(student_pyproject((root / "pyproject.toml").read_text(encoding="utf-8")),
                                        encoding="utf-8")
    recorded = out / "grader" / "recorded"
    recorded.mkdir(parents=True, exist_ok=True)
    from grader.engine.recording import RecordingError  # torch: imported only to record

    try:
        total = _record_all(names, recorded, seed, max(1, min(jobs or os.cpu_count() or 1, len(names))))
    except RecordingError as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise ReleaseError(str(exc)) from None
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    leaks = find_leaks(sorted((out / "grader" / "recorded").glob("*.pt")), data_dir("solutions"),
                       out / "grader" / "_data" / "exercises")
    if leaks or (out / "solutions").exists() or (out / "grader" / "_data" / "solutions").exists():
        shutil.rmtree(out, ignore_errors=True)
        raise ReleaseError("the student edition would contain code of the references, so it was deleted:\n  "
                           + "\n  ".join(leaks[:10] or ["a solutions/ folder"]))
    return Release(out, tuple(names), total, tuple(edited_stubs(root)))


def student_pyproject(text: str) -> str:
    """The checkout's pyproject.toml without the references: `grader._data.*` packaged from
    `grader/_data/` (no `package-dir` mapping to the top-level folders), no `grader._data.solutions`."""
    lines, in_package_dir = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_package_dir = stripped == "[tool.setuptools.package-dir]"
            if in_package_dir:
                continue
        if in_package_dir and stripped.startswith('"grader._data.'):
            continue
        if re.fullmatch(r'"grader\._data\.solutions",?', stripped):
            continue
        lines.append(line)
    result = "\n".join(lines) + "\n"
    packages = tomllib.loads(result).get("tool", {}).get("setuptools", {}).get("packages", [])
    if any("solutions" in p for p in packages):
        raise ReleaseError("pyproject.toml: could not remove grader._data.solutions from [tool.setuptools] packages")
    return result


def _code_lines(reference: Path, stub: Path | None) -> set[str]:
    """The reference's lines that are its own: not in the stub (docstrings and signatures are shared)."""
    shared = set()
    if stub is not None and stub.is_file():
        shared = {ln.strip() for ln in stub.read_text(encoding="utf-8", errors="replace").splitlines()}
    return {ln.strip() for ln in reference.read_text(encoding="utf-8", errors="replace").splitlines()
            if len(ln.strip()) >= _MIN_LEAK_LINE and ln.strip() not in shared}


def _strings(value: Any) -> list[str]:
    """Every string in a recording, keys included (code could only travel as text)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def find_leaks(files: list[Path], solutions: Path, stubs: Path) -> list[str]:
    """'file: line' for every line of a reference's own code (see `_code_lines`) in the text of the
    recordings `files` (each loaded as plain data, `weights_only=True`)."""
    import torch

    needles = {}
    for ref in sorted(solutions.glob("*.py")):
        for line in _code_lines(ref, stubs / ref.name):
            needles[line] = ref.name
    found = []
    for file in files:
        text = "\n".join(_strings(torch.load(file, weights_only=True, map_location="cpu")))
        found += [f"{file.name}: {needle[:80]} (from solutions/{ref_name})"
                  for needle, ref_name in needles.items() if needle in text]
    return found
