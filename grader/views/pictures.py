"""Pictures of a failing case: what the learner's code produced beside what it should have.

`draw(picture, case, expected, got)` turns the first failing case of a check into one inline SVG
(text): expected | got | difference, labelled with the case's inputs. The check's `Picture`
(`grader.engine.spec`) says which kind to draw and where its values are:

- "maps": heat maps per channel, expected and got on one shared colour scale, the difference on
  a diverging one (conv, pooling, GAP/CAM, U-Net, fully-convolutional heat maps...);
- "boxes", "kept", "iou": boxes on one canvas, right, wrong, missing and extra (or kept,
  wrongly kept, missing and suppressed) told apart;
- "confusion": prediction against target, ignored pixels shown;
- "values": numbers as bars, integer results as index strips, tensors as got-against-expected
  scatters (distances, losses, counts, shapes);
- "curve": a loss's gradient against each logit; "training": losses per epoch against the
  reference's, and output images beside their inputs; "window": a window that does not fit.

Pure: numpy and the jinja2 templates in `templates/pictures/` (autoescaped). Heat maps are PNG
data URIs written here with zlib; nothing is fetched. No torch: values arrive as the engine's
sanitized results ({"__tensor__": tensor}) or as the case's own arguments, and are read through
their `.numpy()`. `safe_svg(text)` tells whether stored text holds only what these functions draw,
for pages that embed pictures read back from JSON files.
"""

from __future__ import annotations

import base64
import math
import struct
import textwrap
import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from grader.engine.spec import DTYPE_TOLERANCES, Picture

TENSOR_KEY = "__tensor__"  # = grader.runner.probes.TENSOR_KEY (not imported: the runner imports torch)
TEMPLATES = Path(__file__).with_name("templates") / "pictures"

# Colours: expected in blue, the learner's in orange, wrong in red, right in green.
EXPECTED, GOT, WRONG, RIGHT, MISSING, MUTED = "#3b6ea8", "#e8710a", "#d62728", "#2ca02c", "#1f4e9c", "#9a9a9a"
_VIRIDIS = np.array([[68, 1, 84], [70, 50, 126], [54, 92, 141], [39, 127, 142], [31, 161, 135],
                     [74, 193, 109], [160, 218, 57], [253, 231, 37]], dtype=float)
_DIVERGING = np.array([[33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
                       [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43]], dtype=float)
_GREYS = np.array([[0, 0, 0], [255, 255, 255]], dtype=float)
_CLASSES = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                     [140, 86, 75], [227, 119, 194], [188, 189, 34], [23, 190, 207], [127, 127, 127]], dtype=float)
_NONFINITE = np.array([255, 0, 255], dtype=np.uint8)  # NaN and inf: magenta, on every scale
_IGNORED = np.array([60, 60, 60], dtype=np.uint8)

MAP_SIDE = 150  # px: the longer side of a heat map
MAX_CHANNELS = 4  # channels drawn per tensor: the ones that differ most
MAX_BOXES = 300  # boxes drawn by "kept" and "iou"
BOX_ROWS = 40  # "boxes": rows drawn (the first ones: proposals come best first)
MAX_ROWS = 10  # "values": rows drawn, the wrong ones first
SCATTER_POINTS = 200  # "values": dots drawn per scatter at most
STRIP_MAX = 48  # "values": integer results drawn as strips up to this many elements
CHAR_W = 6.6  # px per character at 12 px, for wrapping


# --- reading values without torch ---------------------------------------------------------------
class _Array:
    """A value read as a numpy array, with its dtype's name ("float32", "int64", "bool"...)."""

    def __init__(self, data: np.ndarray, dtype: str):
        self.data, self.dtype = data, dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_float(self) -> bool:
        return self.data.dtype.kind == "f"


def as_array(value: Any) -> _Array | None:
    """`value` (a sanitized or raw tensor, a numpy array, a number or a list of numbers) as an
    `_Array`, floats in float64 and integers in int64; None for anything else."""
    if isinstance(value, dict) and TENSOR_KEY in value:
        value = value[TENSOR_KEY]
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # a torch tensor
        t = value.detach().cpu()
        name = str(t.dtype).replace("torch.", "")
        if t.is_complex():
            return None
        if t.is_floating_point():
            return _Array(t.double().numpy(), name)
        return _Array(t.numpy().astype(bool if name == "bool" else np.int64), name)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fiub":
            return _Array(value.astype(np.float64 if value.dtype.kind == "f" else value.dtype), value.dtype.name)
        return None
    if isinstance(value, bool):
        return _Array(np.array(value), "bool")
    if isinstance(value, int):
        return _Array(np.array(value, dtype=np.int64), "int")
    if isinstance(value, float):
        return _Array(np.array(value), "float")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        data = np.array(value, dtype=np.float64 if any(isinstance(v, float) for v in value) else np.int64)
        return _Array(data, "float" if data.dtype.kind == "f" else "int")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        try:
            data = np.array(value)
        except ValueError:
            return None
        return _Array(data.astype(np.float64), "float") if data.dtype.kind in "fiu" else None
    return None


def _at(value: Any, path: str | tuple) -> Any:
    """The part of a probe's result at `path` (a key, or keys and positions); None when absent."""
    for step in (path,) if isinstance(path, str) else path:
        if isinstance(value, dict) and not (TENSOR_KEY in value) and step in value:
            value = value[step]
        elif isinstance(value, (list, tuple)) and isinstance(step, int) and -len(value) <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def _arg(case: Any, position: int | None) -> Any:
    args = getattr(case, "args", ())
    return args[position] if position is not None and 0 <= position < len(args) else None


def _tolerance(case: Any, dtype: str) -> tuple[float, float]:
    rtol, atol = DTYPE_TOLERANCES.get(dtype, (1e-6, 1e-9))
    case_rtol, case_atol = getattr(case, "rtol", None), getattr(case, "atol", None)
    return (rtol if case_rtol is None else case_rtol), (atol if case_atol is None else case_atol)


def _wrong(exp: _Array, got: _Array, case: Any) -> np.ndarray:
    """Where `got` differs from `exp` beyond the comparison's tolerance (same shapes)."""
    if exp.is_float or got.is_float:
        rtol, atol = _tolerance(case, exp.dtype)
        e, g = exp.data.astype(np.float64), got.data.astype(np.float64)
        return ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    return exp.data != got.data


def _fmt(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}" if abs(int(x)) >= 100000 else str(int(x))
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == round(x) and abs(x) < 100000:
        return str(int(x))
    return f"{x:.4g}"


def describe(value: Any) -> str:
    """A short description of a result value (a tensor's shape and dtype, a number, a type)."""
    arr = as_array(value)
    if arr is not None and arr.data.ndim and not isinstance(value, (list, tuple)):
        return f"a tensor of shape {arr.shape}, {arr.dtype}"
    if arr is not None and arr.data.ndim == 0:
        return _fmt(arr.data.item())
    if isinstance(value, dict) and "__unsupported__" in value:
        return f"an object of type {value['__unsupported__']}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None:
        return "None"
    text = repr(value) if not isinstance(value, (list, tuple)) else "[" + ", ".join(describe(v) for v in value) + "]"
    return text if len(text) <= 80 else text[:77] + "..."


def _path_name(path: Sequence[Any], arg_names: Sequence[str]) -> str:
    parts = []
    for step in path:
        if isinstance(step, str) and step.startswith("arg") and step[3:].isdigit():
            i = int(step[3:])
            parts.append(arg_names[i] if i < len(arg_names) else f"argument {i}")
        elif isinstance(step, int):
            parts.append(f"[{step}]")
        else:
            parts.append({"out": "output", "grads": "gradient w.r.t."}.get(step, str(step)))
    return " ".join(parts).replace(" [", "[").replace("gradient w.r.t. param:", "gradient w.r.t. parameter ")


