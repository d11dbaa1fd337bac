"""Where expected values come from: an *oracle* gives a check's cases, the reference's result on
each and every known mistake's result on each.

- `LiveOracle` computes them now, in the grader's process, from the reference (`solutions/`);
- `RecordedOracle` replays what `engine.recording` recorded from the references for the public
  seed (the student edition has no references);
- `CachingOracle` wraps either and remembers everything it gave, per check and seed, so that a
  re-grade in `grade watch` or the next student of a batch never runs the references again. Given
  a folder (`keep`, the learner's commands give one), it also keeps the reference's expected
  values for the public seed between runs (`KeptValues`), so the next `grade all` runs no
  reference at all. Those are the values the student edition ships, so nothing secret is kept;
  a changed reference, check, grader or torch makes them stale.

`oracle_for(name)` picks the source once, when grading starts: the live reference when its file
is here, else the recording shipped with this copy of the grader.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import os
import pickle
import platform
import sys
import threading
from pathlib import Path
from types import ModuleType, SimpleNamespace
from collections.abc import Iterable
from typing import Any, Protocol

import torch

from grader import __version__
from grader.engine import recording
from grader.engine.spec import DEFAULT_SEED, TORCH_GLOBALS_LOCK, Case, Check, Mistake, derive_seed, make_cases
from grader.paths import data_dir
from grader.runner import probes


class SetupError(Exception):
    """Grading cannot start (missing file, missing reference...): a message for the user."""


class Oracle(Protocol):
    """A source of cases and expected values; `ref` stands for the reference module (its
    functions' signatures name the arguments in messages)."""

    ref: Any

    def cases(self, check: Check, seed: int) -> list[Case]: ...
    def expected(self, check: Check, index: int, case: Case) -> Any: ...
    def mistakes(self, check: Check, index: int, case: Case, names: Iterable[str] | None = None) -> dict[str, Any]:
        """{mistake name: that variant's result on the case (None where it raised)}, for the
        check's mistakes called `names` (default: all of them)."""


# --- live ---------------------------------------------------------------------------------------
def load_reference(name: str) -> ModuleType:
    """The reference module of exercise `name` (`solutions/<name>.py`), imported once."""
    path = data_dir("solutions") / f"{name}.py"
    if not path.is_file():
        raise SetupError(f"The reference for {name!r} is missing ({path}). This copy of the course cannot grade {name!r} live.")
    mod_name = f"cnn_grader_reference_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


def mistake_namespace(ref: ModuleType, mistake: Mistake) -> SimpleNamespace:
    """The reference with the mistake's replacements: what a student making it would return."""
    ns = SimpleNamespace(**{k: v for k, v in vars(ref).items() if not k.startswith("__")})
    for key, value in mistake.build(ref).items():
        setattr(ns, key, value)
    return ns


def run_probe_here(target: Any, case: Case) -> Any:
    """Run a case's probe in this process on trusted code (the reference or a mistake)."""
    fn = probes.resolve(case.probe)
    with TORCH_GLOBALS_LOCK, torch.random.fork_rng(devices=[]):
        value = fn(target, *copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    return probes.sanitize(value)


class LiveOracle:
    """Expected values computed now from the reference module."""

    def __init__(self, exercise: str) -> None:
        self.exercise = exercise
        self.ref = load_reference(exercise)

    def cases(self, check: Check, seed: int) -> list[Case]:
        return make_cases(check, seed, self.ref)

    def expected(self, check: Check, index: int, case: Case) -> Any:
        if case.raises:
            return None
        return run_probe_here(self.ref, case)

    def mistakes(self, check: Check, index: int, case: Case, names: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = None if names is None else set(names)
        values = {}
        for m in check.mistakes:
            if wanted is not None and m.name not in wanted:
                continue
            try:
                values[m.name] = run_probe_here(mistake_namespace(self.ref, m), case)
            except Exception:  # noqa: BLE001 - a mistake that raises on this input just cannot match
                values[m.name] = None
        return values


# --- recorded -----------------------------------------------------------------------------------
def _signature_stub(fn_name: str, params: list[str]) -> Any:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{fn_name}: the reference is not part of the student edition")

    stub.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params])
    return stub


class RecordedOracle:
    """Expected values replayed from a recording (see `engine.recording`): exactly what
    `LiveOracle` gives for the recorded seed; any other seed is refused with `SetupError`."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        name = data.get("exercise", "?")
        if data.get("format") != recording.FORMAT or data.get("version") != recording.VERSION:
            raise SetupError(f"{source or name}: not a recording of this grader (format {data.get('format')!r}, "
                             f"version {data.get('version')!r}). Make the student edition again with `grade release`.")
        if data["checks_digest"] != recording.checks_digest(name):
            raise SetupError(f"{source or name}: the checks of {name!r} changed after its outputs were recorded, so "
                             "grading would not match the references. Make the student edition again with `grade release`.")
        self.exercise, self.seed, self.source = name, data["seed"], source
        self.ref = SimpleNamespace(**{fn: _signature_stub(fn, params) for fn, params in data["signatures"].items()})
        self._checks = data["checks"]
        self._cases: dict[str, list[Case]] = {}

    @classmethod
    def load(cls, path: Path) -> "RecordedOracle":
        try:
            data = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # noqa: BLE001
            raise SetupError(f"{path} cannot be read ({type(exc).__name__}: {exc}). "
                             "Make the student edition again with `grade release`.") from None
        return cls(data, str(path))

    @classmethod
    def for_exercise(cls, name: str, directory: Path | None = None) -> "RecordedOracle":
        """The recording of `name` shipped with this copy of the grader; `SetupError` when none."""
        path = recording.recorded_path(name, directory)
        if not path.is_file():
            raise SetupError(f"Neither the reference for {name!r} nor its recorded outputs ({path}) are in this copy of "
                             f"the course, so {name!r} cannot be graded here.")
        return cls.load(path)

    def _entry(self, check: Check) -> dict[str, Any]:
        if check.name not in self._checks:
            raise SetupError(f"{self.exercise}: check {check.name!r} was not recorded. "
                             "Make the student edition again with `grade release`.")
        return self._checks[check.name]

    def cases(self, check: Check, seed: int) -> list[Case]:
        entry = self._entry(check)
        if seed != entry["seed"]:
            raise SetupError(
                f"This is the student edition: it can only grade with the public seed {self.seed} (--seed {self.seed}), "
                "whose expected outputs it carries. Grading with another seed needs the references (instructors).")
        if check.name not in self._cases:
            self._cases[check.name] = recording.replay_cases(check, seed, entry)
        return self._cases[check.name]

    def expected(self, check: Check, index: int, case: Case) -> Any:
        return self._entry(check)["cases"][index]["expected"]

    def mistakes(self, check: Check, index: int, case: Case, names: Iterable[str] | None = None) -> dict[str, Any]:
        recorded = self._entry(check)["cases"][index]["mistakes"]
        return dict(recorded) if names is None else {n: recorded[n] for n in names if n in recorded}


# --- caching ------------------------------------------------------------------------------------
class KeptValues:
    """The reference's expected values of one exercise for the public seed, kept in a folder
    between runs: `<folder>/<exercise>-<digest>.pt`, where the digest covers the reference's
    source, the checks (`recording.checks_digest`), the grader's and torch's versions and the
    machine, so any change makes a new file (and the old one is deleted on the next save). Read
    with `weights_only=True`; a file that does not read is ignored and replaced. The folder and
    files are private to the user: a worker without Landlock, running as `nobody`, cannot read them."""

    _lock = threading.Lock()  # sessions side by side in this process save the same file

    def __init__(self, exercise: str, folder: Path) -> None:
        h = hashlib.sha256()
        for part in ((data_dir("solutions") / f"{exercise}.py").read_bytes(), recording.checks_digest(exercise),
                     __version__, torch.__version__, platform.machine(), sys.byteorder):
            h.update(part if isinstance(part, bytes) else part.encode())
        self.exercise, self.folder = exercise, folder
        self.path = folder / f"{exercise}-{h.hexdigest()[:16]}.pt"

    def load(self) -> dict[tuple[str, int], Any]:
        """The kept values by (check, case index); {} when there are none or they do not read."""
        try:
            data = torch.load(self.path, weights_only=True, map_location="cpu")
            return {(str(check), int(index)): value for check, values in data.items() for index, value in values.items()}
        except Exception:  # noqa: BLE001 - missing, unreadable or not ours: computed again, saved anew
            return {}

    def save(self, values: dict[tuple[str, int], Any]) -> None:
        """Add `values` to the file (best effort: values that cannot be kept only cost time)."""
        with self._lock:
            merged = {**self.load(), **values}
            by_check: dict[str, dict[int, Any]] = {}
            for (check, index), value in merged.items():
                by_check.setdefault(check, {})[index] = value
            partial = self.folder / f".{self.path.name}.{os.getpid()}.tmp"
            try:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                    torch.save(by_check, out)
                os.replace(partial, self.path)
                for stale in self.folder.glob(f"{self.exercise}-*.pt"):
                    if stale != self.path:
                        stale.unlink(missing_ok=True)
            except (OSError, RuntimeError, pickle.PicklingError):
                partial.unlink(missing_ok=True)


class CachingOracle:
    """An oracle that remembers the cases, expected values and mistakes another oracle gives,
    keyed by check and seed (and the case's position), so they are computed once per session.
    With `keep` (a folder) and a live inner oracle, the expected values for the public seed also
    last between runs (`KeptValues`): read on first use, written by `save`."""

    def __init__(self, inner: Oracle, keep: Path | None = None) -> None:
        self.inner = inner
        self.ref = inner.ref
        self._cases: dict[tuple[str, int], list[Case]] = {}
        self._seed_of: dict[int, int] = {}  # id(case) -> its seed: cases stay alive in _cases
        self._expected: dict[tuple[str, int, int], Any] = {}
        self._mistakes: dict[tuple[str, int, int], dict[str, Any]] = {}
        live = isinstance(inner, LiveOracle)
        self.kept = KeptValues(inner.exercise, keep) if keep is not None and live else None
        self._kept_read = False
        self._lock = threading.RLock()  # sessions side by side may share this oracle
        self._new: set[tuple[str, int, int]] = set()  # public-seed values computed since the last save

    def runs_reference(self, seed: int) -> bool:
        """Whether grading with `seed` (the run's, not a check's) computes expected values by
        running the reference in this process (rather than replaying a recording or values kept
        from an earlier run)."""
        if not isinstance(self.inner, LiveOracle):
            return False
        return not (seed == DEFAULT_SEED and self.kept is not None and self.kept.path.is_file())

    def cases(self, check: Check, seed: int) -> list[Case]:
        key = (check.name, seed)
        with self._lock:  # made once: the expected values are found by the cases' identity
            if key not in self._cases:
                cases = self._cases[key] = self.inner.cases(check, seed)
                self._seed_of.update((id(c), seed) for c in cases)
            return self._cases[key]

    def read_kept(self) -> None:
        """Read the values kept from earlier runs now (else on the first public-seed value asked)."""
        with self._lock:
            if self.kept is not None and not self._kept_read:
                self._kept_read = True
                self._expected.update({(name, derive_seed(DEFAULT_SEED, self.kept.exercise, name), i): value
                                       for (name, i), value in self.kept.load().items()})

    def _key(self, check: Check, index: int, case: Case) -> tuple[str, int, int] | None:
        """The cache key of a case this oracle gave (None for a case from elsewhere: not cached)."""
        seed = self._seed_of.get(id(case))
        return None if seed is None else (check.name, seed, index)

    def expected(self, check: Check, index: int, case: Case) -> Any:
        key = self._key(check, index, case)
        if key is None:
            return self.inner.expected(check, index, case)
        public = self.kept is not None and key[1] == derive_seed(DEFAULT_SEED, self.kept.exercise, check.name)
        if public:
            self.read_kept()
        if key not in self._expected:
            self._expected[key] = self.inner.expected(check, index, case)
            if public:
                self._new.add(key)
        return self._expected[key]

    def save(self) -> None:
        """Keep the public seed's expected values computed since the last save (with `keep`)."""
        with self._lock:
            new, self._new = self._new, set()
        if self.kept is not None and new:
            self.kept.save({(check, index): self._expected[(check, seed, index)] for check, seed, index in new})

    def mistakes(self, check: Check, index: int, case: Case, names: Iterable[str] | None = None) -> dict[str, Any]:
        key = self._key(check, index, case)
        if key is None:
            return self.inner.mistakes(check, index, case, names)
        known = self._mistakes.setdefault(key, {})
        wanted = [m.name for m in check.mistakes] if names is None else list(names)
        missing = [n for n in wanted if n not in known]
        if missing:
            known.update(self.inner.mistakes(check, index, case, missing))
        return {n: known[n] for n in wanted if n in known}


def oracle_for(name: str) -> Oracle:
    """The source of expected values for `name`, chosen once: the live reference when its file is
    here, else the outputs recorded for the student edition (`SetupError` when neither is)."""
    if (data_dir("solutions") / f"{name}.py").is_file():
        return LiveOracle(name)
    return RecordedOracle.for_exercise(name)
