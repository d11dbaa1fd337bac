"""The `gan` checks catch wrong losses (also at +-1e4 logits) and wrong training steps, and name the known mistakes.

The losses are independent parts, so one variant breaks all three at once; the training step
uses the student's own losses, so its mistakes are tested with correct losses.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import mistakes, statuses, variant

_REAL = "    real_term = F.softplus(-real_logits).mean()  # -log sigmoid(real)\n"
_FAKE = "    fake_term = F.softplus(fake_logits).mean()  # -log(1 - sigmoid(fake))\n"
_DRET = "    return real_term + fake_term\n"
_MINIMAX = "    return (-F.softplus(fake_logits)).mean()  # log(1 - sigmoid(x)) = -softplus(x)\n"
_NONSAT = "    return F.softplus(-fake_logits).mean()  # -log sigmoid(x) = softplus(-x)\n"
_D_BLOCK = ("    fake = generator(z).detach()  # no gradient path into G for D's update\n"
            "    d_loss = discriminator_loss(discriminator(real), discriminator(fake))\n"
            "    d_opt.zero_grad()  # clears what the previous step's G backward left in D\n"
            "    d_loss.backward()\n"
            "    d_opt.step()\n")
_G_BLOCK = ("    g_loss = generator_loss_nonsaturating(discriminator(generator(z)))  # through the updated D\n"
            "    g_opt.zero_grad()  # clears G's gradients of the previous step\n"
            "    g_loss.backward()  # also fills D's gradients: the next step's d_opt.zero_grad() clears them\n"
            "    g_opt.step()\n")
_STEP_BODY = _D_BLOCK + "\n" + _G_BLOCK
LOSS_CHECKS = {
    "discriminator_loss": ("discriminator_loss_values", "discriminator_loss_extreme_logits"),
    "minimax": ("generator_loss_minimax_values", "generator_loss_minimax_extreme_logits", "generator_loss_minimax_saturates"),
    "nonsat": ("generator_loss_nonsaturating_values", "generator_loss_nonsaturating_extreme_logits", "generator_loss_nonsaturating_gradient"),
}
STEP_CHECKS = ("gan_train_step_one_step", "gan_train_step_consecutive_steps")


@pytest.mark.parametrize("edits, failing, named", [
    ([(_REAL, "    real_term = F.softplus(real_logits).mean()\n"), (_FAKE, "    fake_term = F.softplus(-fake_logits).mean()\n"),
      (_MINIMAX, "    return F.softplus(fake_logits).mean()\n"),
      (_NONSAT, "    return -torch.log(torch.sigmoid(fake_logits)).mean()\n")],
     ("discriminator_loss_values", "generator_loss_minimax_values", "generator_loss_nonsaturating_extreme_logits"),
     {"discriminator-labels-swapped", "minimax-sign-flipped", "naive-log-sigmoid"}),
    ([(_DRET, "    return real_term\n"), (_MINIMAX, "    return F.softplus(-fake_logits).mean()\n"),
      (_NONSAT, "    return (-F.softplus(-fake_logits)).mean()\n")],
     ("discriminator_loss_values", "generator_loss_minimax_saturates", "generator_loss_nonsaturating_gradient"),
     {"fake-term-missing", "minimax-is-nonsaturating", "nonsaturating-sign-flipped"}),
    ([(_DRET, "    return 0.5 * (real_term + fake_term)\n"), (_MINIMAX, "    return (-F.softplus(-fake_logits)).mean()\n"),
      (_NONSAT, "    return F.softplus(fake_logits).mean()\n")],
     ("discriminator_loss_values", "generator_loss_minimax_values", "generator_loss_nonsaturating_values"),
     {"discriminator-terms-averaged", "minimax-log-of-d", "nonsaturating-is-negated-minimax"}),
    ([(_REAL + _FAKE + _DRET, "    return torch.cat([F.softplus(-real_logits).flatten(), F.softplus(fake_logits).flatten()]).mean()\n"),
      (_MINIMAX, "    return torch.log(1 - torch.sigmoid(fake_logits)).mean()\n"),
      (_NONSAT, "    p = torch.sigmoid(fake_logits)\n    return F.binary_cross_entropy(p, torch.ones_like(p))\n")],
     ("discriminator_loss_values", "generator_loss_minimax_extreme_logits", "generator_loss_nonsaturating_extreme_logits"),
     {"single-mean-over-both-batches", "naive-log-one-minus-sigmoid", "bce-on-probabilities"}),
    ([(_REAL + _FAKE + _DRET, "    return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()\n")],
     ("discriminator_loss_extreme_logits",), {"naive-log-sigmoid"}),
    ([(_REAL + _FAKE + _DRET, "    p_real, p_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)\n"
                              "    return F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))\n")],
     ("discriminator_loss_extreme_logits",), {"bce-on-probabilities"}),
])
def test_wrong_losses_are_named(grade, edits, failing, named):
    result = grade("gan", source=variant("gan", *edits))
    st = statuses(result)
    for name in failing:
        assert st[name] == "failed", name
    assert named <= mistakes(result)


def test_naive_log_sigmoid_passes_ordinary_logits_but_not_1e4(grade):
    result = grade("gan", source=variant("gan", (_NONSAT, "    return -torch.log(torch.sigmoid(fake_logits)).mean()\n")))
    st = statuses(result)
    assert st["generator_loss_nonsaturating_values"] == "passed"
    assert st["generator_loss_nonsaturating_extreme_logits"] == "failed"
    msg = next(c for c in result["checks"] if c["name"] == "generator_loss_nonsaturating_extreme_logits")["message"]
    assert "infinite" in msg or "NaN" in msg
    assert {st[n] for n in LOSS_CHECKS["discriminator_loss"] + LOSS_CHECKS["minimax"]} == {"passed"}


@pytest.mark.parametrize("body, mistake", [
    ("    d_opt.zero_grad()\n    g_opt.zero_grad()\n    fake = generator(z)\n"
     "    d_loss = discriminator_loss(discriminator(real), discriminator(fake))\n    d_loss.backward()\n    d_opt.step()\n"
     "    g_loss = generator_loss_nonsaturating(discriminator(generator(z)))\n    g_loss.backward()\n    g_opt.step()\n",
     "generator-stepped-with-discriminator-gradients"),
    (_STEP_BODY.replace("    d_opt.zero_grad()  # clears what the previous step's G backward left in D\n", ""), "discriminator-gradients-not-zeroed"),
    (_STEP_BODY.replace("    g_opt.zero_grad()  # clears G's gradients of the previous step\n", ""), "generator-gradients-not-zeroed"),
    (_G_BLOCK + "\n" + _D_BLOCK, "generator-updated-first"),
    (_STEP_BODY.replace("generator_loss_nonsaturating(", "generator_loss_minimax("), "saturating-generator-loss"),
])
def test_wrong_training_step_is_named(grade, body, mistake):
    result = grade("gan", source=variant("gan", (_STEP_BODY, body)))
    st = statuses(result)
    assert st["gan_train_step_consecutive_steps"] == "failed"
    assert mistake in mistakes(result)
    assert {st[n] for group in LOSS_CHECKS.values() for n in group} == {"passed"}
    if mistake.endswith("not-zeroed"):
        # the first step starts from zero gradients: the mistake shows from the second step on
        assert st["gan_train_step_one_step"] == "passed"
    else:
        assert st["gan_train_step_one_step"] == "failed"


def test_detaching_only_for_the_discriminator_is_harmless_when_g_is_zeroed_before_its_backward(grade):
    """Not detaching G(z) for D's update wastes work but leaks nothing if G's gradients are
    zeroed right before G's backward: the contract is about the updates, and they are right."""
    body = _STEP_BODY.replace("    fake = generator(z).detach()  # no gradient path into G for D's update\n", "    fake = generator(z)\n")
    result = grade("gan", source=variant("gan", (_STEP_BODY, body)))
    assert result["score"] == result["max_score"]


