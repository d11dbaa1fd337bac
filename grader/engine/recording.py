"""Recorded expected outputs: grading without the references, for the student edition.

`record_exercise` asks a live oracle (`engine.oracles.LiveOracle`) for the public seed and keeps,
for every check, its cases (the inputs), the reference's result on each and every known mistake's
result on each. They are saved with `torch.save` as `grader/recorded/<exercise>.pt`: tensors,
numbers, strings and containers only (the file loads with `weights_only=True`), so it holds no
code, and no source of the references. To keep the student edition small (`write_recording`),
tensors equal in dtype, shape, strides and every byte are saved once (many mistakes give the
reference's own result on some cases, and cases share their inputs), and the file's entries are
deflated; `torch.load` reads it as it is, and gets exactly the values recorded (the tensors are
only read, never changed in place). `engine.oracles.RecordedOracle` replays such a file
(`replay_cases` rebuilds its cases) and answers exactly what the live oracle would for that seed;
for any other seed it refuses with `SetupError`, since only the references can make new inputs.

Cases that judge with an `assess` function keep a reference to it, never its code: "module:qualname"
of a module-level function of `grader.checks.*` (possibly inside a `functools.partial`), or, for a
closure, the module-level function that made it, its name and the plain values it closed over; the
function is found again in the grader when the file is read (it is part of the grader, not of the
reference). When neither works, the check's cases are made again when grading, from the seed and
without the reference (which `record_exercise` proves possible, and identical).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import io
import os
import types
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from grader import __version__
from grader.engine.spec import DEFAULT_SEED, Case, Check, derive_seed, load_checks, make_cases
from grader.paths import PACKAGE_DIR

FORMAT = "cnn-grader/recorded"
VERSION = 1
RECORDED_DIR = PACKAGE_DIR / "recorded"
_CASE_FIELDS = tuple(f.name for f in fields(Case) if f.name != "assess")


class RecordingError(ValueError):
    """An exercise's checks cannot be recorded as plain data (the message says which and why)."""


def recorded_path(exercise: str, directory: Path | None = None) -> Path:
    return Path(directory or RECORDED_DIR) / f"{exercise}.pt"


_DIGESTED = ("checks/{exercise}.py", "checks/__init__.py", "runner/probes.py", "engine/spec.py")


def checks_digest(exercise: str) -> str:
    """A digest of the grader files that make the cases and run the probes (`_DIGESTED`): a
    recording made with other versions of them is stale."""
    h = hashlib.sha256()
    for rel in _DIGESTED:
        h.update((PACKAGE_DIR / rel.format(exercise=exercise)).read_bytes())
    return h.hexdigest()[:16]


# --- assess functions by name -------------------------------------------------------------------
def _in_grader(module: Any) -> bool:
    """Only the grader's own functions can be named: the student edition has no reference module."""
    return isinstance(module, str) and (module == "grader" or module.startswith("grader."))


