"""Hidden checks for `metric`: distances, contrastive/triplet/batch-hard losses, weight sharing, verification.

`triplet_loss` is compared with the reference exactly and, separately, with PyTorch's
`F.triplet_margin_loss` within the difference its `eps = 1e-6` makes. `SiameseNet` is checked by a
probe that counts parameters and collects the gradients each input sends to the embedding's own
tensors, so two separate embedding networks are caught however they are named.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.checks import call, randn
from grader.engine.compare import compare, pretty_where
from grader.runner import probes
from grader.engine.spec import Case, Check, Mistake, Picture

_SECTION = "MetricLearning"


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --- pairwise_distances --------------------------------------------------------------------------
def _pd_values(g, ref):
    cases = []
    for n, m, d, squared, dtype, grad in [
        (5, 7, 4, False, torch.float32, False),
        (4, 6, 8, True, torch.float32, False),
        (1, 8, 5, False, torch.float32, False),
        (6, 3, 16, False, torch.float64, True),
        (3, 5, 6, True, torch.float64, True),
    ]:
        a, b = randn(g, n, d, dtype=dtype), randn(g, m, d, dtype=dtype)
        cases.append(call("pairwise_distances", a, b, squared, grad=grad,
                          label=f"a {tuple(a.shape)}, b {tuple(b.shape)}, squared={squared}, {_dt(dtype)}"))
    return cases


def _pd_coincident(g, ref):
    # atol 1e-6 (float64) leaves room for the |a|^2 + |b|^2 - 2ab expansion, whose rounding makes a
    # zero distance about 1e-8 instead of exactly 0; NaN, negative values and NaN gradients fail.
    a = randn(g, 5, 6, dtype=torch.float64)
    b = torch.cat([randn(g, 2, 6, dtype=torch.float64), a[[3, 0]], randn(g, 1, 6, dtype=torch.float64)])
    dup = randn(g, 3, 4, dtype=torch.float64)
    dup = torch.cat([dup, dup[:1], dup[1:2]])
    same = randn(g, 1, 5, dtype=torch.float64).expand(4, 5).contiguous()
    return [
        call("pairwise_distances", a, b, False, grad=True, atol=1e-6,
             label="b contains two rows of a (zero distances), float64, gradients must be finite"),
        call("pairwise_distances", a, a.clone(), False, grad=True, atol=1e-6,
             label="pairwise_distances(x, x): a zero diagonal, float64"),
        call("pairwise_distances", dup, dup.clone(), False, grad=True, atol=1e-6,
             label="x with duplicated rows against itself, float64"),
        call("pairwise_distances", same, same.clone(), False, grad=True, atol=1e-6,
             label="four identical rows: every distance is 0 and so is every gradient"),
        call("pairwise_distances", dup, dup.clone(), True, grad=True, atol=1e-6,
             label="x with duplicated rows against itself, squared=True, float64"),
    ]


def _pd_no_sqrt(ref):
    def pairwise_distances(a, b, squared=False):
        return ref.pairwise_distances(a, b, squared=True)

    return {"pairwise_distances": pairwise_distances}


def _pd_squared_ignored(ref):
    def pairwise_distances(a, b, squared=False):
        return ref.pairwise_distances(a, b, squared=False)

    return {"pairwise_distances": pairwise_distances}


def _pd_manhattan(ref):
    def pairwise_distances(a, b, squared=False):
        d = (a[:, None, :] - b[None, :, :]).abs().sum(-1)
        return d * d if squared else d

    return {"pairwise_distances": pairwise_distances}


def _pd_naive_sqrt(ref):
    def pairwise_distances(a, b, squared=False):
        sq = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sq if squared else sq.sqrt()

    return {"pairwise_distances": pairwise_distances}


def _pd_expansion_unclamped(ref):
    def pairwise_distances(a, b, squared=False):
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return sq if squared else sq.sqrt()

    return {"pairwise_distances": pairwise_distances}


PD_MISTAKES = (
    Mistake("square-root-missing", "These are squared distances: with squared=False take the square root.", _pd_no_sqrt, _SECTION, subsection="Computing distances"),
    Mistake("squared-flag-ignored", "squared=True must return the squared distances, without the square root.", _pd_squared_ignored, _SECTION),
    Mistake("manhattan-distance", "This is the L1 (Manhattan) distance: the Euclidean distance is the square root of the sum of squared differences.", _pd_manhattan, _SECTION, subsection="Computing distances"),
    Mistake("sqrt-gradient-at-zero", "The square root's gradient is infinite at 0, so coinciding rows give NaN gradients: use torch.linalg.vector_norm (its gradient at 0 is 0) or mask the zeros before the square root.", _pd_naive_sqrt, _SECTION, subsection="Computing distances"),
    Mistake("expansion-not-clamped", "|a|^2 + |b|^2 - 2ab can round to a small negative number when two rows coincide, and its square root is NaN: clamp at 0 (and guard the gradient at 0), or use differences.", _pd_expansion_unclamped, _SECTION, subsection="Computing distances"),
)


# --- contrastive_loss ----------------------------------------------------------------------------
def _pairs(g, n, d, dtype, scale=1.0):
    x1 = randn(g, n, d, dtype=dtype) * scale
    x2 = randn(g, n, d, dtype=dtype) * scale
    same = (torch.rand(n, generator=g) < 0.5).long()
    same[0], same[-1] = 1, 0  # both kinds of pair in every batch
    return x1, x2, same


def _contrastive_values(g, ref):
    cases = []
    for n, d, scale, margin, dtype, same_dtype in [
        (8, 4, 0.4, 1.0, torch.float32, torch.long),
        (6, 8, 0.3, 2.0, torch.float32, torch.float32),
        (10, 3, 0.5, 1.5, torch.float64, torch.float64),
        (5, 16, 0.2, 1.0, torch.float64, torch.long),
    ]:
        x1, x2, same = _pairs(g, n, d, dtype, scale)
        cases.append(call("contrastive_loss", x1, x2, same.to(same_dtype), margin,
                          label=f"{n} pairs of dimension {d}, margin {margin}, same as {_dt(same_dtype)} {same.tolist()}, {_dt(dtype)}"))
    return cases


def _contrastive_gradients(g, ref):
    cases = []
    x1, x2, same = _pairs(g, 8, 5, torch.float64, 0.4)
    cases.append(call("contrastive_loss", x1, x2, same, 1.0, grad=True,
                      label=f"8 pairs, float64, same {same.tolist()}"))
    x1, x2, same = _pairs(g, 6, 4, torch.float64, 0.4)
    x2[0] = x1[0]
    same[0] = 1
    cases.append(call("contrastive_loss", x1, x2, same, 1.0, grad=True,
                      label=f"pair 0 is similar and identical (d = 0): the gradient must stay finite; same {same.tolist()}"))
    x1, x2, same = _pairs(g, 6, 4, torch.float64, 3.0)
    same[:] = 0
    same[1] = 1
    cases.append(call("contrastive_loss", x1, x2, same, 1.0, grad=True,
                      label="dissimilar pairs already farther apart than the margin contribute nothing, float64"))
    x1, x2, same = _pairs(g, 7, 6, torch.float32, 0.3)
    cases.append(call("contrastive_loss", x1, x2, same, 2.0, grad=True,
                      label=f"7 pairs, margin 2.0, float32, same {same.tolist()}"))
    return cases


def _contrastive_variant(pull_fn, push_fn, reduce="mean", half=0.5, flip=False):
    def build(ref):
        def contrastive_loss(x1, x2, same, margin=1.0):
            d = torch.linalg.vector_norm(x1 - x2, dim=1)
            s = same.to(x1.dtype)
            if flip:
                s = 1 - s
            per = half * s * pull_fn(d) + half * (1 - s) * push_fn(d, margin)
            return per.mean() if reduce == "mean" else per.sum()

        return {"contrastive_loss": contrastive_loss}

    return build


_pull = lambda d: d**2  # noqa: E731
_push = lambda d, m: torch.relu(m - d) ** 2  # noqa: E731

CONTRASTIVE_MISTAKES = (
    Mistake("contrastive-labels-flipped", "The label convention is flipped: same = 1 marks a similar pair, whose distance is pulled to 0; same = 0 pairs are pushed beyond the margin.", _contrastive_variant(_pull, _push, flip=True), _SECTION, subsection="Contrastive loss"),
    Mistake("hinge-not-squared", "The hinge term must be squared: 0.5 * (1 - same) * relu(margin - d)**2.", _contrastive_variant(_pull, lambda d, m: torch.relu(m - d)), _SECTION, subsection="Contrastive loss"),
    Mistake("squared-distance-in-hinge", "The hinge compares the margin with the distance d, not with d**2: relu(margin - d)**2.", _contrastive_variant(_pull, lambda d, m: torch.relu(m - d**2) ** 2), _SECTION, subsection="Contrastive loss"),
    Mistake("contrastive-hinge-missing", "Without relu, dissimilar pairs farther than the margin are pulled back towards it: only pairs closer than the margin should be pushed.", _contrastive_variant(_pull, lambda d, m: (m - d) ** 2), _SECTION, subsection="Contrastive loss"),
    Mistake("contrastive-factor-half-missing", "Both terms carry a factor 0.5 (Hadsell et al. 2006).", _contrastive_variant(_pull, _push, half=1.0), _SECTION),
    Mistake("contrastive-sum-not-mean", "The loss is the mean over the pairs, not the sum.", _contrastive_variant(_pull, _push, reduce="sum"), _SECTION),
)


# --- triplet_loss --------------------------------------------------------------------------------
def _triplets(g, n, d, dtype, spread=1.0):
    """Triplets whose hinge is not within 1e-3 of its kink, so eps and rounding cannot flip it."""
    a = randn(g, n, d, dtype=dtype)
    p = a + 0.5 * randn(g, n, d, dtype=dtype)
    neg = a + spread * randn(g, n, d, dtype=dtype)
    for _ in range(10):
        slack = (a - p).norm(dim=1) - (a - neg).norm(dim=1) + 1.0
        near = slack.abs() < 1e-3
        if not bool(near.any()):
            break
        neg[near] = a[near] + spread * randn(g, int(near.sum()), d, dtype=dtype)
    return a, p, neg


def _triplet_reference(g, ref):
    cases = []
    for n, d, spread, margin, dtype, grad in [
        (8, 4, 1.0, 1.0, torch.float32, False),
        (6, 8, 1.5, 0.5, torch.float64, True),
        (10, 3, 0.8, 2.0, torch.float64, True),
    ]:
        a, p, neg = _triplets(g, n, d, dtype, spread)
        cases.append(call("triplet_loss", a, p, neg, margin, grad=grad,
                          label=f"{n} triplets of dimension {d}, margin {margin}, {_dt(dtype)}"))
    a, p, neg = _triplets(g, 5, 4, torch.float64)
    p[1] = a[1]
    cases.append(call("triplet_loss", a, p, neg, 1.0, grad=True,
                      label="triplet 1 has positive == anchor (distance 0): gradients must stay finite, float64"))
    a = randn(g, 4, 5, dtype=torch.float64)
    cases.append(call("triplet_loss", a, a + 0.01, a + 10.0, 1.0, grad=True,
                      label="every negative is far beyond the margin: loss 0 and zero gradients, float64"))
    return cases


def _oracle_assess(args: tuple, atol: float):
    """Compare the student's result with F.triplet_margin_loss's, run here in the grader."""
    oracle = SimpleNamespace(triplet_loss=lambda a, p, n, margin=1.0: F.triplet_margin_loss(a, p, n, margin=margin))

    def assess(got: Any, expected: Any) -> str | None:
        value = probes.sanitize(probes.call(oracle, "triplet_loss", *copy.deepcopy(args), grad=True))
        value.pop("args_after", None)
        msg = compare(got, value, "result", None, atol)
        if msg is None:
            return None
        msg = pretty_where(msg, ["anchor", "positive", "negative", "margin"])
        return f"differs from PyTorch's F.triplet_margin_loss by more than its eps = 1e-6 explains (atol {atol:g}):\n{msg}"

    return assess


def _triplet_pytorch(g, ref):
    cases = []
    for n, d, margin, dtype in [(8, 4, 1.0, torch.float32), (6, 16, 0.5, torch.float32), (12, 8, 1.5, torch.float64)]:
        a, p, neg = _triplets(g, n, d, dtype)
        # F.triplet_margin_loss measures ||a - p + eps||: each distance moves by up to eps * sqrt(D).
        atol = 4e-6 * d**0.5 + (2e-5 if dtype == torch.float32 else 0.0)
        args = ("triplet_loss", a, p, neg, margin)
        cases.append(Case("call", args, {"grad": True}, label=f"{n} triplets of dimension {d}, margin {margin}, {_dt(dtype)}, against F.triplet_margin_loss",
                          atol=atol, assess=_oracle_assess(args[1:], atol)))
    return cases


def _triplet_variant(dist="norm", hinge=True, reduce="mean", margin_sign=1.0, swap=False):
    def build(ref):
        def triplet_loss(anchor, positive, negative, margin=1.0):
            if swap:
                positive, negative = negative, positive
            if dist == "squared":
                dp, dn = ((anchor - positive) ** 2).sum(1), ((anchor - negative) ** 2).sum(1)
            else:
                dp = torch.linalg.vector_norm(anchor - positive, dim=1)
                dn = torch.linalg.vector_norm(anchor - negative, dim=1)
            per = dp - dn + margin_sign * margin
            per = torch.relu(per) if hinge else per
            return per.mean() if reduce == "mean" else per.sum()

        return {"triplet_loss": triplet_loss}

    return build


TRIPLET_MISTAKES = (
    Mistake("triplet-squared-distances", "The distances are squared: the contract (and F.triplet_margin_loss) uses Euclidean distances ||a - p||, not ||a - p||**2.", _triplet_variant(dist="squared"), _SECTION),
    Mistake("triplet-hinge-missing", "Without relu, triplets that already satisfy the margin keep pushing (and can make the loss negative): only violations count.", _triplet_variant(hinge=False), _SECTION, subsection="Triplet loss"),
    Mistake("triplet-sum-not-mean", "The loss is the mean over the triplets, not the sum.", _triplet_variant(reduce="sum"), _SECTION),
    Mistake("triplet-margin-sign", "The margin is added: relu(d(a, p) - d(a, n) + margin) asks the negative to be at least `margin` farther than the positive.", _triplet_variant(margin_sign=-1.0), _SECTION, subsection="Triplet loss"),
    Mistake("triplet-positive-negative-swapped", "Positive and negative are swapped: the anchor should be pulled towards the positive and pushed away from the negative.", _triplet_variant(swap=True), _SECTION, subsection="Triplet loss"),
)


# --- batch_hard_triplet_loss ---------------------------------------------------------------------
def _bh_case(g, labels, d, dtype, label, scale=0.5, margin=1.0, grad=True):
    labels = torch.tensor(labels, dtype=torch.long)
    emb = randn(g, len(labels), d, dtype=dtype) * scale
    return call("batch_hard_triplet_loss", emb, labels, margin, grad=grad,
                label=f"{label}: labels {labels.tolist()}, embeddings {tuple(emb.shape)}, margin {margin}, {_dt(dtype)}")


def _bh_singleton_near_negative(g):
    """Singletons 4 and 5 each lie 0.2 from a sample of another class, well within the margin:
    counted with a hardest positive of 0 they would add relu(0 - 0.2 + 1) > 0 to the loss, and
    counted as zeros they would lower the mean; left out, they change nothing."""
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    emb = randn(g, 6, 4, dtype=torch.float64) * 0.8
    for single, near in ((4, 0), (5, 2)):
        step = randn(g, 4, dtype=torch.float64)
        emb[single] = emb[near] + 0.2 * step / step.norm()
    return call("batch_hard_triplet_loss", emb, labels, 1.0, grad=True,
                label=f"labels {labels.tolist()}: singletons 2 and 3 (rows 4 and 5) each lie 0.2 from a sample of another class, "
                      f"so they would matter if they took part; embeddings {[[round(v, 3) for v in row] for row in emb.tolist()]}, margin 1.0, float64")


def _bh_values(g, ref):
    return [
        _bh_singleton_near_negative(g),
        _bh_case(g, [0, 1, 0, 2, 1, 2, 0, 1], 4, torch.float32, "3 classes, every anchor qualifies", grad=False),
        _bh_case(g, [0, 0, 1, 1, 2, 2, 3, 3], 6, torch.float64, "4 classes of 2", margin=0.8),
        _bh_case(g, [2, 0, 1, 0, 3, 1, 0], 5, torch.float64, "singletons 2 and 3: anchors without positives are left out"),
        _bh_case(g, [5, 5, 5, 7, 9], 3, torch.float64, "one class of 3 and two singletons", scale=0.4, margin=2.0),
        _bh_case(g, [1, 0, 0, 1, 1, 0, 2, 2, 2, 3], 8, torch.float32, "uneven classes and a singleton", margin=1.5),
        _bh_separated(g),
    ]


def _bh_separated(g):
    """Three tight clusters 4 apart, one sample of class 2 moved next to class 0: most anchors
    already satisfy the margin (their term is 0 after the hinge), a few do not."""
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    centres = torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]], dtype=torch.float64)
    emb = centres[labels] + 0.3 * randn(g, 8, 3, dtype=torch.float64)
    emb[7] = centres[0] + torch.tensor([0.0, 0.0, 1.2], dtype=torch.float64)
    return call("batch_hard_triplet_loss", emb, labels, 1.0, grad=True,
                label=f"labels {labels.tolist()} in three tight clusters 4 apart, sample 7 (class 2) moved next to class 0: most anchors "
                      f"already satisfy the margin, a few do not; embeddings {[[round(v, 3) for v in row] for row in emb.tolist()]}, margin 1.0, float64")


def _bh_edges(g, ref):
    return [
        _bh_case(g, [3, 3, 3, 3], 4, torch.float64, "a single class: no negatives, no anchor qualifies, the loss is 0", grad=False),
        _bh_case(g, [0, 1, 2, 3, 4], 4, torch.float64, "all singletons: no positives, the loss is 0", grad=False),
        _bh_case(g, [0, 0, 1], 4, torch.float32, "only anchors 0 and 1 qualify (the singleton has no positive)", scale=0.3),
        _bh_case(g, [4, 4, 4, 4], 3, torch.float32, "a single class, float32: the loss is 0", grad=False),
        _bh_case(g, [1, 2, 1], 6, torch.float64, "two anchors of class 1 share one negative", scale=0.3, margin=2.0),
    ]


def _bh_variant(pos="max", neg="min", squared=False, self_positive=False, all_anchors=False, hinge=True):
    def build(ref):
        def batch_hard_triplet_loss(embeddings, labels, margin=1.0):
            n = embeddings.shape[0]
            dist = ref.pairwise_distances(embeddings, embeddings, squared=squared)
            same = labels[:, None] == labels[None, :]
            eye = torch.eye(n, dtype=torch.bool)
            pos_mask = same if self_positive else same & ~eye
            neg_mask = ~same
            valid = pos_mask.any(1) & neg_mask.any(1)
            if not bool(valid.any()):
                return embeddings.sum() * 0.0
            big = torch.tensor(float("inf"), dtype=dist.dtype)
            hp = torch.where(pos_mask, dist, -big).amax(1) if pos == "max" else torch.where(pos_mask, dist, big).amin(1)
            hn = torch.where(neg_mask, dist, big).amin(1) if neg == "min" else torch.where(neg_mask, dist, -big).amax(1)
            per = hp - hn + margin
            per = torch.relu(per) if hinge else per
            if all_anchors:
                return torch.where(valid, per, torch.zeros_like(per)).mean()
            return per[valid].mean()

        return {"batch_hard_triplet_loss": batch_hard_triplet_loss}

    return build


BH_MISTAKES = (
    Mistake("easiest-negative", "The farthest negative was taken: batch-hard mining uses the *closest* negative (the hardest one), min over the negatives.", _bh_variant(neg="max"), _SECTION, subsection="Triplet loss"),
    Mistake("easiest-positive", "The closest positive was taken: batch-hard mining uses the *farthest* positive (the hardest one), max over the positives.", _bh_variant(pos="min"), _SECTION, subsection="Triplet loss"),
    Mistake("batch-hard-squared-distances", "Squared distances were used: the batch-hard loss here uses Euclidean distances.", _bh_variant(squared=True), _SECTION),
    Mistake("anchor-is-its-own-positive", "Anchors without a positive (singletons) took part with a hardest-positive distance of 0, adding relu(margin - hardest_neg): either the anchor counted as its own positive (the diagonal is not excluded), or the positive distances were masked with zeros (mask * dist) before the max, so a singleton's max is 0. Leave such anchors out of the loss and of the mean.", _bh_variant(self_positive=True), _SECTION, subsection="Triplet loss"),
    Mistake("mean-over-all-anchors", "Anchors without a positive or a negative were averaged in as zeros, which lowers the loss: the mean is over the anchors that qualify only.", _bh_variant(all_anchors=True), _SECTION, subsection="Triplet loss"),
    Mistake("batch-hard-hinge-missing", "Without relu, anchors that already satisfy the margin lower the loss: apply relu(hardest_pos - hardest_neg + margin).", _bh_variant(hinge=False), _SECTION),
)


# --- SiameseNet ----------------------------------------------------------------------------------
def _embedding(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    """The embedding network the SiameseNet checks wrap (the same on both sides)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def probe_siamese(mod: Any, dims: tuple[int, int, int], state: dict, x1: torch.Tensor, x2: torch.Tensor,
                  device: str = "cpu", seed: int = 0) -> dict:
    """Wrap a known embedding in `mod.SiameseNet`; return the outputs, the parameter counts and the
    gradients that each input sends to the embedding's own parameter tensors."""
    emb = _embedding(*dims).to(state["0.weight"].dtype)
    emb.load_state_dict(state)
    emb = emb.to(device)
    net = mod.SiameseNet(emb).to(device)
    out = net(x1.to(device), x2.to(device))
    result: dict[str, Any] = {"out": out, "parameters_in_siamese_net": sum(p.numel() for p in net.parameters()),
                              "parameters_in_embedding": sum(p.numel() for p in emb.parameters()),
                              "grads_on_embedding_parameters": None}
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return result
    o1, o2 = out
    gen = torch.Generator().manual_seed(seed)
    own = list(emb.parameters())
    grads = {}
    for name, o in (("from_x1", o1), ("from_x2", o2)):
        if isinstance(o, torch.Tensor) and o.requires_grad:
            r = torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device)
            gs = torch.autograd.grad((o * r).sum(), own, allow_unused=True, retain_graph=True)
        else:
            gs = [None] * len(own)
        grads[name] = dict(zip([n for n, _ in emb.named_parameters()], gs))
    result["out"] = (o1, o2)
    result["grads_on_embedding_parameters"] = grads
    return result


