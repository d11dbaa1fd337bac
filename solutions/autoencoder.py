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
        super().__init__()
        if in_channels < 1 or latent_dim < 1:
            raise ValueError(f"in_channels and latent_dim must be >= 1, got {in_channels} and {latent_dim}")
        self.in_channels, self.latent_dim = in_channels, latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, stride=2, padding=1),  # (N, 16, 14, 14)
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),  # (N, 32, 7, 7)
            nn.ReLU(),
            nn.Flatten(),  # (N, 32*7*7)
            nn.Linear(32 * 7 * 7, latent_dim),  # (N, latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 32 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),  # (N, 32, 7, 7)
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),  # (N, 16, 14, 14)
            nn.ReLU(),
            nn.ConvTranspose2d(16, in_channels, 4, stride=2, padding=1),  # (N, C, 28, 28)
            nn.Sigmoid(),  # pixel values in [0, 1]
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (Tensor[N, C, 28, 28]) -> latent codes (Tensor[N, latent_dim])."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, 28, 28):
            raise ValueError(f"expected images (N, {self.in_channels}, 28, 28), got {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (Tensor[N, latent_dim]) -> images (Tensor[N, C, 28, 28]) with values in [0, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latent codes (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): Tensor[N, C, 28, 28] -> Tensor[N, C, 28, 28]."""
        return self.decode(self.encode(x))


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the images and their reconstructions.

    Args:
        x (Tensor[N, C, H, W]): the target images.
        x_hat (Tensor[N, C, H, W]): the reconstructions.

    Returns:
        Tensor[]: the mean over every pixel of every image of `(x_hat - x)**2`.
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    return ((x_hat - x) ** 2).mean()


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise, clamped back to valid pixel values: `clamp(x + std * randn_like(x), 0, 1)`.

    Args:
        x (Tensor[...]): images with values in [0, 1]; left unchanged.
        std (float): standard deviation of the noise (>= 0).
        generator (torch.Generator or None): the source of randomness (torch's global one if None).

    Returns:
        Tensor[...]: a new tensor of x's shape, dtype and device.
    """
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (x + std * noise).clamp(0.0, 1.0)


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
    if epochs < 0 or batch_size < 1 or lr < 0 or noise_std < 0:
        raise ValueError(f"need epochs >= 0, batch_size >= 1, lr >= 0, noise_std >= 0; got {epochs}, {batch_size}, {lr}, {noise_std}")
    if data.dim() != 4 or data.shape[0] == 0:
        raise ValueError(f"data must be a non-empty (N, C, H, W) tensor, got {tuple(data.shape)}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    n = data.shape[0]
    perm_device = generator.device if generator is not None else data.device
    history = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator, device=perm_device).to(data.device)  # (N,)
        total = 0.0
        for start in range(0, n, batch_size):
            clean = data[order[start : start + batch_size]]  # (B, C, H, W)
            inputs = add_noise(clean, noise_std, generator) if noise_std > 0 else clean
            loss = reconstruction_loss(clean, model(inputs))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * clean.shape[0]
        history.append(total / n)
    return history
