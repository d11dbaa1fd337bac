"""Segmentation metrics ("confusion"): prediction against target as a grid of pixel counts,
with a row for the ignored pixels, and the first image's masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.engine.spec import Picture
from grader.views.pictures.numbers import kind_values
from grader.views.pictures.painting import CLASSES, IGNORED, MAP_SIDE, colours_of, png_uri, rgb_hex
from grader.views.pictures.reading import as_array, case_arg

def kind_confusion(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    pred, target = as_array(case_arg(case, pic.inputs[0])), as_array(case_arg(case, pic.inputs[1]))
    ignore = case_arg(case, pic.inputs[2]) if len(pic.inputs) > 2 else None
    num_classes = case_arg(case, pic.inputs[3]) if len(pic.inputs) > 3 else None
    if pred is None or target is None or pred.shape != target.shape:
        return [], []
    p, t = pred.data.astype(np.int64), target.data.astype(np.int64)
    ignored = (t == ignore) if isinstance(ignore, int) else np.zeros(t.shape, dtype=bool)
    present = sorted(set(np.unique(p[~ignored]).tolist()) | set(np.unique(t[~ignored]).tolist()))
    if isinstance(num_classes, int):
        present = [c for c in present if 0 <= c < num_classes] or present
    classes = present[:12]
    k = len(classes)
    index = {c: n for n, c in enumerate(classes)}
    counts = np.zeros((k + 1, k), dtype=np.int64)
    for pv, tv, ig in zip(p.ravel().tolist(), t.ravel().tolist(), ignored.ravel().tolist()):
        if pv in index:
            counts[k if ig else index[tv] if tv in index else k, index[pv]] += 1
    cell = 36
    grid = []
    top = max(int(counts[:k].max()) if k else 1, 1)
    for r in range(k + 1):
        for c in range(k):
            v = int(counts[r, c])
            if r == k:
                colour = "#d9d9d9" if v else "#f4f4f4"
            elif r == c:
                colour = rgb_hex(colours_of(np.array(0.15 + 0.85 * v / top), np.array([[255, 255, 255], [44, 160, 44]], dtype=float)))
            else:
                colour = rgb_hex(colours_of(np.array(0.15 + 0.85 * v / top if v else 0.0), np.array([[255, 255, 255], [214, 39, 40]], dtype=float)))
            grid.append({"x": 110 + c * cell, "y": 40 + r * cell, "s": cell, "fill": colour, "text": str(v), "dark": r != k and v > 0.6 * top})
    block = {"type": "confusion", "w": max(110 + k * cell + 20, 360), "h": 40 + (k + 1) * cell + 24, "cells": grid,
             "cols": [{"x": 110 + c * cell + cell / 2, "text": str(cl)} for c, cl in enumerate(classes)],
             "rows": [{"y": 40 + r * cell + cell / 2 + 4, "text": (f"target {classes[r]}" if r < k else "ignored")} for r in range(k + 1)],
             "ignore_text": f"ignored pixels (target = {ignore})" if isinstance(ignore, int) else "no ignore_index"}
    summary = [f"{int((p == t)[~ignored].sum())} of {int((~ignored).sum())} counted pixels are right; "
               f"{int(ignored.sum())} pixels are ignored" + (f" (target = {ignore})" if isinstance(ignore, int) else "")]
    if isinstance(num_classes, int):
        absent = [c for c in range(num_classes) if c not in present]
        if absent:
            summary.append(f"of num_classes = {num_classes}, classes {', '.join(map(str, absent))} appear in neither "
                           "prediction nor target (the counted pixels)")
    if len(present) > len(classes):
        summary.append(f"the first {len(classes)} of {len(present)} classes are drawn")
    blocks = [block, _masks_block(p, t, ignored)]
    values, lines = kind_values(Picture("values", of=pic.of), case, expected, got, arg_names)
    return blocks + values, summary + lines


def _masks_block(p: np.ndarray, t: np.ndarray, ignored: np.ndarray) -> dict:
    """The first image: target, prediction (a colour per class) and right/wrong pixels."""
    p0, t0, ig0 = (a.reshape(-1, *a.shape[-2:])[0] if a.ndim >= 2 else a.reshape(1, -1) for a in (p, t, ignored))
    cell = max(3, min(22, MAP_SIDE // max(p0.shape)))

    def classes(a: np.ndarray) -> np.ndarray:
        rgb = CLASSES[np.mod(a, len(CLASSES))].astype(np.uint8)
        rgb[ig0] = IGNORED
        return rgb

    verdict = np.where((p0 == t0)[..., None], np.array([[[44, 160, 44]]]), np.array([[[214, 39, 40]]])).astype(np.uint8)
    verdict[ig0] = IGNORED
    maps = []
    for n, (title, rgb) in enumerate((("target", classes(t0)), ("prediction", classes(p0)), ("right / wrong", verdict))):
        maps.append({"x": 92 + n * (max(p0.shape[1] * cell, 110) + 18), "y": 22, "w": p0.shape[1] * cell, "h": p0.shape[0] * cell,
                     "href": png_uri(rgb), "caption": f"{p0.shape[0]} × {p0.shape[1]}", "tip": title, "outlines": [], "title": title})
    return {"type": "maps", "w": 92 + 3 * (max(p0.shape[1] * cell, 110) + 18), "h": 22 + p0.shape[0] * cell + 30,
            "heads": [{"x": m["x"], "text": m["title"]} for m in maps], "maps": maps,
            "labels": [{"x": 0, "y": 36, "lines": ["first image", "dark grey:", "ignored"]}], "bars": [], "notes": None, "notes_y": 0}
