"""The grading session: every front end grades through one `GradingSession`.

A session owns four things: the worker that runs the student's code (`runner.handle.WorkerProcess`),
the source of expected values for each exercise (live references or recordings, chosen once:
`engine.oracles.oracle_for`, or what the caller passes), a cache of the reference's outputs per
exercise, check and seed (`CachingOracle`: a re-grade in `grade watch` and the next student of a
batch never run the references again) and the tamper check (`untouched`: the grader's files and
the references as they were when the session started).

Every worker the session starts is sandboxed (`runner.sandbox`): it receives the student's source
bytes in each request and never opens the student's file; `protect` names more paths its sandbox
keeps out of reach (a batch's results and submissions), and with `require_sandbox` a worker that
cannot apply the sandbox refuses to start. Each result says what confined the code that produced
it (`ExerciseResult.sandbox`: the weakest sandbox of the workers that ran it).

Follow one check from `grade`: the oracle gives the check's seeded cases; each case goes to the
worker while this process computes the expected value (a case whose reference only explains a
failure, `Case.reference_explains_only`, runs its reference once it has failed); `judge` turns
the worker's outcome into a status and a message. After a case fails, the check's remaining cases still run (within the
check's time budget), so the steps that explain a failure see the whole pattern: `name_mistake`
names a known mistake only when it explains every case, and `diagnose` says what kind of wrong
the first failure is and which case parameters separate passing from failing cases; each failed
`CheckResult` keeps its `CaseRecord`s. A passing check runs nothing more. A module that does not
import is reported once, on the first check.

Pictures: a front end that shows them passes `pictures=grader.views.pictures.draw` (the engine
never imports the views). The first failed check of each part then gets the picture of its first
failing case (`CheckResult.picture`), drawn only after it failed, so passing code pays nothing; a
picture that cannot be drawn is a notice, never a lost verdict.

A grading run can be stopped from another thread (`grade watch` does when the learner quits or
saves again): the caller sets the run's `stop` event and calls `kill_worker`; the run raises
`GradingInterrupted` before its next case, and the next run starts a fresh worker.

Importing this module does not import torch: a session starts its worker first, then imports
torch (with the oracles), so the two imports overlap on a multi-core machine.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.catalog import Exercise, get_exercise
from grader.engine.results import CheckResult, Diagnosis, ExerciseResult, MistakeInfo
from grader.engine.spec import DEFAULT_SEED, Case, Check, derive_seed, load_checks
from grader.paths import PACKAGE_DIR, data_dir
from grader.runner import sandbox
from grader.runner.guard import static_scan
from grader.runner.handle import DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT_S, Outcome, WorkerProcess
from grader.runner.zygote import preload_for, zygote_for

if TYPE_CHECKING:
    from grader.engine.judge import CaseRecord
    from grader.engine.oracles import CachingOracle, Oracle

OUTPUT_PER_CHECK = 2000  # characters of printed output kept per check
LOAD_TIMEOUT_S = 30.0  # importing the student's module (at least; --timeout when longer)
_KEEP_GOING = ("failed", "error")  # after these, a check's remaining cases still run
_SEE_ABOVE = "see above: your module could not be imported, so this check did not run"
_ORACLES_LOCK = threading.Lock()  # sessions side by side may share their oracles (`grade_side_by_side`)


# (picture, case, expected, got, *, title, arg_names) -> SVG text or None: `grader.views.pictures.draw`,
# passed in by a front end (the engine never imports the views).
PictureDrawer = Callable[..., "str | None"]


class GradingInterrupted(Exception):
    """A grading run was stopped through its `stop` event; it has no result."""


def integrity_snapshot() -> str:
    """A digest of the grader's and references' files, to detect tampering during a run."""
    h = hashlib.sha256()
    for root in (PACKAGE_DIR, data_dir("solutions")):
        if not root.is_dir():
            continue
        for file in sorted(root.rglob("*")):
            if file.suffix in (".py", ".yaml", ".j2", ".pt") and "__pycache__" not in file.parts:
                h.update(str(file).encode())
                try:
                    h.update(file.read_bytes())
                except OSError:
                    h.update(b"<unreadable>")
    return h.hexdigest()


def _diagnosis(first: CaseRecord, records: list[CaseRecord], reference: Any) -> list[Diagnosis]:
    """What kind of wrong a failed check is (`engine.diagnose`): of its first failed result, when it
    was judged by comparing values, then the pattern across the cases that ran (which case
    parameters separate the passing cases from the others)."""
    from grader.engine.diagnose import CaseFacts, across_cases, diagnose
    from grader.engine.judge import arg_names, without_inputs

    found: list[Diagnosis] = []
    case, value = first.case, first.got
    if (first.status == "failed" and not case.raises and case.assess is None and value is not None
            and not (isinstance(value, dict) and "state_dict_shapes" in value)):
        try:
            found = diagnose(without_inputs(value), without_inputs(first.expected),
                             CaseFacts.of(case, arg_names(reference, case)), rtol=case.rtol, atol=case.atol)
        except Exception:  # noqa: BLE001 - the student's values are untrusted: a diagnosis that cannot be made is absent
            found = []
    if first.status in _KEEP_GOING:
        found += across_cases([(CaseFacts.of(r.case, arg_names(reference, r.case)), r.passed)
                               for r in records if r.status not in ("timeout", "crashed")])
    return found


def _printable(text: str) -> str:
    """Student output made safe for a terminal (no escape sequences)."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)


