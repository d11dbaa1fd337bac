"""Hostile submissions: each is graded to completion with the right status, and nothing it does
changes another check's verdict or survives the run. The sandbox's boundaries are tried here
through the real grading path too: a submission whose `conv2d` attempts the attack, and would
get the reference's marks if it worked."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT, descendants, reference_source, statuses, variant, wait_for_descendants
from grader.runner import sandbox

POOL = "pooling"
ABI = sandbox.landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="this kernel offers no Landlock (Linux 5.13+, enabled at boot)")


def _with_prelude(prelude: str, source: str | None = None) -> str:
    """The source with `prelude` run at import, right after the `from __future__` line."""
    source = source or reference_source(POOL)
    future = "from __future__ import annotations\n"
    return source.replace(future, future + prelude + "\n", 1)


def test_infinite_loop_times_out_and_other_checks_still_run(grade):
    """A busy loop in max_pool2d on float32 inputs: max_pool2d_forward spins until its timeout, here
    a short 1 s (each second of it is a second of CPU), and the restarted worker grades the rest."""
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2)',
                         '    while x.dtype == torch.float32:\n        pass\n    windows = None\n    return windows.flatten(-2)'))
    result = grade(POOL, source=src, timeout=1.0, parts=("max_pool2d", "avg_pool2d"))
    st = statuses(result)
    assert st["max_pool2d_forward"] == "timeout" and st["max_pool2d_float64_gradients"] == "error"
    assert st["avg_pool2d_forward"] == st["avg_pool2d_float64_gradients"] == "passed"  # the worker was restarted
    assert "did not finish within 1 s" in next(c for c in result["checks"] if c["name"] == "max_pool2d_forward")["message"]


def test_memory_bomb_is_an_error_not_a_grader_crash(grade):
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean',
                         '    hog = torch.ones(2**40, dtype=torch.uint8)\n    return hog.mean'))
    result = grade(POOL, source=src)
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] in ("error", "crashed")
    assert "memory" in check["message"]
    assert statuses(result)["max_pool2d_forward"] == "passed"


def test_python_memory_bomb(worker, tmp_path):
    """Bytearrays of 100 MB, each written, fill real memory until the cap stops them. The cap is set
    here 256 MiB above what a worker's address space holds when it is ready (torch's 0.6 GB), so
    each call writes a few hundred MB before the stop: with the default 4 GiB the bomb writes 3 GB
    first (15 s of CPU on a busy machine, and a timeout instead of the memory error when the
    machine is slower still)."""
    from conftest import reference_oracle
    from grader.engine.session import GradingSession

    worker.ensure_ready()
    with open(f"/proc/{worker.proc.pid}/status") as fh:
        address_space = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    src = variant(POOL, ('    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean',
                         '    hog = [bytearray(10**8) for _ in range(100)]\n    return hog.mean'))
    path = tmp_path / f"{POOL}.py"
    path.write_text(src, encoding="utf-8")
    with GradingSession(memory_bytes=address_space + 256 * 1024**2, oracle_for=reference_oracle) as session:
        result = session.grade(POOL, path).to_dict()
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] in ("error", "crashed") and "memory" in check["message"]
    assert statuses(result)["max_pool2d_forward"] == "passed"  # the cap leaves room for honest code


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


def test_forbidden_op_in_a_thread_of_the_students_own_is_caught(grade):
    """The operator is called from a thread the student starts: a dispatch mode, which is
    per-thread, never sees it; the dispatcher's refusal does."""
    src = variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.mean(dim=(-2, -1))",
                         "    import threading\n    out = {}\n    k = kernel_size, stride if stride else kernel_size\n"
                         "    def run():\n        out['y'] = torch.ops.aten.avg_pool2d(x, *k)\n"
                         "    t = threading.Thread(target=run)\n    t.start()\n    t.join()\n    return out['y']"))
    result = grade(POOL, source=src, parts=("avg_pool2d",))
    check = next(c for c in result["checks"] if c["name"] == "avg_pool2d_forward")
    assert check["status"] == "forbidden" and "aten::avg_pool2d" in check["message"]


