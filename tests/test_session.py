"""`grader.engine.session.GradingSession`: the one grading loop. A module that does not import is
reported once; what a check printed stays with that check; a failed check runs all its cases;
the references run once per session; the tamper check; a fresh worker per student."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, reference_oracle, variant
from grader.catalog import get_exercise
from grader.engine import session as session_module
from grader.engine.compare import compare
from grader.engine.judge import without_inputs
from grader.engine.oracles import LiveOracle
from grader.engine.results import ExerciseResult
from grader.engine.session import GradingSession, grade_side_by_side
from grader.engine.spec import derive_seed, load_checks
from grader.views.terminal import exercise_report

POOL = "pooling"
AVG_RETURN = "    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)"
AVG_DOUBLED = variant(POOL, (AVG_RETURN, AVG_RETURN.replace(")  #", ") * 2  #")))


def _submission(tmp_path: Path, source: str, name: str = POOL) -> Path:
    path = tmp_path / "submission" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def test_a_module_that_does_not_import_is_reported_once(grade):
    result = grade(POOL, source=variant(POOL, ("def max_pool2d(", "def max_pool2d(:")))
    checks = result["checks"]
    assert {c["status"] for c in checks} == {"error"} and result["score"] == 0
    assert "SyntaxError" in checks[0]["message"]
    assert all(c["message"].startswith("see above") and "SyntaxError" not in c["message"] for c in checks[1:])
    assert exercise_report(ExerciseResult.from_dict(result)).count("SyntaxError") == 1


def test_printed_output_shows_under_the_check_that_printed_it(grade):
    src = variant(POOL, (AVG_RETURN, "    print('avg of', tuple(x.shape))\n    print('kernel', kernel_size)\n" + AVG_RETURN))
    data = grade(POOL, source=src)
    result = ExerciseResult.from_dict(data)
    outputs = {c.name: c.output for c in result.checks}
    assert "avg of (2, 3, 8, 8)" in outputs["avg_pool2d_forward"]
    assert outputs["max_pool2d_forward"] == outputs["max_pool2d_float64_gradients"] == ""
    assert any(n.startswith("output during avg_pool2d_forward: avg of") for n in data["notices"])  # the JSON keeps it
    report = exercise_report(result)
    assert report.index("avg_pool2d_forward") < report.index("avg of") < report.index("avg_pool2d_float64_gradients")
    assert "more lines with --verbose" in report and "more lines" not in exercise_report(result, verbose=True)


def test_after_a_failure_the_check_runs_its_other_cases(sessions, tmp_path):
    result = sessions().grade(POOL, _submission(tmp_path, AVG_DOUBLED))
    failed = next(c for c in result.checks if c.name == "avg_pool2d_forward")
    check = next(c for c in load_checks(POOL) if c.name == "avg_pool2d_forward")
    count = len(LiveOracle(POOL).cases(check, derive_seed(0, POOL, check.name)))
    assert failed.status == "failed" and len(failed.cases) == count > 1
    assert all(r.status == "failed" for r in failed.cases)
    assert all(not c.cases for c in result.checks if c.passed)


class _Counting:
    """An oracle that counts how often the reference runs."""

    def __init__(self, inner):
        self.inner, self.ref, self.calls = inner, inner.ref, 0

    def cases(self, check, seed):
        return self.inner.cases(check, seed)

    def expected(self, check, index, case):
        self.calls += 1
        return self.inner.expected(check, index, case)

    def mistakes(self, check, index, case, names=None):
        self.calls += 1
        return self.inner.mistakes(check, index, case, names)


def test_the_references_run_once_per_session(worker, tmp_path):
    made = []
    session = GradingSession(worker=worker, oracle_for=lambda name: made.append(_Counting(LiveOracle(name))) or made[-1])
    path = _submission(tmp_path, AVG_DOUBLED)
    first = session.grade(POOL, path)
    calls = made[0].calls
    second = session.grade(POOL, path)  # a re-grade in `grade watch`, or the next student of a batch
    assert len(made) == 1 and calls > 0 and made[0].calls == calls
    assert [c.to_dict() for c in first.checks] == [c.to_dict() for c in second.checks]


def test_untouched_sees_a_grader_file_change(worker, tmp_path, monkeypatch):
    copy = tmp_path / "grader"
    shutil.copytree(ROOT / "grader", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(session_module, "PACKAGE_DIR", copy)
    session = GradingSession(worker=worker)
    assert session.untouched()
    (copy / "checks" / "pooling.py").write_text("# changed by a student\n", encoding="utf-8")
    assert not session.untouched()


@pytest.mark.slow
def test_each_student_gets_a_fresh_worker(tmp_path):
    path = _submission(tmp_path, (ROOT / "solutions" / "pooling.py").read_text(encoding="utf-8"))
    with GradingSession() as session:
        session.use_fresh_worker(prestart_next=True)
        assert session.grade(POOL, path).complete
        first, spare = session.worker, session._spare
        first_pid = first.proc.pid
        session.use_fresh_worker(prestart_next=False)
        assert session.worker is spare and not first.alive
        assert session.grade(POOL, path).complete and session.worker.proc.pid != first_pid
        last = session.worker
    assert not last.alive


def test_a_reference_that_only_explains_a_failure_runs_only_once_the_case_failed(worker, tmp_path):
    """`Case.reference_explains_only`: the avg-pool check judged by an assess that decides alone
    (against values the test computed) and quotes the reference's result only in its message."""
    live, asked = LiveOracle(POOL), []

    def decides_alone(truth):
        def assess(got, expected):
            if compare(got, without_inputs(truth), "result", 1e-5, 1e-6) is None:
                return None
            return "wrong; the reference's result " + ("was not computed" if expected is None else "is quoted here")
        return assess

    class ExplainingOracle:
        ref = live.ref

        def cases(self, check, seed):
            cases = live.cases(check, seed)
            if check.name != "avg_pool2d_forward":
                return cases
            return [dataclasses.replace(c, assess=decides_alone(live.expected(check, i, c)), reference_explains_only=True)
                    for i, c in enumerate(cases)]

        def expected(self, check, index, case):
            if check.name == "avg_pool2d_forward":
                asked.append(index)
            return live.expected(check, index, case)

        def mistakes(self, check, index, case, names=None):
            return live.mistakes(check, index, case, names)

    session = GradingSession(worker=worker, oracle_for=lambda _: ExplainingOracle())
    assert session.grade(POOL, ROOT / "solutions" / "pooling.py").complete and asked == []
    wrong = next(c for c in session.grade(POOL, _submission(tmp_path, AVG_DOUBLED)).checks if c.name == "avg_pool2d_forward")
    assert wrong.status == "failed" and wrong.message.startswith("wrong; the reference's result is quoted here")
    assert asked == [r.index for r in wrong.cases] and len(asked) > 1