class GradingSession:
    """Grade exercises with one worker, one cached source of expected values per exercise and
    one tamper baseline; use it as a context manager (or call `close`).

    `worker`: a worker the caller owns (it is left running); by default the session starts its
    own and stops it on `close`. `oracle_for(name)`: the source of expected values of an exercise,
    asked once per exercise (default: the reference when its file is here, else the recording).
    `protect` and `require_sandbox` go to every worker the session starts (`WorkerProcess`).
    `pictures`: the drawing function of failing cases (see the module's docstring), or None to draw none.
    `keep`: a folder where the references' expected values for the public seed last between runs
    (`oracles.KeptValues`; the learner's commands pass `paths.kept_values_dir()`), or None.
    `oracles`: a dict of cached sources by exercise to share with other sessions (side by side).
    """

    def __init__(self, *, seed: int = DEFAULT_SEED, timeout: float = DEFAULT_TIMEOUT_S, device: str = "cpu",
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, worker: WorkerProcess | None = None,
                 oracle_for: Callable[[str], Oracle] | None = None, protect: tuple[str, ...] = (),
                 require_sandbox: bool = False, pictures: PictureDrawer | None = None, keep: Path | None = None,
                 oracles: dict[str, CachingOracle] | None = None) -> None:
        self.seed, self.timeout, self.device, self.memory_bytes = seed, timeout, device, memory_bytes
        self.keep = keep
        self.pictures = pictures
        self.protect, self.require_sandbox = tuple(protect), require_sandbox
        self._sandboxes: set[str] = set()  # what the workers that ran the current exercise applied
        self._owns_worker = worker is None
        self.worker = worker if worker is not None else self._new_worker()
        self._spare: WorkerProcess | None = None
        import torch  # imported here, while the worker imports its own

        torch.set_num_threads(1)  # the worker needs the other core; the references are small
        from grader.engine.oracles import oracle_for as live_or_recorded

        self._oracle_for = oracle_for or live_or_recorded
        self._oracles: dict[str, CachingOracle] = oracles if oracles is not None else {}
        self._baseline = integrity_snapshot()

    def _new_worker(self) -> WorkerProcess:
        worker = WorkerProcess(memory_bytes=self.memory_bytes, device=self.device, protect=self.protect,
                               require_sandbox=self.require_sandbox)
        worker.start()  # with a zygote: only makes sure one is on its way
        return worker

    # -- lifecycle ---------------------------------------------------------------------------
    def use_fresh_worker(self, *, prestart_next: bool = False) -> None:
        """Grade from now on in a new worker (a batch: no two students share a process): the one
        started beforehand, or a new one. With `prestart_next`, start the one after it now, so
        that its start-up overlaps the grading."""
        self.worker.stop()
        self.worker = self._spare if self._spare is not None else self._new_worker()
        self._owns_worker = True
        self._spare = self._new_worker() if prestart_next else None

    def kill_worker(self) -> None:
        """Kill the worker at once; safe from any thread. The thread grading sees it die and
        cleans up; the next request starts a fresh worker."""
        self.worker.kill()

    def close(self) -> None:
        """Stop the session's workers (not a worker the caller passed in)."""
        if self._owns_worker:
            self.worker.stop()
        if self._spare is not None:
            self._spare.stop()
            self._spare = None

    def __enter__(self) -> "GradingSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- expected values and tampering -------------------------------------------------------
    def oracle(self, name: str) -> CachingOracle:
        """The cached source of expected values of exercise `name` (made on first use)."""
        with _ORACLES_LOCK:
            if name not in self._oracles:
                from grader.engine.oracles import CachingOracle

                self._oracles[name] = CachingOracle(self._oracle_for(name), keep=self.keep)
            return self._oracles[name]

    def prepare(self, names: list[str]) -> None:
        """Make every check's cases of `names` now, and read the expected values kept from earlier
        runs, so that a missing reference or a seed the student edition lacks is refused
        (`SetupError`) before anything is graded."""
        for name in names:
            oracle = self.oracle(name)
            for check in load_checks(name):
                oracle.cases(check, derive_seed(self.seed, name, check.name))
            oracle.read_kept()

    def untouched(self) -> bool:
        """Whether the grader's files and the references are as they were when the session started."""
        return integrity_snapshot() == self._baseline

    # -- grading -----------------------------------------------------------------------------
    def grade(self, name: str, path: Path, parts: tuple[str, ...] = (), *,
              on_check: Callable[[int, int, str], None] | None = None,
              stop: threading.Event | None = None) -> ExerciseResult:
        """Grade the student's file `path` for exercise `name`: every check, or only those of
        `parts` when given. Raises `SetupError` when grading cannot start (no such file, no
        reference and no recording, a part the exercise does not have).

        `on_check(index, count, check name)` is called before each check (index from 1);
        `GradingInterrupted` is raised before the next case once `stop` is set."""
        from grader.engine.oracles import SetupError

        def go_on() -> None:
            if stop is not None and stop.is_set():
                raise GradingInterrupted(name)

        exercise = get_exercise(name)
        preload = preload_for([exercise])
        if preload:  # workers forked from now on have what its training needs
            zygote_for(self.device, preload)
            if self.oracle(name).runs_reference(self.seed):
                # Here too, now: while a cold zygote starts on the other core, rather than midway,
                # in the reference of a check that trains, with the worker (and every other job's
                # reference, `spec.TORCH_GLOBALS_LOCK`) waiting on it.
                for module in preload:
                    importlib.import_module(module)
        path = Path(path).resolve()
        if not path.is_file():
            raise SetupError(f"{path} does not exist. Pass the folder that holds {name}.py with --path, "
                             f"or run `grade reset {name}` to get its stub back.")
        known = [part.name for part in exercise.parts]
        unknown = [p for p in parts if p not in known]
        if unknown:
            raise SetupError(f"{name} has no part {', '.join(map(repr, unknown))}. Its parts are: {', '.join(known)}.")
        checks = [c for c in load_checks(name) if not parts or c.part in parts]
        oracle = self.oracle(name)
        started = time.monotonic()
        result = ExerciseResult(
            exercise=name, path=str(path), seed=self.seed, grader_version=__version__,
            started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        source = path.read_bytes()  # the worker runs exactly these bytes: it cannot open the file itself

        def scan() -> None:  # while the worker imports the module
            for finding in static_scan(source.decode("utf-8", errors="replace"), exercise.forbidden):
                result.notices.append(f"line {finding.line}: uses {finding.name}, which is forbidden in this exercise")

        base = {"exercise": name, "path": str(path), "source": source, "forbidden": list(exercise.forbidden),
                "forbidden_ops": list(exercise.forbidden_ops)}
        self._sandboxes = set()
        pictured: set[str] = set()  # the parts whose failing case has its picture
        load_failure = self._load(base, meanwhile=scan)
        go_on()
        text, printed, cut = self._printed()
        if text:
            result.notices.append(f"output while importing your module: {text}")
        for number, check in enumerate(checks, 1):
            if on_check is not None:
                on_check(number, len(checks), check.name)
            cases = oracle.cases(check, derive_seed(self.seed, name, check.name))
            if load_failure is not None:
                result.checks.append(self._not_loaded(check, cases, load_failure, first=not result.checks))
                continue
            check_result, check_printed, check_cut = self._grade_check(exercise, check, cases, oracle, base, go_on)
            result.checks.append(check_result)
            printed, cut = printed + check_printed, cut or check_cut
            if self.pictures is not None and check_result.status == "failed" and check.part not in pictured:
                check_result.picture = self._picture(check, check_result, oracle, result.notices)
                if check_result.picture is not None:
                    pictured.add(check.part)
        if cut:
            result.notices.append(f"your code printed {printed} bytes in all; only the first {OUTPUT_PER_CHECK} "
                                  "characters of each check's output were kept")
        result.sandbox = sandbox.weakest(self._sandboxes) if self._sandboxes else sandbox.plan()
        result.duration_s = time.monotonic() - started
        oracle.save()
        return result

    def _load(self, base: dict[str, Any], meanwhile: Callable[[], None]) -> Outcome | None:
        """Import the student's module in the worker, calling `meanwhile()` while it does; the
        failure, or None when it imported."""
        deadline = time.monotonic() + max(self.timeout, LOAD_TIMEOUT_S)
        sent = self.worker.send({**base, "op": "load"}, deadline)
        meanwhile()
        load = sent if sent is not None else self.worker.receive(deadline)
        self._ran_in(self.worker)
        if load.kind == "reply" and load.reply.get("kind") == "ok":
            return None
        if load.kind in ("crashed", "protocol"):
            load.detail = f"{load.detail} while importing your module"
        elif load.kind == "timeout":
            load.detail = "importing your module did not finish"
        return load

    def _ran_in(self, worker: WorkerProcess) -> None:
        """Note the sandbox of a worker that runs the current exercise's code (once it is ready)."""
        if worker.sandbox is not None:
            self._sandboxes.add(worker.sandbox)

    def _printed(self, before: str = "") -> tuple[str, int, bool]:
        """`before` followed by what the student's code printed since the last look, made safe for
        a terminal and cut to OUTPUT_PER_CHECK characters; how many bytes it printed; whether
        anything was cut."""
        text, total = self.worker.take_output()
        joined = before + _printable(text)
        cut = len(joined) > OUTPUT_PER_CHECK or total > len(text.encode(errors="replace"))
        return joined[:OUTPUT_PER_CHECK], total, cut

    def _not_loaded(self, check: Check, cases: list[Case], failure: Outcome, *, first: bool) -> CheckResult:
        """A check of a module that did not import: the reason in full on the first check only."""
        from grader.engine.judge import judge

        case = cases[0] if cases else Case("call")
        status, message = judge(case, failure, None, timeout=self.timeout, device=self.device, arg_names=[])
        if not first:
            message = _SEE_ABOVE
        return CheckResult(check.name, check.part, 0, check.points, status, message)

    def _grade_check(self, exercise: Exercise, check: Check, cases: list[Case], oracle: Oracle,
                     base: dict[str, Any], go_on: Callable[[], None]) -> tuple[CheckResult, int, bool]:
        """Run the cases of one check (`go_on()` before each raises when the run was stopped);
        returns its result, how many bytes the student's code printed and whether its output was cut."""
        from grader.engine.judge import CaseRecord, arg_names, judge, name_mistake

        result = CheckResult(check.name, check.part, 0, check.points, "passed")
        records: list[CaseRecord] = []
        budget, printed, cut = self.timeout, 0, False
        for index, case in enumerate(cases):
            if records and records[-1].status not in ("passed", *_KEEP_GOING):
                break  # a timeout, a crash, a forbidden call or a stub: the other cases would tell nothing new
            if budget <= 0:
                break  # after a failure, the remaining cases run only within the check's time budget
            go_on()
            outcome, expected, spent = self._run_case(check, index, case, oracle, base, budget)
            budget -= spent
            result.output, total, case_cut = self._printed(result.output)
            printed, cut = printed + total, cut or case_cut
            status, message = judge(case, outcome, expected, timeout=self.timeout, device=self.device,
                                    arg_names=arg_names(oracle.ref, case))
            if status == "failed" and case.reference_explains_only:  # now the reference's result is worth its time
                expected = oracle.expected(check, index, case)
                status, message = judge(case, outcome, expected, timeout=self.timeout, device=self.device,
                                        arg_names=arg_names(oracle.ref, case))
            records.append(CaseRecord(index, case, outcome, expected, status, message))
        first_failure = next((r for r in records if not r.passed), None)
        if first_failure is None:
            result.points = check.points
            return result, printed, cut
        result.status, result.message = first_failure.status, first_failure.message
        result.cases = tuple(records)
        result.diagnosis = _diagnosis(first_failure, records, oracle.ref)
        if result.status == "failed" and check.mistakes:
            found = name_mistake(records, [m.name for m in check.mistakes],
                                 lambda r, names: oracle.mistakes(check, r.index, r.case, names), self.device)
            if found is not None:
                m = next(m for m in check.mistakes if m.name == found)
                result.mistake = MistakeInfo(m.name, m.explanation, m.section or exercise.section, m.subsection)
        return result, printed, cut

    def _picture(self, check: Check, failed: CheckResult, oracle: Oracle, notices: list[str]) -> str | None:
        """The picture of a failed check's first failing case; None when the check declares none or
        the case returned no value. A picture that cannot be drawn is a notice."""
        first = next(r for r in failed.cases if not r.passed)
        if check.picture is None or first.got is None:
            return None
        from grader.engine.judge import arg_names

        try:
            return self.pictures(check.picture, first.case, first.expected, first.got,
                                 title=f"{check.part}: {check.name}", arg_names=arg_names(oracle.ref, first.case))
        except Exception as exc:  # noqa: BLE001 - a bug in a picture must not hide the verdict
            notices.append(f"the picture of {check.name} could not be drawn ({type(exc).__name__}: {exc})")
            return None

    def _run_case(self, check: Check, index: int, case: Case, oracle: Oracle, base: dict[str, Any],
                  budget: float) -> tuple[Outcome, Any, float]:
        """(the worker's outcome, the expected value, the student's time) for one case. The worker
        computes the student's result while this process computes the expected one (not for a
        case whose reference only explains a failure: its expected value is None); the
        reference's time is not charged to the student."""
        worker = self.worker
        worker.ensure_ready()  # start-up is not charged either
        self._ran_in(worker)
        t0 = time.monotonic()
        sent = worker.send({**base, "op": "run", "probe": case.probe, "args": case.args,
                            "kwargs": {**case.kwargs, "device": self.device}}, t0 + budget)
        t_ref = time.monotonic()
        expected = None if case.reference_explains_only else oracle.expected(check, index, case)
        ref_s = time.monotonic() - t_ref
        outcome = sent if sent is not None else worker.receive(t0 + budget + ref_s)
        return outcome, expected, time.monotonic() - t0 - ref_s


def grade_side_by_side(units: Sequence[tuple[str, Path, tuple[str, ...]]], *, jobs: int = 1,
                       **options: Any) -> tuple[list[ExerciseResult], bool]:
    """Grade each `(exercise, path, parts)` of `units` (every check when `parts` is empty, else the
    checks of those parts), `jobs` at a time: each job is a `GradingSession` (made with `options`)
    in its own thread, with its own worker; the references still run one at a time here
    (`spec.TORCH_GLOBALS_LOCK`), so every result is the one a single session gives.
    An exercise may come in several units of disjoint parts, so that several jobs share one long
    exercise: its results are merged into one (`merge_units`), as one session grading it gives.
    The sessions share one cached source of expected values per exercise, and while their workers
    start, a thread makes every exercise's cases and reads the values kept for them. The units are
    started in the order given (put the longest first); the results come back one per exercise, in
    the order of their first units. Returns the results and whether the grader's
    files and the references stayed untouched. The first error (a `SetupError`...) stops every
    job and is raised."""
    shared: dict[str, CachingOracle] = {}
    sessions = [GradingSession(oracles=shared, **options) for _ in range(max(1, min(jobs, len(units))))]
    results: list[ExerciseResult | None] = [None] * len(units)
    pending = iter(range(len(units)))
    take, stop, errors = threading.Lock(), threading.Event(), []

    def work(session: GradingSession) -> None:
        while not stop.is_set():
            with take:
                index = next(pending, None)
            if index is None:
                return
            try:
                name, path, parts = units[index]
                results[index] = session.grade(name, path, parts=parts, stop=stop)
            except GradingInterrupted:
                return
            except BaseException as exc:  # noqa: BLE001 - raised again by the caller's thread
                errors.append(exc)
                halt()
                return

    def halt() -> None:
        stop.set()
        for session in sessions:
            session.kill_worker()

    def prepare() -> None:  # while the workers start: every exercise's cases, and the values kept for them
        try:
            sessions[0].prepare(list(dict.fromkeys(name for name, _, _ in units)))
        except Exception:  # noqa: BLE001 - the job that grades that exercise meets the error itself
            pass

    preparing = threading.Thread(target=prepare, name="grade-prepare", daemon=True)
    preparing.start()
    try:
        if len(sessions) == 1:
            work(sessions[0])
        else:
            threads = [threading.Thread(target=work, args=(session,), name=f"grade-job-{i}", daemon=True)
                       for i, session in enumerate(sessions, 1)]
            for thread in threads:
                thread.start()
            try:
                for thread in threads:
                    while thread.is_alive():
                        thread.join(0.1)  # a Ctrl-C still reaches this thread
            except BaseException:
                halt()
                for thread in threads:
                    thread.join()
                raise
        preparing.join()
        if errors:
            raise errors[0]
        by_exercise: dict[str, list[ExerciseResult]] = {}
        for result in results:
            if result is not None:
                by_exercise.setdefault(result.exercise, []).append(result)
        return [merge_units(graded) for graded in by_exercise.values()], all(session.untouched() for session in sessions)
    finally:
        for session in sessions:
            session.close()


def merge_units(results: Sequence[ExerciseResult]) -> ExerciseResult:
    """One exercise graded in units of disjoint parts (`grade_side_by_side`), as one result: its
    checks in the catalogue's order, each notice once, the weakest sandbox, the earliest start and
    the units' durations added up. A module that did not import is explained on the first check
    only, as one session does: a later unit that failed to import it the same way says "see above"."""
    if len(results) == 1:
        return results[0]
    order = {check.name: i for i, check in enumerate(load_checks(results[0].exercise))}
    explaining = {unit.checks[0].name: failure for unit in results if (failure := _import_failure(unit)) is not None}
    told: set[tuple[str, str]] = set()
    checks: list[CheckResult] = []
    for check in sorted((c for unit in results for c in unit.checks), key=lambda c: order[c.name]):
        failure = explaining.get(check.name)
        if failure in told:
            check = dataclasses.replace(check, message=_SEE_ABOVE)
        elif failure is not None:
            told.add(failure)
        checks.append(check)
    return dataclasses.replace(
        results[0], started_at=min(r.started_at for r in results), duration_s=sum(r.duration_s for r in results),
        checks=checks, notices=list(dict.fromkeys(n for r in results for n in r.notices)),
        sandbox=sandbox.weakest(r.sandbox for r in results))


def _import_failure(result: ExerciseResult) -> tuple[str, str] | None:
    """The (status, message) of a result whose module did not import (`_not_loaded`: the reason on
    its first check, which ran no case, and "see above" on the others); None when it imported."""
    if not result.checks:
        return None
    first, rest = result.checks[0], result.checks[1:]
    if first.status == "passed" or first.cases or any(c.message != _SEE_ABOVE for c in rest):
        return None
    return first.status, first.message