# --- colours and PNG ----------------------------------------------------------------------------
def _colour(t: np.ndarray, table: np.ndarray) -> np.ndarray:
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


def _uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png(np.ascontiguousarray(rgb))).decode("ascii")


def _paint(values: np.ndarray, lo: float, hi: float, table: np.ndarray) -> np.ndarray:
    rgb = _colour((values - lo) / (hi - lo), table)
    rgb[~np.isfinite(values)] = _NONFINITE
    return rgb


def _scale(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [f for f in finite if f.size]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(float(f.min()) for f in finite), max(float(f.max()) for f in finite)
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _colourbar(x: float, y: float, width: float, lo: float, hi: float, table: np.ndarray, caption: str) -> dict:
    ramp = np.linspace(0, 1, 64)[None, :]
    return {"type": "colourbar", "x": x, "y": y, "w": width, "h": 10, "href": _uri(_colour(ramp, table)),
            "lo": _fmt(lo), "hi": _fmt(hi), "mid": _fmt((lo + hi) / 2), "caption": caption}


# --- blocks: the pieces a picture is stacked from ----------------------------------------------
def _text_block(lines: Sequence[str], width: float, *, colour: str = "#222", size: int = 12) -> dict:
    per_char = CHAR_W if size <= 12 else CHAR_W * size / 12 * 1.12  # headings are bold
    wrapped = [w for line in lines for w in (textwrap.wrap(line, max(20, int(width / per_char))) or [""])]
    return {"type": "text", "w": width, "h": len(wrapped) * (size + 4) + 4, "lines": wrapped, "colour": colour, "size": size}


def _legend(items: Sequence[tuple[str, str, str]], width: float) -> dict:
    """Legend entries (colour, dash pattern or "", text), laid out left to right."""
    x, y, placed = 0.0, 0.0, []
    for colour, dash, text in items:
        span = 34 + len(text) * CHAR_W
        if x and x + span > width:
            x, y = 0.0, y + 18
        placed.append({"x": x, "y": y, "colour": colour, "dash": dash, "text": text})
        x += span + 8
    return {"type": "legend", "w": width, "h": y + 20, "items": placed}


def _shrink(values: np.ndarray, limit: int, signed: bool) -> tuple[np.ndarray, int]:
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


def _maps_block(rows: list[dict], columns: list[str], notes: Sequence[str] = ()) -> dict:
    """Heat maps in a grid: `rows` of {"label", "cells": [{"values", "scale"} or None per column]},
    `columns` titles; each cell's scale is ("shared", lo, hi) or ("diff", m). Each map is drawn
    with its longer side at most MAP_SIDE px (cells of at most 24 px); larger maps are shrunk."""
    drawn = {}  # (row, column) -> (values as drawn, shrink factor, px per drawn cell)
    for i, r in enumerate(rows):
        for j, c in enumerate(r["cells"]):
            if c is not None:
                v, factor = _shrink(c["values"], MAP_SIDE // 2, c["scale"][0] == "diff")
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
                rgb = _paint(v, c["scale"][1], c["scale"][2], _VIRIDIS)
            else:
                rgb = _paint(v, -c["scale"][1], c["scale"][1], _DIVERGING)
            x = gutter + j * (col_w + gap)
            outlines = []
            wrong = c.get("wrong")
            if wrong is not None and factor == 1 and 0 < int(wrong.sum()) <= 200 and not wrong.all() and cell >= 4:
                outlines = [{"x": x + jj * cell, "y": y + ii * cell, "s": cell} for ii, jj in zip(*np.nonzero(wrong))]
            caption = f"{full.shape[0]} × {full.shape[1]}" + (f", drawn 1:{factor}" if factor > 1 else "")
            placed.append({"x": x, "y": y, "w": v.shape[1] * cell, "h": v.shape[0] * cell, "href": _uri(rgb),
                           "caption": caption, "tip": c.get("tip", ""), "outlines": outlines})
        y += row_h + 22
    bars = []
    shared = [j for j in range(len(columns)) if any(j < len(r["cells"]) and r["cells"][j] is not None
                                                     and r["cells"][j]["scale"][0] == "shared" for r in rows)]
    if shared:
        scale = next(r["cells"][shared[0]]["scale"] for r in rows if r["cells"][shared[0]] is not None)
        span = (shared[-1] - shared[0] + 1) * (col_w + gap) - gap
        nonfinite = any(not np.isfinite(c["values"]).all() for r in rows for c in r["cells"] if c is not None)
        bars.append(_colourbar(gutter + shared[0] * (col_w + gap), y, span, scale[1], scale[2], _VIRIDIS,
                               "one colour scale for expected and got" + ("; magenta: NaN or inf" if nonfinite else "")))
    diffs = [(j, r["cells"][j]["scale"]) for r in rows for j in range(len(r["cells"]))
             if r["cells"][j] is not None and r["cells"][j]["scale"][0] == "diff"]
    if diffs:
        j, scale = diffs[0]
        bars.append(_colourbar(gutter + j * (col_w + gap), y, col_w, -scale[1], scale[1], _DIVERGING,
                               "got − expected, wrong ones boxed"))
    y += 40
    note_block = _text_block(notes, gutter + len(columns) * (col_w + gap)) if notes else None
    heads = [{"x": gutter + j * (col_w + gap), "text": t} for j, t in enumerate(columns)]
    return {"type": "maps", "w": gutter + len(columns) * (col_w + gap), "h": y + (note_block["h"] if note_block else 0),
            "heads": heads, "maps": placed, "labels": labels, "bars": bars, "notes": note_block, "notes_y": y}


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


def _maps_for(name: str, exp: _Array, got: _Array, case: Any, *, difference: bool) -> tuple[dict, list[str]]:
    """One maps block for one tensor, and summary lines."""
    e, g = exp.data.astype(np.float64), got.data.astype(np.float64)
    summary: list[str] = []
    same = e.shape == g.shape
    columns = ["expected", "got (your code)"] + (["difference"] if difference and same else [])
    if same and e.ndim:
        e4, axes = _as_2d(e)
        g4 = g.reshape(e4.shape)
        wrong4 = _wrong(exp, got, case).reshape(e4.shape)
        d4 = g4 - e4
        mag = np.where(wrong4, np.where(np.isfinite(d4), np.abs(d4), np.inf), 0.0)
        score = mag.max(axis=(2, 3)) if mag.size else None
        item, chans = _pick_slices(e4, score)
        rows = []
        shown_e = [e4[item, c] for c in chans]
        shown_g = [g4[item, c] for c in chans]
        lo, hi = _scale(shown_e + shown_g)
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
                           (f"; the largest difference is {_fmt(float(np.max(mag)))}" if n_wrong else ""))
        shown = f"item {item}, " if e4.shape[0] > 1 else ""
        if e4.shape[1] > len(chans):
            summary.append(f"{name}: {shown}channels {', '.join(map(str, chans))} of {e4.shape[1]} are drawn (those that differ most)")
        return _maps_block(rows, columns), summary
    summary.append(f"{name}: the shapes differ: expected {e.shape}, got {g.shape}, so there is no difference to draw")
    rows = []
    lists = []
    for a in (e, g):
        if a.ndim == 0 or a.size == 0:
            lists.append([])
            continue
        a4, axes = _as_2d(a)
        lists.append([(_slice_label(axes, 0, c, a4.shape[0], a4.shape[1]), a4[0, c]) for c in range(min(a4.shape[1], MAX_CHANNELS))])
    lo, hi = _scale([m for lst in lists for _, m in lst])
    for k in range(max(len(lst) for lst in lists) if lists else 0):
        cells = [{"values": lst[k][1], "scale": ("shared", lo, hi)} if k < len(lst) else None for lst in lists]
        label = next((lst[k][0] for lst in lists if k < len(lst)), "")
        rows.append({"label": label, "cells": cells})
    return _maps_block(rows, columns[:2]), summary


def _tensor_pairs(expected: Any, got: Any, of: Any, arg_names: Sequence[str]) -> list[tuple[str, _Array, _Array]]:
    """(name, expected, got) for the tensor(s) at `of`: one, or each of a returned tuple."""
    e, g = _at(expected, of), _at(got, of)
    path = [of] if isinstance(of, str) else list(of)
    if isinstance(e, (list, tuple)) and not as_array(e):
        pairs = []
        for i, ev in enumerate(e):
            gv = g[i] if isinstance(g, (list, tuple)) and i < len(g) else None
            ea, ga = as_array(ev), as_array(gv)
            if ea is not None and ga is not None:
                pairs.append((_path_name(path + [i], arg_names), ea, ga))
        return pairs
    ea, ga = as_array(e), as_array(g)
    return [(_path_name(path, arg_names), ea, ga)] if ea is not None and ga is not None else []


def _differs(exp: _Array, got: _Array, case: Any) -> bool:
    return exp.shape != got.shape or bool(_wrong(exp, got, case).any())


def _retyped(exp: _Array, got: _Array) -> bool:
    """A different dtype (Python's int and float are both just numbers)."""
    return exp.dtype != got.dtype and not {exp.dtype, got.dtype} <= {"int", "float"}


def differs(expected: Any, got: Any, case: Any) -> bool:
    """Whether two probe results differ anywhere (beyond the tolerance, or in dtype), the inputs
    after the call left out: where they do not, there is nothing to draw."""
    for path, e, g in _leaves(expected, got):
        if path[:1] == ("args_after",):
            continue
        ea, ga = as_array(e), as_array(g)
        if ea is not None and ga is not None:
            if _retyped(ea, ga) or _differs(ea, ga, case):
                return True
        elif describe(e) != describe(g):
            return True
    return False


def _kind_maps(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    pairs = _tensor_pairs(expected, got, pic.of, arg_names)
    if pic.difference:
        pairs = [p for p in pairs if _differs(p[1], p[2], case)]
        if not pairs:  # right where the picture looks: draw the first other tensor that differs (a gradient...)
            pairs = [p for p in _other_tensors(expected, got, pic.of, arg_names) if _differs(p[1], p[2], case)][:1]
    blocks, summary = [], []
    for name, ea, ga in pairs[:2]:
        if ea.data.ndim == 0 or ea.data.size == 0 or ga.data.size == 0:
            continue
        block, lines = _maps_for(name, ea, ga, case, difference=pic.difference)
        blocks += [_text_block([name], block["w"], colour="#444"), block]
        summary += lines
    return blocks, summary


def _other_tensors(expected: Any, got: Any, of: Any, arg_names: Sequence[str]) -> list[tuple[str, _Array, _Array]]:
    """(name, expected, got) for the tensors of a result outside `of`: its other entries, its gradients."""
    first = of if isinstance(of, str) else of[0]
    pairs = []
    for path, e, g in _leaves(expected, got):
        if path and path[0] == first:
            continue
        ea, ga = as_array(e), as_array(g)
        if ea is not None and ga is not None and ea.data.ndim:
            pairs.append((_path_name(path, arg_names), ea, ga))
    return pairs


# --- boxes ---------------------------------------------------------------------------------------
class _World:
    """Box coordinates (x right, y down) to canvas pixels, preserving the aspect ratio."""

    def __init__(self, boxes: Sequence[np.ndarray], width: float = 540, height: float = 360, frame: tuple | None = None):
        pts = [b.reshape(-1, 4) for b in boxes if b is not None and b.size]
        coords = np.concatenate(pts) if pts else np.zeros((1, 4))
        coords = coords[np.isfinite(coords).all(axis=1)] if np.isfinite(coords).any() else np.zeros((1, 4))
        x0, x1 = float(coords[:, [0, 2]].min()), float(coords[:, [0, 2]].max())
        y0, y1 = float(coords[:, [1, 3]].min()), float(coords[:, [1, 3]].max())
        if frame is not None:
            x0, y0, x1, y1 = min(x0, frame[0]), min(y0, frame[1]), max(x1, frame[2]), max(y1, frame[3])
        span = max(x1 - x0, y1 - y0, 1e-6)
        pad = 0.06 * span
        self.x0, self.y0 = x0 - pad, y0 - pad
        self.s = min(width / (x1 - x0 + 2 * pad or 1), height / (y1 - y0 + 2 * pad or 1))
        self.w, self.h = (x1 - x0 + 2 * pad) * self.s, (y1 - y0 + 2 * pad) * self.s
        self.ticks = self._ticks(x0, x1, y0, y1)

    def rect(self, b: np.ndarray) -> dict:
        """The box in canvas pixels, cut at 6 px beyond the canvas (NaN drawn as 0); "cut" says so."""
        x1, y1, x2, y2 = (float(v) for v in np.nan_to_num(b, nan=0.0, posinf=1e300, neginf=-1e300))
        left, right = sorted(((x1 - self.x0) * self.s, (x2 - self.x0) * self.s))
        top, bottom = sorted(((y1 - self.y0) * self.s, (y2 - self.y0) * self.s))
        cut = left < -6 or top < -6 or right > self.w + 6 or bottom > self.h + 6
        left, right = max(left, -6.0), min(right, self.w + 6)
        top, bottom = max(top, -6.0), min(bottom, self.h + 6)
        return {"x": left, "y": top, "w": max(right - left, 1.0), "h": max(bottom - top, 1.0), "cut": cut}

    def _ticks(self, x0: float, x1: float, y0: float, y1: float) -> list[dict]:
        ticks = []
        for lo, hi, axis in ((x0, x1, "x"), (y0, y1, "y")):
            for v in (lo, hi):
                pos = (v - (self.x0 if axis == "x" else self.y0)) * self.s
                ticks.append({"axis": axis, "pos": pos, "text": _fmt(v)})
        return ticks


def _box_item(world: _World, b: np.ndarray, *, colour: str, dash: str = "", width: float = 1.5,
              opacity: float = 1.0, label: str = "", tip: str = "", fill: str = "none") -> dict:
    rect = world.rect(b)
    return {**rect, "colour": colour, "dash": dash, "sw": width, "opacity": opacity, "label": label, "fill": fill,
            "tip": tip + (" (it reaches beyond the drawing)" if rect["cut"] else "")}


def _canvas(world: _World, items: list[dict], legend: dict | None, extra: Sequence[dict] = ()) -> dict:
    return {"type": "canvas", "w": world.w + 60, "h": world.h + 30 + (legend["h"] if legend else 0), "cw": world.w, "ch": world.h, "boxes": items,
            "ticks": world.ticks, "extra": list(extra), "legend": legend}


def _boxes_of(value: Any) -> np.ndarray | None:
    arr = as_array(value)
    if arr is None or arr.data.ndim != 2 or arr.data.shape[1] != 4:
        return None
    return arr.data.astype(np.float64)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _box_text(b: np.ndarray) -> str:
    return "[" + ", ".join(_fmt(float(v)) for v in b) + "]"


def _match_boxes(e: np.ndarray, g: np.ndarray, close: Any) -> tuple[dict[int, int], dict[int, int]]:
    """Expected rows to got rows: {i: j} for the same box (`close(i, j)`), row i first, then any
    row; and {i: j} for the remaining pairs that overlap (IoU >= 0.5), the best first, then, when
    the same rows are left on both sides, row by row."""
    same: dict[int, int] = {}
    taken: set[int] = set()
    for i in range(min(len(e), len(g))):
        if close(i, i):
            same[i] = i
            taken.add(i)
    for i in range(len(e)):
        if i not in same:
            j = next((j for j in range(len(g)) if j not in taken and close(i, j)), None)
            if j is not None:
                same[i] = j
                taken.add(j)
    moved: dict[int, int] = {}
    rest_e = [i for i in range(len(e)) if i not in same]
    rest_g = [j for j in range(len(g)) if j not in taken]
    if rest_e and rest_g:
        iou = _iou_matrix(e[rest_e], g[rest_g])
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            a, b = divmod(int(flat), len(rest_g))
            if iou[a, b] < 0.5:
                break
            if rest_e[a] not in moved and rest_g[b] not in moved.values():
                moved[rest_e[a]] = rest_g[b]
    left_e = [i for i in rest_e if i not in moved]
    if left_e and left_e == [j for j in rest_g if j not in moved.values()]:  # the same rows are off: row by row
        moved.update({i: i for i in left_e})
    return same, moved


def _kind_boxes(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    e, g = _boxes_of(_at(expected, pic.of)), _boxes_of(_at(got, pic.of))
    if e is None:
        return [], []
    if g is None:
        return [], [f"your code returned {describe(_at(got, pic.of))}, not boxes of shape (N, 4)"]
    frame = None
    size = _arg(case, pic.inputs[0]) if pic.inputs else None
    if isinstance(size, (tuple, list)) and len(size) == 2:
        frame = (0.0, 0.0, float(size[1]), float(size[0]))  # image_size is (height, width)
    rtol, atol = _tolerance(case, _dtype_at(expected, pic.of))
    same, moved = _match_boxes(e, g, lambda i, j: bool(np.isclose(g[j], e[i], rtol=rtol, atol=atol, equal_nan=True).all()))
    missing = [i for i in range(len(e)) if i not in same and i not in moved]
    extra = [j for j in range(len(g)) if j not in same.values() and j not in moved.values()]
    reordered = {i: j for i, j in same.items() if i != j}
    world = _World([e[:BOX_ROWS]], frame=frame)  # the expected boxes set the scale; yours may reach beyond
    items: list[dict] = []
    shown = lambda i, j=None: i is not None and i < BOX_ROWS or j is not None and j < BOX_ROWS  # noqa: E731
    few = len(e) <= 20
    for i, j in same.items():
        if shown(i, j):
            items.append(_box_item(world, e[i], colour=RIGHT, width=1.2, opacity=0.75, label=(f"{i}→{j}" if i != j else str(i)) if few else "",
                                   tip=f"expected row {i} = your row {j}: {_box_text(e[i])}"))
    for i, j in moved.items():
        if shown(i, j):
            items.append(_box_item(world, e[i], colour=EXPECTED, width=2.2, label=str(i) if few else "", tip=f"expected row {i}: {_box_text(e[i])}"))
            items.append(_box_item(world, g[j], colour=GOT, dash="6 3", width=2.2, tip=f"your row {j}: {_box_text(g[j])}"))
    for i in missing:
        if shown(i):
            items.append(_box_item(world, e[i], colour=MISSING, dash="2 2", width=2.4, label=str(i) if few else "", tip=f"expected row {i} {_box_text(e[i])}: not in yours"))
    for j in extra:
        if shown(None, j):
            items.append(_box_item(world, g[j], colour=WRONG, width=2.2, tip=f"your row {j} {_box_text(g[j])}: not expected"))
    summary = [f"expected {len(e)} boxes, got {len(g)}: {len(same)} right" + (f" ({len(reordered)} of them in another row)" if reordered else "")
               + (f", {len(moved)} moved or resized" if moved else "") + (f", {len(missing)} missing" if missing else "")
               + (f", {len(extra)} extra" if extra else "")]
    if reordered:
        summary.append("in another row: " + ", ".join(f"expected row {i} is your row {j}" for i, j in list(reordered.items())[:4])
                       + ("..." if len(reordered) > 4 else ""))
    if moved:
        summary.append("moved or resized: " + "; ".join(f"row {i}: expected {_box_text(e[i])}, yours {_box_text(g[j])}"
                                                       for i, j in list(moved.items())[:3]) + ("..." if len(moved) > 3 else ""))
    if max(len(e), len(g)) > BOX_ROWS:
        summary.append(f"the first {BOX_ROWS} rows of each are drawn")
    if any(item["cut"] for item in items):
        summary.append("some of your boxes reach far beyond the drawing and are cut at its edge")
    legend = [(RIGHT, "", "right" + (" (expected row → your row)" if reordered else ""))]
    legend += [(EXPECTED, "", "expected"), (GOT, "6 3", "yours, moved or resized")] if moved else []
    legend += [(MISSING, "2 2", "missing from yours")] if missing else []
    legend += [(WRONG, "", "extra in yours")] if extra else []
    extra_items = []
    if frame is not None:
        extra_items.append({**world.rect(np.array(frame)), "what": "image"})
        legend.append(("#000", "1 3", f"the image, {int(frame[3])} × {int(frame[2])}"))
    return [_canvas(world, items, _legend(legend, max(world.w, 400)), extra_items)], summary


def _dtype_at(value: Any, of: Any) -> str:
    arr = as_array(_at(value, of))
    return arr.dtype if arr is not None else "float32"


def _indices(value: Any) -> np.ndarray | None:
    arr = as_array(value)
    if arr is None or arr.is_float or arr.data.ndim != 1:
        return None
    return arr.data.astype(np.int64)


def _strip(name: str, exp: np.ndarray, got: np.ndarray, width: float) -> dict:
    """Two rows of integers (expected above, got below); got cells that differ are red."""
    n = max(len(exp), len(got))
    shown = min(n, STRIP_MAX)
    digits = max((len(_fmt(v)) for v in list(exp[:shown]) + list(got[:shown])), default=1)
    cw = max(22.0, digits * CHAR_W + 8)
    per_line = max(1, int((width - 80) // cw))
    cells = []
    for k in range(shown):
        line, col = divmod(k, per_line)
        x, y = 80 + col * cw, 20 + line * 46
        ev = _fmt(exp[k]) if k < len(exp) else "–"
        gv = _fmt(got[k]) if k < len(got) else "–"
        cells.append({"x": x, "y": y, "w": cw, "e": ev, "g": gv, "bad": ev != gv, "i": k})
    lines = (shown + per_line - 1) // per_line
    return {"type": "strip", "w": width, "h": 24 + max(lines, 1) * 46 + (14 if n > shown else 0), "name": name,
            "cells": cells, "rows": [20 + i * 46 for i in range(lines)],
            "more": f"... {n - shown} more" if n > shown else "", "more_y": 24 + lines * 46}


def _kind_kept(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    boxes = _boxes_of(_arg(case, pic.inputs[0]))
    scores = as_array(_arg(case, pic.inputs[1]))
    cats = as_array(_arg(case, pic.inputs[2])) if len(pic.inputs) > 2 else None
    e, g = _indices(_at(expected, pic.of)), _indices(_at(got, pic.of))
    if boxes is None or e is None:
        return [], []
    if g is None:
        return [], [f"your code returned {describe(_at(got, pic.of))}, not a 1-D tensor of int64 indices"]
    n = len(boxes)
    exp_set, got_set = set(e.tolist()), {int(i) for i in g.tolist() if 0 <= i < n}
    out_of_range = [int(i) for i in g.tolist() if not 0 <= i < n]
    world = _World([boxes[:MAX_BOXES]])
    items = []
    label_all = n <= 60
    for i in range(min(n, MAX_BOXES)):
        score = f", score {_fmt(float(scores.data[i]))}" if scores is not None and i < scores.data.size else ""
        cat = f", category {int(cats.data[i])}" if cats is not None and i < cats.data.size else ""
        name = f"box {i}{score}{cat}"
        label = (str(i) + (f" c{int(cats.data[i])}" if cats is not None else "")) if label_all else ""
        if i in exp_set and i in got_set:
            items.append(_box_item(world, boxes[i], colour=RIGHT, width=1.8, label=label, tip=f"{name}: kept, rightly"))
        elif i in got_set:
            items.append(_box_item(world, boxes[i], colour=WRONG, width=2.6, label=str(i), tip=f"{name}: you kept it; it should be suppressed"))
        elif i in exp_set:
            items.append(_box_item(world, boxes[i], colour=MISSING, dash="5 3", width=2.6, label=str(i), tip=f"{name}: should be kept; you dropped it"))
        else:
            items.insert(0, _box_item(world, boxes[i], colour=MUTED, dash="2 3", width=1.0, opacity=0.8, tip=f"{name}: suppressed, rightly"))
    wrongly_kept = sorted(got_set - exp_set)
    missing = sorted(exp_set - got_set)
    summary = [f"the reference keeps {len(e)} of {n} boxes, your code {len(g)}"]
    if wrongly_kept:
        summary.append(f"kept but should be suppressed: boxes {', '.join(map(str, wrongly_kept[:12]))}" + ("..." if len(wrongly_kept) > 12 else ""))
    if missing:
        summary.append(f"suppressed but should be kept: boxes {', '.join(map(str, missing[:12]))}" + ("..." if len(missing) > 12 else ""))
    if out_of_range:
        summary.append(f"indices outside 0..{n - 1}: {', '.join(map(str, out_of_range[:8]))}")
    if exp_set == got_set and not out_of_range and e.tolist() != g.tolist():
        summary.append("the same boxes are kept, in a different order: best score first" +
                       (", equal scores by increasing index" if scores is not None and len(set(scores.data.tolist())) < scores.data.size else ""))
    legend = _legend([(RIGHT, "", "kept"), (WRONG, "", "kept, should be suppressed"),
                      (MISSING, "5 3", "should be kept, suppressed by yours"), (MUTED, "2 3", "suppressed")], max(world.w, 420))
    return [_canvas(world, items, legend), _strip("kept, in order", e, g, max(world.w + 60, 480))], summary


def _kind_iou(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    b1, b2 = _boxes_of(_arg(case, pic.inputs[0])), _boxes_of(_arg(case, pic.inputs[1]))
    ea, ga = as_array(_at(expected, pic.of)), as_array(_at(got, pic.of))
    if b1 is None or b2 is None or ea is None:
        return [], []
    if ga is None:
        return [], [f"your code returned {describe(_at(got, pic.of))}, not an IoU matrix"]
    blocks, summary = [], []
    world = _World([b1, b2])
    items = [_box_item(world, b, colour=EXPECTED, width=1.2, opacity=0.55, label=f"a{i}", tip=f"boxes1[{i}] {_box_text(b)}")
             for i, b in enumerate(b1[:MAX_BOXES])]
    items += [_box_item(world, b, colour="#8e44ad", dash="4 2", width=1.2, opacity=0.55, label=f"b{j}", tip=f"boxes2[{j}] {_box_text(b)}")
              for j, b in enumerate(b2[:MAX_BOXES])]
    if ea.shape == ga.shape and ea.data.size:
        d = np.abs(ga.data - ea.data)
        d = np.where(np.isfinite(d), d, np.inf)
        i, j = np.unravel_index(int(np.argmax(d)), d.shape)
        lt, rb = np.maximum(b1[i, :2], b2[j, :2]), np.minimum(b1[i, 2:], b2[j, 2:])
        if (rb > lt).all():
            items.append(_box_item(world, np.concatenate([lt, rb]), colour="none", width=0, fill="#f5b041", opacity=0.6,
                                   tip="their intersection"))
        items.append(_box_item(world, b1[i], colour=EXPECTED, width=3, label=f"a{i}", tip=f"boxes1[{i}] {_box_text(b1[i])}"))
        items.append(_box_item(world, b2[j], colour="#8e44ad", width=3, label=f"b{j}", tip=f"boxes2[{j}] {_box_text(b2[j])}"))
        summary.append(f"the largest difference: IoU(boxes1[{i}] = {_box_text(b1[i])}, boxes2[{j}] = {_box_text(b2[j])}) "
                       f"is {_fmt(ea.data[i, j])}, yours {_fmt(ga.data[i, j])} (both boxes drawn thick, their intersection shaded)")
    legend = _legend([(EXPECTED, "", "boxes1 (a0, a1...)"), ("#8e44ad", "4 2", "boxes2 (b0, b1...)")], max(world.w, 400))
    blocks.append(_canvas(world, items, legend))
    maps, lines = _kind_maps(Picture("maps", of=pic.of), case, expected, got, arg_names)
    return blocks + maps, summary + lines


# --- confusion -------------------------------------------------------------------------------------
def _kind_confusion(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    pred, target = as_array(_arg(case, pic.inputs[0])), as_array(_arg(case, pic.inputs[1]))
    ignore = _arg(case, pic.inputs[2]) if len(pic.inputs) > 2 else None
    num_classes = _arg(case, pic.inputs[3]) if len(pic.inputs) > 3 else None
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
                colour = _rgb_hex(_colour(np.array(0.15 + 0.85 * v / top), np.array([[255, 255, 255], [44, 160, 44]], dtype=float)))
            else:
                colour = _rgb_hex(_colour(np.array(0.15 + 0.85 * v / top if v else 0.0), np.array([[255, 255, 255], [214, 39, 40]], dtype=float)))
            grid.append({"x": 110 + c * cell, "y": 40 + r * cell, "s": cell, "fill": colour, "text": str(v), "dark": r != k and v > 0.6 * top})
    block = {"type": "confusion", "w": max(110 + k * cell + 20, 360), "h": 40 + (k + 1) * cell + 24, "cells": grid,
             "cols": [{"x": 110 + c * cell + cell / 2, "text": str(cl)} for c, cl in enumerate(classes)],
             "rows": [{"y": 40 + r * cell + cell / 2 + 4, "text": (f"target {classes[r]}" if r < k else "ignored")} for r in range(k + 1)],
             "ignore_text": f"ignored pixels (target = {ignore})" if isinstance(ignore, int) else "no ignore_index"}
    summary = [f"{int((p == t)[~ignored].sum())} of {int((~ignored).sum())} counted pixels are right; "
               f"{int(ignored.sum())} pixels are ignored" + (f" (target = {ignore})" if isinstance(ignore, int) else "")]
    if len(present) > len(classes):
        summary.append(f"the first {len(classes)} of {len(present)} classes are drawn")
    blocks = [block, _masks_block(p, t, ignored)]
    values, lines = _kind_values(Picture("values", of=pic.of), case, expected, got, arg_names)
    return blocks + values, summary + lines


def _rgb_hex(rgb: np.ndarray) -> str:
    r, g, b = (int(v) for v in np.asarray(rgb).reshape(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def _masks_block(p: np.ndarray, t: np.ndarray, ignored: np.ndarray) -> dict:
    """The first image: target, prediction (a colour per class) and right/wrong pixels."""
    p0, t0, ig0 = (a.reshape(-1, *a.shape[-2:])[0] if a.ndim >= 2 else a.reshape(1, -1) for a in (p, t, ignored))
    cell = max(3, min(22, MAP_SIDE // max(p0.shape)))

    def classes(a: np.ndarray) -> np.ndarray:
        rgb = _CLASSES[np.mod(a, len(_CLASSES))].astype(np.uint8)
        rgb[ig0] = _IGNORED
        return rgb

    verdict = np.where((p0 == t0)[..., None], np.array([[[44, 160, 44]]]), np.array([[[214, 39, 40]]])).astype(np.uint8)
    verdict[ig0] = _IGNORED
    maps = []
    for n, (title, rgb) in enumerate((("target", classes(t0)), ("prediction", classes(p0)), ("right / wrong", verdict))):
        maps.append({"x": 92 + n * (max(p0.shape[1] * cell, 110) + 18), "y": 22, "w": p0.shape[1] * cell, "h": p0.shape[0] * cell,
                     "href": _uri(rgb), "caption": f"{p0.shape[0]} × {p0.shape[1]}", "tip": title, "outlines": [], "title": title})
    return {"type": "maps", "w": 92 + 3 * (max(p0.shape[1] * cell, 110) + 18), "h": 22 + p0.shape[0] * cell + 30,
            "heads": [{"x": m["x"], "text": m["title"]} for m in maps], "maps": maps,
            "labels": [{"x": 0, "y": 36, "lines": ["first image", "dark grey:", "ignored"]}], "bars": [], "notes": None, "notes_y": 0}


# --- values: numbers, strips and scatters ---------------------------------------------------------
def _leaves(exp: Any, got: Any, path: tuple = (), depth: int = 0) -> list[tuple[tuple, Any, Any]]:
    """(path, expected, got) for every leaf of two results walked side by side."""
    leaf_e, leaf_g = as_array(exp), as_array(got)
    if leaf_e is not None or leaf_g is not None or depth > 6:
        return [(path, exp, got)]
    if isinstance(exp, dict) and TENSOR_KEY not in exp:
        keys = list(exp) + [k for k in (got if isinstance(got, dict) else {}) if k not in exp]
        return [leaf for k in keys for leaf in _leaves(exp.get(k), got.get(k) if isinstance(got, dict) else None, path + (k,), depth + 1)]
    if isinstance(exp, (list, tuple)) and exp:
        return [leaf for i, v in enumerate(exp)
                for leaf in _leaves(v, got[i] if isinstance(got, (list, tuple)) and i < len(got) else None, path + (i,), depth + 1)]
    return [(path, exp, got)]


def _bars(name: str, e: float, g: float, width: float, bad: bool) -> dict:
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
                     "text": _fmt(v), "tx": max(zero, end) + 4})
    return {"type": "bars", "w": width, "h": 52, "name": name, "rows": rows, "zero": zero, "bad": bad, "left": left}


def _scatter(name: str, exp: _Array, got: _Array, case: Any, *, residual: bool = False, size: float = 210) -> dict:
    """Each element as a dot, expected across; yours up (on the diagonal when right), or with
    `residual` yours − expected up (on the zero line when right): small errors become visible."""
    e, g = exp.data.astype(np.float64).ravel(), got.data.astype(np.float64).ravel()
    wrong = _wrong(exp, got, case).ravel()
    up = g - e if residual else g
    x_lo, x_hi = _scale([e] if residual else [e, g])
    if residual:
        finite = np.abs(up[np.isfinite(up)])
        m = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        y_lo, y_hi = -m, m
    else:
        y_lo, y_hi = x_lo, x_hi
        own_lo, own_hi = _scale([g])
        e_lo, e_hi = _scale([e])
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
                       "nonfinite": not math.isfinite(uv), "tip": f"#{k}: {_fmt(ev)} → {_fmt(gv)}"})
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
            "x_lo": _fmt(x_lo), "x_hi": _fmt(x_hi), "y_lo": _fmt(y_lo), "y_hi": _fmt(y_hi),
            "up": "yours − expected →" if residual else "yours →", "bad": bool(wrong.any())}


def _whole(arr: _Array) -> bool:
    """Integers, or floats that all are (labels, indices, counts): drawn as a strip of numbers."""
    if not arr.is_float:
        return True
    d = arr.data
    return bool(d.size) and bool(np.isfinite(d).all()) and bool((d == np.round(d)).all()) and float(np.abs(d).max()) < 1e7


def _small_errors(exp: _Array, got: _Array) -> bool:
    """Wrong, but by little next to the values' range: the diagonal would hide it."""
    d = (got.data - exp.data).astype(np.float64)
    lo, hi = _scale([exp.data.astype(np.float64)])
    return bool(np.isfinite(d).all()) and float(np.abs(d).max()) < 0.05 * (hi - lo)


def _kind_values(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    if pic.of == "out":  # the whole result: the output, then the gradients or the probe's other entries
        leaves = [leaf for leaf in _leaves(expected, got) if leaf[0][:1] != ("args_after",)]
    else:
        leaves = _leaves(_at(expected, pic.of), _at(got, pic.of), tuple([pic.of] if isinstance(pic.of, str) else pic.of))
    rows = []
    for path, e, g in leaves:
        ea, ga = as_array(e), as_array(g)
        name = _path_name(path, arg_names) or "result"
        if ea is None or ga is None:
            same = describe(e) == describe(g) and (ea is None) == (ga is None)
            rows.append(("text", name, not same, (describe(e), describe(g))))
            continue
        retyped = _retyped(ea, ga)
        if retyped:
            name += f" (dtype {ga.dtype}, expected {ea.dtype})"
        if ea.data.size == 1 and ga.data.size == 1:
            ev, gv = ea.data.ravel()[0], ga.data.ravel()[0]
            bad = retyped or bool(_wrong(_Array(ea.data.reshape(()), ea.dtype), _Array(ga.data.reshape(()), ga.dtype), case))
            rows.append(("bars", name, bad, (ev, gv)))
        elif _whole(ea) and _whole(ga) and max(ea.data.size, ga.data.size) <= 4 * STRIP_MAX:
            bad = retyped or ea.shape != ga.shape or bool((ea.data != ga.data).any())
            rows.append(("strip", name, bad, (ea.data.ravel(), ga.data.ravel())))
        elif ea.shape == ga.shape and ea.data.size:
            rows.append(("scatter", name, retyped or bool(_wrong(ea, ga, case).any()), (ea, ga)))
        elif ea.data.size or ga.data.size:
            rows.append(("text", name, True, (describe(e), describe(g))))
    wrong_rows = [r for r in rows if r[2]]
    # What is wrong, and the right numbers (one line); right tensors only when little is drawn.
    chosen = wrong_rows + [r for r in rows if not r[2] and (r[0] == "bars" or len(rows) <= 3)]
    chosen = sorted(chosen[:MAX_ROWS], key=rows.index)
    width = 660.0
    blocks, scatters = [], []
    right_numbers = [(name, data[0]) for kind, name, bad, data in chosen if kind == "bars" and not bad]
    if len(right_numbers) > 1:  # the right numbers on one line, the wrong ones as bars
        chosen = [r for r in chosen if not (r[0] == "bars" and not r[2])]
        blocks.append(_text_block(["✓ right: " + ", ".join(f"{n} {_fmt(v)}" for n, v in right_numbers)], width, colour="#2b6e2b"))
    for kind, name, bad, data in chosen:
        mark = "✗ " if bad else "✓ "
        if kind == "bars":
            blocks.append(_bars(mark + name, data[0], data[1], width, bad))
        elif kind == "strip":
            blocks.append(_strip(mark + name, data[0], data[1], width))
        elif kind == "scatter":
            scatters.append(_scatter(mark + name, data[0], data[1], case))
            if bad and _small_errors(data[0], data[1]):
                scatters.append(_scatter(mark + name, data[0], data[1], case, residual=True))
        else:
            blocks.append(_text_block([f"{mark}{name}: expected {data[0]}; got {data[1]}"], width, colour=WRONG if bad else "#444"))
    for start in range(0, len(scatters), 3):
        group = scatters[start:start + 3]
        blocks.append({"type": "row", "w": sum(s["w"] + 10 for s in group), "h": max(s["h"] for s in group),
                       "items": [{**s, "x": sum(t["w"] + 10 for t in group[:n])} for n, s in enumerate(group)]})
    summary = []
    if len(rows) > len(chosen):
        summary.append(f"{len(chosen)} of {len(rows)} entries of the result drawn: " +
                       ("those that differ" if len(wrong_rows) <= MAX_ROWS else f"the first {MAX_ROWS} that differ"))
    if scatters:
        blocks.append(_text_block(["Each dot is one element, expected across and yours up: on the diagonal it is right, red "
                                   "beyond the tolerance; magenta marks NaN or inf."], width, colour="#555"))
    return blocks, summary


# --- curves: gradient against logit ------------------------------------------------------------------
def _chart(series: list[dict], xlabel: str, ylabel: str, width: float = 520, height: float = 240, *, log_x: bool = False) -> dict:
    """Points and lines in one plot. Each series: {"x", "y" (arrays), "colour", "style": "ring"|"dot"|"line"|"band", "label", "lo"/"hi" for bands}."""
    xs = np.concatenate([s["x"] for s in series]) if series else np.zeros(1)
    ys = np.concatenate([s["y"] for s in series] + [s.get("lo", s["y"]) for s in series] + [s.get("hi", s["y"]) for s in series]) if series else np.zeros(1)
    xspan = float(np.ptp(xs[np.isfinite(xs)])) if np.isfinite(xs).any() else 1.0
    transform = log_x and xspan > 60
    tx = np.arcsinh if transform else (lambda v: v)
    x_lo, x_hi = _scale([tx(xs)])
    y_lo, y_hi = _scale([ys])
    left, top, right, bottom = 64.0, 10.0, width - 16, height - 40

    def px(v: np.ndarray) -> np.ndarray:
        return left + (tx(v) - x_lo) / (x_hi - x_lo) * (right - left)

    def py(v: np.ndarray) -> np.ndarray:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    drawn = []
    for s in series:
        x, y = np.asarray(s["x"], dtype=float), np.asarray(s["y"], dtype=float)
        pts = [{"x": float(a), "y": float(b) if math.isfinite(b) else top - 2, "bad": not math.isfinite(b),
                "tip": f"{s['label']}: {_fmt(xv)} -> {_fmt(yv)}"}
               for a, b, xv, yv in zip(px(x), py(np.where(np.isfinite(y), y, y_hi)), x, y) if math.isfinite(a)]
        item = {"style": s["style"], "colour": s["colour"], "points": pts, "label": s["label"]}
        if s["style"] == "band":
            upper = [f"{a:.1f},{b:.1f}" for a, b in zip(px(x), np.minimum(py(s["hi"]), py(y) - 2))]
            lower = [f"{a:.1f},{b:.1f}" for a, b in zip(px(x), np.maximum(py(s["lo"]), py(y) + 2))]
            item["polygon"] = " ".join(upper + lower[::-1])
        item["polyline"] = " ".join(f"{p['x']:.1f},{p['y']:.1f}" for p in pts if not p["bad"])
        drawn.append(item)
    whole = bool(np.all(xs[np.isfinite(xs)] == np.round(xs[np.isfinite(xs)])))
    ticks_x = [{"pos": float(px(np.array(v))), "text": _fmt(v)} for v in _nice_ticks(xs, transform, integer=whole)]
    ticks_y = [{"pos": float(py(np.array(v))), "text": _fmt(v)} for v in _nice_ticks(np.array([y_lo, y_hi]), False)]
    zero_y = float(py(np.array(0.0))) if y_lo < 0 < y_hi else None
    return {"type": "chart", "w": width, "h": height, "series": drawn, "left": left, "top": top, "right": right,
            "bottom": bottom, "ticks_x": ticks_x, "ticks_y": ticks_y, "xlabel": xlabel + (" (asinh scale)" if transform else ""),
            "ylabel": ylabel, "zero_y": zero_y}


def _nice_ticks(values: np.ndarray, transformed: bool, integer: bool = False) -> list[float]:
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
    raw = (hi - lo) / 4
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda v: abs(v - raw))
    step = max(step, 1.0) if integer else step
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + k * step, 12) for k in range(int((hi - first) / step + 1e-9) + 1)]


def _kind_curve(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    ye, yg = _at(expected, pic.of), _at(got, pic.of)
    series, summary = [], []
    for n, position in enumerate(pic.inputs):
        x = as_array(_arg(case, position))
        if isinstance(ye, dict):
            key = f"arg{position - 1}"
            e, g = as_array(ye.get(key)), as_array(yg.get(key) if isinstance(yg, dict) else None)
            name = arg_names[position - 1] if position - 1 < len(arg_names) else f"argument {position - 1}"
        else:
            e, g = as_array(ye), as_array(yg)
            name = "logits"
        if x is None or e is None:
            continue
        xr = x.data.ravel()
        series.append({"x": xr, "y": e.data.ravel(), "colour": EXPECTED if n == 0 else "#6a3d9a", "style": "ring",
                       "label": f"expected, {name}"})
        if g is not None and g.data.size == xr.size:
            series.append({"x": xr, "y": g.data.ravel(), "colour": GOT if n == 0 else "#b15928", "style": "dot",
                           "label": f"yours, {name}"})
        else:
            summary.append(f"gradient w.r.t. {name}: yours is {describe(yg.get(key) if isinstance(yg, dict) else yg)}")
    if not series:
        return [], summary
    chart = _chart(series, "logit", "d loss / d logit", log_x=True)
    legend = _legend([(s["colour"], s["style"], s["label"]) for s in series], chart["w"])
    loss_path = next((p for p in ("out", "loss") if as_array(_at(expected, p)) is not None), None)
    blocks = []
    if loss_path:
        ea, ga = as_array(_at(expected, loss_path)), as_array(_at(got, loss_path))
        if ea is not None and ga is not None and ea.data.size == 1 and ga.data.size == 1:
            ev, gv = float(ea.data.ravel()[0]), float(ga.data.ravel()[0])
            bad = bool(_wrong(_Array(ea.data.reshape(()), ea.dtype), _Array(ga.data.reshape(()), ga.dtype), case))
            blocks.append(_bars(("✗ " if bad else "✓ ") + "loss", ev, gv, chart["w"], bad))
        elif ga is None or ga.data.size != 1:
            summary.append(f"the loss: expected {describe(_at(expected, loss_path))}, got {describe(_at(got, loss_path))}")
    note = _text_block(["Each logit of the case is one point: the reference's gradient as a ring, yours as a dot, "
                        "inside the ring when they agree; magenta marks NaN or inf."], chart["w"], colour="#555")
    return blocks + [chart, legend, note], summary


# --- training -------------------------------------------------------------------------------------
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


def _images(value: Any, count: int = 4) -> list[np.ndarray]:
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
                rgb = _colour(clipped[0], _GREYS)
            rgb[~np.isfinite(im).all(axis=0)] = _NONFINITE
            x = 110 + n * (im.shape[-1] * cell + 12)
            placed.append({"x": x, "y": y, "w": im.shape[-1] * cell, "h": im.shape[-2] * cell, "href": _uri(rgb),
                           "caption": "", "tip": f"{title}, image {n}", "outlines": []})
            h = max(h, im.shape[-2] * cell)
        y += h + 10
    width = 110 + count * (longest * cell + 12)
    return {"type": "maps", "w": width, "h": y + 6, "heads": [{"x": 110, "text": "the first images, in grey from 0 (black) to 1 (white)"}],
            "maps": placed, "labels": labels, "bars": [], "notes": None, "notes_y": 0}


def _kind_training(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    se, sg = _loss_series(_at(expected, pic.of)), _loss_series(_at(got, pic.of))
    blocks, summary = [], []
    if se is None:
        return [], []
    if sg is None:
        summary.append(f"your losses: {describe(_at(got, pic.of))}; expected {describe(_at(expected, pic.of))}")
    for name, ev in list(se.items())[:2]:
        gv = (sg or {}).get(name)
        if ev.size == 0 and (gv is None or gv.size == 0):
            summary.append(f"{name}: no epochs, no losses (expected an empty list)")
            continue
        rtol, atol = _tolerance(case, "float64")
        tol = atol + rtol * np.abs(ev)
        series = [{"x": np.arange(1, ev.size + 1), "y": ev, "lo": ev - tol, "hi": ev + tol, "colour": EXPECTED, "style": "band",
                   "label": f"the reference's {name} (band: the check's tolerance)"}]
        if gv is not None and gv.size:
            series.append({"x": np.arange(1, gv.size + 1), "y": gv, "colour": GOT, "style": "line", "label": f"your {name}"})
            if gv.size != ev.size:
                summary.append(f"{name}: {gv.size} values reported, expected {ev.size} (one per epoch)")
        chart = _chart(series, "epoch" if name == "loss" else "step", name, width=460, height=220)
        blocks += [_text_block([name + " per " + ("epoch" if name == "loss" else "step")], chart["w"], colour="#444"), chart,
                   _legend([(s["colour"], "band" if s["style"] == "band" else "", s["label"]) for s in series], chart["w"])]
    if pic.images:
        got_images, exp_images = _images(_at(got, pic.images)), _images(_at(expected, pic.images))
        rows = [(("input" if n == 0 else "clean target"), _images(_arg(case, p))) for n, p in enumerate(pic.inputs)]
        rows += [("the reference's output", exp_images), ("your output", got_images)]
        rows = [r for r in rows if r[1]]
        if rows:
            blocks.append(_image_grid(rows))
    return blocks, summary


# --- singular values ----------------------------------------------------------------------------------
def _kind_spectrum(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    ea, ga = as_array(_at(expected, pic.of)), as_array(_at(got, pic.of))
    if ea is None or ea.data.ndim != 2:
        return [], []
    series = []
    for label, arr, colour, style in (("the reference's", ea, EXPECTED, "ring"), ("yours", ga, GOT, "dot")):
        if arr is None or arr.data.ndim != 2 or not np.isfinite(arr.data).all():
            continue
        sv = np.linalg.svd(arr.data.astype(np.float64), compute_uv=False)
        rel = np.log10(np.maximum(sv / sv[0], 1e-16)) if sv.size and sv[0] > 0 else np.full(sv.shape, -16.0)
        series.append({"x": np.arange(1, sv.size + 1), "y": rel, "colour": colour, "style": style, "label": label})
    if not series:
        return [], []
    chart = _chart(series, "singular value number", "log10 (value / largest)")
    legend = _legend([(s["colour"], s["style"], s["label"]) for s in series], chart["w"])
    return [chart, legend], ["the singular values of the output's Jacobian (random projections): through a bottleneck of "
                             "latent_dim numbers at most latent_dim of them stay near the largest; the reference's others "
                             "drop to rounding noise"]


# --- a window that does not fit ----------------------------------------------------------------------
def _kind_window(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    x = as_array(_arg(case, pic.inputs[0]))
    k = _arg(case, pic.inputs[1])
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


_KINDS = {"maps": _kind_maps, "boxes": _kind_boxes, "kept": _kind_kept, "iou": _kind_iou, "confusion": _kind_confusion,
          "values": _kind_values, "curve": _kind_curve, "training": _kind_training, "spectrum": _kind_spectrum,
          "window": _kind_window}


# --- the picture ------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def draw(picture: Picture, case: Any, expected: Any, got: Any, *, title: str = "",
         arg_names: Sequence[str] = ()) -> str | None:
    """The SVG of one failing case: `expected` and `got` are the probe's sanitized results (the
    reference's and the learner's), `case` the `Case` (its label, arguments and tolerances),
    `title` a heading (the check's name) and `arg_names` the called function's parameter names.
    None when there is nothing to draw (no values came back, or nothing differs where the picture looks)."""
    raised = _raise_lines(case, expected, got)
    if raised is not None:  # a case about raising: what should have happened, and the window that does not fit
        blocks, summary = _kind_window(picture, case, expected, got, arg_names) if picture.kind == "window" else ([], [])
        summary = raised + summary
    else:
        if expected is None or got is None or not differs(expected, got, case):
            return None
        blocks, summary = _KINDS[picture.kind](picture, case, expected, got, arg_names)
        if not blocks and not summary and picture.kind != "values":  # nothing of this kind differs: the numbers
            blocks, summary = _kind_values(Picture("values"), case, expected, got, arg_names)
        if not blocks and not summary:
            return None
    return _frame(title, getattr(case, "label", ""), summary, blocks)


def _raise_lines(case: Any, expected: Any, got: Any) -> list[str] | None:
    """What was to be raised and what your code did, for a case that must raise (`Case.raises`)
    or one judged as data by `grader.checks.probe_outcome` ({"raised": [names]} or {"returned": value});
    None for any other case."""
    if getattr(case, "raises", ()):
        returned = _at(got, "out") if isinstance(got, dict) else got
        return [f"expected: {' or '.join(case.raises)} raised; your code returned {describe(returned)}"]
    if not (isinstance(expected, dict) and ("raised" in expected or "returned" in expected)):
        return None
    yours = (f"raised {got['raised'][0]}" if isinstance(got, dict) and got.get("raised")
             else f"returned {describe(got.get('returned') if isinstance(got, dict) else got)}")
    if expected.get("raised"):
        accept = getattr(getattr(case, "assess", None), "keywords", {}).get("accept") or expected["raised"][:1]
        return [f"expected: {' or '.join(accept)} raised; your code {yours}"]
    return [f"these arguments are valid: expected {describe(expected.get('returned'))}; your code {yours}"]


def _frame(title: str, label: str, summary: Sequence[str], blocks: list[dict]) -> str:
    width = max([b["w"] for b in blocks] + [560.0]) + 24
    header = [_text_block([title or "the first failing case"], width - 24, size=14, colour="#111")]
    if label:
        header.append(_text_block(["inputs: " + label], width - 24, colour="#333"))
    if summary:
        header.append(_text_block(summary, width - 24, colour="#7a1f1f"))
    y = 10.0
    placed = []
    for block in header + blocks:
        placed.append({**block, "x": 12.0, "y": y})
        y += block["h"] + 8
    aria = (title + ": " if title else "") + "; ".join(summary)
    svg = _environment().get_template("picture.svg.j2").render(width=round(width), height=round(y + 6), blocks=placed, aria=aria)
    return "\n".join(line.rstrip() for line in svg.splitlines() if line.strip())


# --- checking stored pictures ------------------------------------------------------------------------
_SVG_NS = "{http://www.w3.org/2000/svg}"
_ALLOWED_TAGS = {"svg", "g", "rect", "line", "polyline", "polygon", "circle", "text", "tspan", "title", "image", "path"}
_ALLOWED_ATTRS = {"x", "y", "dx", "dy", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "viewBox", "fill", "stroke",
                  "stroke-width", "stroke-dasharray", "opacity", "fill-opacity", "stroke-opacity", "font-size",
                  "font-family", "font-weight", "text-anchor", "dominant-baseline", "transform", "points", "d",
                  "role", "aria-label", "href", "preserveAspectRatio", "style", "class"}


def safe_svg(text: Any) -> bool:
    """True when `text` is one SVG element of the tags and attributes these pictures use: no
    script, no event handler, no link, images only as PNG data. For pictures read back from files."""
    if not isinstance(text, str) or not text.lstrip().startswith("<svg") or len(text) > 2_000_000:
        return False
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return False
    for element in root.iter():
        tag = element.tag.replace(_SVG_NS, "")
        if tag not in _ALLOWED_TAGS:
            return False
        for name, value in element.attrib.items():
            name = name.split("}")[-1]
            if name not in _ALLOWED_ATTRS:
                return False
            if name == "href" and not (tag == "image" and value.startswith("data:image/png;base64,")):
                return False
            if name == "style" and value != "image-rendering:pixelated":
                return False
    return True
