"""The worker loads a student's module the way Python's import system does (issue 13 item 1).

Code that looks its own module up in `sys.modules` while the module is being executed must
import: a `@dataclass` whose annotations are postponed strings, or a `@torch.jit.script` class.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, variant

_MAX_HEAD = '    kh, kw = _pair(kernel_size, "kernel_size")\n    sh, sw = _pair(kernel_size if stride is None else stride, "stride")\n    if kh > x.shape[-2]'


def test_dataclass_with_postponed_annotations_gets_full_marks(grade):
    # The stubs' own first line is `from __future__ import annotations`: dataclasses then resolve
    # the string annotations through sys.modules[cls.__module__].
    src = variant("pooling",
                  ("import torch\n", "from dataclasses import dataclass\n\nimport torch\n\n\n"
                                     "@dataclass(frozen=True)\nclass _Window:\n    kh: int\n    kw: int\n    sh: int\n    sw: int\n"),
                  (_MAX_HEAD, '    window = _Window(*_pair(kernel_size, "kernel_size"), *_pair(kernel_size if stride is None else stride, "stride"))\n'
                              "    kh, kw, sh, sw = window.kh, window.kw, window.sh, window.sw\n    if kh > x.shape[-2]"))
    assert "from __future__ import annotations" in src
    result = grade("pooling", source=src)
    assert result["score"] == result["max_score"], [c["message"] for c in result["checks"] if c["status"] != "passed"]


def test_torch_jit_script_class_gets_full_marks(grade):
    # TorchScript reads the class's source through inspect, which finds the file via sys.modules.
    src = variant("pooling",
                  ("import torch\n", "import torch\n\n\n@torch.jit.script\nclass _Size:\n"
                                     "    def __init__(self, h: int, w: int):\n        self.h = h\n        self.w = w\n"),
                  (_MAX_HEAD, '    kh, kw = _pair(kernel_size, "kernel_size")\n    sh, sw = _pair(kernel_size if stride is None else stride, "stride")\n'
                              "    size = _Size(x.shape[-2], x.shape[-1])\n    if kh > size.h"))
    result = grade("pooling", source=src)
    assert result["score"] == result["max_score"], [c["message"] for c in result["checks"] if c["status"] != "passed"]


def _loads_with_dynamo_present() -> bool:
    """Whether a module that asserts `torch._dynamo` was imported before it loads in a new worker."""
    import time

    from grader.runner.handle import WorkerProcess

    source = b"import sys\nassert 'torch._dynamo' in sys.modules, 'not preloaded'\n"
    with WorkerProcess() as worker:
        outcome = worker.request({"op": "load", "exercise": "pooling", "path": "/nowhere/pooling.py", "source": source,
                                  "forbidden": [], "forbidden_ops": []}, time.monotonic() + 120)
    assert outcome.kind == "reply", outcome.detail
    return outcome.reply.get("kind") == "ok"


def test_a_zygote_imports_what_training_needs_once_asked_and_again_after_it_died(monkeypatch):
    """`zygote_for(device, preload)`: a running zygote imports the preload before its next fork, and
    one started again after it died is asked for it too. torch imports `torch._dynamo` on the first
    optimizer step (1.2 s of CPU per worker otherwise). About 3 s: a zygote of its own."""
    from grader.runner import zygote

    monkeypatch.setattr(zygote, "_zygotes", {})  # this test's own zygote, not the test process's
    try:
        plain = zygote.zygote_for("cpu")
        assert not _loads_with_dynamo_present()
        assert zygote.zygote_for("cpu", zygote.TRAINING_MODULES) is plain
        assert _loads_with_dynamo_present()
        plain.proc.kill()
        plain.proc.wait()
        started = []  # the zygote started in its place (not started for real: what it is asked to import is the point)
        monkeypatch.setattr(zygote, "Zygote", lambda device, preload=(): started.append(preload) or plain)
        zygote.zygote_for("cpu")
        assert started == [zygote.TRAINING_MODULES]
    finally:
        zygote.shutdown_zygotes()


def test_grading_an_exercise_that_trains_asks_the_zygote_for_what_training_needs(grade, monkeypatch):
    from grader.engine import session
    from grader.runner.zygote import TRAINING_MODULES

    asked = []
    monkeypatch.setattr(session, "zygote_for", lambda device, preload=(): asked.append(preload))
    for name in ("pooling", "gan"):
        grade(name, (ROOT / "exercises" / f"{name}.py").read_text(encoding="utf-8"))
    assert asked == [TRAINING_MODULES]  # pooling trains nothing: its grading leaves the zygote alone


def test_a_preload_that_cannot_be_imported_leaves_the_zygote_serving(monkeypatch):
    """A preload only saves time: one that does not import (another torch) must not end the zygote."""
    import sys

    from grader.runner.worker import _preload

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    _preload(["no_such_module_for_the_zygote", "colorsys"])
    assert "colorsys" in sys.modules  # the ones after it are still imported


@pytest.mark.parametrize("argv, trains", [(["exercise", "autoencoder"], True), (["watch", "gan", "--path", "x"], True),
                                          (["exercise", "--path", "solutions", "conv"], False), (["all"], True)])
def test_a_grading_command_preloads_training_only_for_exercises_that_train(argv, trains):
    from grader.cli import _exercises_named
    from grader.runner.zygote import TRAINING_MODULES, preload_for

    assert preload_for(_exercises_named(argv[0], argv)) == (TRAINING_MODULES if trains else ())


def test_grade_all_preloads_training_only_when_its_folder_holds_an_exercise_that_trains(tmp_path):
    """`grade all` grades the exercise files its folder holds: it needs no training modules for a
    folder without the autoencoder and the GAN (a torch._dynamo import saved), and needs them
    as soon as one of those files is there, however --path is written."""
    from grader.cli import _exercises_named
    from grader.runner.zygote import TRAINING_MODULES, preload_for

    for name in ("conv", "pooling"):
        (tmp_path / f"{name}.py").write_text("", encoding="utf-8")
    assert [e.name for e in _exercises_named("all", ["all", "--path", str(tmp_path)])] == ["conv", "pooling"]
    assert preload_for(_exercises_named("all", ["all", f"--path={tmp_path}"])) == ()
    (tmp_path / "gan.py").write_text("", encoding="utf-8")
    assert preload_for(_exercises_named("all", ["--no-color", "all", "--path", str(tmp_path)])) == TRAINING_MODULES
    assert _exercises_named("all", ["all", "--path", str(tmp_path / "missing")]) == []
