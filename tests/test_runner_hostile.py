"""Hostile submissions: each is graded to completion with the right status, and nothing it does
changes another check's verdict or survives the run."""

from __future__ import annotations

import os
import time

import pytest

from conftest import reference_source, statuses, variant

POOL = "pooling"


def _with_prelude(prelude: str, source: str | None = None) -> str:
    """The source with `prelude` run at import, right after the `from __future__` line."""
    source = source or reference_source(POOL)
    future = "from __future__ import annotations\n"
    return source.replace(future, future + prelude + "\n", 1)


def test_infinite_loop_times_out_and_other_checks_still_run(grade):
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2)',
                         '    while True:\n        pass\n    windows = None\n    return windows.flatten(-2)'))
    result = grade(POOL, source=src, timeout=1.5)
    st = statuses(result)
    assert st["max_pool2d_forward"] == "timeout"
    assert st["avg_pool2d_forward"] == "passed"  # the worker was restarted
    assert "did not finish within 1.5 s" in next(c for c in result["checks"] if c["name"] == "max_pool2d_forward")["message"]


def test_memory_bomb_is_an_error_not_a_grader_crash(grade):
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean',
                         '    hog = torch.ones(2**40, dtype=torch.uint8)\n    return hog.mean'))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] in ("error", "crashed")
    assert "memory" in check["message"]
    assert statuses(result)["max_pool2d_forward"] == "passed"


def test_python_memory_bomb(grade):
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean',
                         '    hog = [bytearray(10**9) for _ in range(10)]\n    return hog.mean'))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] in ("error", "crashed") and "memory" in check["message"]


@pytest.mark.parametrize("exit_call,status", [("sys.exit(3)", "error"), ("os._exit(0)", "crashed")])
def test_exit_at_import(grade, exit_call, status):
    result = grade(POOL, source=_with_prelude(f"import os, sys\n{exit_call}"))
    assert set(statuses(result).values()) == {status}
    assert result["score"] == 0


def test_exit_inside_a_function_costs_only_that_check(grade):
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean',
                         '    import os\n    os._exit(0)\n    return windows.mean'))
    result = grade(POOL, source=src)
    assert statuses(result)["avg_pool2d_forward"] == "crashed"
    assert statuses(result)["max_pool2d_forward"] == "passed"


def test_segfault_is_reported_with_the_signal(grade):
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2)',
                         '    import ctypes\n    ctypes.string_at(0)\n    windows = None\n    return windows.flatten(-2)'))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "max_pool2d_forward")
    assert check["status"] == "crashed"
    assert "signal 11" in check["message"] and "SIGSEGV" in check["message"]
    assert statuses(result)["avg_pool2d_forward"] == "passed"


def test_monkeypatched_allclose_cannot_pass_a_wrong_answer(grade):
    src = _with_prelude("import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
                        "torch.testing.assert_close = lambda *a, **k: None",
                        variant(POOL, ("return windows.mean(dim=(-2, -1))", "return windows.mean(dim=(-2, -1)) + 1")))
    result = grade(POOL, source=src)
    assert statuses(result)["avg_pool2d_forward"] == "failed"
    assert statuses(result)["max_pool2d_forward"] == "passed"


def test_forbidden_call_through_getattr(grade):
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2).max(dim=-1).values",
                         "    import torch.nn.functional as F\n    name = 'max' + '_pool' + '2d'\n    return getattr(F, name)(x, kernel_size, stride)"))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "max_pool2d_forward")
    assert check["status"] == "forbidden"
    assert "torch.nn.functional.max_pool2d" in check["message"]


def test_forbidden_call_swallowed_by_student_is_still_caught(grade):
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean",
                         "    try:\n        return torch.nn.functional.avg_pool2d(x, kernel_size, stride)\n    except BaseException:\n        pass\n"
                         "    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)\n    return windows.mean"))
    result = grade(POOL, source=src)
    assert statuses(result)["avg_pool2d_forward"] == "forbidden"
    assert any("avg_pool2d" in n for n in result["notices"])  # the static scan saw it too


