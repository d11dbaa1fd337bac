"""`grader.catalog`: the one list of sections and exercises, its problems with file:line, and the
JSON cache that spares the YAML parse."""

from __future__ import annotations

import textwrap

import pytest

from grader import catalog
from grader.catalog import CATALOG_PATH, CatalogError, read_catalog, sections


def _catalog(tmp_path, text: str, *more_exercises: str):
    path = tmp_path / "catalog.yaml"
    path.write_text(textwrap.dedent(text) + "".join(more_exercises), encoding="utf-8")
    return path


GOOD = """\
    version: 1
    sections: [Convolution, GANs]
    exercises:
      - name: pooling
        title: Pooling
        section: Convolution
        parts:
          max_pool2d: {points: 8, summary: "max pooling"}
          errors: {points: 2}
        forbidden: [torch.nn.functional.*pool*]
    """


BAD_NAME = """\
  - name: Pooling
    title: Again
    section: GANs
    parts: {a: {points: 1}}
    colour: red
"""
TWICE = """\
  - name: pooling
    title: Twice
    section: GANs
    parts: {b: {points: 1}}
"""


def test_the_course_catalogue_is_valid():
    catalog = read_catalog(CATALOG_PATH)
    assert catalog.sections == sections() and len(catalog.sections) == len(set(catalog.sections))
    assert all(e.section in catalog.sections for e in catalog.exercises)


def test_a_catalogue_reads_into_records(tmp_path):
    catalog = read_catalog(_catalog(tmp_path, GOOD))
    assert catalog.sections == ("Convolution", "GANs")
    (pooling,) = catalog.exercises
    assert (pooling.name, pooling.max_points, pooling.forbidden) == ("pooling", 10, ("torch.nn.functional.*pool*",))
    assert [(p.name, p.points, p.summary) for p in pooling.parts] == [("max_pool2d", 8, "max pooling"), ("errors", 2, "")]


def test_every_problem_is_located(tmp_path):
    path = _catalog(tmp_path, GOOD.replace("section: Convolution", "section: Pooling").replace("points: 8", "points: -1"),
                    BAD_NAME, TWICE)
    with pytest.raises(CatalogError) as info:
        read_catalog(path)
    text = str(info.value)
    assert f"{path}:6: exercises[0] (pooling).section: 'Pooling' is not one of the sections: Convolution, GANs" in text
    assert f"{path}:8: exercises[0] (pooling).parts.max_pool2d.points: must be at least 1, got -1" in text
    assert f"{path}:11: exercises[1].name: 'Pooling' must be a lowercase Python name" in text
    assert f"{path}:15: exercises[1].colour: unknown key" in text
    assert len(info.value.problems) == 4  # the second "pooling" is only a duplicate once the first is valid


def test_trains_is_read_as_a_yes_or_no(tmp_path):
    assert read_catalog(_catalog(tmp_path, GOOD + "    trains: true\n")).exercises[0].trains
    assert not read_catalog(_catalog(tmp_path, GOOD)).exercises[0].trains
    path = _catalog(tmp_path, GOOD + "    trains: sometimes\n")
    with pytest.raises(CatalogError, match=rf"{path}:11: exercises\[0\] \(pooling\).trains: must be a boolean"):
        read_catalog(path)


def test_exactly_the_exercises_that_take_optimizer_steps_are_marked_trains():
    """A batch's zygote imports torch._dynamo for every student's worker (1.2 s of CPU each) only
    where the exercise `trains`: where its reference or its checks use torch.optim."""
    root = CATALOG_PATH.parent.parent
    for exercise in read_catalog(CATALOG_PATH).exercises:
        code = "".join((root / folder / f"{exercise.name}.py").read_text(encoding="utf-8")
                       for folder in ("solutions", "grader/checks"))
        assert exercise.trains == ("optim." in code), exercise.name


def test_duplicate_names_are_refused(tmp_path):
    path = _catalog(tmp_path, GOOD, TWICE)
    with pytest.raises(CatalogError, match=rf"{path}:4: exercises: names given more than once: pooling"):
        read_catalog(path)


def test_the_quiz_bank_takes_sections_and_exercise_names_from_the_catalogue(tmp_path, monkeypatch):
    import grader.catalog
    from grader.quiz.bank import BankError, load_bank

    course = read_catalog(_catalog(tmp_path, GOOD))  # sections Convolution and GANs; one exercise, pooling
    monkeypatch.setattr(grader.catalog, "_course", lambda: course)
    bank = tmp_path / "quizzes"
    bank.mkdir()
    (bank / "gap.yaml").write_text(textwrap.dedent("""\
        title: GAP
        statements:
          - id: gap-averages
            text: GAP averages each feature map.
            answer: true
            explanation: It takes the mean over height and width.
            section: GlobalAvgPooling
            exercise: gap
        """), encoding="utf-8")
    with pytest.raises(BankError) as info:
        load_bank(bank, use_cache=False)
    text = str(info.value)
    assert "section: 'GlobalAvgPooling' is not a section of the notes; use one of Convolution, GANs" in text
    assert "exercise: unknown exercise 'gap'; use one of pooling" in text


@pytest.fixture
def own_catalog(tmp_path, monkeypatch):
    """A copy of the catalogue that the test may edit, with its own cache folder."""
    path = tmp_path / "catalog.yaml"
    path.write_text(catalog.CATALOG_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(catalog, "CATALOG_PATH", path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    catalog._course.cache_clear()
    yield path
    catalog._course.cache_clear()


def test_the_cache_gives_the_same_records_and_follows_edits(own_catalog, monkeypatch):
    parses = []
    parse = catalog.read_catalog
    monkeypatch.setattr(catalog, "read_catalog", lambda path: parses.append(path) or parse(path))
    first = catalog._course()
    catalog._course.cache_clear()
    assert catalog._course() == first and parses == [own_catalog]  # the second load came from the cache
    own_catalog.write_text(own_catalog.read_text(encoding="utf-8").replace("Convolution from scratch", "Convolution, edited"),
                           encoding="utf-8")
    catalog._course.cache_clear()
    assert catalog.get_exercise("conv").title == "Convolution, edited" and len(parses) == 2


def test_a_broken_cache_is_parsed_again(own_catalog):
    parsed = catalog._course()
    (cached,) = (own_catalog.parent / "cache" / "cnn-grader").glob("catalog-*.json")
    cached.write_text("{not json", encoding="utf-8")
    catalog._course.cache_clear()
    assert catalog._course() == parsed
