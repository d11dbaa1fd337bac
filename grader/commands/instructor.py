"""The instructors' commands: `grade batch`, `grade report`, `grade gradescope-autograder`, `grade release`.

Thin click commands: they parse options, call the library (`instructor.batch`, `report`,
`exports`, `gradescope`, `release`) and turn its errors into messages that say what to do (exit
code 2, as every setup error: `grader.commands`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

import click

from grader.commands import SetupFailure, complete_exercise, device_option, exercise_named, seed_option, timeout_option


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """A progress line with the time left, on stderr: redrawn on a terminal, one line per student otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.width, self.started = width, time.monotonic()

    def line(self, done: int, total: int, last: str) -> str:
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        filled = int(self.width * done / total) if total else self.width
        return (f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{total} students  "
                f"elapsed {_duration(elapsed)}  left ~{_duration(eta)}  {last}")

    def __call__(self, event, done: int, total: int) -> None:  # noqa: ANN001 - batch.Event
        doc = event.document
        last = f"{event.student}: {doc['score']:g}/{doc['max_score']:g}" if doc else event.student
        if event.outcome != "graded":
            last += f" ({event.outcome})"
        text = self.line(done, total, last)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if done == total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _read_seed(seed: int | None, seed_file: Path | None) -> int:
    if seed_file is None:
        return 0 if seed is None else seed
    if seed is not None:
        raise click.UsageError("Pass --seed or --seed-file, not both.")
    text = seed_file.read_text(encoding="utf-8", errors="replace").strip()
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        raise click.UsageError(f"{seed_file} should hold the seed, an integer, on its first line.") from None