def test_losses_returned_as_tensors_fail_with_a_type_message(grade):
    result = grade("gan", source=variant("gan", ("    return d_loss.item(), g_loss.item()\n", "    return d_loss, g_loss\n")))
    check = next(c for c in result["checks"] if c["name"] == "gan_train_step_one_step")
    assert check["status"] == "failed"
    assert "expected float" in check["message"]


def test_reference_gradients_at_an_untrained_generator():
    """The figures the checks stand on: at D(G(z)) = 0.001 the minimax gradient is -0.001, the
    non-saturating one -0.999 (with respect to the logit), and both losses stay finite at +-1e4."""
    from grader.engine.session import load_reference

    ref = load_reference("gan")
    x = torch.full((1,), math.log(0.001 / 0.999), dtype=torch.float64, requires_grad=True)
    (g_minimax,) = torch.autograd.grad(ref.generator_loss_minimax(x), [x])
    (g_nonsat,) = torch.autograd.grad(ref.generator_loss_nonsaturating(x), [x])
    assert g_minimax.item() == pytest.approx(-0.001, rel=1e-9)
    assert g_nonsat.item() == pytest.approx(-0.999, rel=1e-9)
    big = torch.tensor([1e4, -1e4], requires_grad=True)
    for loss in (ref.discriminator_loss(big, big), ref.generator_loss_minimax(big), ref.generator_loss_nonsaturating(big)):
        (grad,) = torch.autograd.grad(loss, [big])
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
