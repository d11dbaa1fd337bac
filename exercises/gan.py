"""GAN losses and one training step (notes: GANs).

A GAN trains two networks against each other. The generator G maps random noise z (not real
images, whatever the notes say: real images are only ever shown to the discriminator) to fake
samples; the discriminator D outputs a logit, "how real does this look". D learns to tell real
from fake; G learns to make D say "real". Training alternates: one D update on a real batch and
a fake batch (G frozen, the fakes detached), then one G update through D (D frozen). (The notes
start each cycle with G; the usual step, and this one, starts with D, so that G is trained
against a discriminator that has just seen its latest fakes.)

The notes' "very low gradient at the beginning" is the saturation of the original *minimax*
generator loss `log(1 - D(G(z)))`: early on D easily rejects the fakes, D(G(z)) is close to 0,
and so is the gradient (-D(G(z)) with respect to the logit). The *non-saturating* loss
`-log D(G(z))` has the same fixed point but a gradient of about -1 there.

Every loss here takes logits and must stay finite for logits as large as +-1e4, so never write
`log(sigmoid(x))` as it stands: for x = -1e4 sigmoid(x) rounds to 0 and its log is -inf. Rewrite
the logs of sigmoids with functions that PyTorch computes stably from the logits.

Why each part matters: `discriminator_loss` trains D; the two generator losses show why
practice uses the non-saturating one; `gan_train_step` is where real GAN code goes wrong
(detaching, zeroing gradients, the order of the updates).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check_logits(name: str, logits: torch.Tensor) -> None:
    """Raise `ValueError` unless `logits` is a non-empty floating-point tensor."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.numel() == 0:
        what = f"{logits.dtype} tensor of shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a non-empty floating-point tensor of logits, got {what}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of D: real samples labelled 1, fakes labelled 0.

    `BCE(real_logits, 1) + BCE(fake_logits, 0)`, each term a mean over its own batch; that is
    `mean(-log sigmoid(real)) + mean(-log(1 - sigmoid(fake)))`.

    Args:
        real_logits (Tensor[...]): D's logits on real samples.
        fake_logits (Tensor[...]): D's logits on generated samples (any size).

    Returns:
        Tensor[]: the scalar loss; finite for logits up to +-1e4.
    """
    # TODO: your code here
    raise NotImplementedError("discriminator_loss")


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """The original (saturating) generator loss, minimised by G: `mean(log(1 - sigmoid(fake_logits)))`.

    Its gradient with respect to a logit is `-sigmoid(logit) / N`: tiny when D confidently rejects
    the fakes, which is exactly the situation at the start of training.

    Args:
        fake_logits (Tensor[...]): D's logits on generated samples.

    Returns:
        Tensor[]: the scalar loss (<= 0); finite for logits up to +-1e4.
    """
    # TODO: your code here
    raise NotImplementedError("generator_loss_minimax")


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: `-mean(log(sigmoid(fake_logits)))`.

    Its gradient with respect to a logit is `-(1 - sigmoid(logit)) / N`: about `-1/N` when D
    rejects the fakes, so G learns fast exactly when it is bad.

    Args:
        fake_logits (Tensor[...]): D's logits on generated samples.

    Returns:
        Tensor[]: the scalar loss (>= 0); finite for logits up to +-1e4.
    """
    # TODO: your code here
    raise NotImplementedError("generator_loss_nonsaturating")


def gan_train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    g_opt: torch.optim.Optimizer,
    d_opt: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
) -> tuple[float, float]:
    """One discriminator update, then one generator update.

    1. D: one update on `discriminator_loss(D(real), D(G(z)))`, with no gradient reaching G.
    2. G: one update on `generator_loss_nonsaturating(D(G(z)))`, G(z) recomputed from the same z,
       through the *updated* D.
    The gradients of one update must not leak into the other, nor into the next step's.

    Args:
        generator (nn.Module): z -> samples.
        discriminator (nn.Module): samples -> logits.
        g_opt, d_opt (torch.optim.Optimizer): the optimizers of G's and of D's parameters.
        real (Tensor[N, ...]): a batch of real samples.
        z (Tensor[M, latent]): the noise for the fakes; M may differ from N (each loss term is a
            mean over its own batch).

    Returns:
        (d_loss, g_loss): Python floats, each computed before its update.
    """
    # TODO: your code here
    raise NotImplementedError("gan_train_step")
