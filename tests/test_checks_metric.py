"""The `metric` checks catch wrong distances, losses, weight sharing and verification, and name the known mistakes.

Independent parts are broken together in one variant where that keeps the file fast: every check
reports its own part, so each assertion still concerns one mistake.
"""

from __future__ import annotations

import pytest
import torch

from conftest import mistakes, statuses, variant
from grader.checks.metric import CHECKS
from mistake_matching import assert_named, check_named, indistinguishable

_SQ = "    if squared:\n        return (diff * diff).sum(dim=-1)  # (N, M)\n"
_NORM = "    return torch.linalg.vector_norm(diff, dim=-1)  # (N, M)\n"
_PULL = "    pull = same * d**2\n"
_PUSH = "    push = (1 - same) * torch.relu(margin - d) ** 2\n"
_CRET = "    return (0.5 * pull + 0.5 * push).mean()\n"
_TRET = "    return torch.relu(d_pos - d_neg + margin).mean()\n"
_HP = "    hardest_pos = torch.where(pos_mask, dist, -inf).amax(dim=1)  # (N,)\n"
_HN = "    hardest_neg = torch.where(neg_mask, dist, inf).amin(dim=1)  # (N,)\n"
_POSMASK = "    pos_mask = same & not_self\n"
_BHRET = "    return losses[valid].mean()\n"
_SIAM_INIT = "        self.embedding = embedding\n"
_SIAM_FWD = "        return self.embedding(x1), self.embedding(x2)\n"
_VER_OK = "    return torch.where(nearest_dist <= threshold, labels, unknown)\n"
_VER_LABELS = "    labels = gallery_labels.to(torch.long)[nearest]  # (Q,)\n"

PD_CHECKS = ("pairwise_distances_values", "pairwise_distances_coincident_rows")


@pytest.mark.parametrize("edits, failing, mistake", [
    ([(_SQ, ""), (_NORM, "    return (diff * diff).sum(dim=-1)\n")], PD_CHECKS, "square-root-missing"),
    ([(_SQ, "    if squared:\n        return diff.abs().sum(dim=-1) ** 2\n"), (_NORM, "    return diff.abs().sum(dim=-1)\n")],
     PD_CHECKS, "manhattan-distance"),
    ([(_NORM, "    return (diff * diff).sum(dim=-1).sqrt()\n")], ("pairwise_distances_coincident_rows",), "sqrt-gradient-at-zero"),
])
def test_wrong_pairwise_distances_is_named(grade, edits, failing, mistake):
    result = grade("metric", source=variant("metric", *edits))
    st = statuses(result)
    for name in failing:
        assert st[name] == "failed", name
    assert st["contrastive_loss_values"] == "passed"
    assert mistake in mistakes(result)
    if mistake == "sqrt-gradient-at-zero":
        assert st["pairwise_distances_values"] == "passed"  # right wherever rows differ
        check = next(c for c in result["checks"] if c["name"] == "pairwise_distances_coincident_rows")
        assert "NaN" in check["message"] and "gradient" in check["message"]
        # batch-hard mining measures each anchor against itself: the NaN reaches it too
        assert st["batch_hard_values"] == "failed"


def test_expansion_formula_with_clamp_and_masked_sqrt_passes(grade):
    """|a|^2 + |b|^2 - 2ab, clamped and with a guarded square root, is an accepted way."""
    expansion = (
        "    sq = ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)  # (N, M)\n"
        "    if squared:\n        return sq\n"
        "    pos = sq > 0\n"
        "    return torch.where(pos, sq.clamp_min(torch.finfo(sq.dtype).tiny).sqrt(), torch.zeros_like(sq))\n"
    )
    src = variant("metric", ("    diff = a[:, None, :] - b[None, :, :]  # (N, M, D)\n", ""), (_SQ, ""), (_NORM, expansion))
    result = grade("metric", source=src)
    assert result["score"] == result["max_score"], statuses(result)


