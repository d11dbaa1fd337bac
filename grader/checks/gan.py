"""Hidden checks for `gan`: the three losses (random and +-1e4 logits, the gradient at D(G(z)) = 0.001)
and the training step.

`gan_train_step` is run on a tiny MLP generator and discriminator defined here (so both sides build
the same networks), from the same initial weights, with the same optimizers, for several
consecutive steps in float64: the parameters of both networks and the returned losses must be
where the reference's step leaves them. A missing `zero_grad`, discriminator gradients leaking
into the generator's update, the updates in the wrong order or the saturating generator loss all
move the weights, most of them only from the second step on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.checks import call, randn
from grader.engine.spec import Case, Check, Mistake

_SECTION = "GANs"


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --- losses --------------------------------------------------------------------------------------
def _random_logits(g, shape, dtype, scale=3.0):
    return randn(g, *shape, dtype=dtype) * scale


def _extreme(g, n, dtype):
    """Logits of +-1e4 mixed with ordinary ones."""
    signs = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    big = 1e4 * signs
    ordinary = randn(g, n, dtype=dtype) * 2.0
    return torch.where(torch.arange(n) % 3 == 2, ordinary, big)


def _d_values(g, ref):
    return [
        call("discriminator_loss", _random_logits(g, (6,), torch.float64), _random_logits(g, (10,), torch.float64),
             grad=True, label="6 real and 10 fake logits (each term is a mean over its own batch), float64"),
        call("discriminator_loss", _random_logits(g, (8, 1), torch.float32), _random_logits(g, (8, 1), torch.float32),
             grad=True, label="real and fake logits (8, 1) ~ N(0, 3^2), float32"),
        call("discriminator_loss", _random_logits(g, (5,), torch.float64, 0.5) + 2.0, _random_logits(g, (5,), torch.float64, 0.5) - 2.0,
             grad=True, label="a confident discriminator: real logits around +2, fake around -2, float64"),
        call("discriminator_loss", _random_logits(g, (4, 1), torch.float32, 0.5) - 2.0, _random_logits(g, (4, 1), torch.float32, 0.5) + 2.0,
             grad=True, label="a fooled discriminator: real logits around -2, fake around +2, float32"),
    ]


def _d_extreme(g, ref):
    cases = []
    for n_real, n_fake, dtype in [(6, 6, torch.float32), (9, 4, torch.float64), (3, 7, torch.float32)]:
        real, fake = _extreme(g, n_real, dtype), _extreme(g, n_fake, dtype)
        cases.append(call("discriminator_loss", real, fake, grad=True,
                          label=f"logits of +-1e4 mixed with ordinary ones: real {real.tolist()}, fake {fake.tolist()}, {_dt(dtype)}"))
    cases.append(call("discriminator_loss", torch.full((4,), -1e4), torch.full((4,), 1e4), grad=True,
                      label="every real logit -1e4 and every fake +1e4 (the worst discriminator): the loss is 2e4, finite, float32"))
    return cases


def _g_values(fn):
    def cases(g, ref):
        return [
            call(fn, _random_logits(g, (8, 1), torch.float32), grad=True, label="fake logits (8, 1) ~ N(0, 3^2), float32"),
            call(fn, _random_logits(g, (12,), torch.float64), grad=True, label="12 fake logits ~ N(0, 3^2), float64"),
            call(fn, _random_logits(g, (5,), torch.float64, 0.5) - 4.0, grad=True, label="fake logits around -4 (D rejects the fakes), float64"),
            call(fn, _random_logits(g, (3, 2), torch.float32, 0.5) + 4.0, grad=True, label="fake logits (3, 2) around +4 (D is fooled), float32"),
        ]

    return cases


def _g_extreme(fn):
    def cases(g, ref):
        out = []
        for n, dtype in [(6, torch.float32), (9, torch.float64)]:
            logits = _extreme(g, n, dtype)
            out.append(call(fn, logits, grad=True, label=f"fake logits of +-1e4 mixed with ordinary ones: {logits.tolist()}, {_dt(dtype)}"))
        out.append(call(fn, torch.full((3,), 1e4), grad=True, label="every fake logit +1e4, float32"))
        out.append(call(fn, torch.full((3,), -1e4, dtype=torch.float64), grad=True, label="every fake logit -1e4, float64"))
        return out

    return cases


def probe_loss_gradient(mod: Any, fn: str, logits: torch.Tensor, device: str = "cpu", seed: int = 0) -> dict:
    """The loss and its plain gradient d loss / d logits (no random projection)."""
    x = logits.detach().clone().to(device).requires_grad_(True)
    loss = getattr(mod, fn)(x)
    (grad,) = torch.autograd.grad(loss, [x])
    return {"gradient w.r.t. the logits": grad, "loss": loss}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _g_gradient(fn):
    expected = {"generator_loss_minimax": "about -0.001: saturated, G barely learns",
                "generator_loss_nonsaturating": "about -0.999: G learns fast"}[fn]

    def cases(g, ref):
        out = [Case("grader.checks.gan:probe_loss_gradient", (fn, torch.full((1,), _logit(0.001), dtype=torch.float64)), {},
                    label=f"one fake logit with D(G(z)) = sigmoid(logit) = 0.001, as for an untrained G (the notes' 'very low "
                          f"gradient at the beginning'): the gradient w.r.t. the logit is {expected}; float64")]
        out.append(Case("grader.checks.gan:probe_loss_gradient", (fn, torch.full((4,), _logit(0.001))), {},
                        label="4 fake logits with D(G(z)) = 0.001: the same gradient divided by 4 (a mean), float32"))
        for p in (0.5, 0.999):
            out.append(Case("grader.checks.gan:probe_loss_gradient", (fn, torch.full((2,), _logit(p), dtype=torch.float64)), {},
                            label=f"2 fake logits with D(G(z)) = {p}, float64"))
        return out

    return cases


def _d_variant(kind):
    def build(ref):
        def discriminator_loss(real_logits, fake_logits):
            if kind == "swapped":
                return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()
            if kind == "no-fake":
                return F.softplus(-real_logits).mean()
            if kind == "averaged":
                return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())
            if kind == "one-mean":
                return torch.cat([F.softplus(-real_logits).flatten(), F.softplus(fake_logits).flatten()]).mean()
            if kind == "naive":
                return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()
            # BCE on probabilities: PyTorch clamps its log at -100
            p_real, p_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
            return F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))

        return {"discriminator_loss": discriminator_loss}

    return build


D_MISTAKES = (
    Mistake("discriminator-labels-swapped", "The labels are swapped: D must call real samples real (target 1) and fakes fake (target 0).", _d_variant("swapped"), _SECTION, subsection="The minimax game"),
    Mistake("fake-term-missing", "Only the real batch is scored: D's loss also has the term BCE(fake_logits, 0), or it never learns to reject fakes.", _d_variant("no-fake"), _SECTION, subsection="The minimax game"),
    Mistake("discriminator-terms-averaged", "The two terms are averaged: the contract's loss is their sum, BCE(real, 1) + BCE(fake, 0).", _d_variant("averaged"), _SECTION),
    Mistake("single-mean-over-both-batches", "One mean over the real and fake batches together weights them by their sizes: each term is a mean over its own batch.", _d_variant("one-mean"), _SECTION, subsection="The minimax game"),
    Mistake("naive-log-sigmoid", "log(sigmoid(x)) computed as written overflows to -inf for large |x| (sigmoid rounds to 0 or 1): use -softplus(-x) and -softplus(x), or F.binary_cross_entropy_with_logits.", _d_variant("naive"), _SECTION, subsection="Computing the losses stably"),
    Mistake("bce-on-probabilities", "F.binary_cross_entropy(sigmoid(x), y) clamps its log at -100, so large logits give wrong losses and zero gradients: use F.binary_cross_entropy_with_logits on the logits.", _d_variant("bce"), _SECTION, subsection="Computing the losses stably"),
)


def _minimax_variant(kind):
    def build(ref):
        def generator_loss_minimax(fake_logits):
            if kind == "sign":
                return F.softplus(fake_logits).mean()
            if kind == "nonsat":
                return F.softplus(-fake_logits).mean()
            if kind == "log-d":
                return (-F.softplus(-fake_logits)).mean()
            return torch.log(1 - torch.sigmoid(fake_logits)).mean()

        return {"generator_loss_minimax": generator_loss_minimax}

    return build


MINIMAX_MISTAKES = (
    Mistake("minimax-sign-flipped", "G *minimises* mean(log(1 - D(G(z)))) (D maximises it): no minus sign in front.", _minimax_variant("sign"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("minimax-is-nonsaturating", "This is the non-saturating loss -mean(log D(G(z))); the minimax loss is mean(log(1 - D(G(z)))), whose gradient vanishes when D(G(z)) is near 0.", _minimax_variant("nonsat"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("minimax-log-of-d", "The minimax generator loss is log(1 - D(G(z))), not log D(G(z)).", _minimax_variant("log-d"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("naive-log-one-minus-sigmoid", "log(1 - sigmoid(x)) computed as written is -inf once sigmoid(x) rounds to 1: use -softplus(x).", _minimax_variant("naive"), _SECTION, subsection="Computing the losses stably"),
)


def _nonsat_variant(kind):
    def build(ref):
        def generator_loss_nonsaturating(fake_logits):
            if kind == "naive":
                return -torch.log(torch.sigmoid(fake_logits)).mean()
            if kind == "sign":
                return (-F.softplus(-fake_logits)).mean()
            if kind == "neg-minimax":
                return F.softplus(fake_logits).mean()
            p = torch.sigmoid(fake_logits)
            return F.binary_cross_entropy(p, torch.ones_like(p))

        return {"generator_loss_nonsaturating": generator_loss_nonsaturating}

    return build


NONSAT_MISTAKES = (
    Mistake("naive-log-sigmoid", "log(sigmoid(x)) computed as written is -inf once sigmoid(x) rounds to 0 (x = -1e4): use -softplus(-x) (F.logsigmoid).", _nonsat_variant("naive"), _SECTION, subsection="Computing the losses stably"),
    Mistake("nonsaturating-sign-flipped", "The loss is -mean(log D(G(z))), which G minimises: with the sign flipped G learns to be caught.", _nonsat_variant("sign"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("nonsaturating-is-negated-minimax", "-mean(log(1 - D(G(z)))) is the minimax objective negated, which saturates just the same: the non-saturating loss is -mean(log D(G(z))).", _nonsat_variant("neg-minimax"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("bce-on-probabilities", "F.binary_cross_entropy(sigmoid(x), 1) clamps its log at -100, so for very negative logits the loss is wrong and the gradient 0: use the logits (softplus or BCE with logits).", _nonsat_variant("bce"), _SECTION, subsection="Computing the losses stably"),
)


# --- the training step ---------------------------------------------------------------------------
def tiny_generator(z_dim: int, hidden: int, x_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, x_dim))


def tiny_discriminator(x_dim: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(x_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))


def probe_train_steps(mod: Any, dims: tuple[int, int, int], g_state: dict, d_state: dict, reals: list, zs: list,
                      device: str = "cpu", seed: int = 0) -> dict:
    """Consecutive `gan_train_step`s on the tiny networks (float64, given initial weights).

    G is optimised by Adam(lr 5e-3, betas (0.5, 0.999)), D by SGD(lr 0.05, momentum 0.9).
    Returns the losses of every step and both networks' parameters after the last step."""
    z_dim, hidden, x_dim = dims
    gen, disc = tiny_generator(z_dim, hidden, x_dim).double(), tiny_discriminator(x_dim, hidden).double()
    gen.load_state_dict(g_state)
    disc.load_state_dict(d_state)
    gen, disc = gen.to(device), disc.to(device)
    g_opt = torch.optim.Adam(gen.parameters(), lr=5e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.SGD(disc.parameters(), lr=0.05, momentum=0.9)
    losses = {}
    for i, (real, z) in enumerate(zip(reals, zs), start=1):
        out = mod.gan_train_step(gen, disc, g_opt, d_opt, real.to(device), z.to(device))
        is_pair = isinstance(out, (tuple, list)) and len(out) == 2
        losses[f"step {i}"] = {"d_loss": out[0], "g_loss": out[1]} if is_pair else {"returned (expected (d_loss, g_loss))": out}
    return {"losses": losses,
            "generator": {k: v.detach() for k, v in gen.state_dict().items()},
            "discriminator": {k: v.detach() for k, v in disc.state_dict().items()}}


def _step_case(g, dims, n_real, n_z, steps):
    z_dim, hidden, x_dim = dims
    g_state = {k: v.detach().clone() for k, v in tiny_generator(*dims).double().state_dict().items()}
    d_state = {k: v.detach().clone() for k, v in tiny_discriminator(x_dim, hidden).double().state_dict().items()}
    reals = [randn(g, n_real, x_dim, dtype=torch.float64) * 0.5 + 1.0 for _ in range(steps)]
    zs = [randn(g, n_z, z_dim, dtype=torch.float64) for _ in range(steps)]
    what = "one step" if steps == 1 else f"{steps} consecutive steps"
    return Case("grader.checks.gan:probe_train_steps", (dims, g_state, d_state, reals, zs), {}, rtol=1e-6, atol=1e-9,
                label=f"{what}: G = Linear({z_dim}, {hidden}) -> LeakyReLU -> Linear({hidden}, {x_dim}), "
                      f"D = Linear({x_dim}, {hidden}) -> LeakyReLU -> Linear({hidden}, 1), float64, {n_real} real samples "
                      f"and {n_z} noise vectors per step, G: Adam(lr 5e-3, betas (0.5, 0.999)), D: SGD(lr 0.05, momentum 0.9)")


def _one_step(g, ref):
    return [_step_case(g, (4, 8, 3), 6, 6, 1), _step_case(g, (2, 6, 5), 5, 3, 1)]


def _several_steps(g, ref):
    return [_step_case(g, (4, 8, 3), 6, 6, 3), _step_case(g, (3, 5, 2), 4, 7, 4), _step_case(g, (2, 10, 4), 8, 8, 2)]


def _step_variant(kind):
    def build(ref):
        d_loss_fn, g_loss_fn = ref.discriminator_loss, ref.generator_loss_nonsaturating

        def d_update(generator, discriminator, d_opt, real, z, zero=True, detach=True):
            fake = generator(z)
            d_loss = d_loss_fn(discriminator(real), discriminator(fake.detach() if detach else fake))
            if zero:
                d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            return d_loss.item()

        def g_update(generator, discriminator, g_opt, z, zero=True, loss_fn=g_loss_fn):
            g_loss = loss_fn(discriminator(generator(z)))
            if zero:
                g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            return g_loss.item()

        def gan_train_step(generator, discriminator, g_opt, d_opt, real, z):
            if kind == "leak":
                d_opt.zero_grad()
                g_opt.zero_grad()
                d = d_update(generator, discriminator, d_opt, real, z, zero=False, detach=False)
                return d, g_update(generator, discriminator, g_opt, z, zero=False)
            if kind == "g-first":
                gl = g_update(generator, discriminator, g_opt, z)
                return d_update(generator, discriminator, d_opt, real, z), gl
            d = d_update(generator, discriminator, d_opt, real, z, zero=(kind != "d-not-zeroed"))
            loss_fn = ref.generator_loss_minimax if kind == "saturating" else g_loss_fn
            return d, g_update(generator, discriminator, g_opt, z, zero=(kind != "g-not-zeroed"), loss_fn=loss_fn)

        return {"gan_train_step": gan_train_step}

    return build


STEP_MISTAKES = (
    Mistake("generator-stepped-with-discriminator-gradients", "The fakes were not detached for D's update and G's gradients were zeroed only before it: G was then stepped with the gradients of D's loss added to its own. Detach G(z) for D's update (and zero G's gradients right before G's backward).", _step_variant("leak"), _SECTION, subsection="The training step"),
    Mistake("discriminator-gradients-not-zeroed", "D's gradients are not zeroed before its backward: they still hold what the previous step's generator update left in D (and D's previous gradients). Call d_opt.zero_grad() before d_loss.backward().", _step_variant("d-not-zeroed"), _SECTION, subsection="The training step"),
    Mistake("generator-gradients-not-zeroed", "G's gradients are not zeroed before its backward, so each update also applies all earlier steps' gradients: call g_opt.zero_grad() before g_loss.backward().", _step_variant("g-not-zeroed"), _SECTION, subsection="The training step"),
    Mistake("generator-updated-first", "The generator is updated before the discriminator: the step updates D first (on real and detached fakes), then G against the updated D.", _step_variant("g-first"), _SECTION, subsection="The training step"),
    Mistake("saturating-generator-loss", "The generator update uses the minimax loss log(1 - D(G(z))), which saturates early in training: the step uses the non-saturating -log D(G(z)).", _step_variant("saturating"), _SECTION, subsection="The generator's vanishing gradient"),
)


CHECKS = [
    Check("discriminator_loss_values", "discriminator_loss", 2, _d_values, D_MISTAKES,
          "BCE(real, 1) + BCE(fake, 0) on ordinary logits, batches of different sizes, gradients"),
    Check("discriminator_loss_extreme_logits", "discriminator_loss", 2, _d_extreme, D_MISTAKES,
          "logits of +-1e4: finite values and gradients"),
    Check("generator_loss_minimax_values", "generator_loss_minimax", 1, _g_values("generator_loss_minimax"), MINIMAX_MISTAKES,
          "mean(log(1 - sigmoid(x))) on ordinary logits, gradients"),
    Check("generator_loss_minimax_extreme_logits", "generator_loss_minimax", 1, _g_extreme("generator_loss_minimax"), MINIMAX_MISTAKES,
          "logits of +-1e4: finite values and gradients"),
    Check("generator_loss_minimax_saturates", "generator_loss_minimax", 2, _g_gradient("generator_loss_minimax"), MINIMAX_MISTAKES,
          "the gradient at D(G(z)) = 0.001 is about -0.001: the 'very low gradient at the beginning'"),
    Check("generator_loss_nonsaturating_values", "generator_loss_nonsaturating", 1, _g_values("generator_loss_nonsaturating"), NONSAT_MISTAKES,
          "-mean(log(sigmoid(x))) on ordinary logits, gradients"),
    Check("generator_loss_nonsaturating_extreme_logits", "generator_loss_nonsaturating", 1, _g_extreme("generator_loss_nonsaturating"), NONSAT_MISTAKES,
          "logits of +-1e4: finite values and gradients"),
    Check("generator_loss_nonsaturating_gradient", "generator_loss_nonsaturating", 2, _g_gradient("generator_loss_nonsaturating"), NONSAT_MISTAKES,
          "the gradient at D(G(z)) = 0.001 is about -0.999: the fix for the saturation"),
    Check("gan_train_step_one_step", "gan_train_step", 3, _one_step, STEP_MISTAKES,
          "one step from given weights: both networks' parameters and the two losses"),
    Check("gan_train_step_consecutive_steps", "gan_train_step", 5, _several_steps, STEP_MISTAKES,
          "several consecutive steps: zero_grad, detach, order and loss show up from the second step"),
]
