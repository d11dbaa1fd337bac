"""Batch grading speed: `grade batch` with --jobs 1 and --jobs 2, against one `grade all`.

    python benchmarks/bench_batch.py [--students 40] [--exercise NAME ...]

Runs in a snapshot of the course (a copy in a temporary folder). Generates the submissions with `grader.instructor.demo.write_submissions` (half references, a quarter
stubs, a quarter references made slightly wrong), then times, as whole commands in fresh
processes: `grade batch --jobs 1`, `grade batch --jobs 2` (each into a fresh results folder) and
one `grade all` on the references. Prints the wall times, the speed-up of two jobs over one, and
the cost per submission (batch time / students) against the single `grade all`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(cmd: list[str], course: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=course, env={**os.environ, "PYTHONPATH": str(course)}, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def _copy_course(dest: Path) -> Path:
    """A snapshot of the course, so that edits in the checkout during the run change nothing."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("grader", "solutions", "exercises", "quizzes"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def main() -> None:
    from grader.instructor.demo import write_submissions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--exercise", action="append", default=[], metavar="NAME",
                        help="only this exercise (repeatable; default: all)")
    args = parser.parse_args()
    grade = [sys.executable, "-m", "grader.cli"]
    only = [a for name in args.exercise for a in ("--exercise", name)]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        course = _copy_course(Path(tmp) / "course")
        subs = Path(tmp) / "submissions"
        write_submissions(subs, args.students, args.exercise or None)
        times = {}
        for jobs in (1, 2):
            out = Path(tmp) / f"results-{jobs}"
            times[jobs] = _timed([*grade, "batch", str(subs), "--out", str(out), "--jobs", str(jobs), *only], course)
        reference = Path(tmp) / "references"
        reference.mkdir()
        for source in (course / "solutions").glob("*.py"):
            if not args.exercise or source.stem in args.exercise:
                (reference / source.name).write_text(source.read_text())
        single = _timed([*grade, "all", "--path", str(reference)], course)
    n = args.students
    print(f"machine: {os.cpu_count()} cores; {n} submissions; exercises: {', '.join(args.exercise) or 'all'}")
    print(f"grade all (references, one student)  {single:7.2f} s")
    for jobs, t in times.items():
        print(f"grade batch --jobs {jobs}                 {t:7.2f} s   {t / n:5.2f} s per submission "
              f"({t / n / single:4.2f}x a grade all)")
    print(f"speed-up of --jobs 2 over --jobs 1    {times[1] / times[2]:5.2f}x")


if __name__ == "__main__":
    main()