def _siamese(g, ref):
    cases = []
    for dims, n1, n2, dtype in [((6, 8, 3), 4, 4, torch.float32), ((10, 16, 4), 3, 5, torch.float32),
                                ((4, 5, 2), 1, 2, torch.float64), ((8, 12, 6), 6, 2, torch.float64)]:
        emb = _embedding(*dims).to(dtype)
        state = {k: v.detach().clone() for k, v in emb.state_dict().items()}
        x1, x2 = randn(g, n1, dims[0], dtype=dtype), randn(g, n2, dims[0], dtype=dtype)
        cases.append(Case("grader.checks.metric:probe_siamese", (dims, state, x1, x2), {},
                          label=f"embedding Linear({dims[0]}, {dims[1]}) -> ReLU -> Linear({dims[1]}, {dims[2]}), x1 {tuple(x1.shape)}, x2 {tuple(x2.shape)}, {_dt(dtype)}"))
    return cases


def _siamese_two_networks(ref):
    class SiameseNet(nn.Module):
        def __init__(self, embedding):
            super().__init__()
            self.embedding = embedding
            self.embedding2 = copy.deepcopy(embedding)

        def forward(self, x1, x2):
            return self.embedding(x1), self.embedding2(x2)

    return {"SiameseNet": SiameseNet}


