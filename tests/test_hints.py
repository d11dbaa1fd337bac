"""The hint files: every part of every exercise in the catalogue has 2 to 4 valid hints; bad files
are reported with file:line; the log only moves forward."""

from __future__ import annotations

import textwrap

import pytest

from grader.catalog import load_catalog, sections
from grader.engine.results import CheckResult, ExerciseResult
from grader.study.hints import (MAX_HINTS, MIN_HINTS, HintError, HintLog, first_open_part, load_hints, next_hint,
                                validate_all)


def test_every_hint_file_is_valid_and_complete():
    problems = validate_all()
    assert not problems, "\n".join(str(p) for p in problems)


@pytest.mark.parametrize("exercise", load_catalog(), ids=lambda e: e.name)
def test_every_part_has_two_to_four_hints_tied_to_the_notes(exercise):
    hints = load_hints(exercise.name)
    assert list(hints.parts) == [p.name for p in exercise.parts]
    for part, items in hints.parts.items():
        assert MIN_HINTS <= len(items) <= MAX_HINTS, (exercise.name, part)
        assert [h.level for h in items] == list(range(1, len(items) + 1))
        for h in items:
            assert h.section in sections(), (exercise.name, part, h.section)
            assert len(h.text) >= 40, (exercise.name, part, h.text)


def _write(tmp_path, name: str, text: str):
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def test_problems_name_file_line_and_field(tmp_path):
    d = _write(tmp_path, "pooling", """\
        version: 1
        exercise: pooling
        parts:
          max_pool2d:
            - section: Convolution
              text: only one hint here, which is not enough for anyone
          avg_pool2d:
            - section: Pooling
              text: a hint that points to a section the notes do not have
            - section: Convolution
              text: "```def avg_pool2d(x): return x.mean()```"
          errors:
            - section: Convolution
              colour: red
              text: an unknown key next to a fine text of enough length
            - section: Convolution
              text: the second hint of the errors part, long enough
          maxpool: []
        """)
    with pytest.raises(HintError) as info:
        load_hints("pooling", d)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "pooling.yaml:5: parts.max_pool2d: has 1 hints" in text
    assert "pooling.yaml:8: parts.avg_pool2d[0].section: 'Pooling' is not a section" in text
    assert "parts.avg_pool2d[1].text: looks like solution code" in text
    assert "pooling.yaml:14: parts.errors[0].colour: unknown key" in text
    assert "pooling.yaml:18: parts.maxpool: no part 'maxpool'" in text


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(HintError, match="no hint file for exercise 'conv'"):
        load_hints("conv", tmp_path)
    d = _write(tmp_path, "conv", "version: 1\nparts: [unclosed\n")
    with pytest.raises(HintError, match=r"conv.yaml:\d+: not valid YAML"):
        load_hints("conv", d)


def test_log_moves_forward_only_and_persists_in_the_store(tmp_path):
    path = tmp_path / "progress.db"
    log = HintLog(path)
    hints = load_hints("pooling")
    seen, new = next_hint(hints, "errors", log)
    assert seen == [] and new.level == 1
    log.record("pooling", "errors", 1)
    log.record("pooling", "errors", 0)
    assert HintLog(path).shown("pooling", "errors") == 1
    seen, new = next_hint(hints, "errors", HintLog(path))
    assert [h.level for h in seen] == [1] and new.level == 2
    assert HintLog(path).shown("pooling", "max_pool2d") == 0


def test_first_open_part():
    ex = next(e for e in load_catalog() if e.name == "conv")
    assert first_open_part(ex, None) == ex.parts[0].name
    checks = [CheckResult(f"{p.name}_check", p.name, p.points, p.points, "passed") for p in ex.parts]
    result = ExerciseResult("conv", "conv.py", 0, "0", "", checks=checks)
    checks[1].points, checks[1].status = 0, "failed"
    assert first_open_part(ex, result) == ex.parts[1].name
    checks[1].points, checks[1].status = ex.parts[1].points, "passed"
    assert first_open_part(ex, result) is None
