"""The `docs/` folder: the exercise contract in the repo is the binding one, word for word, and
everything that cites it names its path in the repo."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

CONTRACT = ROOT / "docs" / "EXERCISES.md"
BINDING = ROOT.parent / "shared" / "EXERCISES.md"  # the project's binding copy, beside the checkouts


def test_contract_is_in_the_repo():
    assert CONTRACT.is_file()
    assert CONTRACT.read_text(encoding="utf-8").startswith("# The exercise contract")


@pytest.mark.skipif(not BINDING.is_file(), reason=f"no binding contract at {BINDING} to compare with")
def test_contract_is_a_verbatim_copy_of_the_binding_one():
    assert CONTRACT.read_bytes() == BINDING.read_bytes(), (
        f"{CONTRACT} differs from {BINDING}: copy the binding file over it (`cp {BINDING} {CONTRACT}`)"
    )


def test_every_citation_of_the_contract_names_its_path_in_the_repo():
    bare = re.compile(r"(?<![\w/\"])EXERCISES\.md")  # the file name without its docs/ folder
    found = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT)
        if (not path.is_file() or path.suffix not in {".py", ".md", ".yaml", ".j2", ".toml", ".txt"}
                or relative.parts[0].startswith(".") or relative.parts[0] in {"build", "dist"}):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if bare.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found == [], "cite the contract as docs/EXERCISES.md:\n" + "\n".join(found)
