"""The `grade` command line: a click group whose subcommands are loaded only when used.

Each command lives in the library module that does its work (`grader.commands.*`,
`grader.commands.quiz`, ...) and is imported only when that command runs, so `grade --help` and
`grade list` never import torch. Add a command by adding one line to `_COMMANDS`.

Two things make a grading command start and end sooner (`main`): its zygote is started before
anything else is imported, so that the zygote's torch import runs beside this process's (on
another core), and a process that imported torch leaves without tearing the interpreter down
(the exit handlers run, the output is flushed): that teardown alone costs a third of a torch import.

`main` also holds back a Ctrl-C that arrives while torch is being imported (`_on_interrupt`): a
KeyboardInterrupt raised inside that import is swallowed by it or aborts the process from C++,
so a command would go on grading, hang, or die with a core message instead of stopping cleanly.
The interrupt is raised as soon as the import has finished.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
import threading
import time

import click

from grader import __version__

# name -> ("module", "attribute", "one-line help shown by `grade --help`")
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "list": ("grader.commands.exercise", "list_cmd", "List the exercises with their parts, points and your last result."),
    "exercise": ("grader.commands.exercise", "exercise_cmd", "Grade one exercise and explain every check."),
    "all": ("grader.commands.exercise", "all_cmd", "Grade every exercise and print one summary table."),
    "quiz": ("grader.commands.quiz", "quiz", "Answer true/false statements from the notes, with spaced revision."),
    "batch": ("grader.commands.instructor", "batch_cmd", "Grade a whole class of submissions in parallel (instructors)."),
    "report": ("grader.commands.instructor", "report_cmd", "Write the HTML class report and CSV from batch results."),
    "gradescope-autograder": ("grader.commands.instructor", "gradescope_cmd", "Build a Gradescope autograder zip."),
    "release": ("grader.commands.instructor", "release_cmd", "Write the student edition of the course (no solutions)."),
    "github-classroom": ("grader.commands.instructor", "github_classroom_cmd",
                         "Write the student edition with a GitHub Classroom autograding workflow."),
    "init": ("grader.commands.study", "init_cmd", "Create a fresh working copy of the exercises."),
    "reset": ("grader.commands.study", "reset_cmd", "Restore one exercise's stub (your file is kept as a backup)."),
    "hint": ("grader.commands.study", "hint_cmd", "Show the next hint for an exercise part."),
    "watch": ("grader.commands.study", "watch_cmd", "Re-grade an exercise each time you save it."),
    "progress": ("grader.commands.study", "progress_cmd", "Show what you passed, what is due and what to do next."),
    "solution": ("grader.commands.study", "solution_cmd", "Show the reference solution once you have passed."),
    "notes": ("grader.study.notes", "notes_cmd", "Read the study notes of a section, or list the sections."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in _COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        try:
            return importlib.util.find_spec(_COMMANDS[name][0]) is not None
        except ModuleNotFoundError:
            return False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS or not self._available(cmd_name):
            return None
        module_name, attr, _ = _COMMANDS[cmd_name]
        module = importlib.import_module(module_name)
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; Ctrl-C ends it with one line and exit code 130 (as shells report it)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("\ninterrupted.", err=True)
            raise click.exceptions.Exit(130) from None

    def resolve_command(self, ctx, args):  # type: ignore[override]
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            import difflib

            name = args[0] if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else " Run `grade --help` for the list."
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx) from exc


def _version_text() -> str:
    """The grader's version, torch's (imported only here), the sandbox and CUDA, one per line."""
    lines = [f"cnn-grader {__version__}"]
    try:
        import torch
    except ImportError:
        lines.append("torch: not installed")
    else:
        lines.append(f"torch {torch.__version__}")
        lines.append(f"CUDA: {'available (' + torch.cuda.get_device_name(0) + ')' if torch.cuda.is_available() else 'not available'}")
    from grader.runner.sandbox import describe, plan

    lines.append(describe(plan()))
    return "\n".join(lines)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


def colour_wanted(no_color_flag: bool) -> bool | None:
    """False when colour is switched off (`--no-color`, or NO_COLOR set to anything but "", as
    no-color.org asks); None leaves click to decide, which drops escape codes when the output is
    not a terminal."""
    return False if no_color_flag or os.environ.get("NO_COLOR") else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the grader's and torch's versions, the sandbox and whether CUDA is available.")
@click.option("--no-color", "no_color", is_flag=True, help="No colour in the output (also: the NO_COLOR variable).")
@click.pass_context
def cli(ctx: click.Context, no_color: bool) -> None:
    """cnn-grader: self-grading CNN exercises and quizzes.

    Start with `grade list`, fill in a stub in exercises/, then `grade exercise NAME`.
    """
    ctx.color = colour_wanted(no_color)


_GRADING = ("exercise", "all", "watch")  # the commands whose worker comes from a zygote at once


def _prestart_zygote(argv: list[str]) -> None:
    """Start the zygote of a grading command now (for `--device` as given, else the CPU's); the
    group's own flags (`--no-color`) may come before the command."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command not in _GRADING or "--help" in argv or "-h" in argv or "--version" in argv:
        return
    device = _option_value(argv, "--device") or "cpu"
    if device in ("cpu", "cuda"):
        from grader.runner.zygote import preload_for, prestart

        prestart(device, preload_for(_exercises_named(command, argv)))


def _option_value(argv: list[str], option: str) -> str | None:
    """The value given last to `option` in `argv` (`--option VALUE` or `--option=VALUE`), if any."""
    value = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.partition("=")[2]
    return value


def _exercises_named(command: str, argv: list[str]) -> list:
    """The catalogue entries a grading command will grade: for `all`, those with a file in the
    folder it grades (`--path`, else the course's exercises/), else those named in its arguments
    (none if the catalogue or the course is not found: the command itself says why)."""
    from pathlib import Path

    from grader.catalog import CatalogError, load_catalog
    from grader.paths import CourseError, course_root, exercises_in

    try:
        catalog = load_catalog()
    except CatalogError:
        return []
    if command != "all":
        return [e for e in catalog if e.name in argv]
    path = _option_value(argv, "--path")
    try:
        folder = Path(path) if path is not None else course_root() / "exercises"
    except CourseError:
        return []
    present = set(exercises_in(folder, (e.name for e in catalog)))
    return [e for e in catalog if e.name in present]


def _exit(code: object) -> None:
    """Exit with `code` (a SystemExit's); once torch is loaded, without the interpreter's teardown."""
    if "torch" not in sys.modules:
        sys.exit(code)
    import atexit

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # leaving anyway: a late Ctrl-C must not break the exit handlers
    atexit._run_exitfuncs()  # zygotes, temporary folders...: everything registered to run at exit
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)


def _importing_torch() -> bool:
    """Whether a module of torch is being imported right now (its spec is still initialising)."""
    return any(name.partition(".")[0] == "torch" and getattr(getattr(module, "__spec__", None), "_initializing", False)
               for name, module in list(sys.modules.items()))


def _on_interrupt(signum: int, frame: object) -> None:
    """SIGINT: KeyboardInterrupt, except while torch is being imported; then the signal is sent
    again to the main thread (by a watcher thread) once the import has finished."""
    if not _importing_torch():
        raise KeyboardInterrupt

    def resend() -> None:
        while _importing_torch():
            time.sleep(0.01)
        if hasattr(signal, "pthread_kill"):  # to the thread that may be waiting
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=resend, name="interrupt-after-import", daemon=True).start()


def hold_interrupts_during_torch_imports() -> None:
    """Handle SIGINT with `_on_interrupt`, unless this process ignores it (started in the background)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)


def main() -> None:
    """Console-script entry point."""
    hold_interrupts_during_torch_imports()
    _prestart_zygote(sys.argv[1:])
    try:
        cli.main(prog_name="grade")
    except SystemExit as exc:
        _exit(exc.code)


if __name__ == "__main__":  # pragma: no cover
    main()