def test_expansion_formula_without_clamp_fails(grade):
    src = variant("metric", ("    diff = a[:, None, :] - b[None, :, :]  # (N, M, D)\n", ""), (_SQ, ""),
                  (_NORM, "    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T\n"
                          "    return sq if squared else sq.sqrt()\n"))
    result = grade("metric", source=src)
    assert statuses(result)["pairwise_distances_coincident_rows"] == "failed"
    assert mistakes(result) & {"expansion-not-clamped", "sqrt-gradient-at-zero"}


def test_first_batch_of_mistakes_is_named(grade):
    src = variant(
        "metric",
        (_SQ, ""),
        (_PULL, "    pull = (1 - same) * d**2\n"), (_PUSH, "    push = same * torch.relu(margin - d) ** 2\n"),
        (_TRET, "    return torch.relu(d_pos**2 - d_neg**2 + margin).mean()\n"),
        (_SIAM_INIT, "        self.embedding = embedding\n        self.embedding2 = copy.deepcopy(embedding)\n"),
        ("import torch\n", "import copy\n\nimport torch\n"),
        (_SIAM_FWD, "        return self.embedding(x1), self.embedding2(x2)\n"),
        (_VER_OK, "    return torch.where(nearest_dist < threshold, labels, unknown)\n"),
    )
    result = grade("metric", source=src)
    st = statuses(result)
    for name in ("pairwise_distances_values", "contrastive_loss_values", "contrastive_loss_gradients", "triplet_loss_reference",
                 "triplet_loss_vs_pytorch", "siamese_shared_weights", "verify_ties_and_thresholds"):
        assert st[name] == "failed", name
    assert st["verify_nearest_or_unknown"] == "passed"  # no distance equals the threshold there
    assert st["batch_hard_values"] == "passed" and st["pairwise_distances_coincident_rows"] == "failed"
    assert {"squared-flag-ignored", "contrastive-labels-flipped", "triplet-squared-distances", "two-embedding-networks",
            "threshold-strict"} <= mistakes(result)
    siamese = next(c for c in result["checks"] if c["name"] == "siamese_shared_weights")
    assert "parameters_in_siamese_net" in siamese["message"]
    pytorch = next(c for c in result["checks"] if c["name"] == "triplet_loss_vs_pytorch")
    assert "F.triplet_margin_loss" in pytorch["message"]


def test_second_batch_of_mistakes_is_named(grade):
    src = variant(
        "metric",
        (_PUSH, "    push = (1 - same) * torch.relu(margin - d)\n"),
        (_TRET, "    return (d_pos - d_neg + margin).mean()\n"),
        (_HN, "    hardest_neg = torch.where(neg_mask, dist, -inf).amax(dim=1)  # (N,)\n"),
        (_SIAM_FWD, "        with torch.no_grad():\n            e2 = self.embedding(x2)\n        return self.embedding(x1), e2\n"),
        (_VER_OK, "    return torch.where(nearest_dist <= threshold, nearest, unknown)\n"),
    )
    result = grade("metric", source=src)
    st = statuses(result)
    assert st["batch_hard_values"] == "failed" and st["verify_nearest_or_unknown"] == "failed"
    assert {"hinge-not-squared", "triplet-hinge-missing", "easiest-negative", "second-branch-without-gradient",
            "index-instead-of-label"} <= mistakes(result)


def test_third_batch_of_mistakes_is_named(grade):
    src = variant(
        "metric",
        (_CRET, "    return (0.5 * pull + 0.5 * push).sum()\n"),
        (_TRET, "    return torch.relu(d_pos - d_neg + margin).sum()\n"),
        (_POSMASK, "    pos_mask = same\n"),
        (_SIAM_FWD, "        return self.embedding(x1), self.embedding(x1)\n"),
        ("    nearest = dist.argmin(dim=1)  # (Q,): argmin returns the first index among ties\n",
         "    nearest = dist.shape[1] - 1 - dist.flip(1).argmin(dim=1)  # (Q,)\n"),
    )
    result = grade("metric", source=src)
    st = statuses(result)
    assert st["batch_hard_values"] == "failed" and st["verify_ties_and_thresholds"] == "failed"
    assert st["verify_nearest_or_unknown"] == "passed"  # no ties there
    assert {"contrastive-sum-not-mean", "triplet-sum-not-mean", "anchor-is-its-own-positive",
            "first-input-embedded-twice", "ties-to-higher-index"} <= mistakes(result)


