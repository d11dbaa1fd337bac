"""Grading on Gradescope: the autograder zip, and what runs in each of its containers.

When a class outgrows one machine, Gradescope grades each submission in its own container.
`build_autograder_zip` writes the zip to upload (Gradescope's autograder specification: `setup.sh`
and `run_autograder` at the root; the zip is unpacked in `/autograder/source`):

    setup.sh                      installs Python, torch and the dependencies into /autograder/venv
    run_autograder                makes source/ private to root, then runs
                                  `python -m grader.instructor.gradescope --root /autograder`
    cnn_grader_autograder.json    the secret seed, the exercises, the timeout, the tests' visibility,
                                  whether to grade without a sandbox
    grader/ solutions/ exercises/ quizzes/ pyproject.toml    this course, references included

`setup.sh` pins torch to the version the course was tested with (`release.course_torch_version`,
the one installed where the zip is built, or `torch_version`) and takes the CPU wheel unless
`nvidia-smi` finds a GPU. `exercises/` holds stubs made afresh from the references, never the
working files (`info["edited"]` names those that differ).

`run` grades `/autograder/submission` exactly as `grade batch` grades one student (an agent
process, a sandboxed worker for the student's code) and writes `/autograder/results/results.json`
with `exports.gradescope_results`. The seed reaches the grader from the config file, never on a
command line. Gradescope's containers run as root: where their kernel lacks Landlock, the worker
runs as the unprivileged user nobody, and source/ (references, seed) is private to root. Like the
batch, it refuses to grade with no sandbox at all unless the zip was built with
`--allow-unsandboxed`. Whatever goes wrong, a results.json is written that says so.
The zip holds the references and the seed: keep it private.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from grader import __version__
from grader.paths import PACKAGE_DIR, checkout_root

CONFIG_NAME = "cnn_grader_autograder.json"
_SKIP_PARTS = {"__pycache__", "_data", "recorded", ".pytest_cache"}
_EXECUTABLE = 0o100755 << 16
_REGULAR = 0o100644 << 16


class AutograderError(ValueError):
    """The autograder zip cannot be built (the message says why)."""


def _scripts_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(PACKAGE_DIR / "instructor" / "templates")), autoescape=False,
                      undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["shquote"] = shlex.quote
    return env


def _requirements(pyproject: Path) -> list[str]:
    """The course's dependencies but torch (which setup.sh installs pinned, on its own)."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [d for d in deps if re.split(r"[\s<>=!~;\[]", d.strip(), maxsplit=1)[0].lower() != "torch"]


def _add_tree(zf: zipfile.ZipFile, folder: Path, arcroot: str) -> int:
    count = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_dir() or path.is_symlink() or _SKIP_PARTS & set(rel.parts) or path.suffix in (".pyc", ".tmp"):
            continue
        zf.write(path, f"{arcroot}/{rel.as_posix()}")
        count += 1
    return count


def _add_text(zf: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = _EXECUTABLE if executable else _REGULAR
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, text)