def test_forbidden_op_that_torch_decomposes_is_caught_before_it_decomposes(grade):
    """aten::adaptive_avg_pool2d to one position is not a kernel but a decomposition into `mean`:
    only a refusal of the operator itself, before it decomposes, sees it called."""
    src = variant("gap", ("    return x.mean(dim=(2, 3))  # (N, C)",
                          "    return torch.ops.aten.adaptive_avg_pool2d(x, [1, 1]).flatten(1)"))
    result = grade("gap", source=src, parts=("global_avg_pool",))
    check = next(c for c in result["checks"] if c["name"].startswith("global_avg_pool"))
    assert check["status"] == "forbidden" and "aten::adaptive_avg_pool2d" in check["message"]


@pytest.mark.parametrize("name, edit, check_name, operator", [
    ("conv", ("    out = torch.einsum(\"nchwij,ocij->nohw\", patches, weight)  # (N, C_out, H_out, W_out)\n    if bias is not None:\n        out = out + bias.view(1, -1, 1, 1)\n    return out",
              "    return torch.ops.aten.thnn_conv2d(x, weight, [kh, kw], bias, [sh, sw], [ph, pw])"),
     "conv2d_forward", "aten::thnn_conv2d"),
    ("pooling", ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2).max(dim=-1).values",
                 "    return torch.ops.aten.max_pool3d_with_indices(x.unsqueeze(2), [1, kh, kw], [1, sh, sw])[0].squeeze(2)"),
     "max_pool2d_forward", "aten::max_pool3d_with_indices"),
    ("metric", ("    d_pos = torch.linalg.vector_norm(anchor - positive, dim=1)  # (N,)",
                "    return torch.ops.aten.triplet_margin_loss(anchor, positive, negative, margin, 2.0, 0.0, False, 1)\n    d_pos = None"),
     "triplet_loss_reference", "aten::triplet_margin_loss"),
])
def test_a_backend_variant_of_a_forbidden_operator_is_caught(grade, name, edit, check_name, operator):
    """Another operator that computes the same thing, called directly: a backend's own convolution,
    a 3-D pooling of depth 1, the fused loss (which torch decomposes before a dispatch mode would
    see it). The catalogue names their families by pattern."""
    from grader.engine.spec import load_checks

    part = next(c.part for c in load_checks(name) if c.name == check_name)
    result = grade(name, source=variant(name, edit), parts=(part,))
    check = next(c for c in result["checks"] if c["name"] == check_name)
    assert check["status"] == "forbidden" and operator in check["message"], check


@pytest.mark.parametrize("name, edit, check_name", [
    ("pooling", ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2).max(dim=-1).values",
                 "    import torch._decomp\n    table = torch._decomp.decomposition_table\n"
                 "    return table[torch.ops.aten.max_pool2d_with_indices.default](x, [kh, kw], [sh, sw])[0]"),
     "max_pool2d_forward"),
    ("conv", ("    patches = xp.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n"
              "    out = torch.einsum(\"nchwij,ocij->nohw\", patches, weight)  # (N, C_out, H_out, W_out)",
              "    from torch._decomp.decompositions import im2col\n"
              "    cols = im2col(xp, [kh, kw], [1, 1], [0, 0], [sh, sw])  # (N, C kH kW, L)\n"
              "    h_out, w_out = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1\n"
              "    out = (weight.flatten(1) @ cols).view(x.shape[0], weight.shape[0], h_out, w_out)"),
     "conv2d_forward"),
])
def test_torchs_own_python_implementation_of_a_forbidden_operator_is_caught(grade, name, edit, check_name):
    """torch._decomp holds a Python function for many operators, made of allowed ones: reached
    through its table or imported from its module, it computes the forbidden operator without
    ever calling it."""
    from grader.engine.spec import load_checks

    part = next(c.part for c in load_checks(name) if c.name == check_name)
    result = grade(name, source=variant(name, edit), parts=(part,))
    check = next(c for c in result["checks"] if c["name"] == check_name)
    assert check["status"] == "forbidden" and "torch._decomp" in check["message"], check


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
    """Each call prints 10 MB: ten times what the grader reads in one go, 160 times what it keeps."""
    src = variant(POOL, ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
                         "    import sys\n    sys.stdout.write('x' * (10 * 1024 * 1024))\n    sys.stdout.flush()\n    return windows.mean(dim=(-2, -1))"))
    result = grade(POOL, source=src)
    assert result["score"] == result["max_score"]  # printing is not wrong, only noisy
    assert sum(len(n) for n in result["notices"]) < 100_000
    assert any("printed" in n for n in result["notices"])


