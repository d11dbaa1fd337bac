"""Cold start versus warm re-grade: what `grade watch` saves on every save of a file.

- cold: `grade exercise NAME` in a fresh process (interpreter, torch import, worker start, checks),
  which is what a learner pays per save without watch mode;
- watch, first: the first grading inside `grade watch` (worker start and torch import included);
- warm: from the moment a save lands on disk to the re-grade's report, with the worker kept warm
  (detection latency of the poll and the settle included), and the grading alone.

    python benchmarks/bench_watch.py [--exercise conv] [--repeats 5] [--interval 0.3]

Each figure is the median of the repeats (min and max beside it). The file graded is the reference
itself, so every check runs to the end (the slowest case for a re-grade).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _row(label: str, values: list[float]) -> str:
    return f"{label:<38}{statistics.median(values):8.2f} s   (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def cold(name: str, folder: Path, repeats: int, env: dict[str, str]) -> list[float]:
    """Wall time of `grade exercise NAME` in a new process, `repeats` times."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "grader.cli", "exercise", name, "--path", str(folder)],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"grade exercise failed:\n{proc.stdout}\n{proc.stderr}")
    return times


def warm(name: str, folder: Path, repeats: int, interval: float) -> tuple[float, list[float], list[float]]:
    """(first grading, save-to-report times, grading-only times) inside one watch session."""
    from grader.study.watch import WatchConfig, Watcher

    path = folder / f"{name}.py"
    source = path.read_text(encoding="utf-8")
    marks: dict[str, float] = {}
    first: list[float] = []
    save_to_report: list[float] = []
    grading: list[float] = []

    class Keys:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def poll(self, timeout):
            time.sleep(timeout)

        def wait(self):
            return None

    def on_event(event) -> bool:
        now = time.perf_counter()
        if "saved" in marks:
            save_to_report.append(now - marks["saved"])
            grading.append(event.result.duration_s)
        else:
            first.append(now - marks["start"])
        if len(save_to_report) >= repeats:
            return True
        path.write_text(source + f"\n# save {len(save_to_report) + 1}\n", encoding="utf-8")
        marks["saved"] = time.perf_counter()
        return False

    watcher = Watcher(WatchConfig(folder=folder, interval=interval, stay=True, max_cycles=100_000),
                      echo=lambda s: None, keys=Keys(), on_event=on_event, done=set())
    marks["start"] = time.perf_counter()
    watcher.run(name)
    return first[0], save_to_report, grading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exercise", default="conv")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--interval", type=float, default=None, help="poll interval (default: watch's own)")
    args = parser.parse_args()
    from grader.study.watch import DEFAULT_INTERVAL_S

    interval = args.interval or DEFAULT_INTERVAL_S
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        folder = Path(tmp) / "exercises"
        folder.mkdir()
        (folder / f"{args.exercise}.py").write_text((ROOT / "solutions" / f"{args.exercise}.py").read_text(encoding="utf-8"), encoding="utf-8")
        os.environ["GRADE_HOME"] = str(Path(tmp) / "home")
        os.environ["GRADE_PROGRESS_DB"] = str(Path(tmp) / "home" / "progress.db")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        print(f"exercise {args.exercise}, {os.cpu_count()} CPUs, poll interval {interval:g} s")
        cold_times = cold(args.exercise, folder, max(3, args.repeats // 2), env)
        first, saves, grading = warm(args.exercise, folder, args.repeats, interval)
    print(_row("cold: `grade exercise` in a new process", cold_times))
    print(_row("watch: first grading (worker start)", [first]))
    print(_row("watch: save -> report (warm)", saves))
    print(_row("watch: grading alone (warm)", grading))
    print(f"a warm re-grade after a save takes {statistics.median(saves) / statistics.median(cold_times):.0%} of a cold start")


if __name__ == "__main__":
    main()