def _siamese_forward_variant(forward):
    def build(ref):
        class SiameseNet(ref.SiameseNet):
            pass

        SiameseNet.forward = forward
        return {"SiameseNet": SiameseNet}

    return build


def _second_no_grad(self, x1, x2):
    with torch.no_grad():
        e2 = self.embedding(x2)
    return self.embedding(x1), e2


SIAMESE_MISTAKES = (
    Mistake("two-embedding-networks", "There are two embedding networks (e.g. a deep copy): a Siamese net runs ONE set of weights on both inputs, so its parameter count equals the embedding's and both inputs' gradients land on the same tensors.", _siamese_two_networks, _SECTION, subsection="Siamese networks"),
    Mistake("second-branch-without-gradient", "The second input is embedded without gradient (torch.no_grad or detach): both branches train the shared weights.", _siamese_forward_variant(_second_no_grad), _SECTION, subsection="Siamese networks"),
    Mistake("first-input-embedded-twice", "The first input is embedded twice: return (embedding(x1), embedding(x2)).", _siamese_forward_variant(lambda self, x1, x2: (self.embedding(x1), self.embedding(x1))), _SECTION, subsection="Siamese networks"),
    Mistake("siamese-outputs-detached", "The embeddings are detached: no gradient reaches the shared weights, so nothing can be trained.", _siamese_forward_variant(lambda self, x1, x2: (self.embedding(x1).detach(), self.embedding(x2).detach())), _SECTION),
)


