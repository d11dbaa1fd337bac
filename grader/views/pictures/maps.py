"""Feature maps and outputs ("maps"): heat maps per channel, expected and got on one shared colour
scale, their difference on a diverging one; and a pooling window that does not fit ("window")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.engine.spec import Picture
from grader.views.pictures.painting import RIGHT, WRONG, maps_block, text_block
from grader.views.pictures.reading import (Array, arrays_differ, as_array, case_arg, fmt, path_name, value_at, value_range,
                                           walk_leaves, wrong_mask)

MAX_CHANNELS = 4  # channels drawn per tensor: the ones that differ most


def _as_2d(arr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """`arr` as (items, channels, H, W) with the names of the leading axes (1 x 1 maps as one 2-D map)."""
    if arr.ndim >= 3 and arr.shape[-1] == arr.shape[-2] == 1:
        return _as_2d(arr.reshape(arr.shape[:-2]))
    if arr.ndim == 1:
        return arr.reshape(1, 1, 1, -1), []
    if arr.ndim == 2:
        return arr.reshape(1, 1, *arr.shape), []
    if arr.ndim == 3:
        return arr.reshape(1, *arr.shape), ["channel"]
    return arr.reshape(-1, *arr.shape[-3:]), ["item", "channel"]


def _pick_slices(arr4: np.ndarray, score: np.ndarray | None) -> tuple[int, list[int]]:
    """The item and the channels to draw: where `score` (per item and channel) is largest."""
    items, channels = arr4.shape[:2]
    if score is None or not np.any(score > 0):
        return 0, list(range(min(channels, MAX_CHANNELS)))
    item = int(np.argmax(score.max(axis=1)))
    order = [int(c) for c in np.argsort(-score[item], kind="stable") if score[item, c] > 0][:MAX_CHANNELS]
    rest = [c for c in range(channels) if c not in order][: max(0, min(2, channels) - len(order))]
    return item, sorted(order + rest)


def _slice_label(axes: list[str], item: int, channel: int, n_items: int, n_channels: int) -> str:
    parts = []
    if "item" in axes and n_items > 1:
        parts.append(f"item {item}")
    if "channel" in axes:
        parts.append(f"{axes[-1]} {channel}" + (f" of {n_channels}" if n_channels > 1 else ""))
    return "\n".join(parts)


def _maps_for(name: str, exp: Array, got: Array, case: Any, *, difference: bool) -> tuple[dict, list[str]]:
    """One maps block for one tensor, and summary lines."""
    e, g = exp.data.astype(np.float64), got.data.astype(np.float64)
    summary: list[str] = []
    same = e.shape == g.shape
    columns = ["expected", "got (your code)"] + (["difference"] if difference and same else [])
    if same and e.ndim:
        e4, axes = _as_2d(e)
        g4 = g.reshape(e4.shape)
        wrong4 = wrong_mask(exp, got, case).reshape(e4.shape)
        d4 = g4 - e4
        mag = np.where(wrong4, np.where(np.isfinite(d4), np.abs(d4), np.inf), 0.0)
        score = mag.max(axis=(2, 3)) if mag.size else None
        item, chans = _pick_slices(e4, score)
        rows = []
        shown_e = [e4[item, c] for c in chans]
        shown_g = [g4[item, c] for c in chans]
        lo, hi = value_range(shown_e + shown_g)
        dmax = max([float(np.abs(d[np.isfinite(d)]).max()) for d in (g4[item, c] - e4[item, c] for c in chans) if np.isfinite(d).any()] + [0.0]) or 1.0
        for c in chans:
            cells = [{"values": e4[item, c], "scale": ("shared", lo, hi)},
                     {"values": g4[item, c], "scale": ("shared", lo, hi)}]
            if "difference" in columns:
                cells.append({"values": g4[item, c] - e4[item, c], "scale": ("diff", dmax), "wrong": wrong4[item, c]})
            rows.append({"label": _slice_label(axes, item, c, e4.shape[0], e4.shape[1]), "cells": cells})
        n_wrong = int(wrong4.sum())
        if difference:
            summary.append(f"{name}: {n_wrong} of {wrong4.size} values differ beyond the tolerance" +
                           (f"; the largest difference is {fmt(float(np.max(mag)))}" if n_wrong else ""))
        shown = f"item {item}, " if e4.shape[0] > 1 else ""
        if e4.shape[1] > len(chans):
            summary.append(f"{name}: {shown}channels {', '.join(map(str, chans))} of {e4.shape[1]} are drawn (those that differ most)")
        return maps_block(rows, columns), summary
    summary.append(f"{name}: the shapes differ: expected {e.shape}, got {g.shape}, so there is no difference to draw")
    rows = []
    lists = []
    for a in (e, g):
        if a.ndim == 0 or a.size == 0:
            lists.append([])
            continue
        a4, axes = _as_2d(a)
        lists.append([(_slice_label(axes, 0, c, a4.shape[0], a4.shape[1]), a4[0, c]) for c in range(min(a4.shape[1], MAX_CHANNELS))])
    lo, hi = value_range([m for lst in lists for _, m in lst])
    for k in range(max(len(lst) for lst in lists) if lists else 0):
        cells = [{"values": lst[k][1], "scale": ("shared", lo, hi)} if k < len(lst) else None for lst in lists]
        label = next((lst[k][0] for lst in lists if k < len(lst)), "")
        rows.append({"label": label, "cells": cells})
    return maps_block(rows, columns[:2]), summary


def _tensor_pairs(expected: Any, got: Any, of: Any, arg_names: Sequence[str]) -> list[tuple[str, Array, Array]]:
    """(name, expected, got) for the tensor(s) at `of`: one, or each of a returned tuple."""
    e, g = value_at(expected, of), value_at(got, of)
    path = [of] if isinstance(of, str) else list(of)
    if isinstance(e, (list, tuple)) and not as_array(e):
        pairs = []
        for i, ev in enumerate(e):
            gv = g[i] if isinstance(g, (list, tuple)) and i < len(g) else None
            ea, ga = as_array(ev), as_array(gv)
            if ea is not None and ga is not None:
                pairs.append((path_name(path + [i], arg_names), ea, ga))
        return pairs
    ea, ga = as_array(e), as_array(g)
    return [(path_name(path, arg_names), ea, ga)] if ea is not None and ga is not None else []


def kind_maps(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    pairs = _tensor_pairs(expected, got, pic.of, arg_names)
    if pic.difference:
        pairs = [p for p in pairs if arrays_differ(p[1], p[2], case)]
        if not pairs:  # right where the picture looks: draw the first other tensor that differs (a gradient...)
            pairs = [p for p in _other_tensors(expected, got, pic.of, arg_names) if arrays_differ(p[1], p[2], case)][:1]
    blocks, summary = [], []
    for name, ea, ga in pairs[:2]:
        if ea.data.ndim == 0 or ea.data.size == 0 or ga.data.size == 0:
            continue
        block, lines = _maps_for(name, ea, ga, case, difference=pic.difference)
        blocks += [text_block([name], block["w"], colour="#444"), block]
        summary += lines
    return blocks, summary


def _other_tensors(expected: Any, got: Any, of: Any, arg_names: Sequence[str]) -> list[tuple[str, Array, Array]]:
    """(name, expected, got) for the tensors of a result outside `of`: its other entries, its gradients."""
    first = of if isinstance(of, str) else of[0]
    pairs = []
    for path, e, g in walk_leaves(expected, got):
        if path and path[0] == first:
            continue
        ea, ga = as_array(e), as_array(g)
        if ea is not None and ga is not None and ea.data.ndim:
            pairs.append((path_name(path, arg_names), ea, ga))
    return pairs


def kind_window(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    x = as_array(case_arg(case, pic.inputs[0]))
    k = case_arg(case, pic.inputs[1])
    if x is None or x.data.ndim < 2 or k is None:
        return [], []
    h, w = x.shape[-2:]
    kh, kw = (k, k) if isinstance(k, int) else tuple(int(v) for v in k)
    cell = max(8, min(28, 220 // max(h, w, kh, kw)))
    fits = kh <= h and kw <= w
    cells = [{"x": 20 + j * cell, "y": 24 + i * cell} for i in range(h) for j in range(w)]
    block = {"type": "window", "w": 40 + max(w, kw) * cell + 200, "h": 50 + max(h, kh) * cell, "cells": cells, "s": cell,
             "kw": kw * cell, "kh": kh * cell, "input": f"input {h} × {w}", "kernel": f"window {kh} × {kw}",
             "colour": RIGHT if fits else WRONG, "what": "green" if fits else "red"}
    if fits:
        return [block], [f"a {kh} × {kw} window fits in a {h} × {w} input: the call must return its pooled maps"]
    return [block], [f"a {kh} × {kw} window does not fit in a {h} × {w} input: there is no position to pool, so the call must raise"]
