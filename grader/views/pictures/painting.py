"""The pieces a picture is stacked from: colour scales, PNG heat maps written with zlib, and the
blocks (text, legend, colour bar, heat-map grid, integer strip, bars, scatter, chart) that the
templates of `templates/pictures/` draw. Each block is a dict with its "type" (the template's
name), its size "w" and "h", and what its template reads."""

from __future__ import annotations

import base64
import math
import struct
import textwrap
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.views.pictures.reading import Array, fmt, value_range, wrong_mask

# Colours: expected in blue, the learner's in orange, wrong in red, right in green.
EXPECTED, GOT, WRONG, RIGHT, MISSING, MUTED = "#3b6ea8", "#e8710a", "#d62728", "#2ca02c", "#1f4e9c", "#9a9a9a"
VIRIDIS = np.array([[68, 1, 84], [70, 50, 126], [54, 92, 141], [39, 127, 142], [31, 161, 135],
                    [74, 193, 109], [160, 218, 57], [253, 231, 37]], dtype=float)
DIVERGING = np.array([[33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
                      [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43]], dtype=float)
GREYS = np.array([[0, 0, 0], [255, 255, 255]], dtype=float)
CLASSES = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                    [140, 86, 75], [227, 119, 194], [188, 189, 34], [23, 190, 207], [127, 127, 127]], dtype=float)
NONFINITE = np.array([255, 0, 255], dtype=np.uint8)  # NaN and inf: magenta, on every scale
IGNORED = np.array([60, 60, 60], dtype=np.uint8)  # pixels whose target is ignore_index

MAP_SIDE = 150  # px: the longer side of a heat map
SCATTER_POINTS = 200  # dots drawn per scatter at most
STRIP_MAX = 48  # integer results are drawn as strips up to 4 x this many elements; this many shown
CHAR_W = 6.6  # px per character at 12 px, for wrapping


