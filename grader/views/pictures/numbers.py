"""Numbers ("values": bars, integer strips, got-against-expected scatters), a loss's gradient
against each logit ("curve"), and the singular values of a Jacobian ("spectrum")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.engine.spec import Picture
from grader.views.pictures.painting import EXPECTED, GOT, STRIP_MAX, WRONG, bars_block, chart_block, legend_block, scatter_block, strip_block, text_block
from grader.views.pictures.reading import (Array, as_array, case_arg, describe, dtype_changed, fmt, is_whole, path_name,
                                           small_errors, value_at, walk_leaves, wrong_mask)

MAX_ROWS = 10  # "values": rows drawn, the wrong ones first


def kind_values(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    if pic.of == "out":  # the whole result: the output, then the gradients or the probe's other entries
        leaves = [leaf for leaf in walk_leaves(expected, got) if leaf[0][:1] != ("args_after",)]
    else:
        leaves = walk_leaves(value_at(expected, pic.of), value_at(got, pic.of), tuple([pic.of] if isinstance(pic.of, str) else pic.of))
    rows = []
    for path, e, g in leaves:
        ea, ga = as_array(e), as_array(g)
        name = path_name(path, arg_names) or "result"
        if ea is None or ga is None:
            same = describe(e) == describe(g) and (ea is None) == (ga is None)
            rows.append(("text", name, not same, (describe(e), describe(g))))
            continue
        retyped = dtype_changed(ea, ga)
        if retyped:
            name += f" (dtype {ga.dtype}, expected {ea.dtype})"
        if ea.data.size == 1 and ga.data.size == 1:
            ev, gv = ea.data.ravel()[0], ga.data.ravel()[0]
            bad = retyped or bool(wrong_mask(Array(ea.data.reshape(()), ea.dtype), Array(ga.data.reshape(()), ga.dtype), case))
            rows.append(("bars", name, bad, (ev, gv)))
        elif is_whole(ea) and is_whole(ga) and max(ea.data.size, ga.data.size) <= 4 * STRIP_MAX:
            bad = retyped or ea.shape != ga.shape or bool((ea.data != ga.data).any())
            rows.append(("strip", name, bad, (ea.data.ravel(), ga.data.ravel())))
        elif ea.shape == ga.shape and ea.data.size:
            rows.append(("scatter", name, retyped or bool(wrong_mask(ea, ga, case).any()), (ea, ga)))
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
        blocks.append(text_block(["✓ right: " + ", ".join(f"{n} {fmt(v)}" for n, v in right_numbers)], width, colour="#2b6e2b"))
    for kind, name, bad, data in chosen:
        mark = "✗ " if bad else "✓ "
        if kind == "bars":
            blocks.append(bars_block(mark + name, data[0], data[1], width, bad))
        elif kind == "strip":
            blocks.append(strip_block(mark + name, data[0], data[1], width))
        elif kind == "scatter":
            scatters.append(scatter_block(mark + name, data[0], data[1], case))
            if bad and small_errors(data[0], data[1]):
                scatters.append(scatter_block(mark + name, data[0], data[1], case, residual=True))
        else:
            blocks.append(text_block([f"{mark}{name}: expected {data[0]}; got {data[1]}"], width, colour=WRONG if bad else "#444"))
    for start in range(0, len(scatters), 3):
        group = scatters[start:start + 3]
        blocks.append({"type": "row", "w": sum(s["w"] + 10 for s in group), "h": max(s["h"] for s in group),
                       "items": [{**s, "x": sum(t["w"] + 10 for t in group[:n])} for n, s in enumerate(group)]})
    summary = []
    if len(rows) > len(chosen):
        summary.append(f"{len(chosen)} of {len(rows)} entries of the result drawn: " +
                       ("those that differ" if len(wrong_rows) <= MAX_ROWS else f"the first {MAX_ROWS} that differ"))
    if scatters:
        blocks.append(text_block(["Each dot is one element, expected across and yours up: on the diagonal it is right, red "
                                   "beyond the tolerance; magenta marks NaN or inf."], width, colour="#555"))
    return blocks, summary


def kind_curve(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    ye, yg = value_at(expected, pic.of), value_at(got, pic.of)
    series, summary = [], []
    for n, position in enumerate(pic.inputs):
        x = as_array(case_arg(case, position))
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
    chart = chart_block(series, "logit", "d loss / d logit", log_x=True)
    legend = legend_block([(s["colour"], s["style"], s["label"]) for s in series], chart["w"])
    loss_path = next((p for p in ("out", "loss") if as_array(value_at(expected, p)) is not None), None)
    blocks = []
    if loss_path:
        ea, ga = as_array(value_at(expected, loss_path)), as_array(value_at(got, loss_path))
        if ea is not None and ga is not None and ea.data.size == 1 and ga.data.size == 1:
            ev, gv = float(ea.data.ravel()[0]), float(ga.data.ravel()[0])
            bad = bool(wrong_mask(Array(ea.data.reshape(()), ea.dtype), Array(ga.data.reshape(()), ga.dtype), case))
            blocks.append(bars_block(("✗ " if bad else "✓ ") + "loss", ev, gv, chart["w"], bad))
        elif ga is None or ga.data.size != 1:
            summary.append(f"the loss: expected {describe(value_at(expected, loss_path))}, got {describe(value_at(got, loss_path))}")
    note = text_block(["Each logit of the case is one point: the reference's gradient as a ring, yours as a dot, "
                        "inside the ring when they agree; magenta marks NaN or inf."], chart["w"], colour="#555")
    return blocks + [chart, legend, note], summary


def kind_spectrum(pic: Picture, case: Any, expected: Any, got: Any, arg_names: Sequence[str]) -> tuple[list[dict], list[str]]:
    ea, ga = as_array(value_at(expected, pic.of)), as_array(value_at(got, pic.of))
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
    chart = chart_block(series, "singular value number", "log10 (value / largest)")
    legend = legend_block([(s["colour"], s["style"], s["label"]) for s in series], chart["w"])
    return [chart, legend], ["the singular values of the output's Jacobian (random projections): through a bottleneck of "
                             "latent_dim numbers at most latent_dim of them stay near the largest; the reference's others "
                             "drop to rounding noise"]