# --- verify --------------------------------------------------------------------------------------
def _verify_random(g, ref):
    """Random galleries with a "twin" near each of their first rows: a second row, 0.5 away,
    with another label, added at the end. Some queries lie near a twin, so that two gallery rows
    are within the threshold and the nearest is not the first of them."""
    cases = []
    for gsize, qsize, d, dtype in [(6, 8, 4, torch.float32), (10, 5, 8, torch.float64), (4, 6, 3, torch.float32), (1, 3, 5, torch.float64)]:
        base = randn(g, gsize, d, dtype=dtype) * 3.0
        twins = min(gsize, 2)
        step = randn(g, twins, d, dtype=dtype)
        gallery = torch.cat([base, base[:twins] + 0.5 * step / step.norm(dim=1, keepdim=True)])  # (G + twins, D)
        base_labels = torch.randint(0, 4, (gsize,), generator=g) + 10  # labels differ from indices
        labels = torch.cat([base_labels, base_labels[:twins] + 5])  # a twin never shares its row's label
        pick = torch.randint(0, gallery.shape[0], (qsize,), generator=g)
        pick[: min(qsize, twins)] = torch.arange(gsize, gsize + twins)[: min(qsize, twins)]  # near a twin
        known = torch.rand(qsize, generator=g) < 0.6
        known[: min(qsize, twins)] = True
        query = torch.where(known[:, None], gallery[pick] + 0.1 * randn(g, qsize, d, dtype=dtype) / d**0.5,
                            randn(g, qsize, d, dtype=dtype) * 3.0 + 20.0)
        cases.append(call("verify", query, gallery, labels, 1.0,
                          label=f"gallery {tuple(gallery.shape)} with labels {labels.tolist()}, where the last {twins} rows are 0.5 from the first "
                                f"{twins}; {qsize} queries ({int(known.sum())} near a gallery entry, the first {min(qsize, twins)} near those last rows, "
                                f"so two rows are within the threshold and the nearest is not the first; the others far away), threshold 1.0, {_dt(dtype)}"))
    return cases


