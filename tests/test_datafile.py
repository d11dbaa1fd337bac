"""`grader.datafile`: YAML nodes read field by field, every problem located as file:line: field."""

from __future__ import annotations

import textwrap
from pathlib import Path

from grader import datafile
from grader.datafile import DataFileError, Problem


def _root(tmp_path: Path, text: str):
    path = tmp_path / "data.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    problems: list[Problem] = []
    return datafile.compose(path, problems), problems, str(path)


def test_a_file_that_is_not_yaml_is_one_problem_at_its_line(tmp_path):
    root, problems, where = _root(tmp_path, "a: 1\nb: [2,\nc: 3\n")
    assert root is None and len(problems) == 1
    assert str(problems[0]).startswith(f"{where}:") and "not valid YAML" in str(problems[0])
    missing: list[Problem] = []
    assert datafile.compose(tmp_path / "nope.yaml", missing) is None and "cannot read the file" in str(missing[0])


def test_mapping_reports_unknown_repeated_and_missing_keys_with_lines(tmp_path):
    root, problems, where = _root(tmp_path, """\
        name: a
        colour: red
        name: b
        """)
    fields = datafile.mapping(root, where, problems, ("name", "title"), ("name", "title"), "entry")
    assert fields["name"].value == "a"
    assert [str(p) for p in problems] == [
        f"{where}:2: entry.colour: unknown key; allowed keys are name, title",
        f"{where}:3: entry.name: given twice (also at line 1)",
        f"{where}:1: entry.title: missing",
    ]


def test_values_are_read_by_their_yaml_type(tmp_path):
    root, problems, where = _root(tmp_path, """\
        folded: |-
          two
          lines
        quoted_bool: "true"
        accidental: yes
        good: false
        number: 42
        small: 0
        text_number: 3.5
        names: [a-b, Not_Kebab]
        """)
    f = datafile.mapping(root, where, problems, [k.value for k, _ in root.value])
    assert datafile.text(f["folded"], where, "folded", problems) == "two lines"
    assert datafile.text(f["folded"], where, "folded", problems, collapse=False) == "two\nlines"
    assert datafile.boolean(f["good"], where, "good", problems) is False
    assert datafile.integer(f["number"], where, "number", problems) == 42
    assert problems == []
    assert datafile.boolean(f["quoted_bool"], where, "quoted_bool", problems) is None
    assert datafile.boolean(f["accidental"], where, "accidental", problems) is None
    assert datafile.integer(f["small"], where, "small", problems, minimum=1) is None
    assert datafile.integer(f["text_number"], where, "text_number", problems) is None
    assert datafile.text(f["number"], where, "number", problems) is None
    assert datafile.text_list(f["names"], where, "names", problems, kebab=True) == ("a-b",)
    messages = [str(p) for p in problems]
    assert messages == [
        f"{where}:4: quoted_bool: must be a boolean, got the string 'true'; write true or false without quotes",
        f"{where}:5: accidental: 'yes' is a YAML 1.1 boolean by accident; write true or false",
        f"{where}:8: small: must be at least 1, got 0",
        f"{where}:9: text_number: must be an integer, got '3.5'",
        f"{where}:7: number: '42' is read by YAML as a int, not text; put it in quotes",
        f"{where}:10: names: 'Not_Kebab' must be kebab-case",
    ]


def test_the_error_lists_every_problem_under_its_files_name():
    class ToyError(DataFileError):
        what = "the toy files"

    error = ToyError([Problem("a.yaml", 3, "x", "wrong"), Problem("b.yaml", 0, "", "unreadable")])
    assert str(error) == "2 problem(s) in the toy files:\n  a.yaml:3: x: wrong\n  b.yaml: unreadable"
    assert isinstance(error, ValueError) and len(error.problems) == 2


def test_versioned_fields_want_a_mapping_of_version_1(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("- version: 1\n", encoding="utf-8")
    problems: list[Problem] = []
    assert datafile.versioned_fields(path, problems, ("version", "items"), "version and items") is None
    assert [(p.line, p.message) for p in problems] == [(1, "the file must be a mapping with version and items")]
    path.write_text("version: 2\nitems: []\n", encoding="utf-8")
    problems = []
    fields = datafile.versioned_fields(path, problems, ("version", "items"), "version and items")
    assert set(fields) == {"version", "items"}
    assert [(p.line, p.field, p.message) for p in problems] == [(1, "version", "must be 1, got 2")]
    path.write_text("version: 1\nitems: []\n", encoding="utf-8")
    problems = []
    assert datafile.versioned_fields(path, problems, ("version", "items"), "version and items") and problems == []
