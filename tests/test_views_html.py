"""Pictures through the engine and the front ends: the first failed check of each part carries the
picture of its failing case (and only a failed one does), `grade exercise --html` writes one
self-contained page with them, and a stored picture is embedded only when it is one of ours."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, needs_chromium, reference_oracle, variant
from grader.engine.results import ExerciseResult
from grader.views.html import exercise_html, exercise_page, has_pictures

PICTURE = '<svg xmlns="http://www.w3.org/2000/svg" class="picture"'
# conv with the bias never added: conv2d and conv_transpose2d fail (every check of both parts).
NO_BIAS = (("        out = out + bias.view(1, -1, 1, 1)\n    return out", "        out = out\n    return out"),)


@pytest.fixture(scope="module")
def wrong_conv(sessions, tmp_path_factory) -> ExerciseResult:
    from grader.views.pictures import draw

    folder = tmp_path_factory.mktemp("wrong")
    (folder / "conv.py").write_text(variant("conv", *NO_BIAS), encoding="utf-8")
    return sessions(pictures=draw).grade("conv", folder / "conv.py")


@pytest.fixture
def grade_with_pictures(sessions):
    from grader.views.pictures import draw

    def _grade(name, folder):
        return sessions(pictures=draw).grade(name, folder / f"{name}.py")

    return _grade


def test_the_first_failed_check_of_each_part_has_the_picture(wrong_conv):
    failed = [c for c in wrong_conv.checks if c.status == "failed"]
    assert {c.part for c in failed} == {"conv2d", "conv_transpose2d"}
    with_picture = [c.name for c in wrong_conv.checks if c.picture]
    first_per_part = [next(c.name for c in failed if c.part == part) for part in ("conv2d", "conv_transpose2d")]
    assert with_picture == first_per_part
    assert all(c.picture is None for c in wrong_conv.checks if c.status == "passed")
    svg = next(c.picture for c in wrong_conv.checks if c.picture)
    assert svg.startswith("<svg") and "conv2d: conv2d_forward" in svg and ">difference</text>" in svg
    # the case drawn is the first that failed (every case fails here), not the last one run
    from grader.engine.spec import derive_seed, load_checks

    check = next(c for c in load_checks("conv") if c.name == "conv2d_forward")
    first, *_, last = reference_oracle("conv").cases(check, derive_seed(0, "conv", check.name))
    assert "inputs: " + first.label[:30] in svg and last.label[:30] not in svg


def test_passing_code_gets_no_picture(grade_with_pictures):
    result = grade_with_pictures("conv", folder=ROOT / "solutions")
    assert result.complete
    assert not has_pictures(result)


def test_a_picture_that_cannot_be_drawn_costs_nothing_but_a_notice(sessions, tmp_path):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    (tmp_path / "conv.py").write_text(variant("conv", *NO_BIAS), encoding="utf-8")
    result = sessions(pictures=broken).grade("conv", tmp_path / "conv.py")
    assert result.score == 7 and not has_pictures(result)
    assert "the picture of conv2d_forward could not be drawn (ZeroDivisionError: division by zero)" in result.notices


def test_the_fragment_shows_each_picture_under_its_check(wrong_conv):
    html = exercise_html(wrong_conv, title="Convolution from scratch")
    assert html.count("<svg") == 2 and html.count('<figure class="picture"') == 2
    assert html.index("conv2d_forward (0/4)") < html.index("<svg") < html.index("conv2d_float64_optional_bias")


def test_a_stored_picture_that_is_not_ours_is_left_out(wrong_conv):
    tampered = json.loads(json.dumps(wrong_conv.to_dict()))
    first = next(c for c in tampered["checks"] if c["picture"])
    first["picture"] = first["picture"].replace("<rect", '<rect onload="alert(1)"', 1)
    html = exercise_page(ExerciseResult.from_dict(tampered))
    assert "onload" not in html and html.count("<svg") == 1


def test_grade_exercise_writes_the_html_page(invoke, tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "conv.py").write_text(variant("conv", *NO_BIAS), encoding="utf-8")
    page = tmp_path / "conv.html"
    run = invoke("exercise", "conv", "--path", str(folder), "--html", str(page), "--json", str(tmp_path / "conv.json"))
    assert run.exit_code == 1, run.output
    assert f"wrote {page} (with a picture of each failing part)" in run.stdout
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "default-src 'none'" in html and html.count("<svg") == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html) and "<script" not in html
    data = json.loads((tmp_path / "conv.json").read_text())
    assert [c["name"] for c in data["checks"] if c["picture"]] == ["conv2d_forward", "conv_transpose2d_forward"]


def test_an_unwritable_html_path_is_a_clear_error(invoke, tmp_path):
    run = invoke("exercise", "pooling", "--path", str(ROOT / "solutions"), "--html", str(tmp_path / "missing" / "p.html"))
    assert run.exit_code == 2 and isinstance(run.exception, SystemExit), run.output
    assert "Could not write" in run.stderr and "Traceback" not in run.stderr


@needs_chromium
def test_the_page_loads_in_chromium_without_errors(wrong_conv, tmp_path, browser):
    page = tmp_path / "conv.html"
    page.write_text(exercise_page(wrong_conv, title="Convolution from scratch"), encoding="utf-8")
    shot, messages, _ = browser.load(page.as_uri())
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    assert not messages


def test_the_progress_page_shows_the_last_run_pictures(wrong_conv, tmp_path, monkeypatch):
    from grader.store import Store
    from grader.study.progress import collect, render_html

    monkeypatch.setenv("GRADE_PROGRESS_DB", str(tmp_path / "progress.db"))
    with Store.open() as store:
        store.record_exercise_result(wrong_conv.to_dict())
    html = render_html(collect())
    assert html.count('<figure class="picture">') == 2 and html.count(PICTURE) == 2


def _class_with(wrong_conv: ExerciseResult) -> list[dict]:
    """A demo class in which students 3 and 5 handed in the conv without the bias (3's run is drawn)."""
    from grader.instructor.demo import demo_class

    docs = demo_class(8, seed=3, exercises=["conv", "pooling"])
    for i in (3, 5):
        docs[i]["exercises"][0] = json.loads(json.dumps(wrong_conv.to_dict()))
        docs[i]["score"] = sum(e["score"] for e in docs[i]["exercises"])
    return docs


def test_the_class_report_shows_one_picture_per_mistake(wrong_conv):
    from grader.instructor.classdata import ClassResults
    from grader.instructor.report import render_report

    docs = _class_with(wrong_conv)
    page = render_report(ClassResults(docs), title="Class")
    table = page.split("Named mistakes seen most often", 1)[1].split("</table>", 1)[0]
    pictured = {c.mistake.name for c in wrong_conv.checks if c.picture and c.mistake}
    assert pictured == {"bias-ignored", "transpose-bias-ignored"}
    links = {}
    for row in table.split("<tr>")[2:]:  # each mistake links to its picture, if it has one
        name = re.search(r"<b>([^<]+)</b>", row).group(1)
        link = re.search(r'href="#(mistake-picture-\d+)">what it looks like', row)
        assert bool(link) == (name in pictured), name
        if link:
            links[name] = link.group(1)
    shown = page.split("What the frequent mistakes look like", 1)[1].split("</section>", 1)[0]
    assert shown.count(PICTURE) == len(pictured) == page.count(PICTURE)  # one per mistake, none per student
    for name, anchor in links.items():
        block = shown.split(f'id="{anchor}"', 1)[1].split("</figure>", 1)[0]
        assert f"<h4>{name} " in block and f'from <a href="#student-4">{docs[3]["student"]}</a>' in block


@needs_chromium
def test_the_report_and_progress_pages_with_pictures_load_in_chromium(wrong_conv, tmp_path, monkeypatch, browser):
    from grader.instructor.classdata import ClassResults
    from grader.instructor.report import render_report
    from grader.store import Store
    from grader.study.progress import collect, render_html

    monkeypatch.setenv("GRADE_PROGRESS_DB", str(tmp_path / "progress.db"))
    with Store.open() as store:
        store.record_exercise_result(wrong_conv.to_dict())
    pages = {"report": render_report(ClassResults(_class_with(wrong_conv)), title="Class"), "progress": render_html(collect())}
    for name, html in pages.items():
        page = tmp_path / f"{name}.html"
        page.write_text(html, encoding="utf-8")
        shot, messages, _ = browser.load(page.as_uri())
        assert len(shot) > 20_000 and not messages, (name, messages)


def test_results_from_before_pictures_still_render(wrong_conv):
    stored = wrong_conv.to_dict()
    older = ExerciseResult.from_dict({**stored, "checks": [{k: v for k, v in c.items() if k != "picture"} for c in stored["checks"]]})
    assert "<svg" not in exercise_page(older) and not has_pictures(older)


def test_the_notebook_shows_the_pictures(tmp_path):
    """`grader.check` grades with pictures, and its `_repr_html_` puts each under its failed part."""
    import grader

    wrong = (ROOT / "solutions" / "pooling.py").read_text(encoding="utf-8").replace(
        "windows.flatten(-2).max(dim=-1)", "windows.flatten(-2).min(dim=-1)")
    (tmp_path / "pooling.py").write_text(wrong, encoding="utf-8")
    result = grader.check("pooling", tmp_path)
    assert [c.name for c in result.checks if c.picture] == ["max_pool2d_forward"]
    html = result._repr_html_()
    assert html.count(PICTURE) == 1 and html.index("max_pool2d_forward") < html.index(PICTURE)
