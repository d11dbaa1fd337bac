"""Pictures of a failing case (`grader.views.pictures`): each kind is drawn for a wrong
implementation, absent when the code is right, safe to embed, and loads in headless Chromium.

The wrong implementations are the checks' own known mistakes (the reference with one function
replaced), run here in-process: the picture sees exactly what the engine would hand it.
"""

from __future__ import annotations

import re
import struct
import zlib
from types import SimpleNamespace

import pytest
import torch

from conftest import needs_chromium, reference_oracle
from grader.catalog import exercise_names
from grader.engine.judge import judge
from grader.engine.oracles import mistake_namespace, run_probe_here
from grader.engine.spec import PICTURE_KINDS, Mistake, Picture, derive_seed, load_checks
from grader.runner.handle import Outcome
from grader.views import pictures
from grader.views.pictures import draw, png, safe_svg

# kind -> (exercise, check, mistake, text the picture must hold)
WRONG = {
    "maps": ("conv", "conv2d_forward", "bias-ignored", "difference"),
    "boxes": ("rpn", "decode_boxes_clamp", "decode-without-clamp", "moved or resized"),
    "kept": ("nms", "nms_exact_threshold_and_ties", "nms-greater-or-equal", "suppressed but should be kept: boxes 1"),
    "iou": ("nms", "box_iou_published", "intersection-not-clamped", "the largest difference: IoU("),
    "confusion": ("segmentation", "pixel_accuracy_ignore_index", "accuracy-ignore-not-applied", "predicted class"),
    "values": ("metric", "pairwise_distances_values", "square-root-missing", "expected →"),
    "curve": ("gan", "discriminator_loss_values", "discriminator-labels-swapped", "d loss / d logit"),
    "training": ("autoencoder", "train_autoencoder_epoch_losses", "noisy-image-as-target", "loss per epoch"),
    "spectrum": ("autoencoder", "autoencoder_bottleneck", "skip-around-bottleneck", "singular value number"),
}
def _check(name: str, check_name: str):
    return next(c for c in load_checks(name) if c.name == check_name)


def _first_failure(name: str, check_name: str, mistake: Mistake) -> tuple:
    """(check, case, expected, got) for the first case where `mistake` fails the check."""
    oracle, check = reference_oracle(name), _check(name, check_name)
    for index, case in enumerate(oracle.cases(check, derive_seed(0, name, check.name))):
        expected = oracle.expected(check, index, case)
        got = run_probe_here(mistake_namespace(oracle.ref, mistake), case)
        reply = Outcome("reply", reply={"kind": "ok", "value": got})
        if judge(case, reply, expected, timeout=10, device="cpu", arg_names=[])[0] == "failed":
            return check, case, expected, got
    raise AssertionError(f"{mistake.name} passes every case of {check_name}")


def _wrong(kind: str) -> tuple:
    name, check_name, mistake_name, _ = WRONG[kind]
    mistake = next(m for m in _check(name, check_name).mistakes if m.name == mistake_name)
    return _first_failure(name, check_name, mistake)


def _window_case() -> tuple:
    """A max_pool2d that returns an empty tensor where a kernel larger than the input must raise."""
    wrong = Mistake("returns-instead-of-raising", "", lambda ref: {"max_pool2d": lambda x, k, s=None: x[..., :0, :0]})
    return _first_failure("pooling", "kernel_larger_than_input", wrong)