def _verify_edges(g, ref):
    shift = torch.randint(-3, 4, (2,), generator=g).to(torch.float32)
    gallery = torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [-6.0, 0.0], [6.0, 0.0]]) + shift
    labels = torch.tensor([7, 3, 5, 2, 9])
    query = torch.tensor([[0.0, 0.0], [6.0, 8.0], [3.0, 4.0], [0.0, 10.0], [-6.0, 0.5], [0.0, -3.0]]) + shift
    tie_gallery = torch.tensor([[-6.0, 0.0], [6.0, 0.0], [0.0, 20.0]]) + shift
    tie_labels = torch.tensor([4, 8, 1])
    tie_query = torch.tensor([[0.0, 5.0], [0.0, -5.0], [0.0, 31.0]]) + shift
    where = f"gallery {gallery.tolist()}, labels {labels.tolist()}, queries {query.tolist()}"
    return [
        call("verify", query, gallery, labels, 5.0,
             label=f"integer points (exact distances); query 1 is exactly at the threshold 5.0 (known); gallery rows 1 and 2 are equal (labels 3, 5): the lower index wins; "
                   f"query 2 lies on rows 1 and 2 and exactly 5.0 from row 0: the nearest row counts, not the first within the threshold; {where}"),
        call("verify", query, gallery, labels, 0.0, label=f"threshold 0: only exact matches are known; {where}"),
        call("verify", tie_query, tie_gallery, tie_labels, 8.0,
             label=f"queries 0 and 1 are equidistant (sqrt(61)) from gallery rows 0 and 1: the lower index wins; gallery {tie_gallery.tolist()}, labels {tie_labels.tolist()}, queries {tie_query.tolist()}, threshold 8.0"),
        call("verify", query.double(), gallery.double(), labels, 4.999,
             label=f"float64, threshold 4.999 just below the distance 5 of query 1; {where}"),
        call("verify", torch.zeros(0, 2), gallery, labels, 1.0, label="no queries: an empty LongTensor"),
    ]


