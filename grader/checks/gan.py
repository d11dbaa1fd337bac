"""Hidden checks for `gan`: the three losses (random logits, and logits of +-1e4 and exactly 0 with
their gradients, the gradient at D(G(z)) = 0.001) and the training step.

`gan_train_step` is run on a tiny MLP generator and discriminator defined here (so both sides build
the same networks), from the same initial weights, with the same optimizers, for several
consecutive steps in float64: the parameters of both networks and the returned losses must be
where the reference's step leaves them. A missing `zero_grad`, discriminator gradients leaking
into the generator's update, the updates in the wrong order or the saturating generator loss all
move the weights, most of them only from the second step on. Real and noise batches differ in
size in some cases, as the contract allows.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.checks import call, randn
from grader.engine.compare import compare
from grader.engine.spec import Case, Check, Mistake, Picture

_SECTION = "GANs"


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --- losses --------------------------------------------------------------------------------------
def _random_logits(g, shape, dtype, scale=3.0):
    return randn(g, *shape, dtype=dtype) * scale


def _extreme(g, n, dtype):
    """Logits of +-1e4 mixed with ordinary ones and exact zeros (where stable rewrites built on
    relu or abs have a kink, and autograd picks a one-sided gradient)."""
    signs = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    big = 1e4 * signs
    ordinary = randn(g, n, dtype=dtype) * 2.0
    out = torch.where(torch.arange(n) % 3 == 2, ordinary, big)
    out[1] = 0.0
    return out


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
        call("discriminator_loss", torch.zeros(3, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), grad=True,
             label="every logit exactly 0 (D undecided): the loss is 2 log 2 and the gradient sigmoid(0) - label = -0.5 / 3 per real "
                   "logit and +0.5 / 5 per fake one, float64"),
    ]


def _d_extreme(g, ref):
    cases = []
    for n_real, n_fake, dtype in [(9, 4, torch.float64), (6, 6, torch.float32), (3, 7, torch.float32)]:
        real, fake = _extreme(g, n_real, dtype), _extreme(g, n_fake, dtype)
        cases.append(call("discriminator_loss", real, fake, grad=True,
                          label=f"logits of +-1e4 mixed with ordinary ones and zeros: real {real.tolist()}, fake {fake.tolist()}, {_dt(dtype)}, gradients at all of them"))
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
            out.append(call(fn, logits, grad=True, label=f"fake logits of +-1e4 mixed with ordinary ones and a zero: {logits.tolist()}, {_dt(dtype)}, gradients at all of them"))
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


def _kinked_softplus(x):
    """softplus(x) = max(x, 0) + log(1 + exp(-|x|)) written with relu and abs: right values,
    but autograd takes relu'(0) = 0 and abs'(0) = 0, so the gradient at 0 is 0, not 0.5."""
    return F.relu(x) + torch.log1p(torch.exp(-x.abs()))


def _d_variant(kind):
    def build(ref):
        def discriminator_loss(real_logits, fake_logits):
            if kind == "kinked":
                return _kinked_softplus(-real_logits).mean() + _kinked_softplus(fake_logits).mean()
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
    Mistake("stable-rewrite-gradient-wrong-at-zero", "The loss is the stable rewrite max(x, 0) + log(1 + exp(-|x|)) built from relu (or clamp) and abs: the values are right, but at a logit of exactly 0 autograd takes one-sided derivatives of the kinks and the gradient is wrong (0 instead of 0.5 per logit, before the mean). Use F.softplus, F.logsigmoid or F.binary_cross_entropy_with_logits, whose gradient is sigmoid(x) - label everywhere.", _d_variant("kinked"), _SECTION, subsection="Computing the losses stably"),
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
            if kind == "kinked":
                return (-_kinked_softplus(fake_logits)).mean()
            return torch.log(1 - torch.sigmoid(fake_logits)).mean()

        return {"generator_loss_minimax": generator_loss_minimax}

    return build


MINIMAX_MISTAKES = (
    Mistake("minimax-sign-flipped", "G *minimises* mean(log(1 - D(G(z)))) (D maximises it): no minus sign in front.", _minimax_variant("sign"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("minimax-is-nonsaturating", "This is the non-saturating loss -mean(log D(G(z))); the minimax loss is mean(log(1 - D(G(z)))), whose gradient vanishes when D(G(z)) is near 0.", _minimax_variant("nonsat"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("minimax-log-of-d", "The minimax generator loss is log(1 - D(G(z))), not log D(G(z)).", _minimax_variant("log-d"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("naive-log-one-minus-sigmoid", "log(1 - sigmoid(x)) computed as written is -inf once sigmoid(x) rounds to 1: use -softplus(x).", _minimax_variant("naive"), _SECTION, subsection="Computing the losses stably"),
    Mistake("stable-rewrite-gradient-wrong-at-zero", "The loss is the stable rewrite max(x, 0) + log(1 + exp(-|x|)) built from relu (or clamp) and abs: the values are right, but at a logit of exactly 0 autograd takes one-sided derivatives of the kinks and the gradient is wrong (0 instead of 0.5 per logit, before the mean). Use F.softplus, F.logsigmoid or F.binary_cross_entropy_with_logits, whose gradient is sigmoid(x) - label everywhere.", _minimax_variant("kinked"), _SECTION, subsection="Computing the losses stably"),
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
            if kind == "kinked":
                return _kinked_softplus(-fake_logits).mean()
            p = torch.sigmoid(fake_logits)
            return F.binary_cross_entropy(p, torch.ones_like(p))

        return {"generator_loss_nonsaturating": generator_loss_nonsaturating}

    return build


NONSAT_MISTAKES = (
    Mistake("naive-log-sigmoid", "log(sigmoid(x)) computed as written is -inf once sigmoid(x) rounds to 0 (x = -1e4): use -softplus(-x) (F.logsigmoid).", _nonsat_variant("naive"), _SECTION, subsection="Computing the losses stably"),
    Mistake("nonsaturating-sign-flipped", "The loss is -mean(log D(G(z))), which G minimises: with the sign flipped G learns to be caught.", _nonsat_variant("sign"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("nonsaturating-is-negated-minimax", "-mean(log(1 - D(G(z)))) is the minimax objective negated, which saturates just the same: the non-saturating loss is -mean(log D(G(z))).", _nonsat_variant("neg-minimax"), _SECTION, subsection="The generator's vanishing gradient"),
    Mistake("bce-on-probabilities", "F.binary_cross_entropy(sigmoid(x), 1) clamps its log at -100, so for very negative logits the loss is wrong and the gradient 0: use the logits (softplus or BCE with logits).", _nonsat_variant("bce"), _SECTION, subsection="Computing the losses stably"),
    Mistake("stable-rewrite-gradient-wrong-at-zero", "The loss is the stable rewrite max(x, 0) + log(1 + exp(-|x|)) built from relu (or clamp) and abs: the values are right, but at a logit of exactly 0 autograd takes one-sided derivatives of the kinks and the gradient is wrong (0 instead of 0.5 per logit, before the mean). Use F.softplus, F.logsigmoid or F.binary_cross_entropy_with_logits, whose gradient is sigmoid(x) - label everywhere.", _nonsat_variant("kinked"), _SECTION, subsection="Computing the losses stably"),
)


# --- the training step ---------------------------------------------------------------------------
def tiny_generator(z_dim: int, hidden: int, x_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, x_dim))


def tiny_discriminator(x_dim: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(x_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))


_SIZE_ERROR = "a size error: the real and the fake batch differ in size"

# The grader's own losses (stable, as the contract says), which the step is graded with.
_GRADER_LOSSES = {
    "discriminator_loss": lambda real_logits, fake_logits: F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean(),
    "generator_loss_minimax": lambda fake_logits: (-F.softplus(fake_logits)).mean(),
    "generator_loss_nonsaturating": lambda fake_logits: F.softplus(-fake_logits).mean(),
}


@contextlib.contextmanager
def _step_alone(mod: Any) -> Iterator[None]:
    """While the steps run, the module's own losses are the grader's: a step that calls them is
    graded on its own, whatever those parts do (they have their own checks). A step that computes
    its losses inline is unaffected."""
    saved = {name: getattr(mod, name) for name in _GRADER_LOSSES if hasattr(mod, name)}
    for name in saved:
        setattr(mod, name, _GRADER_LOSSES[name])
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(mod, name, value)


def _size_error(exc: BaseException) -> bool:
    """BCE's "target size ... different to the input size", broadcasting's "the size of tensor a
    must match", and the like."""
    return isinstance(exc, (ValueError, RuntimeError)) and ("size" in str(exc).lower() or "shape" in str(exc).lower())


