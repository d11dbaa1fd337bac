"""Speed benchmark: prints the figures the README quotes. Not a test; run it on the target machine.

    python3 benchmarks/bench.py [--repeat N]

Measures, as whole commands in fresh processes (median of N runs):
- `grade exercise conv` on the references vs `python -c "import torch"`, and their ratio (target <= 2.0);
- `grade list` vs `python -c pass` (target: list under 0.25 s);
- `grade quiz`: the time until the first statement is printed (target under 0.3 s);
and then runs benchmarks/bench_*.py (batch grading, watch mode) when present.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "GRADE_HOME": str(ROOT / ".grade-bench")}


def _time(cmd: list[str], repeat: int, stdin: str | None = None) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=ENV, input=stdin, capture_output=True, text=True, check=False)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _first_line_time(cmd: list[str], repeat: int) -> float:
    """Seconds until the command prints its first non-empty line (stdin kept open)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        while True:
            line = proc.stdout.readline()
            if not line or line.strip():
                break
        runs.append(time.perf_counter() - t0)
        proc.kill()
        proc.wait()
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    grade = [py, "-m", "grader.cli"]
    torch_import = _time([py, "-c", "import torch"], args.repeat)
    conv = _time([*grade, "exercise", "conv", "--path", "solutions"], args.repeat)
    bare = _time([py, "-c", "pass"], args.repeat)
    listing = _time([*grade, "list"], args.repeat)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"python -c 'import torch'            {torch_import:6.2f} s")
    print(f"grade exercise conv (references)     {conv:6.2f} s   ratio {conv / torch_import:4.2f}x  (target <= 2.0x)")
    print(f"python -c pass                       {bare:6.2f} s")
    print(f"grade list                           {listing:6.2f} s   ratio {listing / bare:4.2f}x  (target < 0.25 s)")
    try:
        quiz = _first_line_time([*grade, "quiz", "--seed", "1"], args.repeat)
        print(f"grade quiz: first statement after    {quiz:6.2f} s   (target < 0.3 s)")
    except (OSError, ValueError) as exc:
        print(f"grade quiz: not measured ({exc})")
    for extra in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"\n== {extra.name}")
        sys.stdout.flush()
        subprocess.run([py, str(extra)], cwd=ROOT, env=ENV, check=False)


if __name__ == "__main__":
    main()