def _denoising_case() -> tuple:
    """The denoising check's picture for a loop that never learns: its losses stay flat and its
    outputs are its noisy inputs (synthetic values of the probe's shape, no training run)."""
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(6, 1, 28, 28, generator=g)
    noisy = (clean + 0.3 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    case = SimpleNamespace(label="a denoising run", args=({}, clean, noisy, clean, 4, {}, 0), kwargs={}, rtol=1e-3,
                           atol=1e-4, raises=())
    expected = {"losses": [0.08, 0.05, 0.04, 0.035], "denoised": clean * 0.9, "reconstructed": clean}
    got = {"losses": [0.09, 0.09, 0.09, 0.09], "denoised": noisy, "reconstructed": noisy}
    return _check("autoencoder", "train_autoencoder_denoises"), case, expected, got


@pytest.fixture(scope="module")
def drawn() -> dict[str, str]:
    """One picture of each kind, from a wrong implementation (about 4 s, once per module: the
    wrong implementations run on every case of their checks in this process)."""
    out = {}
    for kind in WRONG:
        check, case, expected, got = _wrong(kind)
        assert check.picture.kind == kind
        out[kind] = draw(check.picture, case, expected, got, title=check.name)
    check, case, expected, got = _window_case()
    out["window"] = draw(check.picture, case, expected, got, title=check.name)
    check, case, expected, got = _denoising_case()
    out["training images"] = draw(check.picture, case, expected, got, title=check.name)
    return out


def test_every_kind_is_tested():
    assert set(WRONG) | {"window"} == set(PICTURE_KINDS)


def test_every_check_declares_a_picture():
    for name in exercise_names():
        for check in load_checks(name):
            assert check.picture is not None and check.picture.kind in PICTURE_KINDS, (name, check.name)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown picture kind 'heatmap'; the kinds are maps, boxes"):
        Picture("heatmap")


@pytest.mark.parametrize("kind", [*WRONG, "window", "training images"])
def test_each_kind_draws_a_wrong_implementation(drawn, kind):
    svg = drawn[kind]
    assert svg is not None and svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert safe_svg(svg), kind
    assert len(svg) < 120_000, (kind, len(svg))  # a result file stays small
    marker = {"window": "does not fit", "training images": "your output"}.get(kind) or WRONG[kind][3]
    assert marker in svg, kind


def test_maps_show_the_case_and_a_shared_scale(drawn):
    _, case, expected, _ = _wrong("maps")
    out = expected["out"]["__tensor__"]  # (N, C, H, W): a bias left out shifts every value
    svg = drawn["maps"]
    assert "inputs: " + case.label[:40] in svg
    assert svg.count("<image") == 3 * min(out.shape[1], 4) + 2  # expected, got, difference per channel; 2 colour bars
    assert f"{out.numel()} of {out.numel()} values differ" in svg and "one colour scale for expected and got" in svg


def test_kept_boxes_are_told_apart(drawn):
    _, case, expected, got = _wrong("kept")  # ">=" instead of ">": boxes at IoU exactly the threshold dropped
    kept, yours = expected["out"]["__tensor__"].tolist(), got["out"]["__tensor__"].tolist()
    dropped = sorted(set(kept) - set(yours))
    svg = drawn["kept"]
    assert f"the reference keeps {len(kept)} of {case.args[1].shape[0]} boxes, your code {len(yours)}" in svg
    assert dropped and f"suppressed but should be kept: boxes {', '.join(map(str, dropped))}" in svg
    for i in dropped:
        assert re.search(rf"box {i}, score [0-9.]+: should be kept; you dropped it", svg), i
    for i in set(kept) & set(yours):
        assert re.search(rf"box {i}, score [0-9.]+: kept, rightly", svg), i


def test_confusion_counts_the_ignored_pixels(drawn):
    svg = drawn["confusion"]
    assert ">ignored</text>" in svg and "pixels are ignored (target = 255)" in svg


@pytest.mark.parametrize("kind", WRONG)
def test_no_picture_when_the_result_is_right(kind):
    check, case, expected, _ = _wrong(kind)
    assert draw(check.picture, case, expected, expected, title=check.name) is None


def test_no_picture_when_nothing_came_back():
    check, case, expected, _ = _wrong("maps")
    assert draw(check.picture, case, expected, None) is None


def test_text_from_the_results_is_escaped():
    check, case, expected, _ = _wrong("values")
    got = {"out": "<script>alert(1)</script>", "args_after": []}
    svg = draw(check.picture, case, expected, got, title="a <b>title</b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &lt;b&gt;title" in svg
    assert safe_svg(svg)


@pytest.mark.parametrize("bad", [
    '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><image href="https://example.org/x.png"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/svg+xml;base64,AAAA"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div/></foreignObject></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://example.org)"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"><text>x</text></a></svg>',
    '<div>not svg</div>', '<svg', None, 3,
])
def test_safe_svg_refuses_what_pictures_never_hold(bad):
    assert not safe_svg(bad)


def test_png_is_a_valid_image():
    rgb = (torch.arange(2 * 3 * 3) % 256).to(torch.uint8).reshape(2, 3, 3).numpy()
    data = png(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (3, 2)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    rows = zlib.decompress(idat)
    assert rows == b"".join(b"\x00" + rgb[r].tobytes() for r in range(2))


def test_the_tensor_key_is_the_runners():
    from grader.runner.probes import TENSOR_KEY

    assert pictures.TENSOR_KEY == TENSOR_KEY


def test_maps_that_differ_in_shape_are_drawn_side_by_side():
    check, case, expected, _ = _wrong("maps")
    shape = tuple(expected["out"]["__tensor__"].shape)
    smaller = shape[:2] + (shape[2] - 1, shape[3] - 1)  # an output-size formula off by one
    got = {"out": {"__tensor__": torch.zeros(smaller)}, "args_after": expected["args_after"]}
    svg = draw(check.picture, case, expected, got)
    assert f"the shapes differ: expected {shape}, got {smaller}" in svg and ">difference</text>" not in svg


@needs_chromium
@pytest.mark.parametrize("kind", [*WRONG, "window", "training images"])
def test_each_kind_loads_in_chromium_without_errors(drawn, kind, tmp_path, browser):
    page = tmp_path / f"{re.sub(r'[^a-z]+', '-', kind)}.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='Content-Security-Policy' "
                    "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"></head>"
                    f"<body>{drawn[kind]}</body></html>", encoding="utf-8")
    shot, messages, _ = browser.load(page.as_uri())
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    assert not messages


def test_a_number_of_the_wrong_type_is_drawn():
    """conv2d_output_size with `/`: 30.0 where 30 is expected fails the comparison, and the picture says why."""
    check = _check("conv", "output_size_values")
    _, case, expected, got = _first_failure("conv", "output_size_values", next(m for m in check.mistakes if m.name == "true-division"))
    svg = draw(check.picture, case, expected, got)
    assert "✗ output (dtype float, expected int)" in svg
