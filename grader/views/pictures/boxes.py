"""Boxes on one canvas: two box sets row by row ("boxes"), NMS's kept and suppressed boxes
("kept"), and the pair with the worst IoU ("iou")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.engine.spec import Picture
from grader.views.pictures.maps import kind_maps
from grader.views.pictures.painting import EXPECTED, GOT, MISSING, MUTED, RIGHT, WRONG, legend_block, strip_block
from grader.views.pictures.reading import as_array, case_arg, describe, dtype_at, fmt, indices_of, tolerance, value_at

MAX_BOXES = 150  # boxes drawn by "kept" and "iou" (the wrong ones first)
BOX_ROWS = 40  # "boxes": rows drawn (the first ones: proposals come best first)


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
                ticks.append({"axis": axis, "pos": pos, "text": fmt(v)})
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
    return "[" + ", ".join(fmt(float(v)) for v in b) + "]"


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


def kind_boxes(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    e, g = _boxes_of(value_at(expected, pic.of)), _boxes_of(value_at(got, pic.of))
    if e is None:
        return [], []
    if g is None:
        return [], [f"your code returned {describe(value_at(got, pic.of))}, not boxes of shape (N, 4)"]
    frame = None
    size = case_arg(case, pic.inputs[0]) if pic.inputs else None
    if isinstance(size, (tuple, list)) and len(size) == 2:
        frame = (0.0, 0.0, float(size[1]), float(size[0]))  # image_size is (height, width)
    rtol, atol = tolerance(case, dtype_at(expected, pic.of))
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
    return [_canvas(world, items, legend_block(legend, max(world.w, 400)), extra_items)], summary


def kind_kept(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    boxes = _boxes_of(case_arg(case, pic.inputs[0]))
    scores = as_array(case_arg(case, pic.inputs[1]))
    cats = as_array(case_arg(case, pic.inputs[2])) if len(pic.inputs) > 2 else None
    e, g = indices_of(value_at(expected, pic.of)), indices_of(value_at(got, pic.of))
    if boxes is None or e is None:
        return [], []
    if g is None:
        return [], [f"your code returned {describe(value_at(got, pic.of))}, not a 1-D tensor of int64 indices"]
    n = len(boxes)
    exp_set, got_set = set(e.tolist()), {int(i) for i in g.tolist() if 0 <= i < n}
    out_of_range = [int(i) for i in g.tolist() if not 0 <= i < n]
    wrongly_kept = sorted(got_set - exp_set)
    missing = sorted(exp_set - got_set)
    # At most MAX_BOXES boxes: the wrong ones first, then those kept, then the suppressed ones.
    shown = (wrongly_kept + missing + sorted(exp_set & got_set) + sorted(set(range(n)) - exp_set - got_set))[:MAX_BOXES]
    world = _World([boxes[shown]] if shown else [boxes])
    items = []
    label_all = n <= 60
    label_wrong = label_all or len(wrongly_kept) + len(missing) <= 30
    for i in sorted(shown):
        score = f", score {fmt(float(scores.data[i]))}" if scores is not None and i < scores.data.size else ""
        cat = f", category {int(cats.data[i])}" if cats is not None and i < cats.data.size else ""
        name = f"box {i}{score}{cat}"
        label = (str(i) + (f" c{int(cats.data[i])}" if cats is not None else "")) if label_all else ""
        if i in exp_set and i in got_set:
            items.append(_box_item(world, boxes[i], colour=RIGHT, width=1.8, label=label, tip=f"{name}: kept, rightly"))
        elif i in got_set:
            items.append(_box_item(world, boxes[i], colour=WRONG, width=2.6, label=str(i) if label_wrong else "",
                                   tip=f"{name}: you kept it; it should be suppressed"))
        elif i in exp_set:
            items.append(_box_item(world, boxes[i], colour=MISSING, dash="5 3", width=2.6, label=str(i) if label_wrong else "",
                                   tip=f"{name}: should be kept; you dropped it"))
        else:
            items.insert(0, _box_item(world, boxes[i], colour=MUTED, dash="2 3", width=1.0, opacity=0.8, tip=f"{name}: suppressed, rightly"))
    summary = [f"the reference keeps {len(e)} of {n} boxes, your code {len(g)}"]
    if n > len(shown):
        summary.append(f"{len(shown)} of the {n} boxes are drawn: the wrong ones first, then those kept")
    if wrongly_kept:
        summary.append(f"kept but should be suppressed: boxes {', '.join(map(str, wrongly_kept[:12]))}" + ("..." if len(wrongly_kept) > 12 else ""))
    if missing:
        summary.append(f"suppressed but should be kept: boxes {', '.join(map(str, missing[:12]))}" + ("..." if len(missing) > 12 else ""))
    if out_of_range:
        summary.append(f"indices outside 0..{n - 1}: {', '.join(map(str, out_of_range[:8]))}")
    if exp_set == got_set and not out_of_range and e.tolist() != g.tolist():
        summary.append("the same boxes are kept, in a different order: best score first" +
                       (", equal scores by increasing index" if scores is not None and len(set(scores.data.tolist())) < scores.data.size else ""))
    legend = legend_block([(RIGHT, "", "kept"), (WRONG, "", "kept, should be suppressed"),
                           (MISSING, "5 3", "should be kept, suppressed by yours"), (MUTED, "2 3", "suppressed")], max(world.w, 420))
    return [_canvas(world, items, legend), strip_block("kept, in order", e, g, max(world.w + 60, 480))], summary


def kind_iou(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    b1, b2 = _boxes_of(case_arg(case, pic.inputs[0])), _boxes_of(case_arg(case, pic.inputs[1]))
    ea, ga = as_array(value_at(expected, pic.of)), as_array(value_at(got, pic.of))
    if b1 is None or b2 is None or ea is None:
        return [], []
    if ga is None:
        return [], [f"your code returned {describe(value_at(got, pic.of))}, not an IoU matrix"]
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
                       f"is {fmt(ea.data[i, j])}, yours {fmt(ga.data[i, j])} (both boxes drawn thick, their intersection shaded)")
    legend = legend_block([(EXPECTED, "", "boxes1 (a0, a1...)"), ("#8e44ad", "4 2", "boxes2 (b0, b1...)")], max(world.w, 400))
    blocks.append(_canvas(world, items, legend))
    maps, lines = kind_maps(Picture("maps", of=pic.of), case, expected, got, arg_names)
    return blocks + maps, summary + lines
