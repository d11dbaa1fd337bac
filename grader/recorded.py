"""Recorded expected outputs: grading without the references, for the student edition.

`record_exercise` runs `LiveOracle` for the public seed and keeps, for every check, its cases
(the inputs), the reference's result on each and every known mistake's result on each. They are
saved with `torch.save` as `grader/recorded/<exercise>.pt`: tensors, numbers, strings and
containers only (the file loads with `weights_only=True`), so it holds no code, and no source of
the references. `RecordedOracle` replays such a file and answers exactly what `LiveOracle` would
for that seed; for any other seed it refuses with `SetupError`, since only the references can make
new inputs. `make_oracle` in `grader.grading` picks it when the reference file is absent.

Cases that judge with an `assess` function keep a reference to it, "module:qualname" (a
module-level function of `grader.checks.*`, possibly inside a `functools.partial`), resolved again
when the file is read; the function itself is part of the grader, not of the reference.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import io
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from grader import __version__
from grader.paths import PACKAGE_DIR
from grader.spec import DEFAULT_SEED, Case, Check, derive_seed

FORMAT = "cnn-grader/recorded"
VERSION = 1
RECORDED_DIR = PACKAGE_DIR / "recorded"
_CASE_FIELDS = tuple(f.name for f in fields(Case) if f.name != "assess")


class RecordingError(ValueError):
    """An exercise's checks cannot be recorded as plain data (the message says which and why)."""


def recorded_path(exercise: str, directory: Path | None = None) -> Path:
    return Path(directory or RECORDED_DIR) / f"{exercise}.pt"


def checks_digest(exercise: str) -> str:
    """A digest of `grader/checks/<exercise>.py`: a recording made from other checks is stale."""
    source = (PACKAGE_DIR / "checks" / f"{exercise}.py").read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


# --- assess functions by name -------------------------------------------------------------------
def _resolve(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _function_name(fn: Any) -> str | None:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname:  # lambdas and functions defined inside functions
        return None
    name = f"{module}:{qualname}"
    try:
        return name if _resolve(name) is fn else None
    except (ImportError, AttributeError):
        return None


def _assess_spec(fn: Any, where: str) -> dict[str, Any] | None:
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        inner = _function_name(fn.func)
        if inner is not None:
            return {"function": inner, "args": list(fn.args), "kwargs": dict(fn.keywords)}
    else:
        name = _function_name(fn)
        if name is not None:
            return {"function": name, "args": [], "kwargs": {}}
    raise RecordingError(
        f"{where}: its `assess` ({fn!r}) is a lambda or a nested function, which cannot be recorded for the "
        "student edition. Make it a module-level function of the checks module (or a functools.partial of one).")


def _assess_from_spec(spec: dict[str, Any] | None) -> Any:
    if spec is None:
        return None
    fn = _resolve(spec["function"])
    return functools.partial(fn, *spec["args"], **spec["kwargs"]) if spec["args"] or spec["kwargs"] else fn


# --- recording ----------------------------------------------------------------------------------
def _signatures(ref: Any, cases: list[Case]) -> dict[str, list[str]]:
    """Parameter names of the reference functions the "call" cases use (for readable messages)."""
    out: dict[str, list[str]] = {}
    for case in cases:
        if case.probe == "call" and case.args and isinstance(case.args[0], str) and case.args[0] not in out:
            try:
                out[case.args[0]] = list(inspect.signature(getattr(ref, case.args[0])).parameters)
            except (AttributeError, TypeError, ValueError):
                pass
    return out


def record_exercise(name: str, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Everything `RecordedOracle` needs to grade `name` for `seed` (needs the reference)."""
    from grader.grading import LiveOracle, load_checks

    live = LiveOracle(name)
    checks: dict[str, Any] = {}
    all_cases: list[Case] = []
    for check in load_checks(name):
        check_seed = derive_seed(seed, name, check.name)
        cases = live.cases(check, check_seed)
        all_cases += cases
        entries = []
        for index, case in enumerate(cases):
            entry = {f: getattr(case, f) for f in _CASE_FIELDS}
            entry["assess"] = _assess_spec(case.assess, f"{name}: check {check.name!r}, case {index}")
            entry["expected"] = live.expected(check, index, case)
            entry["mistakes"] = live.mistakes(check, index, case) if check.mistakes else {}
            entries.append(entry)
        checks[check.name] = {"seed": check_seed, "cases": entries}
    data = {"format": FORMAT, "version": VERSION, "exercise": name, "seed": seed, "grader_version": __version__,
            "checks_digest": checks_digest(name), "signatures": _signatures(live.ref, all_cases), "checks": checks}
    _round_trip(data, name)
    return data


def _round_trip(data: dict[str, Any], name: str) -> None:
    """Fail now, not in a student's hands, if the data would not load as plain data."""
    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means something in it is not plain data
        raise RecordingError(f"{name}: the recorded cases hold something that is not plain data ({exc}). "
                             "Case arguments must be tensors, numbers, strings, None or containers of them.") from None


def write_recording(name: str, directory: Path, seed: int = DEFAULT_SEED) -> Path:
    """Record `name` and save it as `directory/<name>.pt`; returns the path."""
    path = recorded_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record_exercise(name, seed), path)
    return path


# --- replaying ----------------------------------------------------------------------------------
def _signature_stub(fn_name: str, params: list[str]) -> Any:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{fn_name}: the reference is not part of the student edition")

    stub.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params])
    return stub


