"""The vocabulary of hidden checks: cases, known mistakes and checks, as plain dataclasses.

A *check* tests one part of an exercise's contract. It builds its *cases* from a seeded
`torch.Generator`; each case names a *probe* (a small, trusted function in `grader.runner.probes`
or `grader.checks.<exercise>`) and its arguments. The same probe runs twice: in the worker on the
student's module, and in the grader's own process on the reference. The two results are compared
in the grader's process. A *mistake* is a variant of the reference that reproduces a common wrong
answer; when a failing result equals a mistake's result, the report names the mistake. A
*picture* says how the first failing case of a check is drawn for the learner (`grader.views.pictures`).

`load_checks` reads an exercise's checks (`grader/checks/<name>.py`) and `make_cases` runs a
check's case generator for a seed: the same code whether the reference is at hand (live grading,
recording) or not (replaying a recording, `engine.recording`).

This module imports no torch at import time, so the catalogue and CLI can use its types freely.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

# Held while trusted code runs in the grader's process with torch's global state (the global random
# generator, the thread count): a check's case generator, the reference, a mistake. Grading
# sessions may run side by side in threads (`grade all --jobs`); their expected values must not
# depend on how the threads interleave.
TORCH_GLOBALS_LOCK = threading.RLock()

# A mistake's `build(ref)` returns {public name: replacement callable/class} for the reference
# module `ref`; everything not replaced stays the reference's.
MistakeBuilder = Callable[[Any], dict[str, Any]]

# dtype name -> (rtol, atol): the default tolerances of a comparison (`engine.compare`), here without
# torch so that the pictures can tell wrong elements from right ones too.
DTYPE_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
}

# What each kind of picture draws (expected | got | difference, for the first failing case).
PICTURE_KINDS: dict[str, str] = {
    "maps": "feature maps and outputs as heat maps per channel on one shared colour scale, and the difference",
    "boxes": "boxes (Tensor[N, 4], x1 y1 x2 y2) on one canvas: right, wrong, missing and extra rows",
    "kept": "NMS: the input boxes on one canvas, kept, wrongly kept, missing and suppressed told apart",
    "iou": "pairwise IoU: the two box sets, the worst pair highlighted, and the IoU matrices",
    "confusion": "segmentation metrics: the confusion of prediction and target, ignored pixels shown",
    "values": "numbers, distances and losses: bars, index strips and got-against-expected scatters",
    "curve": "a loss's gradient against each logit, over the logit range of the case",
    "training": "losses per epoch or step against the reference's, and a few output images beside their inputs",
    "spectrum": "the singular values of a Jacobian, the reference's against yours (a real bottleneck)",
    "window": "a pooling window that does not fit its input (a case that must raise)",
}


@dataclass(frozen=True)
class Mistake:
    """A named, explained wrong answer that the report recognises."""

    name: str  # kebab-case, stable: tests and reports refer to it
    explanation: str  # one sentence: what the student probably did and why it is wrong
    build: MistakeBuilder
    section: str = ""  # the notes' section to revisit; defaults to the exercise's section
    subsection: str = ""  # optional: the `## ` heading of that section's notes that explains it


@dataclass(frozen=True)
class Case:
    """One call of a probe with fixed inputs.

    `probe` is a name in `grader.runner.probes` (e.g. "call", "module") or "package.module:function".
    `raises` lists exception class names that count as the right answer (e.g. ("ValueError",)).
    """

    probe: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    raises: tuple[str, ...] = ()
    rtol: float | None = None
    atol: float | None = None
    check_inputs: bool = True  # report in-place modification of tensor arguments
    # Behavioural cases: `assess(got, expected) -> None or a message`, run in the grader on the
    # sanitized values, replaces the equality comparison (e.g. "error below the baseline").
    assess: Callable[[Any, Any], str | None] | None = None
    # An `assess` that decides without the reference and quotes it only to explain a failure (a
    # model trained by the reference's loop, for comparison): the reference runs only once the
    # case has failed, and `assess` is first called with expected=None.
    reference_explains_only: bool = False


@dataclass(frozen=True)
class Picture:
    """How the first failing case of a check is drawn: expected | got | difference.

    `kind` is a key of PICTURE_KINDS. `of` finds the drawn value in the probe's result: a key
    ("out", "forward") or a path of keys and positions (("out", 0): the first of a returned pair).
    `inputs` are positions in `Case.args` of the inputs the kind draws (for a `call` case position
    0 is the function's name, so its first argument is 1): "kept" reads (boxes, scores[, categories]),
    "iou" (boxes1, boxes2), "confusion" (pred, target, ignore_index[, num_classes]), "curve" the
    logits, "training" the input images (and their clean targets) shown beside `images`, "window"
    (x, kernel_size). A position past the case's arguments means "not given".
    `difference=False` where the reference's output is one right answer among many (an untrained
    network of the learner's own design, random noise): expected and got are drawn, no difference.
    """

    kind: str
    of: str | tuple[str | int, ...] = "out"
    inputs: tuple[int, ...] = ()
    images: str = ""  # "training": the result's key holding the model's output images
    difference: bool = True

    def __post_init__(self) -> None:
        if self.kind not in PICTURE_KINDS:
            raise ValueError(f"unknown picture kind {self.kind!r}; the kinds are {', '.join(PICTURE_KINDS)}")


@dataclass(frozen=True)
class Check:
    """A named, pointed test of one contract part, with its cases and known mistakes."""

    name: str
    part: str
    points: int
    cases: Callable[[Any, Any], list[Case]]  # (torch.Generator, reference module) -> cases
    mistakes: tuple[Mistake, ...] = ()
    description: str = ""
    picture: Picture | None = None  # how a failing case is drawn; every check of the course has one


def derive_seed(base_seed: int, exercise: str, check: str) -> int:
    """A check's seed: stable, derived from the base seed and the check's name (63 bits)."""
    digest = hashlib.sha256(f"{base_seed}:{exercise}:{check}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


DEFAULT_SEED = 0


def load_checks(name: str) -> list[Check]:
    """The checks of exercise `name`, in order (`grader.checks.<name>.CHECKS`)."""
    return list(importlib.import_module(f"grader.checks.{name}").CHECKS)


def make_cases(check: Check, seed: int, reference: Any) -> list[Case]:
    """The seeded cases of `check`: its generator gets `torch.Generator().manual_seed(seed)` and
    torch's global RNG is seeded with `seed` too (and restored afterwards)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with TORCH_GLOBALS_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return list(check.cases(generator, reference))
