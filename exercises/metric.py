"""Metric learning: distances, contrastive and triplet losses, Siamese networks (notes: MetricLearning).

Instead of a classifier with one output per class, metric learning trains an *embedding*: a
network that maps an image to a vector so that images of the same identity land close together
and different identities far apart. A new class then needs no retraining: embed a few of its
images into a gallery and compare distances (FaceID works this way). A *Siamese network* runs the
same embedding, one set of weights, on the two images of a pair. The contrastive loss (Hadsell et
al. 2006) pulls similar pairs together and pushes dissimilar ones at least `margin` apart; the
triplet loss asks that an anchor be closer to its positive than to its negative by `margin`; the
batch-hard variant (Hermans et al. 2017) mines, for every anchor, the hardest positive and the
hardest negative of the batch. At inference, `verify` labels a query with its nearest gallery
identity, or as unknown when even the nearest one is too far.

Why each part matters: `pairwise_distances` is the building block of everything else and must stay
finite (and differentiable) when two embeddings coincide, which training makes happen;
the losses are the training signal; `SiameseNet` is the weight sharing; `verify` is deployment.

The built-in distance and metric losses (`torch.cdist`, `F.pairwise_distance`,
`F.triplet_margin_loss`, ...) are forbidden here; `torch.linalg.vector_norm` is allowed.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _check_2d(name: str, t: torch.Tensor) -> None:
    """Raise `ValueError` unless `t` is a 2-D tensor of embeddings `(N, D)`."""
    if not isinstance(t, torch.Tensor) or t.dim() != 2:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a 2-D tensor (N, D) of embeddings, got {shape}")


def pairwise_distances(a: torch.Tensor, b: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Euclidean distance between every row of `a` and every row of `b`.

    The result is never negative or NaN, and its gradient is finite also where two rows coincide
    (the gradient of a zero distance is taken as 0, as `torch.linalg.vector_norm` does).

    Args:
        a (Tensor[N, D]): embeddings.
        b (Tensor[M, D]): embeddings of the same dimension D.
        squared (bool): return squared distances instead.

    Returns:
        Tensor[N, M]: `out[i, j] = ||a[i] - b[j]||` (squared if asked).
    """
    # TODO: your code here
    raise NotImplementedError("pairwise_distances")


def contrastive_loss(x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The contrastive loss of Hadsell et al. (2006) on a batch of pairs.

    With `d = ||x1 - x2||`: `mean(0.5 * same * d**2 + 0.5 * (1 - same) * relu(margin - d)**2)`.
    Similar pairs (`same = 1`) are pulled together; dissimilar pairs (`same = 0`) are pushed apart
    until they are `margin` away, and no further.

    Args:
        x1 (Tensor[N, D]), x2 (Tensor[N, D]): the two embeddings of each pair.
        same (Tensor[N]): 1 for a similar pair, 0 for a dissimilar one (any numeric dtype).
        margin (float): how far apart dissimilar pairs must be.

    Returns:
        Tensor[]: the scalar loss, in the dtype of `x1`.
    """
    # TODO: your code here
    raise NotImplementedError("contrastive_loss")


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """The triplet loss: `mean(relu(||a - p|| - ||a - n|| + margin))`, Euclidean, not squared.

    Like `F.triplet_margin_loss(anchor, positive, negative, margin)`, except that PyTorch adds
    `eps = 1e-6` to the differences before taking the norm.

    Args:
        anchor, positive, negative (Tensor[N, D]): the embeddings of each triplet.
        margin (float): how much closer the positive must be than the negative.

    Returns:
        Tensor[]: the scalar loss.
    """
    # TODO: your code here
    raise NotImplementedError("triplet_loss")


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017), Euclidean distances.

    For every anchor with at least one positive (another sample of its label) and at least one
    negative: the largest anchor-positive distance and the smallest anchor-negative distance in
    the batch; the loss is the mean over those anchors of `relu(hardest_pos - hardest_neg + margin)`.
    An anchor is never its own positive.

    Args:
        embeddings (Tensor[N, D]): the batch's embeddings.
        labels (Tensor[N]): integer identity of each sample.
        margin (float): the triplet margin.

    Returns:
        Tensor[]: the scalar loss; 0 (in the embeddings' dtype) when no anchor qualifies.
    """
    # TODO: your code here
    raise NotImplementedError("batch_hard_triplet_loss")


class SiameseNet(nn.Module):
    """Two inputs through one embedding network: the same weights for both.

    Args:
        embedding (nn.Module): the embedding network, kept as the attribute `embedding`.
    """

    def __init__(self, embedding: nn.Module) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding(x1), embedding(x2)); gradients from both land on the same parameters."""
        # TODO: your code here
        raise NotImplementedError("forward")


def verify(query: torch.Tensor, gallery: torch.Tensor, gallery_labels: torch.Tensor, threshold: float) -> torch.Tensor:
    """Open-set identification: the label of the nearest gallery embedding, or -1 (unknown).

    Args:
        query (Tensor[Q, D]): embeddings to identify.
        gallery (Tensor[G, D]): embeddings of known identities (G >= 1).
        gallery_labels (Tensor[G]): integer label of each gallery embedding.
        threshold (float): a query whose nearest gallery embedding is farther than this
            (Euclidean distance) is unknown; a distance equal to the threshold is accepted.

    Returns:
        LongTensor[Q]: labels, -1 for unknown. Ties go to the lower gallery index.
    """
    # TODO: your code here
    raise NotImplementedError("verify")