class RecordedOracle:
    """Expected values replayed from a recording (see the module docstring)."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        from grader.grading import SetupError

        name = data.get("exercise", "?")
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise SetupError(f"{source or name}: not a recording of this grader (format {data.get('format')!r}, "
                             f"version {data.get('version')!r}). Make the student edition again with `grade release`.")
        if data["checks_digest"] != checks_digest(name):
            raise SetupError(f"{source or name}: the checks of {name!r} changed after its outputs were recorded, so "
                             "grading would not match the references. Make the student edition again with `grade release`.")
        self.exercise, self.seed, self.source = name, data["seed"], source
        self.ref = SimpleNamespace(**{fn: _signature_stub(fn, params) for fn, params in data["signatures"].items()})
        self._checks = data["checks"]
        self._cases: dict[str, list[Case]] = {}

    @classmethod
    def load(cls, path: Path) -> "RecordedOracle":
        from grader.grading import SetupError

        try:
            data = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # noqa: BLE001
            raise SetupError(f"{path} cannot be read ({type(exc).__name__}: {exc}). "
                             "Make the student edition again with `grade release`.") from None
        return cls(data, str(path))

    @classmethod
    def for_exercise(cls, name: str, directory: Path | None = None) -> "RecordedOracle":
        """The recording of `name` shipped with this copy of the grader; `SetupError` when none."""
        from grader.grading import SetupError

        path = recorded_path(name, directory)
        if not path.is_file():
            raise SetupError(f"Neither the reference for {name!r} nor its recorded outputs ({path}) are in this copy of "
                             f"the course, so {name!r} cannot be graded here.")
        return cls.load(path)

    def _entry(self, check: Check) -> dict[str, Any]:
        from grader.grading import SetupError

        if check.name not in self._checks:
            raise SetupError(f"{self.exercise}: check {check.name!r} was not recorded. "
                             "Make the student edition again with `grade release`.")
        return self._checks[check.name]

    def cases(self, check: Check, seed: int) -> list[Case]:
        from grader.grading import SetupError

        entry = self._entry(check)
        if seed != entry["seed"]:
            raise SetupError(
                f"This is the student edition: it can only grade with the public seed {self.seed} (--seed {self.seed}), "
                "whose expected outputs it carries. Grading with another seed needs the references (instructors).")
        if check.name not in self._cases:
            self._cases[check.name] = [
                Case(**{f: e[f] for f in _CASE_FIELDS}, assess=_assess_from_spec(e["assess"])) for e in entry["cases"]]
        return self._cases[check.name]

    def expected(self, check: Check, index: int, case: Case) -> Any:
        return self._entry(check)["cases"][index]["expected"]

    def mistakes(self, check: Check, index: int, case: Case) -> dict[str, Any]:
        return dict(self._entry(check)["cases"][index]["mistakes"])