def _verify_variant(strict=False, index=False, last=False, squared=False, unknown=-1, first_within=False):
    def build(ref):
        def verify(query, gallery, gallery_labels, threshold):
            dist = ref.pairwise_distances(query, gallery, squared=squared)
            if first_within:  # the lowest index within the threshold, nearest or not
                within = dist <= threshold
                first = within.to(torch.int64).argmax(1)
                out = gallery_labels.long()[first]
                return torch.where(within.any(1), out, torch.full_like(out, unknown))
            if last:
                flipped = dist.flip(1).argmin(1)
                nearest = dist.shape[1] - 1 - flipped
            else:
                nearest = dist.argmin(1)
            nd = dist.gather(1, nearest[:, None]).squeeze(1)
            out = nearest if index else gallery_labels.long()[nearest]
            ok = nd < threshold if strict else nd <= threshold
            return torch.where(ok, out, torch.full_like(out, unknown))

        return {"verify": verify}

    return build


VERIFY_MISTAKES = (
    Mistake("threshold-strict", "A distance equal to the threshold is accepted: use <=, not <.", _verify_variant(strict=True), _SECTION, subsection="Verification and identification"),
    Mistake("index-instead-of-label", "This returns the index of the nearest gallery embedding: return its label, gallery_labels[index].", _verify_variant(index=True), _SECTION, subsection="Verification and identification"),
    Mistake("ties-to-higher-index", "Among equally near gallery embeddings the lower index must win (argmin returns the first minimum).", _verify_variant(last=True), _SECTION),
    Mistake("first-gallery-row-within-threshold", "The first gallery row within the threshold was taken, not the nearest: when several rows are within the threshold, the label is that of the nearest (argmin of the distances); only then is its distance compared with the threshold.", _verify_variant(first_within=True), _SECTION, subsection="Verification and identification"),
    Mistake("squared-distance-vs-threshold", "The threshold is a Euclidean distance: compare it with ||q - g||, not with its square.", _verify_variant(squared=True), _SECTION),
    Mistake("unknown-not-minus-one", "An unknown query is labelled -1.", _verify_variant(unknown=0), _SECTION, subsection="Verification and identification"),
)