def _untimed(result: ExerciseResult) -> dict:
    data = result.to_dict()
    del data["duration_s"], data["started_at"]
    return data


def _by_parts(path: Path) -> list[ExerciseResult]:
    """`path` graded as `grade all` grades an exercise it shares between jobs: part by part, two
    jobs, the parts handed out last first (the merge must put the checks back in order)."""
    parts = [p.name for p in get_exercise(POOL).parts]
    results, untouched = grade_side_by_side([(POOL, path, (part,)) for part in reversed(parts)], jobs=2,
                                            oracle_for=reference_oracle)
    assert untouched and len(results) == 1
    return results


def test_an_exercise_graded_part_by_part_in_two_jobs_gives_what_one_session_gives(sessions, tmp_path):
    """Checks in the catalogue's order, a failure with its message and diagnosis, what a check
    printed kept on it, and the notices said once: the static scan's finding and the output while
    importing come from every job that imported the module."""
    printing = AVG_RETURN.replace("    return", "    print('avg of', tuple(x.shape))\n    return")
    source = variant(POOL, (AVG_RETURN, printing.replace(")  #", ") * 2  #"))) + (
        "\nprint('imported')\n_unused = torch.nn.functional.max_pool2d\n")
    path = _submission(tmp_path, source)
    single = sessions().grade(POOL, path)
    (merged,) = _by_parts(path)
    assert _untimed(merged) == _untimed(single)
    assert any(c.status == "failed" for c in merged.checks) and any(c.output for c in merged.checks)
    assert sum("imported" in n for n in merged.notices) == 1 and sum("max_pool2d" in n for n in merged.notices) == 1


def test_a_module_that_does_not_import_is_explained_once_when_its_parts_are_graded_apart(sessions, tmp_path):
    path = _submission(tmp_path, variant(POOL, ("def max_pool2d(", "def max_pool2d(:")))
    single = sessions().grade(POOL, path)
    (merged,) = _by_parts(path)
    assert _untimed(merged) == _untimed(single)
    assert sum("SyntaxError" in c.message for c in merged.checks) == 1


def test_sessions_side_by_side_share_one_source_of_expected_values_per_exercise(tmp_path):
    """However the units fall to the jobs, each exercise's reference is loaded once and its cases
    are made once (before the workers are ready), so the jobs reuse each other's expected values."""
    asked: list[str] = []

    def counted(name):
        asked.append(name)
        return reference_oracle(name)

    path = _submission(tmp_path, variant(POOL))
    parts = [p.name for p in get_exercise(POOL).parts]
    results, _ = grade_side_by_side([(POOL, path, (part,)) for part in parts], jobs=2, oracle_for=counted)
    assert asked == [POOL] and results[0].score == results[0].max_score
