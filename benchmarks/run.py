"""Speed benchmark: every figure of the README's speed table, from one command. Not a test.

    python3 benchmarks/run.py [--repeat N] [--only NAME ...] [--batch] [--suite]

Each figure is a whole command in a fresh process, run `--repeat` times. The commands are run
*interleaved* (one round runs every command once, then the next round), so a machine whose load
changes during the run slows every command alike, and each command's ratio is taken within a
round, against the baseline run in that same round (`python -c pass` or `python -c "import
torch"`): the ratio printed is the median of the rounds' ratios. Printed per figure: the median,
min and max wall time, that ratio with its target, and the median CPU time (user + system, the
command's child processes included: the zygote and the worker), which a busy machine inflates
far less than wall time.

- `list`: `grade list` against `python -c pass` (target <= 3x);
- `quiz`: the time until `grade quiz` prints its first statement;
- `conv`: `grade exercise conv --path solutions` against a torch import (target <= 1.3x), with
  nothing kept from earlier runs (the references run);
- `all`: `grade all --path solutions` against a torch import (target <= 3.5x), as a learner's
  second run: the references' outputs for the public seed are kept from the run before
  (`engine.oracles.KeptValues`); `all-first` forgets them before each run, as a first run;
- `watch`: inside one `grade watch`, from a save of `conv.py` to its complete report (target
  <= 0.12 s), and the grading alone; the saves are spread over the rounds;
- `--batch`: `grade batch --jobs 1` and `--jobs 2` on 40 generated submissions (minutes);
- `--suite`: the test suite as the README runs it, `python3 -m pytest -q`, once: its wall and CPU
  time, and its ratio to this run's torch import (when measured), which compares across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GRADE = [PY, "-m", "grader.cli"]


@dataclass
class Figure:
    """One measured command: its label, how to run it, its baseline and its target ratio."""

    name: str
    label: str
    cmd: list[str]
    baseline: str | None = None  # the name of the Figure it is compared with
    target: float | None = None  # the largest ratio (or, without a baseline, seconds) allowed
    stdin: str | None = None
    first_line: bool = False  # time until the first non-empty line instead of until exit
    kept: bool = True  # False: the references' kept outputs (`oracles.KeptValues`) are forgotten before each run
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(fig: Figure, env: dict[str, str]) -> None:
    """Run `fig` once; append its wall and CPU seconds."""
    if not fig.kept:
        shutil.rmtree(Path(env["XDG_CACHE_HOME"]) / "cnn-grader" / "expected", ignore_errors=True)
    cpu0, t0 = _children_cpu(), time.perf_counter()
    if fig.first_line:
        proc = subprocess.Popen(fig.cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        while True:
            line = proc.stdout.readline()
            if not line or line.strip():
                break
        fig.wall.append(time.perf_counter() - t0)
        proc.kill()
        proc.communicate()
    else:
        proc = subprocess.run(fig.cmd, cwd=ROOT, env=env, input=fig.stdin, capture_output=True, text=True)
        fig.wall.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(fig.cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    fig.cpu.append(_children_cpu() - cpu0)


def _row(label: str, values: list[float], extra: str = "") -> str:
    med = statistics.median(values)
    return f"{label:<44}{med:8.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)}){extra}"


def _report(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        extra = f"  cpu {statistics.median(fig.cpu):.2f} s"
        if fig.baseline is not None:
            base = figures[fig.baseline]
            ratios = [a / b for a, b in zip(fig.wall, base.wall)]
            ratio = statistics.median(ratios)
            verdict = "" if fig.target is None else f" (target <= {fig.target:g}x: {'met' if ratio <= fig.target else 'NOT met'})"
            extra += f"  ratio {ratio:.2f}x {base.label}{verdict}"
        print(_row(fig.label, fig.wall, extra))


# --- watch ----------------------------------------------------------------------------------------
_WATCH_PROBE = r'''
import json, os, sys, tempfile, threading, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from grader.study.watch import WatchConfig, Watcher

saves, name = int(sys.argv[2]), sys.argv[3]
source = (Path(sys.argv[1]) / "solutions" / f"{name}.py").read_text(encoding="utf-8")
folder = Path(tempfile.mkdtemp(prefix="bench-watch-")) / "exercises"
folder.mkdir()
path = folder / f"{name}.py"
path.write_text(source, encoding="utf-8")
marks, report, grading = {}, [], []

def save(i):
    time.sleep(0.2)  # as a person would: the loop is idle again when the save lands
    marks["saved"] = time.perf_counter()
    path.write_text(source + f"\n# save {i}\n", encoding="utf-8")

def on_event(event):
    if "saved" in marks:
        report.append(time.perf_counter() - marks.pop("saved"))
        grading.append(event.result.duration_s)
    if len(report) >= saves:
        return True
    threading.Thread(target=save, args=(len(report) + 1,)).start()
    return False

class NoKeys:
    def __enter__(self): return self
    def __exit__(self, *exc): pass
    def fileno(self): return None
    def poll(self, timeout): time.sleep(timeout)
    def wait(self): return None

Watcher(WatchConfig(folder=folder, stay=True), echo=lambda s: None, keys=NoKeys(), on_event=on_event).run(name)
print(json.dumps({"report": report, "grading": grading}))
'''


def _watch(saves: int, env: dict[str, str]) -> dict[str, list[float]]:
    proc = subprocess.run([PY, "-c", _WATCH_PROBE, str(ROOT), str(saves), "conv"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"the watch probe failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- batch and the suite --------------------------------------------------------------------------
def _batch(students: int, env: dict[str, str]) -> None:
    sys.path.insert(0, str(ROOT))
    from grader.instructor.demo import write_submissions

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        subs = Path(tmp) / "submissions"
        write_submissions(subs, students, None)
        times = {}
        for jobs in (1, 2):
            t0 = time.perf_counter()
            proc = subprocess.run([*GRADE, "batch", str(subs), "--out", str(Path(tmp) / f"out-{jobs}"), "--jobs", str(jobs)],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            times[jobs] = time.perf_counter() - t0
            if proc.returncode not in (0, 1):
                raise SystemExit(f"grade batch failed:\n{proc.stderr[-2000:]}")
    for jobs, t in times.items():
        print(f"{f'grade batch --jobs {jobs}, {students} submissions':<44}{t:8.1f} s  ({t / students:.2f} s per submission)")
    print(f"{'speed-up of --jobs 2 over --jobs 1':<44}{times[1] / times[2]:8.2f}x")


def _suite(env: dict[str, str], torch_import: Figure | None) -> None:
    """Time the suite once; with the torch imports of this run, also in their units: a figure
    that compares across machines, whose speed the suite's target (60 s) does not follow."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    ratio = f"  ratio {elapsed / statistics.median(torch_import.wall):.0f}x {torch_import.label}" if torch_import else ""
    print(f"{'python3 -m pytest (the whole suite)':<44}{elapsed:8.1f} s  cpu {cpu:.0f} s{ratio}  (target <= 60 s)\n  {summary}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only these figures (list, quiz, conv, all, all-first, watch; repeatable)")
    parser.add_argument("--batch", action="store_true", help="also time `grade batch` on 40 submissions (minutes)")
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADE_HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")}
    figures = {f.name: f for f in [
        Figure("pass", "python -c pass", [PY, "-c", "pass"]),
        Figure("torch", "python -c 'import torch'", [PY, "-c", "import torch"]),
        Figure("list", "grade list", [*GRADE, "list"], "pass", 3.0),
        Figure("quiz", "grade quiz: first statement", [*GRADE, "quiz", "--seed", "1"], "pass", first_line=True),
        Figure("conv", "grade exercise conv --path solutions", [*GRADE, "exercise", "conv", "--path", "solutions"], "torch", 1.3,
               kept=False),
        # all-first, then all: the second run keeps what the first kept (conv, earlier in the round, forgets it)
        Figure("all-first", "grade all, nothing kept yet", [*GRADE, "all", "--path", "solutions"], "torch", 3.5, kept=False),
        Figure("all", "grade all --path solutions", [*GRADE, "all", "--path", "solutions"], "torch", 3.5),
    ]}
    wanted = set(args.only) or {*figures, "watch"}
    wanted |= {figures[n].baseline for n in wanted if n in figures and figures[n].baseline}
    figures = {n: f for n, f in figures.items() if n in wanted}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}, "
          f"{args.repeat} interleaved rounds")
    watch: dict[str, list[float]] = {"report": [], "grading": []}
    try:
        for _ in range(args.repeat):
            for fig in figures.values():
                _run(fig, env)
            if "watch" in wanted:
                for key, values in _watch(3, env).items():
                    watch[key] += values
        _report(figures)
        if watch["report"]:
            met = "met" if statistics.median(watch["report"]) <= 0.12 else "NOT met"
            print(_row("grade watch: save -> complete report", watch["report"], f"  (target <= 0.12 s: {met})"))
            print(_row("grade watch: grading alone", watch["grading"]))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        if args.batch:
            _batch(40, env)
        if args.suite:
            _suite(env, figures.get("torch"))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