def probe_train_steps(mod: Any, dims: tuple[int, int, int], g_state: dict, d_state: dict, reals: list, zs: list,
                      device: str = "cpu", seed: int = 0) -> dict:
    """Consecutive `gan_train_step`s on the tiny networks (float64, given initial weights).

    G is optimised by Adam(lr 5e-3, betas (0.5, 0.999)), D by SGD(lr 0.05, momentum 0.9).
    Returns the losses of every step and both networks' parameters after the last step. The step
    runs with the grader's own losses in place of the module's (see `_step_alone`).
    Torch's global generator is seeded before each step, so that a step that draws fresh noise
    draws the same on both sides (and the mistake that does so can be recognised). A size error
    in a step whose real and noise batches differ in size is recorded as such, not raised: it is
    the mark of labels sized from one batch and used with the other."""
    z_dim, hidden, x_dim = dims
    gen, disc = tiny_generator(z_dim, hidden, x_dim).double(), tiny_discriminator(x_dim, hidden).double()
    gen.load_state_dict(g_state)
    disc.load_state_dict(d_state)
    gen, disc = gen.to(device), disc.to(device)
    g_opt = torch.optim.Adam(gen.parameters(), lr=5e-3, betas=(0.5, 0.999))
    d_opt = torch.optim.SGD(disc.parameters(), lr=0.05, momentum=0.9)
    losses = {}
    for i, (real, z) in enumerate(zip(reals, zs), start=1):
        torch.manual_seed(i)
        try:
            with _step_alone(mod):
                out = mod.gan_train_step(gen, disc, g_opt, d_opt, real.to(device), z.to(device))
        except (ValueError, RuntimeError) as exc:
            if real.shape[0] == z.shape[0] or not _size_error(exc):
                raise
            losses[f"step {i}"] = {"raised": _SIZE_ERROR}
            return {"losses": losses, "generator": None, "discriminator": None}
        is_pair = isinstance(out, (tuple, list)) and len(out) == 2
        losses[f"step {i}"] = {"d_loss": out[0], "g_loss": out[1]} if is_pair else {"returned (expected (d_loss, g_loss))": out}
    return {"losses": losses,
            "generator": {k: v.detach() for k, v in gen.state_dict().items()},
            "discriminator": {k: v.detach() for k, v in disc.state_dict().items()}}