def _resolve(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _function_name(fn: Any) -> str | None:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not _in_grader(module) or "<" in qualname:  # lambdas and functions defined inside functions
        return None
    name = f"{module}:{qualname}"
    try:
        return name if _resolve(name) is fn else None
    except (ImportError, AttributeError):
        return None


def _nested_code(outer: Any, name: str) -> types.CodeType | None:
    """The code of the function `name` defined directly in `outer`, if exactly one has that name."""
    code = getattr(outer, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    found = [c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name]
    return found[0] if len(found) == 1 else None


def _closure_spec(fn: Any) -> dict[str, Any] | None:
    """A closure made by a module-level function: that function, the closure's name and its cells."""
    outer_qual, sep, name = getattr(fn, "__qualname__", "").rpartition(".<locals>.")
    if not sep or "<" in outer_qual or "." in name or not _in_grader(getattr(fn, "__module__", None)):
        return None
    try:
        outer = _resolve(f"{fn.__module__}:{outer_qual}")
    except (ImportError, AttributeError):
        return None
    if _nested_code(outer, name) is not fn.__code__:
        return None
    spec = {"closure_of": f"{fn.__module__}:{outer_qual}", "name": name, "args": [], "kwargs": {},
            "cells": [c.cell_contents for c in fn.__closure__ or ()], "defaults": list(fn.__defaults__ or ())}
    return spec if _is_plain(spec) else None


def _is_plain(value: Any) -> bool:
    """Whether `value` survives `torch.save` and `torch.load(weights_only=True)`."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception:  # noqa: BLE001 - anything that fails is not plain data
        return False
    return True


def _assess_spec(fn: Any) -> dict[str, Any] | None:
    """How to find `fn` again (see the module docstring), or None when it cannot be named."""
    if isinstance(fn, functools.partial):
        inner = _assess_spec(fn.func)
        if inner is None or inner["args"] or inner["kwargs"]:
            return None
        spec = {**inner, "args": list(fn.args), "kwargs": dict(fn.keywords)}
        return spec if _is_plain(spec) else None
    name = _function_name(fn)
    return {"function": name, "args": [], "kwargs": {}} if name else _closure_spec(fn)


def _assess_from_spec(spec: dict[str, Any]) -> Any:
    if "closure_of" in spec:
        outer = _resolve(spec["closure_of"])
        code = _nested_code(outer, spec["name"])
        if code is None or len(code.co_freevars) != len(spec["cells"]):
            raise ValueError(f"{spec['closure_of']} no longer defines {spec['name']!r} as recorded")
        fn = types.FunctionType(code, outer.__globals__, spec["name"], tuple(spec["defaults"]) or None,
                                tuple(types.CellType(v) for v in spec["cells"]))
    else:
        fn = _resolve(spec["function"])
    return functools.partial(fn, *spec["args"], **spec["kwargs"]) if spec["args"] or spec["kwargs"] else fn


class _NoReference:
    """Stands for the reference while cases are remade; any use of it means they cannot be."""

    def __getattr__(self, name: str) -> Any:
        raise _NeedsReference(name)


class _NeedsReference(Exception):
    pass


def _remake_cases(check: Check, seed: int) -> list[Case]:
    """The check's cases made without a reference (same code, same generators as live grading);
    `_NeedsReference` if making them needs one."""
    return make_cases(check, seed, _NoReference())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and bool(torch.equal(a, b) or (a.isnan() == b.isnan()).all()
                                                and torch.equal(a.nan_to_num(), b.nan_to_num())))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def _check_remade(name: str, check: Check, seed: int, cases: list[Case]) -> None:
    where = f"{name}: check {check.name!r}"
    try:
        remade = _remake_cases(check, seed)
    except _NeedsReference as exc:
        raise RecordingError(
            f"{where}: its cases judge with an `assess` closure and are built with the reference (they use "
            f"ref.{exc}), so the student edition can neither name the function nor remake the cases. Make `assess` a "
            "module-level function of the checks module (or a functools.partial of one).") from None
    if len(remade) != len(cases) or not all(
            _same(getattr(a, f), getattr(b, f)) for a, b in zip(remade, cases) for f in _CASE_FIELDS):
        raise RecordingError(f"{where}: its cases came out differently when made again from the same seed; "
                             "case generators must use only the generator they are given and torch's seeded RNG.")


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


def record_exercise(name: str, live: Any, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Everything a `RecordedOracle` needs to grade `name` for `seed`, asked of `live` (the
    reference's oracle, `engine.oracles.LiveOracle(name)`)."""
    checks: dict[str, Any] = {}
    all_cases: list[Case] = []
    for check in load_checks(name):
        check_seed = derive_seed(seed, name, check.name)
        cases = live.cases(check, check_seed)
        all_cases += cases
        specs = [_assess_spec(c.assess) if c.assess is not None else None for c in cases]
        remake = any(c.assess is not None and spec is None for c, spec in zip(cases, specs))
        if remake:
            _check_remade(name, check, check_seed, cases)
        entries = []
        for index, case in enumerate(cases):
            entry = {f: getattr(case, f) for f in _CASE_FIELDS}
            entry["assess"] = specs[index]
            entry["expected"] = live.expected(check, index, case)
            entry["mistakes"] = live.mistakes(check, index, case) if check.mistakes else {}
            entries.append(entry)
        checks[check.name] = {"seed": check_seed, "remake": remake, "cases": entries}
    data = {"format": FORMAT, "version": VERSION, "exercise": name, "seed": seed, "grader_version": __version__,
            "checks_digest": checks_digest(name), "signatures": _signatures(live.ref, all_cases), "checks": checks}
    return data


def _tensor_key(t: torch.Tensor) -> tuple:
    content = t.detach().contiguous().reshape(-1).view(torch.uint8) if t.numel() else t.new_empty(0, dtype=torch.uint8)
    return (t.dtype, tuple(t.shape), t.stride(), t.device.type, t.requires_grad,
            hashlib.sha256(content.cpu().numpy().tobytes()).hexdigest())


def _deduplicated(value: Any, seen: dict[tuple, torch.Tensor]) -> Any:
    """`value` with every tensor equal to one met before replaced by that one (saved once)."""
    if isinstance(value, torch.Tensor):
        return seen.setdefault(_tensor_key(value), value)
    if isinstance(value, dict):
        return {k: _deduplicated(v, seen) for k, v in value.items()}
    if type(value) in (list, tuple):  # not their subclasses (torch.Size): those are kept as they are
        items = [_deduplicated(v, seen) for v in value]
        return items if type(value) is list else tuple(items)
    return value


def save_recording(data: dict[str, Any], path: Path) -> None:
    """`torch.save` `data` to `path`, equal tensors once and the entries deflated (see the module docstring)."""
    buffer = io.BytesIO()
    torch.save(_deduplicated(data, {}), buffer)
    partial = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(buffer) as plain, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in plain.infolist():
            content = plain.read(info)
            info.compress_type = zipfile.ZIP_DEFLATED
            packed.writestr(info, content)
    os.replace(partial, path)


def write_recording(name: str, directory: Path, live: Any, seed: int = DEFAULT_SEED) -> Path:
    """Record `name` with the reference's oracle `live` (`engine.oracles.LiveOracle(name)`) and save
    it as `directory/<name>.pt`; returns the path."""
    path = recorded_path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = record_exercise(name, live, seed)
    # Fail now, not in a student's hands, if the file would not load as plain data, or not as recorded.
    try:
        save_recording(data, path)
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - it cannot be saved, or not loaded back: not plain data
        path.unlink(missing_ok=True)
        raise RecordingError(f"{name}: the recorded cases hold something that is not plain data ({exc}); the file "
                             "was deleted. Case arguments must be tensors, numbers, strings, None or containers of them.") from None
    if not _same(loaded, data):
        path.unlink()
        raise RecordingError(f"{name}: the saved recording does not load back as the values recorded; "
                             "it was deleted (a container type that `save_recording` does not keep?).")
    return path


# --- replaying ----------------------------------------------------------------------------------
def replay_cases(check: Check, seed: int, entry: dict[str, Any]) -> list[Case]:
    """The cases of `check` as recorded in `entry` (one check of a recording), their `assess`
    functions found again in the grader, or the cases made again from `seed` where they had to be."""
    remade = _remake_cases(check, seed) if entry["remake"] else None
    return [Case(**{f: e[f] for f in _CASE_FIELDS},
                 assess=remade[i].assess if remade is not None else
                 _assess_from_spec(e["assess"]) if e["assess"] is not None else None)
            for i, e in enumerate(entry["cases"])]
