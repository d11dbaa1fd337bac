"""Global average pooling and class activation maps (notes: GlobalAvgPooling).

Global average pooling (GAP) reduces every feature map to its mean over all positions:
`(N, C, H, W) -> (N, C)`. Like any pooling it works on each channel *independently*, so the depth
is kept and height and width disappear. (The notes say GAP "outputs depth 1, keeping height and
width": that is averaging across channels, a different operation. GAP keeps the C channels and
drops H and W.) It has no trainable parameters, and it is usually put between the convolutional
part and the final fully-connected layer.

Why it matters:
- `global_avg_pool`: a fixed-length vector from a feature map of any size is what lets one
  classifier accept images of different sizes, with no weights spent on spatial positions.
- `GAPClassifier`: GAP followed by one linear layer, the head of GoogLeNet and ResNet. Its
  parameters are only those of `fc`, whatever the input size.
- `class_activation_map`: because GAP is a mean and `fc` is linear, the class score is the mean
  over positions of `sum_c w[k, c] * f[c, h, w]` plus the bias (Zhou et al., 2016). That map of
  per-position contributions shows where the network saw the class, with no extra training.

Write GAP with tensor reductions (`mean`, `sum`); the built-in average poolings are forbidden here.
"""

from __future__ import annotations

import torch
from torch import nn


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """The mean of every feature map over all its positions.

    Args:
        x (Tensor[N, C, H, W]): feature maps.

    Returns:
        Tensor[N, C]: `out[n, c] = mean over (h, w) of x[n, c, h, w]`; same dtype and device as x.
    """
    if x.dim() != 4:
        raise ValueError(f"expected x of shape (N, C, H, W), got {tuple(x.shape)}")
    return x.mean(dim=(2, 3))  # (N, C)


class GAPClassifier(nn.Module):
    """Global average pooling, then one linear layer: features of any size -> class logits.

    Args:
        in_channels (int): C, the number of feature maps.
        num_classes (int): K.

    Attributes:
        fc (nn.Linear): `nn.Linear(in_channels, num_classes)`, the only parameters.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            features (Tensor[N, C, H, W]): any H and W.

        Returns:
            Tensor[N, K]: `fc(global_avg_pool(features))`, no softmax.
        """
        return self.fc(global_avg_pool(features))  # (N, K)


def class_activation_map(features: torch.Tensor, fc_weight: torch.Tensor, class_idx: torch.Tensor) -> torch.Tensor:
    """The class activation map (CAM) of one class per image.

    `M[n, h, w] = sum_c fc_weight[class_idx[n], c] * features[n, c, h, w]`: no bias, no ReLU,
    no normalisation. With a `GAPClassifier`, `logits[n, k] = M.mean((1, 2))[n] + bias[k]`.

    Args:
        features (Tensor[N, C, H, W]): the feature maps fed to the GAP.
        fc_weight (Tensor[K, C]): the weight of the linear layer after the GAP.
        class_idx (LongTensor[N]): the class to map for each image.

    Returns:
        Tensor[N, H, W].
    """
    if features.dim() != 4 or fc_weight.dim() != 2 or fc_weight.shape[1] != features.shape[1]:
        raise ValueError(f"expected features (N, C, H, W) and fc_weight (K, C), got {tuple(features.shape)} and {tuple(fc_weight.shape)}")
    if class_idx.shape != (features.shape[0],):
        raise ValueError(f"expected class_idx of shape ({features.shape[0]},), got {tuple(class_idx.shape)}")
    w = fc_weight[class_idx]  # (N, C)
    return torch.einsum("nc,nchw->nhw", w, features)  # (N, H, W)
