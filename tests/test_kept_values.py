"""`engine.oracles.KeptValues`: the references' expected values for the public seed, kept between
runs by the learner's commands. A later run gets exactly the values the reference gives and runs
no reference; other seeds are never kept; any change to the reference, the checks, the grader or
torch makes them stale; a file that does not read is replaced; only the user can read them, and
no worker can reach them."""

from __future__ import annotations

import stat

import pytest

from conftest import ROOT
from grader.engine import recording
from grader.engine.oracles import CachingOracle, KeptValues, LiveOracle
from grader.engine.spec import DEFAULT_SEED, derive_seed, load_checks

POOL = "pooling"


def _every_expected(oracle: CachingOracle, seed: int = DEFAULT_SEED) -> dict:
    values = {}
    for check in load_checks(POOL):
        for index, case in enumerate(oracle.cases(check, derive_seed(seed, POOL, check.name))):
            values[check.name, index] = oracle.expected(check, index, case)
    return values


def _no_reference(monkeypatch) -> None:
    def refuse(self, check, index, case):
        raise AssertionError(f"the reference ran for {check.name} case {index}")

    monkeypatch.setattr(LiveOracle, "expected", refuse)


def test_the_public_seeds_values_last_between_runs_and_are_the_references(tmp_path, monkeypatch):
    first = CachingOracle(LiveOracle(POOL), keep=tmp_path)
    assert first.runs_reference(DEFAULT_SEED)
    computed = _every_expected(first)
    first.save()
    _no_reference(monkeypatch)
    second = CachingOracle(LiveOracle(POOL), keep=tmp_path)
    assert not second.runs_reference(DEFAULT_SEED) and second.runs_reference(7)
    assert recording._same(_every_expected(second), computed)
    assert [p.name for p in tmp_path.iterdir()] == [KeptValues(POOL, tmp_path).path.name]


def test_other_seeds_are_not_kept_and_without_a_folder_nothing_is(tmp_path):
    oracle = CachingOracle(LiveOracle(POOL), keep=tmp_path)
    _every_expected(oracle, seed=7)
    oracle.save()
    unkept = CachingOracle(LiveOracle(POOL))
    _every_expected(unkept)
    unkept.save()
    assert list(tmp_path.iterdir()) == [] and unkept.runs_reference(DEFAULT_SEED)


def test_a_change_to_the_checks_makes_them_stale_and_the_old_file_goes(tmp_path, monkeypatch):
    oracle = CachingOracle(LiveOracle(POOL), keep=tmp_path)
    _every_expected(oracle)
    oracle.save()
    old = KeptValues(POOL, tmp_path).path
    monkeypatch.setattr(recording, "checks_digest", lambda name: "a check changed")
    changed = CachingOracle(LiveOracle(POOL), keep=tmp_path)
    assert changed.kept.path != old and changed.runs_reference(DEFAULT_SEED)
    _every_expected(changed)
    changed.save()
    assert [p.name for p in tmp_path.iterdir()] == [changed.kept.path.name]


def test_the_digest_covers_the_reference_the_grader_and_torch(tmp_path, monkeypatch):
    import grader.engine.oracles as oracles

    names = {KeptValues(POOL, tmp_path).path.name}
    monkeypatch.setattr(oracles, "__version__", "another grader")
    names.add(KeptValues(POOL, tmp_path).path.name)
    monkeypatch.setattr(oracles.torch, "__version__", "another torch")
    names.add(KeptValues(POOL, tmp_path).path.name)
    monkeypatch.setattr(oracles, "data_dir", lambda what: tmp_path)
    (tmp_path / f"{POOL}.py").write_text((ROOT / "solutions" / f"{POOL}.py").read_text() + "\n# edited\n")
    names.add(KeptValues(POOL, tmp_path).path.name)
    assert len(names) == 4


def test_a_file_that_does_not_read_is_ignored_and_replaced(tmp_path):
    kept = KeptValues(POOL, tmp_path)
    kept.path.write_bytes(b"not a torch file")
    oracle = CachingOracle(LiveOracle(POOL), keep=tmp_path)
    computed = _every_expected(oracle)
    oracle.save()
    assert recording._same(CachingOracle(LiveOracle(POOL), keep=tmp_path).kept.load(), computed)


def test_only_the_user_can_read_them_and_no_worker_can_reach_them(tmp_path, monkeypatch):
    from grader.paths import kept_values_dir
    from grader.runner.sandbox import protected_paths

    folder = tmp_path / "cache" / "expected"
    oracle = CachingOracle(LiveOracle(POOL), keep=folder)
    _every_expected(oracle)
    oracle.save()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(oracle.kept.path.stat().st_mode) == 0o600
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert kept_values_dir() == tmp_path / "elsewhere" / "cnn-grader" / "expected"
    assert kept_values_dir().resolve() in protected_paths()


@pytest.mark.slow
def test_grade_exercise_runs_no_reference_the_second_time(invoke, tmp_path, monkeypatch):
    """The learner's command keeps the values: graded again, the same report from no reference
    run. About 4 s: two gradings in this process, with a worker each."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = invoke("exercise", POOL, "--path", str(ROOT / "solutions"))
    assert first.exit_code == 0, first.output
    _no_reference(monkeypatch)
    second = invoke("exercise", POOL, "--path", str(ROOT / "solutions"))
    assert second.exit_code == 0, second.output
    assert second.output == first.output