def build_autograder_zip(out: Path, *, seed: int, exercises: list[str] | None = None, timeout: float = 10.0,
                         visibility: str = "visible", torch_version: str | None = None,
                         allow_unsandboxed: bool = False) -> dict[str, Any]:
    """Write the Gradescope autograder zip to `out`; returns {"files", "bytes", "exercises", "torch",
    "edited"} (see the module docstring)."""
    from grader.catalog import exercise_names
    from grader.instructor.exports import GRADESCOPE_VISIBILITY
    from grader.instructor.release import course_torch_version
    from grader.stubs import edited_stubs, generated_stubs

    root = checkout_root()
    if root is None:
        raise AutograderError("`grade gradescope-autograder` runs from a checkout of the course (with solutions/).")
    known = exercise_names()
    unknown = [n for n in exercises or [] if n not in known]
    if unknown:
        raise AutograderError(f"unknown exercise(s) {', '.join(unknown)}; `grade list` shows them all")
    if visibility not in GRADESCOPE_VISIBILITY:
        raise AutograderError(f"visibility {visibility!r} is not one of {', '.join(GRADESCOPE_VISIBILITY)}")
    chosen = [n for n in known if not exercises or n in exercises]
    missing = [n for n in chosen if not (root / "solutions" / f"{n}.py").is_file()]
    if missing:
        raise AutograderError(f"no reference for {', '.join(missing)} in {root / 'solutions'}")
    torch_version = torch_version or course_torch_version()
    if not re.fullmatch(r"\d+(\.\d+)*([a-z]+\d*)?(\.dev\d+)?", torch_version):
        raise AutograderError(f"torch version {torch_version!r} is not a version number such as 2.13.0")
    requirements = _requirements(root / "pyproject.toml")
    env = _scripts_environment()
    config = {"seed": seed, "exercises": chosen, "timeout": timeout, "visibility": visibility,
              "allow_unsandboxed": allow_unsandboxed, "grader_version": __version__}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _add_text(zf, "setup.sh", env.get_template("setup.sh.j2").render(
            version=__version__, torch_version=torch_version, requirements=requirements), executable=True)
        _add_text(zf, "run_autograder", env.get_template("run_autograder.j2").render(version=__version__),
                  executable=True)
        _add_text(zf, CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        files += 3
        files += _add_tree(zf, PACKAGE_DIR, "grader")
        for kind in ("solutions", "quizzes"):
            if (root / kind).is_dir():
                files += _add_tree(zf, root / kind, kind)
        for name, text in generated_stubs(root / "solutions").items():
            _add_text(zf, f"exercises/{name}.py", text)
            files += 1
        for name in ("pyproject.toml", "README.md"):
            if (root / name).is_file():
                zf.write(root / name, name)
                files += 1
    return {"files": files, "bytes": out.stat().st_size, "exercises": chosen, "torch": torch_version,
            "edited": edited_stubs(root)}


# --- in the container ---------------------------------------------------------------------------
def grade_submission(submission: Path, config: dict[str, Any], protect: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Grade one submission folder as `grade batch` grades a student; returns the per-student document.
    `protect`: more paths the student's code must not reach (the config file that holds the seed)."""
    from grader.instructor.batch import BatchOptions, run_batch
    from grader.instructor.submissions import Submission

    with tempfile.TemporaryDirectory(prefix="cnn-grader-gradescope-") as tmp:
        options = BatchOptions(out=Path(tmp), jobs=1, seed=int(config["seed"]), timeout=float(config["timeout"]),
                               exercises=tuple(config["exercises"]), force=True, protect=protect,
                               allow_unsandboxed=bool(config.get("allow_unsandboxed", False)))
        run_batch([Submission("submission", submission)], options)
        return json.loads((Path(tmp) / "submission.json").read_text(encoding="utf-8"))


def run(root: Path) -> dict[str, Any]:
    """Grade `root/submission` and write `root/results/results.json`; returns what was written."""
    from grader.instructor.exports import gradescope_results
    from grader.engine.results import write_json

    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        config_path = root / "source" / CONFIG_NAME
        config = json.loads(config_path.read_text(encoding="utf-8"))
        document = grade_submission(root / "submission", config, protect=(config_path, results_path.parent))
        results = gradescope_results(document, visibility=config.get("visibility", "visible"))
    except Exception as exc:  # noqa: BLE001 - Gradescope must get a results.json whatever happened
        results = {"score": 0.0, "output": f"The autograder could not grade this submission ({type(exc).__name__}: "
                                           f"{exc}). Please tell your instructor.", "tests": []}
    write_json(results_path, results)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.instructor.gradescope",
                                     description="Grade a Gradescope submission (run by run_autograder).")
    parser.add_argument("--root", type=Path, default=Path("/autograder"),
                        help="the autograder folder holding source/, submission/ and results/")
    args = parser.parse_args(argv)
    results = run(args.root)
    print(f"score {results.get('score')}; {len(results.get('tests', []))} tests; "
          f"written to {args.root / 'results' / 'results.json'}")


if __name__ == "__main__":
    main()