def colours_of(t: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Colours (..., 3) uint8 of `t` in [0, 1] along a table of evenly spaced colours."""
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0) * (len(table) - 1)
    i = np.minimum(np.floor(t).astype(int), len(table) - 2)
    f = (t - i)[..., None]
    return np.round(table[i] * (1 - f) + table[i + 1] * f).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of `rgb` (H, W, 3) uint8."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png_uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(np.ascontiguousarray(rgb))).decode("ascii")


def paint(values: np.ndarray, lo: float, hi: float, table: np.ndarray) -> np.ndarray:
    rgb = colours_of((values - lo) / (hi - lo), table)
    rgb[~np.isfinite(values)] = NONFINITE
    return rgb


def colourbar_block(x: float, y: float, width: float, lo: float, hi: float, table: np.ndarray, caption: str) -> dict:
    ramp = np.linspace(0, 1, 64)[None, :]
    return {"type": "colourbar", "x": x, "y": y, "w": width, "h": 10, "href": png_uri(colours_of(ramp, table)),
            "lo": fmt(lo), "hi": fmt(hi), "mid": fmt((lo + hi) / 2), "caption": caption}


def text_block(lines: Sequence[str], width: float, *, colour: str = "#222", size: int = 12) -> dict:
    per_char = CHAR_W if size <= 12 else CHAR_W * size / 12 * 1.12  # headings are bold
    wrapped = [w for line in lines for w in (textwrap.wrap(line, max(20, int(width / per_char))) or [""])]
    return {"type": "text", "w": width, "h": len(wrapped) * (size + 4) + 4, "lines": wrapped, "colour": colour, "size": size}


def legend_block(items: Sequence[tuple[str, str, str]], width: float) -> dict:
    """Legend entries (colour, dash pattern or "", text), laid out left to right."""
    x, y, placed = 0.0, 0.0, []
    for colour, dash, text in items:
        span = 34 + len(text) * CHAR_W
        if x and x + span > width:
            x, y = 0.0, y + 18
        placed.append({"x": x, "y": y, "colour": colour, "dash": dash, "text": text})
        x += span + 8
    return {"type": "legend", "w": width, "h": y + 20, "items": placed}


def shrink(values: np.ndarray, limit: int, signed: bool) -> tuple[np.ndarray, int]:
    """`values` (H, W) reduced by an integer factor to at most `limit` per side: block means,
    or for a difference the block's value of largest magnitude (a wrong spot stays visible)."""
    factor = max(1, math.ceil(max(values.shape) / limit))
    if factor == 1:
        return values, 1
    h, w = (math.ceil(n / factor) * factor for n in values.shape)
    padded = np.full((h, w), np.nan)
    padded[: values.shape[0], : values.shape[1]] = values
    blocks = padded.reshape(h // factor, factor, w // factor, factor).transpose(0, 2, 1, 3).reshape(h // factor, w // factor, -1)
    if signed:
        pick = np.nanargmax(np.where(np.isnan(blocks), -1.0, np.abs(np.nan_to_num(blocks, nan=0.0, posinf=1e300, neginf=-1e300))), axis=2)
        return np.take_along_axis(blocks, pick[..., None], axis=2)[..., 0], factor
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.where(np.isfinite(blocks), blocks, np.nan), axis=2), factor


def maps_block(rows: list[dict], columns: list[str], notes: Sequence[str] = ()) -> dict:
    """Heat maps in a grid: `rows` of {"label", "cells": [{"values", "scale"} or None per column]},
    `columns` titles; each cell's scale is ("shared", lo, hi) or ("diff", m). Each map is drawn
    with its longer side at most MAP_SIDE px (cells of at most 24 px); larger maps are shrunk."""
    drawn = {}  # (row, column) -> (values as drawn, shrink factor, px per drawn cell)
    for i, r in enumerate(rows):
        for j, c in enumerate(r["cells"]):
            if c is not None:
                v, factor = shrink(c["values"], MAP_SIDE // 2, c["scale"][0] == "diff")
                drawn[i, j] = (v, factor, min(24.0, MAP_SIDE / max(max(v.shape), 1)))
    col_w = max([v.shape[1] * px for v, _, px in drawn.values()] + [130.0])
    gutter, gap = 92, 18
    y = 22.0
    placed: list[dict] = []
    labels = []
    for i, r in enumerate(rows):
        row_h = max([drawn[i, j][0].shape[0] * drawn[i, j][2] for j in range(len(r["cells"])) if (i, j) in drawn] + [12.0])
        labels.append({"x": 0, "y": y + min(row_h, 40) / 2 + 4, "lines": r["label"].split("\n")})
        for j, c in enumerate(r["cells"]):
            if c is None:
                continue
            full = c["values"]
            v, factor, cell = drawn[i, j]
            if c["scale"][0] == "shared":
                rgb = paint(v, c["scale"][1], c["scale"][2], VIRIDIS)
            else:
                rgb = paint(v, -c["scale"][1], c["scale"][1], DIVERGING)
            x = gutter + j * (col_w + gap)
            outlines = []
            wrong = c.get("wrong")
            if wrong is not None and factor == 1 and 0 < int(wrong.sum()) <= 200 and not wrong.all() and cell >= 4:
                outlines = [{"x": x + jj * cell, "y": y + ii * cell, "s": cell} for ii, jj in zip(*np.nonzero(wrong))]
            caption = f"{full.shape[0]} × {full.shape[1]}" + (f", drawn 1:{factor}" if factor > 1 else "")
            placed.append({"x": x, "y": y, "w": v.shape[1] * cell, "h": v.shape[0] * cell, "href": png_uri(rgb),
                           "caption": caption, "tip": c.get("tip", ""), "outlines": outlines})
        y += row_h + 22
    bars = []
    shared = [j for j in range(len(columns)) if any(j < len(r["cells"]) and r["cells"][j] is not None
                                                     and r["cells"][j]["scale"][0] == "shared" for r in rows)]
    if shared:
        scale = next(r["cells"][shared[0]]["scale"] for r in rows if r["cells"][shared[0]] is not None)
        span = (shared[-1] - shared[0] + 1) * (col_w + gap) - gap
        nonfinite = any(not np.isfinite(c["values"]).all() for r in rows for c in r["cells"] if c is not None)
        bars.append(colourbar_block(gutter + shared[0] * (col_w + gap), y, span, scale[1], scale[2], VIRIDIS,
                               "one colour scale for expected and got" + ("; magenta: NaN or inf" if nonfinite else "")))
    diffs = [(j, r["cells"][j]["scale"]) for r in rows for j in range(len(r["cells"]))
             if r["cells"][j] is not None and r["cells"][j]["scale"][0] == "diff"]
    if diffs:
        j, scale = diffs[0]
        bars.append(colourbar_block(gutter + j * (col_w + gap), y, col_w, -scale[1], scale[1], DIVERGING,
                               "got − expected, wrong ones boxed"))
    y += 40
    note_block = text_block(notes, gutter + len(columns) * (col_w + gap)) if notes else None
    heads = [{"x": gutter + j * (col_w + gap), "text": t} for j, t in enumerate(columns)]
    return {"type": "maps", "w": gutter + len(columns) * (col_w + gap), "h": y + (note_block["h"] if note_block else 0),
            "heads": heads, "maps": placed, "labels": labels, "bars": bars, "notes": note_block, "notes_y": y}


def strip_block(name: str, exp: np.ndarray, got: np.ndarray, width: float) -> dict:
    """Two rows of integers (expected above, got below); got cells that differ are red."""
    n = max(len(exp), len(got))
    shown = min(n, STRIP_MAX)
    digits = max((len(fmt(v)) for v in list(exp[:shown]) + list(got[:shown])), default=1)
    cw = max(22.0, digits * CHAR_W + 8)
    per_line = max(1, int((width - 80) // cw))
    cells = []
    for k in range(shown):
        line, col = divmod(k, per_line)
        x, y = 80 + col * cw, 20 + line * 46
        ev = fmt(exp[k]) if k < len(exp) else "–"
        gv = fmt(got[k]) if k < len(got) else "–"
        cells.append({"x": x, "y": y, "w": cw, "e": ev, "g": gv, "bad": ev != gv, "i": k})
    lines = (shown + per_line - 1) // per_line
    return {"type": "strip", "w": width, "h": 24 + max(lines, 1) * 46 + (14 if n > shown else 0), "name": name,
            "cells": cells, "rows": [20 + i * 46 for i in range(lines)],
            "more": f"... {n - shown} more" if n > shown else "", "more_y": 24 + lines * 46}


def rgb_hex(rgb: np.ndarray) -> str:
    r, g, b = (int(v) for v in np.asarray(rgb).reshape(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def bars_block(name: str, e: float, g: float, width: float, bad: bool) -> dict:
    """The expected and the got number as two bars from zero, the name above them."""
    finite = [float(v) for v in (e, g) if math.isfinite(float(v))]
    lo, hi = min([0.0] + finite), max([0.0] + finite)
    span = (hi - lo) or 1.0
    left, right = 70.0, width - 90
    zero = left + (0 - lo) / span * (right - left)
    rows = []
    for n, (what, v, colour) in enumerate((("expected", e, EXPECTED), ("got", g, GOT))):
        end = left + ((float(v) if math.isfinite(float(v)) else 0.0) - lo) / span * (right - left)
        rows.append({"y": 18 + n * 16, "x": min(zero, end), "w": abs(end - zero), "colour": colour, "what": what,
                     "text": fmt(v), "tx": max(zero, end) + 4})
    return {"type": "bars", "w": width, "h": 52, "name": name, "rows": rows, "zero": zero, "bad": bad, "left": left}


def scatter_block(name: str, exp: Array, got: Array, case: Any, *, residual: bool = False, size: float = 210) -> dict:
    """Each element as a dot, expected across; yours up (on the diagonal when right), or with
    `residual` yours − expected up (on the zero line when right): small errors become visible."""
    e, g = exp.data.astype(np.float64).ravel(), got.data.astype(np.float64).ravel()
    wrong = wrong_mask(exp, got, case).ravel()
    up = g - e if residual else g
    x_lo, x_hi = value_range([e] if residual else [e, g])
    if residual:
        finite = np.abs(up[np.isfinite(up)])
        m = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        y_lo, y_hi = -m, m
    else:
        y_lo, y_hi = x_lo, x_hi
        own_lo, own_hi = value_range([g])
        e_lo, e_hi = value_range([e])
        own = (own_hi - own_lo) > 10 * (e_hi - e_lo) or (own_hi - own_lo) < 0.1 * (e_hi - e_lo)
        if own:  # yours spans a very different range: each axis on its own scale
            (x_lo, x_hi), (y_lo, y_hi) = (e_lo, e_hi), (own_lo, own_hi)
    keep = np.arange(e.size)
    if e.size > SCATTER_POINTS:  # evenly spaced samples, three quarters of them wrong ones where there are
        bad, good = np.nonzero(wrong)[0], np.nonzero(~wrong)[0]
        n_bad = min(bad.size, SCATTER_POINTS * 3 // 4)
        n_good = min(good.size, SCATTER_POINTS - n_bad)
        keep = np.concatenate([bad[np.linspace(0, bad.size - 1, n_bad).astype(int)] if n_bad else bad[:0],
                               good[np.linspace(0, good.size - 1, n_good).astype(int)] if n_good else good[:0]])
    pad = 28.0

    def px(v: float) -> float:
        return pad + (v - x_lo) / (x_hi - x_lo) * (size - 2 * pad)

    def py(v: float) -> float:
        return size - pad - (v - y_lo) / (y_hi - y_lo) * (size - 2 * pad)

    points = []
    for k in keep.tolist():
        ev, gv, uv = float(e[k]), float(g[k]), float(up[k])
        if not math.isfinite(ev):
            continue
        points.append({"x": px(ev), "y": py(uv) if math.isfinite(uv) else 8.0, "bad": bool(wrong[k]),
                       "nonfinite": not math.isfinite(uv), "tip": f"#{k}: {fmt(ev)} → {fmt(gv)}"})
    own = not residual and (x_lo, x_hi) != (y_lo, y_hi)
    if residual:
        line = {"x1": pad, "y1": py(0.0), "x2": size - pad, "y2": py(0.0)}
    elif own:  # the diagonal of a shared scale means nothing here: no line
        line = {"x1": pad, "y1": size - pad, "x2": pad, "y2": size - pad}
    else:
        line = {"x1": pad, "y1": size - pad, "x2": size - pad, "y2": pad}
    short = name if len(name) <= 34 else name[:33] + "…"
    return {"type": "scatter", "w": size + 10, "h": size + 46, "s": size, "pad": pad, "points": points, "line": line,
            "name": short, "full": name, "sub": [(f"{int(wrong.sum())} of {e.size} wrong" if not residual else "the same, yours − expected up")
                                  + (f", {keep.size} drawn" if keep.size < e.size else "")]
            + (["yours on its own scale"] if own else []),
            "x_lo": fmt(x_lo), "x_hi": fmt(x_hi), "y_lo": fmt(y_lo), "y_hi": fmt(y_hi),
            "up": "yours − expected →" if residual else "yours →", "bad": bool(wrong.any())}


def chart_block(series: list[dict], xlabel: str, ylabel: str, width: float = 520, height: float = 240, *, log_x: bool = False) -> dict:
    """Points and lines in one plot. Each series: {"x", "y" (arrays), "colour", "style": "ring"|"dot"|"line"|"band", "label", "lo"/"hi" for bands}."""
    xs = np.concatenate([s["x"] for s in series]) if series else np.zeros(1)
    ys = np.concatenate([s["y"] for s in series] + [s.get("lo", s["y"]) for s in series] + [s.get("hi", s["y"]) for s in series]) if series else np.zeros(1)
    xspan = float(np.ptp(xs[np.isfinite(xs)])) if np.isfinite(xs).any() else 1.0
    transform = log_x and xspan > 60
    tx = np.arcsinh if transform else (lambda v: v)
    x_lo, x_hi = value_range([tx(xs)])
    y_lo, y_hi = value_range([ys])
    left, top, right, bottom = 64.0, 10.0, width - 16, height - 40

    def px(v: np.ndarray) -> np.ndarray:
        return left + (tx(v) - x_lo) / (x_hi - x_lo) * (right - left)

    def py(v: np.ndarray) -> np.ndarray:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    drawn = []
    for s in series:
        x, y = np.asarray(s["x"], dtype=float), np.asarray(s["y"], dtype=float)
        pts = [{"x": float(a), "y": float(b) if math.isfinite(b) else top - 2, "bad": not math.isfinite(b),
                "tip": f"{s['label']}: {fmt(xv)} -> {fmt(yv)}"}
               for a, b, xv, yv in zip(px(x), py(np.where(np.isfinite(y), y, y_hi)), x, y) if math.isfinite(a)]
        item = {"style": s["style"], "colour": s["colour"], "points": pts, "label": s["label"]}
        if s["style"] == "band":
            upper = [f"{a:.1f},{b:.1f}" for a, b in zip(px(x), np.minimum(py(s["hi"]), py(y) - 2))]
            lower = [f"{a:.1f},{b:.1f}" for a, b in zip(px(x), np.maximum(py(s["lo"]), py(y) + 2))]
            item["polygon"] = " ".join(upper + lower[::-1])
        item["polyline"] = " ".join(f"{p['x']:.1f},{p['y']:.1f}" for p in pts if not p["bad"])
        drawn.append(item)
    whole = bool(np.all(xs[np.isfinite(xs)] == np.round(xs[np.isfinite(xs)])))
    ticks_x = [{"pos": float(px(np.array(v))), "text": fmt(v)} for v in nice_ticks(xs, transform, integer=whole)]
    ticks_y = [{"pos": float(py(np.array(v))), "text": fmt(v)} for v in nice_ticks(np.array([y_lo, y_hi]), False)]
    zero_y = float(py(np.array(0.0))) if y_lo < 0 < y_hi else None
    return {"type": "chart", "w": width, "h": height, "series": drawn, "left": left, "top": top, "right": right,
            "bottom": bottom, "ticks_x": ticks_x, "ticks_y": ticks_y, "xlabel": xlabel + (" (asinh scale)" if transform else ""),
            "ylabel": ylabel, "zero_y": zero_y}


def nice_ticks(values: np.ndarray, transformed: bool, integer: bool = False) -> list[float]:
    """Round tick values inside the range of `values`: 1, 2 or 5 times a power of ten apart, or
    powers of ten on an asinh axis."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return [0.0]
    lo, hi = float(finite.min()), float(finite.max())
    if transformed:
        candidates = [-1e4, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e4]
        return [c for c in candidates if lo - 1e-9 <= c <= hi + 1e-9] or [lo, hi]
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        return [lo]
    if integer and hi - lo <= 12:  # epochs, steps: each one
        return [float(v) for v in range(math.ceil(lo), math.floor(hi) + 1)]
    raw = (hi - lo) / 4
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda v: abs(v - raw))
    step = max(step, 1.0) if integer else step
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]