CHECKS = [
    Check("pairwise_distances_values", "pairwise_distances", 3, _pd_values, PD_MISTAKES,
          "Euclidean and squared distances against the reference, float32 and float64, gradients", Picture("values")),
    Check("pairwise_distances_coincident_rows", "pairwise_distances", 2, _pd_coincident, PD_MISTAKES,
          "rows that coincide: distance 0, never negative or NaN, finite (zero) gradients", Picture("values")),
    Check("contrastive_loss_values", "contrastive_loss", 2, _contrastive_values, CONTRASTIVE_MISTAKES,
          "the Hadsell et al. loss with same = 1 for similar pairs, margins and label dtypes", Picture("values")),
    Check("contrastive_loss_gradients", "contrastive_loss", 2, _contrastive_gradients, CONTRASTIVE_MISTAKES,
          "gradients, identical similar pairs (d = 0), pairs beyond the margin", Picture("values")),
    Check("triplet_loss_reference", "triplet_loss", 2, _triplet_reference, TRIPLET_MISTAKES,
          "against the reference, gradients included, positive == anchor, satisfied triplets", Picture("values")),
    Check("triplet_loss_vs_pytorch", "triplet_loss", 2, _triplet_pytorch, TRIPLET_MISTAKES,
          "against F.triplet_margin_loss within the difference its eps makes", Picture("values")),
    Check("batch_hard_values", "batch_hard_triplet_loss", 3, _bh_values, BH_MISTAKES,
          "hardest positive and hardest negative per anchor, singletons left out, gradients", Picture("values")),
    Check("batch_hard_edge_cases", "batch_hard_triplet_loss", 2, _bh_edges, BH_MISTAKES,
          "a single class, all singletons, a single qualifying class", Picture("values")),
    Check("siamese_shared_weights", "SiameseNet", 4, _siamese, SIAMESE_MISTAKES,
          "outputs, parameter count equal to the embedding's, both inputs' gradients on the same tensors", Picture("values")),
    Check("verify_nearest_or_unknown", "verify", 2, _verify_random, VERIFY_MISTAKES,
          "the nearest gallery label or -1 beyond the threshold", Picture("values")),
    Check("verify_ties_and_thresholds", "verify", 2, _verify_edges, VERIFY_MISTAKES,
          "a distance equal to the threshold, ties to the lower index, threshold 0, no queries", Picture("values")),
]
