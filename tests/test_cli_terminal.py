"""The terminal conventions of `grade`: colour (NO_COLOR, --no-color, no escapes off a terminal),
shell completion of exercise names, parts and quiz topics, and `grade --version`."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from conftest import ROOT

ESC = "\x1b["


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return {**env, "PYTHONPATH": str(ROOT), "GRADE_HOME": str(tmp_path / ".grade"), "TERM": "xterm", **extra}


def _on_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run `grade ARGS` with its output on a pseudo-terminal; what it wrote."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_colour_on_a_terminal(tmp_path):
    assert ESC in _on_terminal(["list"], _env(tmp_path))


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_no_colour_when_asked(tmp_path, how):
    env = _env(tmp_path, NO_COLOR="1") if how == "NO_COLOR" else _env(tmp_path)
    args = ["list"] if how == "NO_COLOR" else ["--no-color", "list"]
    out = _on_terminal(args, env)
    assert "conv" in out and ESC not in out


def test_an_empty_no_color_does_not_switch_colour_off(tmp_path):
    assert ESC in _on_terminal(["list"], _env(tmp_path, NO_COLOR=""))


def test_no_escape_codes_when_the_output_is_not_a_terminal(tmp_path):
    out = subprocess.run([sys.executable, "-m", "grader.cli", "list"], cwd=ROOT, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "conv" in out.stdout and ESC not in out.stdout


def _complete(words: str, invoke) -> list[str]:
    """What `grade`'s bash completion offers after `words` (click answers from its entry point when
    _GRADE_COMPLETE is set, here in this process)."""
    out = invoke(_GRADE_COMPLETE="bash_complete", COMP_WORDS=words,
                 COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


@pytest.mark.parametrize("words, expected, absent", [
    ("grade exercise co", {"conv"}, {"pooling"}),
    ("grade hint conv conv2", {"conv2d", "conv2d_output_size"}, {"conv_transpose2d"}),
    ("grade quiz ga", {"gans", "gap"}, {"metric"}),
    ("grade exercise conv --pa", {"--path", "--part"}, {"--seed"}),
    ("grade exercise unet --part ", {"UNet", "center_crop"}, {"conv2d"}),
    ("grade wat", {"watch"}, {"exercise"}),
])
def test_completion(words, expected, absent, invoke):
    got = set(_complete(words, invoke))
    assert expected <= got and not (absent & got), got


def test_completion_script_for_each_shell(invoke):
    for shell in ("bash", "zsh", "fish"):
        out = invoke(_GRADE_COMPLETE=f"{shell}_source")
        assert out.exit_code == 0 and "_GRADE_COMPLETE" in out.stdout, (shell, out.output)


def test_version_names_grader_torch_sandbox_and_cuda(invoke):
    import torch

    from grader import __version__

    out = invoke("--version")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == f"cnn-grader {__version__}"
    assert f"torch {torch.__version__}" in lines
    from grader.runner.sandbox import plan

    assert any(line.startswith(("sandbox: ", "no sandbox: ")) and plan() in line for line in lines)
    assert any(line.startswith("CUDA: ") for line in lines)