def test_background_process_is_gone_after_the_run(tmp_path):
    from grader.engine.session import GradingSession

    src = variant(POOL, ("    return windows.mean(dim=(-2, -1))  # (N, C, H_out, W_out)",
                         "    import os, time\n"
                         "    pid = os.fork()\n"
                         "    if pid == 0:\n"
                         "        os.setsid()\n"
                         "        time.sleep(300)\n"
                         "        os._exit(0)\n"
                         "    print(f'background={pid}', flush=True)\n"
                         "    return windows.mean(dim=(-2, -1))"))
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "pooling.py").write_text(src)
    with GradingSession() as session:  # its own worker, stopped when the session closes
        result = session.grade(POOL, folder / "pooling.py")
    pids = [int(pid) for c in result.checks for pid in re.findall(r"background=(\d+)", c.output)]
    assert pids, [c.output for c in result.checks]
    for pid in pids:
        assert _gone(pid, within=5), f"background process {pid} survived the run"


def _gone(pid: int, within: float) -> bool:
    """Whether `pid` is dead (or a zombie nobody needs) within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


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


@pytest.mark.skipif(ABI >= 6, reason="signal scoping refuses the kill: test_a_kill_outside_the_sandbox_is_refused")
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


# --- the sandbox's boundaries, through the real grading path ------------------------------------
CONV_ANCHOR = '    sh, sw = _pair(stride, "stride")\n'
FIND_COURSE = ("import os, sys\n"
               "course = os.path.dirname(os.path.dirname(os.path.realpath(sys.modules['grader'].__file__)))\n")


def _conv_attack(code: str) -> str:
    """The reference conv.py whose conv2d first runs `code`: an attack that would bring the
    reference's marks (or hurt someone else) if it worked."""
    return variant("conv", (CONV_ANCHOR, textwrap.indent(code, "    ") + CONV_ANCHOR))


def _conv2d_refused(result: dict) -> None:
    """Every conv2d check failed on the attack's PermissionError, and the rest of the exercise was graded."""
    _conv2d_refused_as(result, sandbox.plan())


def _conv2d_refused_as(result: dict, state: str) -> None:
    conv = [c for c in result["checks"] if c["part"] == "conv2d"]
    assert conv and all(c["status"] == "error" and "PermissionError" in c["message"] for c in conv), conv
    assert statuses(result)["output_size_values"] == statuses(result)["conv_vs_dense_params"] == "passed"
    assert result["sandbox"] == state


@needs_landlock
def test_reading_a_reference_by_path_is_refused(grade):
    src = _conv_attack(FIND_COURSE + "ns = {}\n"
                       "ref = os.path.join(course, 'solutions', 'conv.py')\n"
                       "exec(compile(open(ref).read(), ref, 'exec'), ns)\n"
                       "return ns['conv2d'](x, weight, bias, stride, padding)\n")
    _conv2d_refused(grade("conv", source=src))


@needs_landlock
def test_reading_another_process_command_line_is_refused(grade):
    src = _conv_attack("import os\n"
                       "seen = open(f'/proc/{os.getppid()}/cmdline', 'rb').read()\n"
                       "raise RuntimeError(f'read the command line of the worker\\'s parent: {seen!r}')\n")
    _conv2d_refused(grade("conv", source=src))


@needs_landlock
def test_listing_the_course_folder_is_refused(grade):
    src = _conv_attack(FIND_COURSE + "raise RuntimeError(f'listed the course: {sorted(os.listdir(course))}')\n")
    _conv2d_refused(grade("conv", source=src))


@needs_landlock
def test_writing_outside_the_scratch_folder_is_refused(grade, tmp_path):
    marker = tmp_path / "written-by-a-student"
    planted = ROOT / "grader" / "checks" / "planted.py"
    src = _conv_attack(f"open({str(marker)!r}, 'w').write('x')\n")
    try:
        _conv2d_refused(grade("conv", source=src))
        _conv2d_refused(grade("conv", source=_conv_attack(f"open({str(planted)!r}, 'w').write('x')\n")))
    finally:
        planted.unlink(missing_ok=True)  # only a broken sandbox lets it be written
    assert not marker.exists()
    scratch = grade("conv", source=_conv_attack("open('notes.txt', 'w').write('the scratch folder is mine')\n"
                                                "import os\nassert os.path.getsize('notes.txt') > 0\n"))
    assert scratch["score"] == scratch["max_score"]