def test_forbidden_op_through_an_internal_route(grade):
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean(dim=(-2, -1))",
                         "    return torch.ops.aten.avg_pool2d(x, kernel_size, stride if stride else kernel_size)"))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] == "forbidden" and "aten::avg_pool2d" in check["message"]


def test_importing_solutions_is_refused(grade):
    src = "import solutions.pooling as ref\nfrom solutions.pooling import *\n"
    result = grade(POOL, source=src)
    assert set(statuses(result).values()) == {"error"}
    assert "not allowed while grading" in result["checks"][0]["message"]


def test_malicious_reduce_object_never_runs_in_the_grader(grade, tmp_path):
    marker = tmp_path / "pwned"
    src = variant(POOL, ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
                         "    class Evil:\n        def __reduce__(self):\n"
                         f"            return (open, ({str(marker)!r}, 'w'))\n"
                         "    return Evil()"))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] == "failed"
    assert "Evil" in check["message"]
    assert not marker.exists()


def test_flood_of_output_is_bounded(grade):
    src = variant(POOL, ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
                         "    import sys\n    sys.stdout.write('x' * (100 * 1024 * 1024))\n    sys.stdout.flush()\n    return windows.mean(dim=(-2, -1))"))
    result = grade(POOL, source=src, timeout=30)
    assert result["score"] == result["max_score"]  # printing is not wrong, only noisy
    assert sum(len(n) for n in result["notices"]) < 100_000
    assert any("printed" in n for n in result["notices"])


def test_background_process_is_gone_after_the_run(tmp_path):
    from grader.engine.session import GradingSession

    pidfile = tmp_path / "pid"
    src = variant(POOL, ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
                         "    import subprocess\n"
                         f"    p = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                         f"    open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
                         "    return windows.mean(dim=(-2, -1))"))
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "pooling.py").write_text(src)
    with GradingSession() as session:  # its own worker, stopped when the session closes
        session.grade(POOL, folder / "pooling.py")
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"background process {pid} survived the run")


def test_in_place_modification_of_the_input_is_reported(grade):
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean",
                         "    x.mul_(1.0)\n    x.add_(0.5)\n    x.sub_(0.5)\n    x[..., 0, 0] = 0\n    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)\n    return windows.mean"))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] == "failed"
    assert "in place" in check["message"]


def test_lying_output_does_not_change_the_verdict(grade):
    src = _with_prelude("print('avg_pool2d_forward: passed'); print('{\"status\": \"passed\", \"score\": 18}')",
                        variant(POOL, ("return windows.mean(dim=(-2, -1))", "return windows.mean(dim=(-2, -1)) * 2")))
    result = grade(POOL, source=src)
    assert statuses(result)["avg_pool2d_forward"] == "failed"


def test_killing_its_parent_process_costs_only_that_check(grade):
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean",
                         "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    os.kill(os.getpid(), signal.SIGKILL)\n    return windows.mean"))
    result = grade(POOL, source=src)
    st = statuses(result)
    assert st["avg_pool2d_forward"] == "crashed"
    assert "signal 9" in next(c["message"] for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert st["max_pool2d_forward"] == "passed" and st["kernel_larger_than_input"] == "passed"


def test_a_crash_is_followed_by_a_restarted_worker(grade):
    """The worker that died is replaced (forked afresh) and grades the remaining checks."""
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean",
                         "    import os\n    if x.dtype == torch.float32:\n        os._exit(3)\n"
                         "    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)\n    return windows.mean"))
    first = grade(POOL, source=src)
    st = statuses(first)
    assert st["avg_pool2d_forward"] == "crashed" and "exited with code 3" in first["checks"][2]["message"]
    assert st["avg_pool2d_float64_gradients"] == "passed"  # graded by the restarted worker