def test_fourth_batch_of_mistakes_is_named(grade):
    src = variant(
        "metric",
        (_PUSH, "    push = (1 - same) * torch.relu(margin - d**2) ** 2\n"),
        (_TRET, "    return torch.relu(d_pos - d_neg - margin).mean()\n"),
        (_BHRET, "    return torch.where(valid, losses, torch.zeros_like(losses)).mean()\n"),
        (_SIAM_FWD, "        return self.embedding(x1).detach(), self.embedding(x2).detach()\n"),
        (_VER_OK, "    return torch.where(nearest_dist <= threshold, labels, torch.zeros_like(labels))\n"),
    )
    result = grade("metric", source=src)
    assert statuses(result)["batch_hard_values"] == "failed"
    assert {"squared-distance-in-hinge", "triplet-margin-sign", "mean-over-all-anchors", "siamese-outputs-detached",
            "unknown-not-minus-one"} <= mistakes(result)


def test_fifth_batch_of_mistakes_is_named(grade):
    src = variant(
        "metric",
        (_PUSH, "    push = (1 - same) * (margin - d) ** 2\n"),
        ("    d_pos = torch.linalg.vector_norm(anchor - positive, dim=1)  # (N,)\n",
         "    d_pos = torch.linalg.vector_norm(anchor - negative, dim=1)  # (N,)\n"),
        ("    d_neg = torch.linalg.vector_norm(anchor - negative, dim=1)  # (N,)\n",
         "    d_neg = torch.linalg.vector_norm(anchor - positive, dim=1)  # (N,)\n"),
        (_HP, "    hardest_pos = torch.where(pos_mask, dist, inf).amin(dim=1)  # (N,)\n"),
        ("    dist = pairwise_distances(query, gallery)  # (Q, G)\n",
         "    dist = pairwise_distances(query, gallery, squared=True)  # (Q, G)\n"),
    )
    result = grade("metric", source=src)
    assert statuses(result)["verify_ties_and_thresholds"] == "failed"
    assert {"contrastive-hinge-missing", "triplet-positive-negative-swapped", "easiest-positive",
            "squared-distance-vs-threshold"} <= mistakes(result)


def test_forbidden_builtins_are_reported(grade):
    src = variant("metric", ("    if squared:\n        return (diff * diff).sum(dim=-1)  # (N, M)\n    return torch.linalg.vector_norm(diff, dim=-1)  # (N, M)\n",
                             "    d = torch.cdist(a, b)\n    return d * d if squared else d\n"),
                  ("import torch.nn as nn\n", "import torch.nn as nn\nimport torch.nn.functional as F\n"),
                  (_TRET, "    return F.triplet_margin_loss(anchor, positive, negative, margin=margin)\n"),
                  (_CRET, "    return (pull + push).mean()\n"))
    result = grade("metric", source=src)
    st = statuses(result)
    assert st["contrastive_loss_values"] == "failed"
    assert "contrastive-factor-half-missing" in mistakes(result)
    assert st["pairwise_distances_values"] == "forbidden"
    assert st["triplet_loss_reference"] == "forbidden"
    assert any("cdist" in n for n in result["notices"])
    assert any("triplet_margin_loss" in n for n in result["notices"])


def test_reference_triplet_loss_matches_pytorch_within_eps():
    from grader.engine.oracles import load_reference

    ref = load_reference("metric")
    g = torch.Generator().manual_seed(3)
    a, p, n = (torch.randn(16, 8, generator=g, dtype=torch.float64) for _ in range(3))
    ours = ref.triplet_loss(a, p, n, 0.7)
    theirs = torch.nn.functional.triplet_margin_loss(a, p, n, margin=0.7)
    assert abs(float(ours - theirs)) < 2 * 1e-6 * 8**0.5
    assert float(ours - theirs) != 0.0  # the eps is real: an exact comparison would be wrong