@click.command("batch")
@click.argument("submissions", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the per-student results (default: SUBMISSIONS-results beside SUBMISSIONS).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Students graded at once (default: the number of cores).")
@click.option("--seed", type=int, default=None,
              help="Base seed of the hidden inputs (default 0); use a secret one for collected work.")
@click.option("--seed-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read the seed from this file instead, which keeps it off the command line "
                   "(other processes can read command lines).")
@click.option("--exercise", "exercises", multiple=True, metavar="NAME", shell_complete=complete_exercise,
              help="Grade only this exercise (repeatable; default: all).")
@click.option("--force", is_flag=True, help="Grade everyone again, also with another seed than the folder's results.")
@timeout_option
@device_option
@click.option("--allow-unsandboxed", is_flag=True,
              help="Grade even where no sandbox is available (student code then runs with your rights).")
def batch_cmd(submissions: Path, out: Path | None, jobs: int | None, seed: int | None, seed_file: Path | None,
              exercises: tuple[str, ...], force: bool, timeout: float, device: str, allow_unsandboxed: bool) -> None:
    """Grade every submission in SUBMISSIONS in parallel.

    SUBMISSIONS is a folder, or one .zip of them all, holding one folder or .zip per student, or
    the flat export of Canvas, Moodle or Blackboard (the student taken from each file's name).
    Writes OUT/<student>.json per student (schema 1 plus the student id and the quiz results that
    `grade quiz --json` wrote, when the submission holds them). A student already graded from the
    same submission, grader and exercises is kept; the others are graded again, so an interrupted
    batch resumes. A submission that hangs, crashes, exhausts memory or kills its grader costs that
    student points and nothing else. Student code runs in a sandbox (Linux Landlock, or an
    unprivileged user when grading as root); without one the batch refuses to start unless
    --allow-unsandboxed.
    """
    from grader.instructor.batch import BatchError, BatchOptions, run_batch
    from grader.instructor.submissions import DiscoveryError, class_submissions
    from grader.runner import sandbox

    for name in exercises:
        exercise_named(name)  # a usage error for a name the catalogue lacks
    if submissions.is_file() and submissions.suffix.lower() != ".zip":
        raise click.UsageError(f"{submissions} is neither a folder of submissions nor a .zip of them all.")
    stem = submissions.name[:-4] if submissions.is_file() else submissions.name
    out = out or submissions.parent / f"{stem}-results"
    seed = _read_seed(seed, seed_file)
    if seed == 0:
        click.echo("note: grading with the public seed 0, whose inputs the student edition carries; "
                   "pass a secret --seed-file for collected work.", err=True)
    click.echo(sandbox.describe(sandbox.plan()), err=True)
    options = BatchOptions(out=out, jobs=jobs or max(1, os.cpu_count() or 1), seed=seed, timeout=timeout,
                           exercises=exercises, force=force, device=device, allow_unsandboxed=allow_unsandboxed)
    try:
        with class_submissions(submissions, exclude=(out,)) as found:
            for note in found.left_out:
                click.echo(f"note: left out {note}", err=True)
            if not found.submissions:
                raise click.UsageError(f"{submissions} holds no submissions: put one folder or .zip per student in "
                                       "it, or the export of Canvas, Moodle or Blackboard.")
            summary = run_batch(found.submissions, options, ProgressBar())
    except DiscoveryError as exc:
        raise click.UsageError(str(exc)) from None
    except BatchError as exc:
        raise SetupFailure(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: every grading process was stopped. The results written so far are kept in {out}; "
                   "run the same command again to grade the rest.", err=True)
        sys.exit(130)
    parts = [f"graded {len(summary.graded)}"]
    if summary.crashed:
        parts.append(f"with crashes or timeouts {len(summary.crashed)}")
    if summary.refused:
        parts.append(f"refused {len(summary.refused)} ({', '.join(summary.refused)})")
    if summary.regraded:
        reasons = ", ".join(f"{len(names)} {why}" for why, names in summary.regraded.items())
        parts.append(f"of which graded again {sum(map(len, summary.regraded.values()))} ({reasons})")
    if summary.skipped:
        parts.append(f"kept {len(summary.skipped)} already graded from the same submission (--force grades them again)")
    click.echo(f"{', '.join(parts)} in {_duration(summary.elapsed_s)} (sandbox: {summary.sandbox}); results in {out}")
    click.echo(f"next: grade report {out} --html report.html")


@click.command("report")
@click.argument("results_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the class report as one self-contained HTML file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one row per student, one column per exercise and quiz topic.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JUnit XML: one test suite per student, one test case per check.")
@click.option("--title", default="cnn-grader class report", show_default=True)
def report_cmd(results_dir: Path, html_path: Path | None, csv_path: Path | None, junit_path: Path | None,
               title: str) -> None:
    """Write the class report (HTML), CSV and JUnit XML from the results of `grade batch`.

    The results are first checked against the batch's manifest: a result that changed since the
    batch wrote it, is missing, or was not written by it is named, and nothing is written (exit 2)."""
    if not (html_path or csv_path or junit_path):
        raise click.UsageError("Nothing to write: pass --html FILE, --csv FILE and/or --junit FILE.")
    from grader.instructor import exports
    from grader.instructor.classdata import MANIFEST, load_results, read_manifest, verify_results

    manifest = read_manifest(results_dir)
    if manifest is None:
        click.echo(f"note: {results_dir} has no batch manifest ({MANIFEST} with digests), so these results "
                   "cannot be checked against what `grade batch` wrote", err=True)
    else:
        problems = verify_results(results_dir, manifest["results"])
        if problems:
            raise SetupFailure(
                f"These results in {results_dir} do not match what `grade batch` wrote:\n"
                + "\n".join(f"  {p}" for p in problems)
                + "\nDo not use these grades: delete the files named here and run `grade batch` again "
                  "(it grades them again and keeps the others).")
    try:
        results = load_results(results_dir)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not results.students:
        raise click.UsageError(f"{results_dir} holds no student results; run `grade batch` first.")
    for note in results.skipped:
        click.echo(f"note: left out {note}", err=True)
    if html_path:
        from grader.instructor.report import plural, render_report

        exports.write_text(html_path, render_report(results, title=title))
        click.echo(f"wrote {html_path} ({plural(len(results.students), 'student')})")
    if csv_path:
        exports.write_text(csv_path, exports.class_csv(results))
        click.echo(f"wrote {csv_path}")
    if junit_path:
        exports.write_text(junit_path, exports.junit_xml(results))
        click.echo(f"wrote {junit_path}")


def _warn_edited(names: tuple[str, ...] | list[str]) -> None:
    if names:
        files = ", ".join(f"exercises/{n}.py" for n in names)
        click.echo(f"warning: {files} differ{'s' if len(names) == 1 else ''} from the stubs made from solutions/ "
                   "(did you try the exercises in this checkout?). What was written holds fresh stubs, not these "
                   "files; `python -m grader.maint stubs NAME` restores a stub here.", err=True)


@click.command("gradescope-autograder")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The zip to upload to Gradescope (Programming Assignment > Configure Autograder).")
@click.option("--seed", type=int, required=True, help="The secret seed of the hidden inputs.")
@click.option("--exercise", "exercises", multiple=True, metavar="NAME", help="Grade only this exercise (repeatable).")
@timeout_option
@click.option("--visibility", type=click.Choice(["visible", "hidden", "after_due_date", "after_published"]),
              default="visible", show_default=True, help="When students see each check's result.")
@click.option("--torch", "torch_version", metavar="VERSION", default=None,
              help="The torch version setup.sh installs (default: the one installed here, with which the course "
                   "was tested).")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Grade even in a container that offers no sandbox (no Landlock and not root).")
def gradescope_cmd(out: Path, seed: int, exercises: tuple[str, ...], timeout: float, visibility: str,
                   torch_version: str | None, allow_unsandboxed: bool) -> None:
    """Build the zip with which Gradescope grades each submission in its own container.

    In the container, student code runs in a sandbox (Linux Landlock, or the unprivileged user
    nobody); where neither is possible, grading is refused unless --allow-unsandboxed."""
    from grader.instructor.gradescope import AutograderError, build_autograder_zip

    try:
        info = build_autograder_zip(out, seed=seed, exercises=list(exercises), timeout=timeout, visibility=visibility,
                                    torch_version=torch_version, allow_unsandboxed=allow_unsandboxed)
    except AutograderError as exc:
        raise SetupFailure(str(exc)) from None
    _warn_edited(info["edited"])
    click.echo(f"wrote {out} ({info['files']} files, {info['bytes'] / 1e6:.1f} MB) grading {', '.join(info['exercises'])}; "
               f"setup.sh installs torch {info['torch']}")
    click.echo("keep it private: it holds the references and the secret seed.")


@click.command("release")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new folder for the student edition.")
@click.option("--exercise", "exercises", multiple=True, metavar="NAME", shell_complete=complete_exercise,
              help="Record only this exercise (repeatable; default: all). The others cannot be graded in the edition.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Processes that record the exercises side by side, this one included (default: the number "
                   "of cores).")
def release_cmd(out: Path, exercises: tuple[str, ...], jobs: int | None) -> None:
    """Write the student edition: the course without solutions/, with recorded expected outputs."""
    from grader.instructor.release import ReleaseError, make_release

    for name in exercises:
        exercise_named(name)  # a usage error for a name the catalogue lacks
    try:
        release = make_release(out, exercises=list(exercises) or None, jobs=jobs)
    except ReleaseError as exc:
        raise SetupFailure(str(exc)) from None
    _warn_edited(release.edited)
    click.echo(f"wrote the student edition to {release.root}: {len(release.exercises)} exercises, "
               f"{release.recorded_bytes / 1e6:.1f} MB of recorded outputs for the public seed.")
    click.echo("instructors grade collected work live, with the references and a secret --seed.")


@click.command("github-classroom")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new folder: the assignment's template repository.")
@seed_option("The seed of the hidden inputs (students can see it: this route is formative).")
@click.option("--exercise", "exercises", multiple=True, metavar="NAME", shell_complete=complete_exercise,
              help="Only this exercise (repeatable).")
def github_classroom_cmd(out: Path, seed: int, exercises: tuple[str, ...]) -> None:
    """Write the student edition with a GitHub Classroom autograding workflow (one step per part)."""
    from grader.instructor.classroom import write_classroom
    from grader.instructor.release import ReleaseError

    for name in exercises:
        exercise_named(name)  # a usage error for a name the catalogue lacks
    try:
        workflow = write_classroom(out, seed=seed, names=list(exercises) or None)
    except ReleaseError as exc:
        raise SetupFailure(str(exc)) from None
    click.echo(f"wrote {out} with {workflow.relative_to(out)}: push it as the assignment's template repository.")
    click.echo("Students can read and change their own repository, so this grading is formative; "
               "grade collected work with Gradescope or `grade batch --seed SECRET`.")
