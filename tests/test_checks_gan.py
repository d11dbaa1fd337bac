"""The `gan` checks catch wrong losses (also at +-1e4 logits) and wrong training steps, and name the known mistakes.

The losses are independent parts, so one variant breaks all three at once; the training step is
graded with the grader's own losses in place of the student's, so it keeps its points when only the
losses are wrong (tested below), and its mistakes are tested on their own.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import mistakes, statuses, variant
from grader.checks.gan import CHECKS
from mistake_matching import assert_named, check_named, indistinguishable

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
    from grader.engine.oracles import load_reference

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


# --- every mistake is told apart from the others, on the cases of each check ----------------------
@pytest.mark.parametrize("check", [c.name for c in CHECKS if c.mistakes])
def test_mistakes_of_each_check_are_told_apart(check):
    assert indistinguishable("gan", check_named("gan", check)) == {}


# max(x, 0) + log(1 + exp(-|x|)), the stable rewrite of softplus, built from relu and abs.
_KINKED = "(F.relu({x}) + torch.log1p(torch.exp(-({x}).abs())))"


def test_stable_rewrite_with_a_kink_at_zero_is_named_for_every_loss(grade, tmp_path):
    src = variant("gan",
                  (_REAL, f"    real_term = {_KINKED.format(x='-real_logits')}.mean()\n"),
                  (_FAKE, f"    fake_term = {_KINKED.format(x='fake_logits')}.mean()\n"),
                  (_MINIMAX, f"    return (-{_KINKED.format(x='fake_logits')}).mean()\n"),
                  (_NONSAT, f"    return {_KINKED.format(x='-fake_logits')}.mean()\n"))
    result = grade("gan", source=src)
    st = statuses(result)
    # right values everywhere, and finite at +-1e4: only the gradient at exactly 0 is wrong
    assert st["generator_loss_minimax_values"] == st["generator_loss_nonsaturating_values"] == "passed"
    for check in ("discriminator_loss_values", "discriminator_loss_extreme_logits", "generator_loss_minimax_extreme_logits",
                  "generator_loss_minimax_saturates", "generator_loss_nonsaturating_extreme_logits", "generator_loss_nonsaturating_gradient"):
        assert_named(result, "gan", src, tmp_path, check, "stable-rewrite-gradient-wrong-at-zero")
    assert "gradient" in next(c for c in result["checks"] if c["name"] == "discriminator_loss_values")["message"]


# The PyTorch DCGAN tutorial's training loop, adapted to the contract's arguments: one label
# tensor, sized from the real batch, filled with 1 for the real batch, 0 for the fakes and 1 again
# for G's step.
_DCGAN = '''    criterion = nn.BCEWithLogitsLoss()
    b_size = real.size(0)
    label = torch.full((b_size,), 1.0, dtype=real.dtype, device=real.device)
    discriminator.zero_grad()
    output = discriminator(real).view(-1)
    err_d_real = criterion(output, label)
    err_d_real.backward()
    fake = generator(z)
    label.fill_(0.0)
    output = discriminator(fake.detach()).view(-1)
    err_d_fake = criterion(output, label)
    err_d_fake.backward()
    err_d = err_d_real + err_d_fake
    d_opt.step()
    generator.zero_grad()
    label.fill_(1.0)
    output = discriminator(fake).view(-1)
    err_g = criterion(output, label)
    err_g.backward()
    g_opt.step()
    return err_d.item(), err_g.item()
'''


def test_dcgan_loop_with_labels_sized_from_the_real_batch_is_named(grade, tmp_path):
    src = variant("gan", (_STEP_BODY + "    return d_loss.item(), g_loss.item()\n", _DCGAN))
    result = grade("gan", source=src)
    for check in STEP_CHECKS:
        assert_named(result, "gan", src, tmp_path, check, "labels-sized-from-real-batch")
        message = next(c for c in result["checks"] if c["name"] == check)["message"]
        assert "size" in message and "real samples" in message and "Traceback" not in message


def test_dcgan_loop_with_labels_like_the_logits_passes(grade):
    """The same loop with each target sized like its own logits is a correct step."""
    src = variant("gan", (_STEP_BODY + "    return d_loss.item(), g_loss.item()\n", _DCGAN
                          .replace("    label.fill_(0.0)\n    output = discriminator(fake.detach()).view(-1)\n",
                                   "    output = discriminator(fake.detach()).view(-1)\n    label = torch.zeros_like(output)\n")
                          .replace("    label.fill_(1.0)\n    output = discriminator(fake).view(-1)\n",
                                   "    output = discriminator(fake).view(-1)\n    label = torch.ones_like(output)\n")))
    result = grade("gan", source=src)
    assert result["score"] == result["max_score"], {c["name"]: c["message"] for c in result["checks"] if c["message"]}


def test_generator_step_with_fresh_noise_is_named(grade, tmp_path):
    src = variant("gan", (_G_BLOCK, _G_BLOCK.replace("discriminator(generator(z))", "discriminator(generator(torch.randn_like(z)))")))
    result = grade("gan", source=src)
    for check in STEP_CHECKS:
        assert_named(result, "gan", src, tmp_path, check, "generator-step-fresh-noise")
    message = next(c for c in result["checks"] if c["name"] == "gan_train_step_one_step")["message"]
    assert "*same* z" in message


def test_a_size_error_with_equal_batches_stays_an_error(grade):
    """Only a size error where real and z differ in size is read as the labels' mistake."""
    src = variant("gan", (_STEP_BODY, "    if real.shape[0] == z.shape[0]:\n        raise ValueError('the sizes do not fit')\n" + _STEP_BODY))
    result = grade("gan", source=src)
    check = next(c for c in result["checks"] if c["name"] == "gan_train_step_one_step")
    assert check["status"] == "error" and "the sizes do not fit" in check["message"]


def test_wrong_losses_cost_the_training_step_nothing(grade):
    """The step calls discriminator_loss and generator_loss_nonsaturating; while it is graded they
    are the grader's, so the step is graded on its own."""
    result = grade("gan", source=variant("gan", (_DRET, "    return 0.5 * (real_term + fake_term)\n"),
                                         (_NONSAT, "    return F.softplus(fake_logits).mean()\n")))
    st = statuses(result)
    assert st["discriminator_loss_values"] == st["generator_loss_nonsaturating_values"] == "failed"
    assert {st[c] for c in STEP_CHECKS} == {"passed"}