# --- every mistake is told apart from the others, on the cases of each check ----------------------
@pytest.mark.parametrize("check", [c.name for c in CHECKS if c.mistakes])
def test_mistakes_of_each_check_are_told_apart(check):
    assert indistinguishable("metric", check_named("metric", check)) == {}


_VERIFY_BODY = variant("metric")[variant("metric").index("    dist = pairwise_distances(query, gallery)  # (Q, G)\n"):]

# "Take the first gallery row within the threshold", as a loop over the gallery would.
_FIRST_MATCH = '''    out = []
    for q in query:
        label = -1
        for g, lab in zip(gallery, gallery_labels):
            if float(torch.linalg.vector_norm(q - g)) <= threshold:
                label = int(lab)
                break
        out.append(label)
    return torch.tensor(out, dtype=torch.long)
'''


def test_first_gallery_row_within_the_threshold_is_named_not_called_a_tie(grade, tmp_path):
    src = variant("metric", (_VERIFY_BODY, _FIRST_MATCH))
    result = grade("metric", source=src)
    for check in ("verify_nearest_or_unknown", "verify_ties_and_thresholds"):
        assert_named(result, "metric", src, tmp_path, check, "first-gallery-row-within-threshold")
    assert "ties-to-higher-index" not in mistakes(result)


# Batch-hard as Olivier Moindrot's TensorFlow tutorial writes it: positives masked with zeros
# before the max (a singleton's hardest positive is 0), negatives pushed up by the row's max
# before the min, and the mean over every anchor.
_BH_BODY = variant("metric")[variant("metric").index("    n = embeddings.shape[0]\n    dist = pairwise_distances(embeddings, embeddings)"):
                             variant("metric").index("class SiameseNet")]
_MOINDROT = '''    dist = pairwise_distances(embeddings, embeddings)  # (N, N)
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(labels.shape[0], dtype=torch.bool, device=embeddings.device)
    pos_mask = (same & not_self).to(dist.dtype)
    hardest_pos = (pos_mask * dist).max(dim=1).values
    neg_mask = (~same).to(dist.dtype)
    row_max = dist.max(dim=1, keepdim=True).values
    hardest_neg = (dist + row_max * (1.0 - neg_mask)).min(dim=1).values
    return torch.relu(hardest_pos - hardest_neg + margin).mean()


'''


def test_batch_hard_with_zero_masked_positives_is_explained_by_the_mask_too(grade, tmp_path):
    src = variant("metric", (_BH_BODY, _MOINDROT))
    result = grade("metric", source=src)
    assert_named(result, "metric", src, tmp_path, "batch_hard_values", "anchor-is-its-own-positive")
    explanation = next(c for c in result["checks"] if c["name"] == "batch_hard_values")["mistake"]["explanation"]
    assert "mask" in explanation and "diagonal" in explanation


@pytest.mark.parametrize("edit, mistake", [
    # anchors without a positive kept as zeros in the mean: named as such, not as "own positive"
    ((_BHRET, "    return torch.where(valid, losses, torch.zeros_like(losses)).mean()\n"), "mean-over-all-anchors"),
    (("    losses = torch.relu(hardest_pos - hardest_neg + margin)  # (N,)\n",
      "    losses = hardest_pos - hardest_neg + margin  # (N,)\n"), "batch-hard-hinge-missing"),
    (("    dist = pairwise_distances(embeddings, embeddings)  # (N, N)\n",
      "    dist = pairwise_distances(embeddings, embeddings, squared=True)  # (N, N)\n"), "batch-hard-squared-distances"),
])
def test_wrong_batch_hard_losses_are_named(grade, tmp_path, edit, mistake):
    src = variant("metric", edit)
    assert_named(grade("metric", source=src), "metric", src, tmp_path, "batch_hard_values", mistake)