def _step_assess(n_real: int, n_z: int, rtol: float, atol: float):
    """Compare like the engine, then say where a failing step goes wrong when the losses tell."""

    def assess(got: Any, expected: Any) -> str | None:
        msg = compare(got, expected, "result", rtol, atol)
        if msg is None:
            return None
        losses = got.get("losses") if isinstance(got, dict) else None
        steps = list(losses.items()) if isinstance(losses, dict) else []
        raised = next((name for name, v in steps if isinstance(v, dict) and v.get("raised") == _SIZE_ERROR), None)
        if raised:
            return (f"{raised} raised a size error with {n_real} real samples and {n_z} noise vectors: real and z may "
                    "have different batch sizes, each loss term being a mean over its own batch. A target sized from one "
                    "batch (labels made for the real batch and reused for the fakes) cannot meet the logits of the other.")
        exp_losses = expected["losses"]
        first = exp_losses.get("step 1", {})
        got_first = losses.get("step 1", {}) if isinstance(losses, dict) else {}
        same_d = compare(got_first.get("d_loss"), first.get("d_loss"), "d", rtol, atol) is None
        same_g = compare(got_first.get("g_loss"), first.get("g_loss"), "g", rtol, atol) is None
        if same_d and not same_g:
            msg += ("\n  d_loss of step 1 is right but g_loss is not: the discriminator's update is fine and the generator's "
                    "loss is off. It must be the non-saturating loss of D(G(z)) with the *same* z (fresh noise gives a "
                    "slightly different loss), through the discriminator just updated.")
        return msg

    return assess


