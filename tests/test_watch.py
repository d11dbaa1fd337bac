"""The watch loop, driven by real writes to the exercise files with a bounded number of cycles:
re-grade on save (noticed by file events, or by looking when polling), only the changes shown (a
changed named mistake too), one warm worker, moving on when complete, manual mode, `q` and a new
save stopping a slow run at once, a deleted file, the `p` key's pictures page, and the CLI
around it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.engine.results import CheckResult, ExerciseResult
from grader.study.watch import LineKeys, WatchConfig, Watcher, diff_checks, first_open, render_changes
from grader.study.workspace import pristine_stub

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 0.05
BOUND = 600  # cycles: 30 s of polling at most, whatever happens


def _reference(name: str) -> str:
    return (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8")


def _save(path: Path, text: str) -> None:
    """Save like an editor would, with a modification time that surely differs."""
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


class NoKeys:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def fileno(self):
        return None

    def poll(self, timeout):
        import time

        time.sleep(timeout)
        return None

    def wait(self):
        return None


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "exercises"
    d.mkdir()
    for name in ("conv", "pooling"):
        (d / f"{name}.py").write_text(pristine_stub(name), encoding="utf-8")
    return d


def test_regrades_on_save_shows_changes_and_moves_on(folder, worker):
    """stub -> one bug -> fixed (complete) -> next exercise -> solved: five gradings, one worker."""
    broken = _reference("conv").replace("out = (size + 2 * padding", "out = (size + 3 * padding")
    assert broken != _reference("conv")
    saves = [(folder / "conv.py", broken), (folder / "conv.py", _reference("conv")),
             None, (folder / "pooling.py", _reference("pooling"))]
    events, pids, recorded, lines = [], [], [], []

    def on_event(event):
        events.append(event)
        pids.append(watcher.worker.proc.pid)
        step = saves[len(events) - 1] if len(events) <= len(saves) else None
        if step is not None:
            _save(*step)
        return False

    watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, max_cycles=BOUND), echo=lines.append,
                      keys=NoKeys(), record=recorded.append, on_event=on_event, worker=worker)
    assert watcher.run("conv") == 0
    out = "\n".join(lines)
    assert [e.exercise for e in events] == ["conv", "conv", "conv", "pooling", "pooling"], out
    assert [e.complete for e in events] == [False, False, True, False, True], out
    assert len(set(pids)) == 1, "the worker was restarted between re-grades"
    assert worker.alive  # the caller's worker is left running
    assert watcher.cycles < BOUND

    first, buggy, fixed = events[0], events[1], events[2]
    assert first.previous is None and first.result.not_started
    # the bug: every check passes except the output size values; the diff lists every check that changed
    assert {c.name: c.after for c in buggy.changes}["output_size_values"] == "failed"
    assert all(c.before == "not_implemented" for c in buggy.changes)
    # the fix: only the one check that changed is shown
    assert [(c.name, c.before, c.after) for c in fixed.changes] == [("output_size_values", "failed", "passed")]
    assert "(was FAIL)" in out and "Moving on to pooling" in out and "every exercise" in out
    assert [r.complete for r in recorded] == [False, False, True, False, True]
    assert all(r.path == str((folder / r.exercise).with_suffix(".py").resolve()) for r in recorded)
    assert str(folder) in out and "cnn-grader-watch-" not in out  # snapshot paths never shown


def test_an_unchanged_save_is_not_regraded_and_q_quits(folder, worker):
    r, w = os.pipe()
    events = []

    def on_event(event):
        events.append(event)
        # same content, new modification time: no re-grade; then quit with `q`
        _save(folder / "pooling.py", pristine_stub("pooling"))
        threading.Timer(0.5, lambda: (os.write(w, b"q\n"), os.close(w))).start()

    with os.fdopen(r, "rb", buffering=0) as stream:
        watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, max_cycles=BOUND), echo=lambda s: None,
                          keys=LineKeys(stream), on_event=on_event, worker=worker)
        assert watcher.run("pooling") == 0
    assert len(events) == 1
    assert watcher.cycles < BOUND


def test_manual_mode_grades_on_each_key(folder, worker):
    keys_pressed = []

    class Keys(NoKeys):
        def wait(self):
            keys_pressed.append(1)
            if len(keys_pressed) == 1:
                _save(folder / "pooling.py", _reference("pooling"))
                return "\n"
            return "q"

    events = []
    watcher = Watcher(WatchConfig(folder=folder, manual=True, max_cycles=10), echo=lambda s: None,
                      keys=Keys(), on_event=lambda e: events.append(e), worker=worker)
    assert watcher.run("pooling") == 0
    # pooling complete: the loop moves on to the exercise still open (conv, wrapping round)
    assert [(e.exercise, e.complete) for e in events] == [("pooling", False), ("pooling", True), ("conv", False)]
    assert len(keys_pressed) == 2


def test_p_writes_the_pictures_page_and_opens_it(folder, worker, tmp_path):
    """Manual mode: a wrong pooling is graded, then `p` writes its page and opens it; before any
    failure with a picture, `p` says why there is none; without a browser the path is printed."""
    wrong = _reference("pooling").replace("windows.flatten(-2).max(dim=-1)", "windows.flatten(-2).min(dim=-1)")
    assert wrong != _reference("pooling")
    script = iter(["p", "\n", "p", "p", "q"])

    class Keys(NoKeys):
        def wait(self):
            key = next(script)
            if key == "\n":
                _save(folder / "pooling.py", wrong)
            return key

    lines, opened = [], []
    launches = iter([0, 1])  # a browser, then none

    def launch(url):
        opened.append(url)
        return next(launches)

    watcher = Watcher(WatchConfig(folder=folder, manual=True, max_cycles=10, pictures=tmp_path / "pictures"),
                      echo=lines.append, keys=Keys(), worker=worker, launch=launch)
    assert watcher.run("pooling") == 0
    out = "\n".join(lines)
    assert "No picture: what fails has nothing to draw" in out  # the stub: nothing to draw
    page = tmp_path / "pictures" / "pooling.html"
    assert opened == [page.resolve().as_uri()] * 2
    assert f"pictures: {page}\n" in out + "\n" and f"pictures: {page} (no browser here: open that file in one)" in out
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "max_pool2d: max_pool2d_forward" in html and "<svg" in html


class PipeKeys(LineKeys):
    """Keys the test presses (`press`) through a pipe, as a terminal would deliver them; a press
    after the loop has finished is dropped."""

    def __init__(self):
        self._r, self._w = os.pipe()
        self._lock = threading.Lock()
        super().__init__(os.fdopen(self._r, "rb", buffering=0))

    def press(self, key: str) -> None:
        with self._lock:
            if self._w >= 0:
                os.write(self._w, key.encode() + b"\n")

    def __exit__(self, *exc):
        with self._lock:
            os.close(self._w)
            self._w = -1
        self.stream.close()


def _when(condition, then, limit: float = 60.0) -> threading.Thread:
    """Run `then()` in a thread as soon as `condition()` holds (checked every 10 ms; gives up after `limit` s)."""

    def wait():
        deadline = time.monotonic() + limit
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        then()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


_HANGS = "\nwhile True:  # a slow run: importing this module never ends\n    pass\n"


def test_a_save_is_noticed_through_file_events_at_once(folder, worker):
    """With the loop's own look only once a minute, a save that lands while the loop sleeps is
    still graded within seconds: the file event woke it."""
    events, saved = [], {}

    def save():
        time.sleep(0.3)  # the loop is asleep by then
        saved["at"] = time.monotonic()
        _save(folder / "pooling.py", _reference("pooling"))

    def on_event(event):
        events.append((event, time.monotonic()))
        if len(events) == 1:
            threading.Thread(target=save).start()
        return len(events) == 2

    keys = PipeKeys()
    bound = threading.Timer(40, keys.press, ("q",))  # should events never come
    bound.start()
    watcher = Watcher(WatchConfig(folder=folder, interval=60.0, max_cycles=BOUND), echo=lambda s: None,
                      keys=keys, on_event=on_event, worker=worker)
    try:
        assert watcher.run("pooling") == 0
    finally:
        bound.cancel()
    assert watcher.events is not None
    assert len(events) == 2 and events[1][0].complete
    assert events[1][1] - saved["at"] < 20


def test_polling_notices_a_save_without_file_events(folder, worker):
    events = []

    def on_event(event):
        events.append(event)
        if len(events) == 1:
            _save(folder / "pooling.py", _reference("pooling"))
        return len(events) == 2

    watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, poll=True, max_cycles=BOUND), echo=lambda s: None,
                      keys=NoKeys(), on_event=on_event, worker=worker)
    assert watcher.run("pooling") == 0
    assert watcher.events is None
    assert [e.complete for e in events] == [False, True]


def test_q_stops_a_slow_run_at_once(folder, worker):
    """Importing the module never ends (its load would time out after 30 s): the loop says that
    grading is under way, and `q` stops it and kills the worker at once."""
    _save(folder / "pooling.py", pristine_stub("pooling") + _HANGS)
    lines, events = [], []
    keys = PipeKeys()
    _when(lambda: any("grading pooling.py" in line for line in lines), lambda: keys.press("q"))
    watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, timeout=30.0, max_cycles=BOUND),
                      echo=lines.append, keys=keys, on_event=events.append, worker=worker)
    t0 = time.monotonic()
    assert watcher.run("pooling") == 0
    elapsed = time.monotonic() - t0
    out = "\n".join(lines)
    assert "grading pooling.py (importing your module)... q stops it" in out
    assert events == [] and "Bye" in out
    assert elapsed < 20, f"q took {elapsed:.1f} s"
    assert not worker.alive  # killed; the next request gets a fresh one


def test_a_new_save_stops_a_slow_run_and_grades_the_new_version(folder, worker):
    _save(folder / "pooling.py", pristine_stub("pooling") + _HANGS)
    lines, events, pids = [], [], {}

    def fix():
        pids["slow"] = worker.proc.pid
        _save(folder / "pooling.py", _reference("pooling"))

    # the worker runs the slow import (a worker this test process has not started before is started by it)
    _when(lambda: any("grading pooling.py" in line for line in lines) and worker.proc is not None, fix)

    def on_event(event):
        events.append(event)
        pids["fixed"] = worker.proc.pid
        return True

    watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, timeout=30.0, max_cycles=BOUND),
                      echo=lines.append, keys=NoKeys(), on_event=on_event, worker=worker)
    t0 = time.monotonic()
    assert watcher.run("pooling") == 0
    assert time.monotonic() - t0 < 25  # the slow run alone would take 30 s
    assert "pooling.py changed while it was being graded: grading the new version." in "\n".join(lines)
    assert [(e.exercise, e.complete) for e in events] == [("pooling", True)]
    assert pids["slow"] != pids["fixed"]  # a fresh worker from the zygote


def test_a_changed_mistake_is_shown_again(folder, worker, monkeypatch):
    """Same status and message, but now a known mistake explains it: the check is shown again."""
    from grader.checks import conv

    original = list(conv.CHECKS)
    monkeypatch.setattr(conv, "CHECKS", [dataclasses.replace(c, mistakes=()) if c.name == "output_size_values" else c
                                         for c in original])
    buggy = _reference("conv").replace("out = (size + 2 * padding", "out = (size + padding")
    _save(folder / "conv.py", buggy)
    lines, events = [], []

    def on_event(event):
        events.append(event)
        if len(events) == 1:  # the same bug saved again; the check now knows the mistake
            monkeypatch.setattr(conv, "CHECKS", original)
            _save(folder / "conv.py", buggy + "\n# saved again\n")
        return len(events) == 2

    watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, stay=True, max_cycles=BOUND), echo=lines.append,
                      keys=NoKeys(), on_event=on_event, worker=worker)
    assert watcher.run("conv") == 0
    first, second = events
    before = next(c for c in first.result.checks if c.name == "output_size_values")
    after = next(c for c in second.result.checks if c.name == "output_size_values")
    assert (before.status, before.message, before.mistake) == ("failed", after.message, None)
    assert after.status == "failed" and after.mistake.name == "padding-counted-once"
    assert [c.name for c in second.changes] == ["output_size_values"]
    out = "\n".join(lines)
    assert "(still FAIL, explained differently)" in out and "likely mistake: padding-counted-once" in out


def test_a_deleted_file_is_reported_and_graded_again_when_back(folder, worker):
    lines, events = [], []

    def on_event(event):
        events.append(event)
        if len(events) == 1:
            (folder / "pooling.py").unlink()
            _when(lambda: any("was deleted" in line for line in lines),
                  lambda: _save(folder / "pooling.py", _reference("pooling")))
        return len(events) == 2

    watcher = Watcher(WatchConfig(folder=folder, interval=INTERVAL, max_cycles=BOUND), echo=lines.append,
                      keys=NoKeys(), on_event=on_event, worker=worker)
    assert watcher.run("pooling") == 0
    out = "\n".join(lines)
    assert f"{folder / 'pooling.py'} was deleted (or moved away)." in out and "`grade reset pooling`" in out
    assert out.count("was deleted") == 1
    assert [e.complete for e in events] == [False, True]


def test_diff_checks_lists_only_changes():
    def result(*statuses):
        return ExerciseResult("x", "x.py", 0, "0", "", 0.1, [
            CheckResult(f"c{i}", "p", 2 if s == "passed" else 0, 2, s, "" if s == "passed" else f"{s} here")
            for i, s in enumerate(statuses)])

    a, b = result("failed", "passed"), result("passed", "passed")
    changes = diff_checks(a, b)
    assert [(c.name, c.before, c.after) for c in changes] == [("c0", "failed", "passed")]
    assert len(diff_checks(None, b)) == 2
    assert diff_checks(b, b) == []
    text = render_changes(a, b, changes)
    assert "4/4" in text and "+2" in text and "c0" in text and "c1" not in text
    assert "no change" in render_changes(b, b, [])


def test_a_named_mistake_points_to_the_notes_subsection():
    def result(status, mistake=None):
        return ExerciseResult.from_dict(
            {"exercise": "nms", "score": 0, "max_score": 2, "duration_s": 0.1, "notices": [],
             "checks": [{"name": "box_iou_forward", "part": "box_iou", "points": 0, "max_points": 2,
                         "status": status, "message": "" if status == "passed" else "differs", "mistake": mistake}]})

    mistake = {"name": "union-counts-intersection-twice", "explanation": "Twice.", "section": "Object Detection",
               "subsection": "Intersection over union"}
    before, after = result("passed"), result("failed", mistake)
    text = click.unstyle(render_changes(before, after, diff_checks(before, after)))
    assert 'revisit the notes: Object Detection, "Intersection over union" (`grade notes object-detection`)' in text


def test_a_changed_diagnosis_is_shown_again():
    def result(diagnosis):
        return ExerciseResult.from_dict(
            {"exercise": "conv", "score": 0, "max_score": 4, "duration_s": 0.1, "notices": [],
             "checks": [{"name": "conv2d_forward", "part": "conv2d", "points": 0, "max_points": 4, "status": "failed",
                         "message": "output: shape (1, 2, 7, 9), expected (1, 2, 4, 5)", "mistake": None,
                         "diagnosis": diagnosis}]})

    stride = [{"kind": "shape", "text": "dimension 2 (height) is 7, expected 4 (3 more): the stride (2) is not applied"}]
    before, after = result([]), result(stride)
    changes = diff_checks(before, after)
    assert [c.name for c in changes] == ["conv2d_forward"]  # same status and message, new diagnosis
    assert "diagnosis (shape): dimension 2 (height) is 7" in click.unstyle(render_changes(before, after, changes))
    assert diff_checks(after, after) == []


def test_first_open_follows_the_course_order(folder):
    assert first_open(folder, set()) == "conv"
    assert first_open(folder, {"conv"}) == "pooling"
    assert first_open(folder, {"pooling"}, after="pooling") == "conv"
    assert first_open(folder, {"conv", "pooling"}) is None


# --- through the CLI ----------------------------------------------------------------------------
@pytest.fixture
def course(tmp_path, monkeypatch, folder):
    home = tmp_path / ".grade"
    home.mkdir()
    monkeypatch.setenv("GRADE_HOME", str(home))
    monkeypatch.setenv("GRADE_PROGRESS_DB", str(home / "progress.db"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_watch_completes_and_records(course):
    shutil.copy(ROOT / "solutions" / "pooling.py", course / "exercises" / "pooling.py")
    shutil.copy(ROOT / "solutions" / "conv.py", course / "exercises" / "conv.py")
    result = CliRunner().invoke(cli, ["watch", "--interval", "0.05", "--max-cycles", "50"])
    assert result.exit_code == 0, result.output
    assert "conv is complete" in result.output and "every exercise" in result.output
    progress = CliRunner().invoke(cli, ["progress"])
    assert "2 passed" in progress.output, progress.output


def test_cli_watch_manual_until_q(course):
    result = CliRunner().invoke(cli, ["watch", "pooling", "--manual", "--max-cycles", "5"], input="\nq\n")
    assert result.exit_code == 0, result.output
    assert "press Enter" in result.output
    assert result.output.count("no change since the last run") == 1
    assert "Bye" in result.output


def test_cli_watch_usage_errors(course):
    result = CliRunner().invoke(cli, ["watch", "conv", "--path", str(course / "nowhere")])
    assert result.exit_code == 2 and "not a folder" in result.output
    (course / "exercises" / "conv.py").unlink()
    result = CliRunner().invoke(cli, ["watch", "conv"])
    assert result.exit_code == 2 and "grade reset conv" in result.output and "Traceback" not in result.output
