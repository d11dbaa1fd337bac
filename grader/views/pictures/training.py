"""Training loops ("training"): losses per epoch or step against the reference's, and output
images beside their inputs."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.engine.spec import Picture
from grader.views.pictures.painting import EXPECTED, GOT, GREYS, NONFINITE, chart_block, colours_of, legend_block, png_uri, text_block
from grader.views.pictures.reading import as_array, case_arg, describe, tolerance, value_at

def _loss_series(value: Any) -> dict[str, np.ndarray] | None:
    """Loss lists by name: [l1, l2, ...] -> {"loss": ...}; {"step 1": {"d_loss": .., "g_loss": ..}} -> per name."""
    arr = as_array(value)
    if arr is not None and arr.data.ndim <= 1:
        return {"loss": arr.data.astype(np.float64).ravel()}
    if isinstance(value, list) and not value:
        return {"loss": np.zeros(0)}
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        names = [k for k in next(iter(value.values()))]
        out = {}
        for name in names:
            vals = [as_array(v.get(name)) for v in value.values()]
            if all(a is not None and a.data.size == 1 for a in vals):
                out[name] = np.array([float(a.data.ravel()[0]) for a in vals])
        return out or None
    return None


def images_of(value: Any, count: int = 4) -> list[np.ndarray]:
    arr = as_array(value)
    if arr is None or arr.data.ndim < 3:
        return []
    a = arr.data.astype(np.float64)
    a = a.reshape(-1, *a.shape[-3:]) if a.ndim >= 4 else a[:, None]
    return [a[i] for i in range(min(count, a.shape[0]))]


def _image_grid(rows: list[tuple[str, list[np.ndarray]]]) -> dict:
    """Images (C, H, W) with values in [0, 1] in grey (or RGB for 3 channels), one row per role."""
    longest = max((max(im.shape[-2:]) for _, ims in rows for im in ims), default=28)
    cell = max(2, min(6, 96 // longest))
    placed, labels, y = [], [], 22.0
    count = max(len(ims) for _, ims in rows)
    for title, ims in rows:
        labels.append({"x": 0, "y": y + 20, "lines": textwrap.wrap(title, 14)})
        h = 0
        for n, im in enumerate(ims):
            clipped = np.clip(np.nan_to_num(im, nan=0.0), 0, 1)
            if im.shape[0] == 3:
                rgb = np.round(np.moveaxis(clipped, 0, -1) * 255).astype(np.uint8)
            else:
                rgb = colours_of(clipped[0], GREYS)
            rgb[~np.isfinite(im).all(axis=0)] = NONFINITE
            x = 110 + n * (im.shape[-1] * cell + 12)
            placed.append({"x": x, "y": y, "w": im.shape[-1] * cell, "h": im.shape[-2] * cell, "href": png_uri(rgb),
                           "caption": "", "tip": f"{title}, image {n}", "outlines": []})
            h = max(h, im.shape[-2] * cell)
        y += h + 10
    width = 110 + count * (longest * cell + 12)
    return {"type": "maps", "w": width, "h": y + 6, "heads": [{"x": 110, "text": "the first images, in grey from 0 (black) to 1 (white)"}],
            "maps": placed, "labels": labels, "bars": [], "notes": None, "notes_y": 0}


def kind_training(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    se, sg = _loss_series(value_at(expected, pic.of)), _loss_series(value_at(got, pic.of))
    blocks, summary = [], []
    if se is None:
        return [], []
    if sg is None:
        summary.append(f"your losses: {describe(value_at(got, pic.of))}; expected {describe(value_at(expected, pic.of))}")
    for name, ev in list(se.items())[:2]:
        gv = (sg or {}).get(name)
        if ev.size == 0 and (gv is None or gv.size == 0):
            summary.append(f"{name}: no epochs, no losses (expected an empty list)")
            continue
        rtol, atol = tolerance(case, "float64")
        tol = atol + rtol * np.abs(ev)
        series = [{"x": np.arange(1, ev.size + 1), "y": ev, "lo": ev - tol, "hi": ev + tol, "colour": EXPECTED, "style": "band",
                   "label": f"the reference's {name}" + (" (band: the check's tolerance)" if getattr(case, "assess", None) is None
                                                         else ", for comparison (the check judges behaviour)")}]
        if gv is not None and gv.size:
            series.append({"x": np.arange(1, gv.size + 1), "y": gv, "colour": GOT, "style": "line", "label": f"your {name}"})
            if gv.size != ev.size:
                summary.append(f"{name}: {gv.size} values reported, expected {ev.size} (one per epoch)")
        chart = chart_block(series, "epoch" if name == "loss" else "step", name, width=460, height=220)
        blocks += [text_block([name + " per " + ("epoch" if name == "loss" else "step")], chart["w"], colour="#444"), chart,
                   legend_block([(s["colour"], "band" if s["style"] == "band" else "", s["label"]) for s in series], chart["w"])]
    if pic.images:
        got_images, exp_images = images_of(value_at(got, pic.images)), images_of(value_at(expected, pic.images))
        rows = [(("input" if n == 0 else "clean target"), images_of(case_arg(case, p))) for n, p in enumerate(pic.inputs)]
        rows += [("the reference's output", exp_images), ("your output", got_images)]
        rows = [r for r in rows if r[1]]
        if rows:
            blocks.append(_image_grid(rows))
    return blocks, summary
