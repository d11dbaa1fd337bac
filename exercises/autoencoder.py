"""Convolutional and denoising autoencoders (notes: Autoencoders).

An autoencoder learns to reconstruct its input through a *bottleneck*: the encoder compresses an
image into a low-dimensional latent vector, the decoder rebuilds the image from that vector alone.
Training needs no labels (the input is its own target), and because the latent code is too small to
copy the input, the network must keep what matters about the images. The encoder can then feed a
classifier, the decoder can generate from latent vectors, and a *denoising* autoencoder, trained on
noisy inputs with the clean images as targets, removes noise.

How large should the latent space be? (The notes answer this with recurrent networks, which do
not apply here.) It is a trade-off found by experiment: too small and reconstructions blur, too
large and the code stops summarising (with enough capacity it can come close to the identity).

Why each part matters: `ConvAutoencoder` is the architecture (convolutions down, transposed
convolutions up, a sigmoid so that outputs are valid pixel values in [0, 1]);
`reconstruction_loss` is the training objective; `add_noise` makes the corrupted inputs;
`train_autoencoder` is the loop, plain or denoising.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvAutoencoder(nn.Module):
    """A small convolutional autoencoder for 28x28 images.

    The architecture is free: convolutions down to a latent vector of `latent_dim` numbers,
    transposed convolutions (or upsampling and convolutions) back up to 28x28, and outputs in
    [0, 1]. The checks only look at what it does, and train it for a short, fixed budget.

    Args:
        in_channels (int): image channels C.
        latent_dim (int): size of the latent code (the bottleneck).
    """

    def __init__(self, in_channels: int = 1, latent_dim: int = 16) -> None:
        # TODO: your code here
        raise NotImplementedError("__init__")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (Tensor[N, C, 28, 28]) -> latent codes (Tensor[N, latent_dim])."""
        # TODO: your code here
        raise NotImplementedError("encode")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (Tensor[N, latent_dim]) -> images (Tensor[N, C, 28, 28]) with values in [0, 1]."""
        # TODO: your code here
        raise NotImplementedError("decode")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): Tensor[N, C, 28, 28] -> Tensor[N, C, 28, 28]."""
        # TODO: your code here
        raise NotImplementedError("forward")


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the images and their reconstructions.

    Args:
        x (Tensor[N, C, H, W]): the target images.
        x_hat (Tensor[N, C, H, W]): the reconstructions.

    Returns:
        Tensor[]: the mean over every pixel of every image of `(x_hat - x)**2`.
    """
    # TODO: your code here
    raise NotImplementedError("reconstruction_loss")


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise, clamped back to valid pixel values: `clamp(x + std * randn_like(x), 0, 1)`.

    Args:
        x (Tensor[...]): images with values in [0, 1]; left unchanged.
        std (float): standard deviation of the noise (>= 0).
        generator (torch.Generator or None): the source of randomness (torch's global one if None).

    Returns:
        Tensor[...]: a new tensor of x's shape, dtype and device.
    """
    # TODO: your code here
    raise NotImplementedError("add_noise")


def train_autoencoder(
    model: nn.Module,
    data: torch.Tensor,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train `model` to reconstruct `data` with Adam; denoising when `noise_std > 0`.

    Every epoch visits the samples in a new random order, in mini-batches of `batch_size` (the
    last one may be smaller). With `noise_std > 0` the model sees `add_noise(batch, noise_std)` and
    is trained to output the *clean* batch.

    Args:
        model (nn.Module): maps Tensor[B, C, 28, 28] to Tensor[B, C, 28, 28].
        data (Tensor[N, C, 28, 28]): the training images, values in [0, 1].
        epochs (int): passes over the data.
        lr (float): Adam's learning rate.
        batch_size (int): samples per update.
        noise_std (float): standard deviation of the input noise; 0 for a plain autoencoder.
        generator (torch.Generator or None): drives the shuffling and the noise.

    Returns:
        list[float]: one value per epoch, the mean reconstruction loss over that epoch's samples
        (each batch's loss, computed before its update, weighted by its size).
    """
    # TODO: your code here
    raise NotImplementedError("train_autoencoder")