def _step_case(g, dims, n_real, n_z, steps):
    z_dim, hidden, x_dim = dims
    g_state = {k: v.detach().clone() for k, v in tiny_generator(*dims).double().state_dict().items()}
    d_state = {k: v.detach().clone() for k, v in tiny_discriminator(x_dim, hidden).double().state_dict().items()}
    reals = [randn(g, n_real, x_dim, dtype=torch.float64) * 0.5 + 1.0 for _ in range(steps)]
    zs = [randn(g, n_z, z_dim, dtype=torch.float64) for _ in range(steps)]
    what = "one step" if steps == 1 else f"{steps} consecutive steps"
    return Case("grader.checks.gan:probe_train_steps", (dims, g_state, d_state, reals, zs), {}, rtol=1e-6, atol=1e-9,
                assess=_step_assess(n_real, n_z, 1e-6, 1e-9),
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

        def dcgan_step(generator, discriminator, g_opt, d_opt, real, z):
            """The PyTorch DCGAN tutorial's loop: one label tensor sized from the real batch."""
            criterion = nn.BCEWithLogitsLoss()
            label = torch.full((real.size(0),), 1.0, dtype=real.dtype, device=real.device)
            discriminator.zero_grad()
            err_real = criterion(discriminator(real).view(-1), label)
            err_real.backward()
            fake = generator(z)
            label.fill_(0.0)
            err_fake = criterion(discriminator(fake.detach()).view(-1), label)
            err_fake.backward()
            d_opt.step()
            generator.zero_grad()
            label.fill_(1.0)
            err_g = criterion(discriminator(fake).view(-1), label)
            err_g.backward()
            g_opt.step()
            return (err_real + err_fake).item(), err_g.item()

        def gan_train_step(generator, discriminator, g_opt, d_opt, real, z):
            if kind == "dcgan-labels":
                return dcgan_step(generator, discriminator, g_opt, d_opt, real, z)
            if kind == "fresh-noise":
                d = d_update(generator, discriminator, d_opt, real, z)
                return d, g_update(generator, discriminator, g_opt, torch.randn_like(z))
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
    Mistake("labels-sized-from-real-batch", "The labels were made once with the real batch's size (as the DCGAN tutorial does, torch.full((real.size(0),), 1.0)) and reused for the fakes: real and z may differ in batch size, so the fake logits meet a target of the wrong size. Size each target like its own logits (torch.ones_like(real_logits), torch.zeros_like(fake_logits)), or use discriminator_loss and generator_loss_nonsaturating, which need no labels.", _step_variant("dcgan-labels"), _SECTION, subsection="The training step"),
    Mistake("generator-step-fresh-noise", "The generator's update drew fresh noise: it must recompute G(z) with the same z as the discriminator's update (the contract's step is one batch of noise for both), so its g_loss differs slightly from the expected one.", _step_variant("fresh-noise"), _SECTION, subsection="The training step"),
)


_G_CURVE = Picture("curve", of="grads", inputs=(1,))  # the gradient w.r.t. each fake logit
_G_SLOPE = Picture("curve", of="gradient w.r.t. the logits", inputs=(1,))
_STEPS = Picture("training", of="losses")  # d_loss and g_loss per step


CHECKS = [
    Check("discriminator_loss_values", "discriminator_loss", 2, _d_values, D_MISTAKES,
          "BCE(real, 1) + BCE(fake, 0) on ordinary logits, batches of different sizes, gradients", Picture("curve", of="grads", inputs=(1, 2))),
    Check("discriminator_loss_extreme_logits", "discriminator_loss", 2, _d_extreme, D_MISTAKES,
          "logits of +-1e4: finite values and gradients", Picture("curve", of="grads", inputs=(1, 2))),
    Check("generator_loss_minimax_values", "generator_loss_minimax", 1, _g_values("generator_loss_minimax"), MINIMAX_MISTAKES,
          "mean(log(1 - sigmoid(x))) on ordinary logits, gradients", _G_CURVE),
    Check("generator_loss_minimax_extreme_logits", "generator_loss_minimax", 1, _g_extreme("generator_loss_minimax"), MINIMAX_MISTAKES,
          "logits of +-1e4: finite values and gradients", _G_CURVE),
    Check("generator_loss_minimax_saturates", "generator_loss_minimax", 2, _g_gradient("generator_loss_minimax"), MINIMAX_MISTAKES,
          "the gradient at D(G(z)) = 0.001 is about -0.001: the 'very low gradient at the beginning'", _G_SLOPE),
    Check("generator_loss_nonsaturating_values", "generator_loss_nonsaturating", 1, _g_values("generator_loss_nonsaturating"), NONSAT_MISTAKES,
          "-mean(log(sigmoid(x))) on ordinary logits, gradients", _G_CURVE),
    Check("generator_loss_nonsaturating_extreme_logits", "generator_loss_nonsaturating", 1, _g_extreme("generator_loss_nonsaturating"), NONSAT_MISTAKES,
          "logits of +-1e4: finite values and gradients", _G_CURVE),
    Check("generator_loss_nonsaturating_gradient", "generator_loss_nonsaturating", 2, _g_gradient("generator_loss_nonsaturating"), NONSAT_MISTAKES,
          "the gradient at D(G(z)) = 0.001 is about -0.999: the fix for the saturation", _G_SLOPE),
    Check("gan_train_step_one_step", "gan_train_step", 3, _one_step, STEP_MISTAKES,
          "one step from given weights: both networks' parameters and the two losses", _STEPS),
    Check("gan_train_step_consecutive_steps", "gan_train_step", 5, _several_steps, STEP_MISTAKES,
          "several consecutive steps: zero_grad, detach, order and loss show up from the second step", _STEPS),
]