@pytest.mark.skipif(ABI < 6, reason=f"signal scoping needs Landlock ABI 6; this kernel offers {ABI}")
def test_a_kill_outside_the_sandbox_is_refused(grade, worker):
    worker.ensure_ready()  # its zygote is running
    zygotes = [p for p in descendants(os.getpid()) if "zygote" in _cmdline(p)]
    src = _conv_attack("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
    _conv2d_refused(grade("conv", source=src))
    assert zygotes and all(_alive(p) for p in zygotes)


@pytest.mark.skipif(ABI < 4, reason=f"TCP rules need Landlock ABI 4; this kernel offers {ABI}")
def test_connecting_to_a_local_listener_is_refused(grade):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        src = _conv_attack(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'x')\n")
        _conv2d_refused(grade("conv", source=src))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
    finally:
        listener.close()


def test_honest_code_that_starts_threads_gets_full_marks(grade):
    src = _conv_attack("import threading, torch\n"
                       "torch.set_num_threads(2)\n"
                       "box = []\n"
                       "t = threading.Thread(target=lambda: box.append(torch.ones(3).sum()))\n"
                       "t.start(); t.join()\n"
                       "assert box[0] == 3\n")
    result = grade("conv", source=src)
    assert result["score"] == result["max_score"], [c["message"] for c in result["checks"] if c["message"]]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    return not _gone(pid, within=0)


def test_killing_the_grader_leaves_no_process_behind(tmp_path):
    """`grade exercise` dies (SIGKILL) while the student's code loops: its zygote, the worker and
    what the worker started all end too. About 3-5 s: the real command and its zygote each import
    torch before there is a worker to kill."""
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "pooling.py").write_text(_with_prelude(
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(300)\n"
        "    os._exit(0)\n",
        variant(POOL, ("    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H_out, W_out, kH, kW)\n    return windows.flatten(-2)",
                       "    while True:\n        pass\n    return x"))))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    grader = subprocess.Popen([sys.executable, "-m", "grader.cli", "exercise", "pooling", "--path", str(folder),
                               "--timeout", "120"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        family = wait_for_descendants(grader.pid, 3, timeout=120)  # the zygote, the worker and its child
    finally:
        grader.kill()
        grader.wait()
    left = [p for p in family if not _gone(p, within=10)]
    assert not left, [(p, _cmdline(p)) for p in left]


def test_a_worker_started_without_a_zygote_is_sandboxed_too(tmp_path, monkeypatch):
    from grader.engine.session import GradingSession
    from grader.runner import handle

    monkeypatch.setattr(handle, "zygote_for", lambda device: None)
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "conv.py").write_text(_conv_attack(FIND_COURSE + "open(os.path.join(course, 'solutions', 'conv.py')).read()\n"))
    with GradingSession() as session:
        result = session.grade("conv", folder / "conv.py").to_dict()
        assert isinstance(session.worker.proc, subprocess.Popen)  # a fresh process, not a fork of the zygote
    if ABI:
        _conv2d_refused(result)
    assert result["sandbox"] == sandbox.plan()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the uid fallback needs root")
def test_the_uid_fallback_grades_honest_code_and_keeps_private_files_out_of_reach(tmp_path, monkeypatch):
    """As root where Landlock is missing (a Gradescope container, say), workers run as nobody."""
    from grader.engine.session import GradingSession

    monkeypatch.setattr(sandbox, "plan", lambda: "uid")
    secret = tmp_path / "seed.json"  # pytest's folders are private to root
    secret.write_text('{"seed": 1234}')
    folder = tmp_path / "sub"
    folder.mkdir()
    with GradingSession() as session:
        honest = session.grade("conv", ROOT / "solutions" / "conv.py").to_dict()
        (folder / "conv.py").write_text(_conv_attack(f"open({str(secret)!r}).read()\n"))
        spy = session.grade("conv", folder / "conv.py").to_dict()
        (folder / "conv.py").write_text(_conv_attack("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"))
        killer = session.grade("conv", folder / "conv.py").to_dict()
    assert honest["score"] == honest["max_score"] and honest["sandbox"] == "uid"
    _conv2d_refused_as(spy, "uid")
    _conv2d_refused_as(killer, "uid")
