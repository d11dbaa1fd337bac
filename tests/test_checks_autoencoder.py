"""The `autoencoder` checks catch wrong models, losses, noise and training loops, and name the known mistakes.

The two training checks take a few seconds each, so the mistake tests grade with those two left
out (`fast_checks`); separate tests run them on a second plain architecture (which must pass) and
on broken models and loops (which must fail), and prove that the training check is deterministic.
"""

from __future__ import annotations

import copy
import types

import pytest
import torch

from conftest import mistakes, statuses, variant
from mistake_matching import assert_named, check_named, indistinguishable

TRAINING = ("autoencoder_trains_below_baseline", "train_autoencoder_denoises")

_SIGMOID = "            nn.Sigmoid(),  # pixel values in [0, 1]\n"
_TCONV1 = "            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),  # (N, 16, 14, 14)\n"
_TCONV2 = "            nn.ConvTranspose2d(16, in_channels, 4, stride=2, padding=1),  # (N, C, 28, 28)\n"
_FORWARD = "        return self.decode(self.encode(x))\n"
_LOSS = "    return ((x_hat - x) ** 2).mean()\n"
_NOISE = ("    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)\n"
          "    return (x + std * noise).clamp(0.0, 1.0)\n")
_OPT = "    optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n"
_INPUTS = "            inputs = add_noise(clean, noise_std, generator) if noise_std > 0 else clean\n"
_STEP_LOSS = "            loss = reconstruction_loss(clean, model(inputs))\n"
_ZERO = "            optimizer.zero_grad()\n"
_STEP = "            optimizer.step()\n"
_TOTAL = "            total += loss.item() * clean.shape[0]\n"
_HIST = "        history.append(total / n)\n"
_TOTAL_INIT = "        total = 0.0\n"


@pytest.fixture
def fast_checks(monkeypatch):
    """Grade without the two training checks (they have their own tests below)."""
    _only(monkeypatch, *(c.name for c in _all_checks() if c.name not in TRAINING))


def _all_checks():
    from grader.checks import autoencoder

    return autoencoder.CHECKS


def _only(monkeypatch, *names):
    """Grade only the named checks (the others are tested elsewhere in this file)."""
    from grader.checks import autoencoder

    monkeypatch.setattr(autoencoder, "CHECKS", [c for c in autoencoder.CHECKS if c.name in names])


MODEL_CHECKS = ("autoencoder_shapes", "autoencoder_output_range", "autoencoder_bottleneck")
LOOP_CHECKS = ("train_autoencoder_exact_full_batch", "train_autoencoder_epoch_losses")


# (edits, check that fails, mistake named there). The model checks use the student's model and
# the loop checks the grader's own models, so one model and one loop mistake share a variant.
_MODEL_MISTAKES = [
    ([(_SIGMOID, "")], "autoencoder_output_range", "decoder-without-sigmoid"),
    ([(_SIGMOID, "            nn.ReLU(),\n")], "autoencoder_output_range", "decoder-ends-with-relu"),
    ([("        self.in_channels, self.latent_dim = in_channels, latent_dim\n", "        self.in_channels, self.latent_dim = in_channels, 16\n"),
      ("            nn.Linear(32 * 7 * 7, latent_dim),  # (N, latent_dim)\n", "            nn.Linear(32 * 7 * 7, 16),\n"),
      ("            nn.Linear(latent_dim, 32 * 7 * 7),\n", "            nn.Linear(16, 32 * 7 * 7),\n")],
     "autoencoder_shapes", "latent-dim-ignored"),
    ([(_TCONV1, _TCONV1.replace("4, stride", "3, stride")), (_TCONV2, _TCONV2.replace("4, stride", "3, stride"))],
     "autoencoder_shapes", "decoder-output-not-28"),
    ([(_TCONV2, "            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1),\n")], "autoencoder_shapes", "decoder-ignores-in-channels"),
    ([(_FORWARD, "        return 0.5 * (self.decode(self.encode(x)) + x)\n")], "autoencoder_bottleneck", "skip-around-bottleneck"),
]
_BATCH_VALUES = [(_TOTAL_INIT, "        values = []\n"), (_TOTAL, "            values.append(loss.item())\n")]
_LOOP_MISTAKES = [
    ([(_ZERO, "")], "train_autoencoder_exact_full_batch", "zero-grad-missing"),
    ([(_OPT, "    optimizer = torch.optim.SGD(model.parameters(), lr=lr)\n")], "train_autoencoder_exact_full_batch", "sgd-instead-of-adam"),
    ([(_STEP, _STEP + "            with torch.no_grad():\n                loss = reconstruction_loss(clean, model(inputs))\n")],
     "train_autoencoder_exact_full_batch", "loss-reported-after-step"),
    ([(_OPT, "    optimizer = torch.optim.Adam(model.parameters())\n")], "train_autoencoder_exact_full_batch", "lr-ignored"),
    ([(_STEP_LOSS, "            loss = reconstruction_loss(inputs, model(inputs))\n")], "train_autoencoder_epoch_losses", "noisy-image-as-target"),
    ([(_INPUTS, "            inputs = clean\n")], "train_autoencoder_epoch_losses", "noise-never-added"),
    ([*_BATCH_VALUES, (_HIST, "        history.append(sum(values) / len(values))\n")], "train_autoencoder_epoch_losses", "epoch-loss-mean-of-batch-means"),
    ([*_BATCH_VALUES, (_HIST, "        history.append(sum(values))\n")], "train_autoencoder_epoch_losses", "epoch-loss-sum-of-batches"),
    ([(_HIST, "        history.append(loss.item())\n")], "train_autoencoder_epoch_losses", "epoch-loss-last-batch"),
]


@pytest.mark.parametrize("model, loop", list(zip(_MODEL_MISTAKES + [None] * 3, _LOOP_MISTAKES)),
                         ids=[m[2] for m in _LOOP_MISTAKES])
def test_wrong_model_and_training_loop_are_named(grade, monkeypatch, model, loop):
    _only(monkeypatch, *MODEL_CHECKS, *LOOP_CHECKS)
    edits = loop[0] + (model[0] if model else [])
    result = grade("autoencoder", source=variant("autoencoder", *edits))
    st, named = statuses(result), mistakes(result)
    for wrong in filter(None, (model, loop)):
        assert st[wrong[1]] == "failed", wrong[1]
        assert wrong[2] in named
    if model is None:
        assert {st[name] for name in MODEL_CHECKS} == {"passed"}


_RANDN = "torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)"
_LOSS_MISTAKES = [
    ("    return ((x_hat - x) ** 2).sum()\n", "loss-sum-not-mean"),
    ("    return ((x_hat - x) ** 2).flatten(1).sum(1).mean()\n", "loss-per-image-sum"),
    ("    return (x_hat - x).abs().mean()\n", "loss-absolute-error"),
    ("    return ((x_hat - x) ** 2).mean().sqrt()\n", "loss-root-mean-square"),
    (None, None),
]
_NOISE_MISTAKES = [
    (f"    return x + std * {_RANDN}\n", "noise-not-clamped"),
    (f"    return (x + std**2 * {_RANDN}).clamp(0, 1)\n", "noise-std-squared"),
    ("    return (x + std * torch.randn(x.shape, dtype=x.dtype, device=x.device)).clamp(0.0, 1.0)\n", "noise-generator-ignored"),
    (f"    return (x + std * {_RANDN.replace('randn', 'rand')}).clamp(0.0, 1.0)\n", "noise-uniform"),
    (f"    return x.add_(std * {_RANDN}).clamp_(0.0, 1.0)\n", "noise-in-place"),
]


@pytest.mark.parametrize("loss, noise", list(zip(_LOSS_MISTAKES, _NOISE_MISTAKES)), ids=[n[1] for n in _NOISE_MISTAKES])
def test_wrong_loss_and_noise_are_named(grade, monkeypatch, loss, noise):
    _only(monkeypatch, "reconstruction_loss_values", "add_noise_statistics")
    edits = [(_NOISE, noise[0])] + ([(_LOSS, loss[0])] if loss[0] else [])
    result = grade("autoencoder", source=variant("autoencoder", *edits))
    st = statuses(result)
    assert st["add_noise_statistics"] == "failed"
    assert st["reconstruction_loss_values"] == ("failed" if loss[0] else "passed")
    assert {noise[1], loss[1]} - {None} <= mistakes(result)


def test_each_part_is_graded_on_its_own(grade, fast_checks):
    """A wrong model, loss and noise at once: each fails its own checks, and the loop, which
    calls that loss and that noise, keeps its points (the grader's own run while it is graded)."""
    src = variant("autoencoder", (_SIGMOID, ""), (_LOSS, "    return ((x_hat - x) ** 2).sum()\n"),
                  (_NOISE, f"    return x + std * {_RANDN}\n"))
    st = statuses(grade("autoencoder", source=src))
    assert st["autoencoder_shapes"] == st["autoencoder_bottleneck"] == "passed"
    assert st["autoencoder_output_range"] == st["reconstruction_loss_values"] == st["add_noise_statistics"] == "failed"
    assert st["train_autoencoder_exact_full_batch"] == st["train_autoencoder_epoch_losses"] == "passed"


def test_messages_say_what_is_wrong(grade, fast_checks):
    src = variant("autoencoder", (_SIGMOID, ""), (_FORWARD, "        return 0.5 * (self.decode(self.encode(x)) + x)\n"),
                  (_STEP_LOSS, "            loss = reconstruction_loss(inputs, model(inputs))\n"))
    checks = {c["name"]: c for c in grade("autoencoder", source=src)["checks"]}
    assert "outside [0, 1]" in checks["autoencoder_output_range"]["message"]
    assert "sigmoid" in checks["autoencoder_output_range"]["message"]
    assert "around the bottleneck" in checks["autoencoder_bottleneck"]["message"]
    assert "*noisy* input" in checks["train_autoencoder_epoch_losses"]["message"]


def test_decode_that_remembers_the_last_input_fails_the_bottleneck(grade, fast_checks):
    src = variant("autoencoder",
                  ("        return self.encoder(x)\n", "        self._last = x\n        return self.encoder(x)\n"),
                  ("        return self.decoder(z)\n", "        return 0.9 * self.decoder(z) + 0.1 * self._last\n"))
    result = grade("autoencoder", source=src)
    check = next(c for c in result["checks"] if c["name"] == "autoencoder_bottleneck")
    assert check["status"] == "failed"


_PLAIN_AE = '''

class ConvAutoencoder(nn.Module):
    """Max pooling down, nearest-neighbour upsampling and convolutions up; no normalisation layers."""

    def __init__(self, in_channels: int = 1, latent_dim: int = 16) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(16 * 49, latent_dim))
        self.dec = nn.Sequential(nn.Linear(latent_dim, 16 * 49), nn.ReLU(), nn.Unflatten(1, (16, 7, 7)),
                                 nn.Upsample(scale_factor=2), nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(),
                                 nn.Upsample(scale_factor=2), nn.Conv2d(8, in_channels, 3, padding=1), nn.Sigmoid())

    def encode(self, x):
        return self.enc(x)

    def decode(self, z):
        return self.dec(z)

    def forward(self, x):
        return self.decode(self.encode(x))
'''


def test_a_different_plain_conv_autoencoder_passes_every_model_check(grade, monkeypatch):
    """The training budget is calibrated for plain architectures, not only the reference's."""
    _only(monkeypatch, *MODEL_CHECKS, "autoencoder_trains_below_baseline")
    src = variant("autoencoder", ("\nclass ConvAutoencoder(nn.Module):", "\nclass _ReferenceAutoencoder(nn.Module):")) + _PLAIN_AE
    result = grade("autoencoder", source=src)
    assert result["score"] == result["max_score"] == 10, {c["name"]: c["message"] for c in result["checks"] if c["message"]}


def _plain_autoencoder_module() -> types.ModuleType:
    module = types.ModuleType("plain_autoencoder")
    exec("import torch\nfrom torch import nn\n" + _PLAIN_AE, module.__dict__)
    return module


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_training_budget_holds_at_other_seeds(seed):
    """At other base seeds (other data and initial weights) the plain conv autoencoder still
    passes the training check, and an encoder whose code is detached still fails it. Both train
    here, in the test's process, for the check's budget: about 2 s at each seed."""
    from grader.checks import autoencoder as A
    from grader.engine.oracles import LiveOracle, load_reference
    from grader.engine.spec import derive_seed
    from grader.runner.probes import sanitize

    check = next(c for c in A.CHECKS if c.name == "autoencoder_trains_below_baseline")
    (case,) = LiveOracle("autoencoder").cases(check, derive_seed(seed, "autoencoder", check.name))

    class Detached(load_reference("autoencoder").ConvAutoencoder):
        def encode(self, x):
            return super().encode(x).detach()

    def assessed(module):
        with torch.random.fork_rng(devices=[]):
            return case.assess(sanitize(A.probe_fit(module, *copy.deepcopy(case.args))), None)

    assert assessed(_plain_autoencoder_module()) is None
    failure = assessed(types.SimpleNamespace(ConvAutoencoder=Detached))
    assert failure is not None and "mean-image baseline" in failure


def test_a_model_that_cannot_learn_fails_the_training_check(grade, monkeypatch):
    """An encoder whose code is detached: the decoder alone can only learn the mean image."""
    _only(monkeypatch, "autoencoder_trains_below_baseline")
    src = variant("autoencoder", ("        return self.encoder(x)\n", "        return self.encoder(x).detach()\n"))
    check = grade("autoencoder", source=src)["checks"][0]
    assert check["status"] == "failed"
    assert "mean-image baseline" in check["message"] and "reference reaches" in check["message"]


def test_untrained_background_and_mean_image_fail_the_assessment():
    """The threshold itself: outputs of an untrained model, all-black outputs and the mean image fail."""
    from grader.checks import autoencoder as A
    from grader.engine.oracles import LiveOracle, load_reference
    from grader.runner.probes import sanitize
    from grader.engine.spec import derive_seed

    oracle = LiveOracle("autoencoder")
    check = next(c for c in A.CHECKS if c.name == "autoencoder_trains_below_baseline")
    (case,) = oracle.cases(check, derive_seed(0, "autoencoder", check.name))
    train, evaluation = case.args[1], case.args[2]
    untrained = A.probe_fit(load_reference("autoencoder"), *case.args[:3], 0, *case.args[4:])  # 0 epochs
    outputs = {
        "untrained": untrained["reconstructed"],
        "black background": torch.zeros_like(evaluation),
        "mean image": train.mean(0, keepdim=True).expand_as(evaluation),
    }
    for name, out in outputs.items():
        msg = case.assess(sanitize({"losses": [], "reconstructed": out}), None)
        assert msg is not None and "baseline" in msg, name
    assert "black background" in case.assess(sanitize({"losses": [], "reconstructed": outputs["black background"]}), None)


def test_training_check_is_deterministic():
    """Same seed, same data and the same result, bitwise (the probe trains on one thread)."""
    from grader.checks import autoencoder as A
    from grader.engine.oracles import LiveOracle, load_reference
    from grader.engine.spec import derive_seed

    oracle = LiveOracle("autoencoder")
    check = next(c for c in A.CHECKS if c.name == "autoencoder_trains_below_baseline")
    seed = derive_seed(0, "autoencoder", check.name)
    (a,), (b,) = oracle.cases(check, seed), oracle.cases(check, seed)
    assert all(torch.equal(x, y) for x, y in zip(a.args[1:3], b.args[1:3])) and a.args[3:] == b.args[3:]
    ref = load_reference("autoencoder")
    small = (a.args[0], a.args[1][:128], a.args[2], 2, *a.args[4:])  # a shorter run shows the same
    with torch.random.fork_rng(devices=[]):
        first = A.probe_fit(ref, *copy.deepcopy(small))
        second = A.probe_fit(ref, *copy.deepcopy(small))
    assert first["losses"] == second["losses"]
    assert torch.equal(first["reconstructed"], second["reconstructed"])


def test_a_loop_that_never_adds_noise_fails_the_denoising_check(grade, monkeypatch):
    """It trains a fine plain autoencoder, which does not remove noise it has never seen (its
    output is measured at 1.2-1.6 times the noisy input's error; the reference's loop 0.35-0.4)."""
    _only(monkeypatch, "train_autoencoder_denoises")
    check = grade("autoencoder", source=variant("autoencoder", (_INPUTS, "            inputs = clean\n")))["checks"][0]
    assert check["status"] == "failed"
    assert "noisy inputs were" in check["message"]


# --- the loop's mistakes are told apart from one another ------------------------------------------
@pytest.mark.parametrize("check", [*LOOP_CHECKS, "train_autoencoder_denoises"])
def test_loop_mistakes_are_told_apart(check):
    assert indistinguishable("autoencoder", check_named("autoencoder", check)) == {}


def test_a_loop_that_trains_against_the_noisy_input_fails_the_denoising_check(grade, monkeypatch, tmp_path):
    """It still denoises a little (the bottleneck cannot copy the noise), but it learns the
    noise's mean: its outputs are as much brighter than the clean images as the noisy inputs."""
    _only(monkeypatch, "train_autoencoder_denoises")
    src = variant("autoencoder", (_STEP_LOSS, "            loss = reconstruction_loss(inputs, model(inputs))\n"))
    result = grade("autoencoder", source=src)
    assert_named(result, "autoencoder", src, tmp_path, "train_autoencoder_denoises", "noisy-image-as-target")
    assert "brighter" in result["checks"][0]["message"]


def test_a_correct_loop_written_differently_passes_the_denoising_check(grade, monkeypatch):
    """The noise of a whole epoch drawn at once, F.mse_loss, its own indexing: correct."""
    _only(monkeypatch, "train_autoencoder_denoises")
    loop = ("    optimizer = torch.optim.Adam(model.parameters(), lr=lr)\n"
            "    n = data.shape[0]\n    history = []\n    for _ in range(epochs):\n"
            "        noisy = add_noise(data, noise_std, generator) if noise_std > 0 else data\n"
            "        perm = torch.randperm(n, generator=generator)\n        total = 0.0\n"
            "        for i in range(0, n, batch_size):\n            idx = perm[i:i + batch_size]\n"
            "            loss = torch.nn.functional.mse_loss(model(noisy[idx]), data[idx])\n"
            "            optimizer.zero_grad()\n            loss.backward()\n            optimizer.step()\n"
            "            total += loss.item() * len(idx)\n        history.append(total / n)\n    return history\n")
    body = variant("autoencoder")[variant("autoencoder").index(_OPT):]
    result = grade("autoencoder", source=variant("autoencoder", (body, loop)))
    assert result["checks"][0]["status"] == "passed", result["checks"][0]["message"]


def test_adamw_is_named_and_a_near_miss_suggests_the_usual_causes(grade, monkeypatch, tmp_path):
    _only(monkeypatch, "train_autoencoder_exact_full_batch")
    src = variant("autoencoder", (_OPT, "    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n"))
    result = grade("autoencoder", source=src)
    assert_named(result, "autoencoder", src, tmp_path, "train_autoencoder_exact_full_batch", "adamw-weight-decay")
    # an optimiser setting no mistake reproduces: not named, but the message says where to look
    check = grade("autoencoder", source=variant("autoencoder", (_OPT, "    optimizer = torch.optim.Adam(model.parameters(), lr=lr, amsgrad=True)\n")))["checks"][0]
    assert check["status"] == "failed" and check["mistake"] is None
    assert "weight decay" in check["message"] and "zero_grad" in check["message"]


def test_a_wrong_loss_report_gets_no_optimiser_hint(grade, monkeypatch):
    """The weights are right when only the reported loss is wrong: the hint would mislead."""
    _only(monkeypatch, "train_autoencoder_exact_full_batch")
    edit = (_STEP, _STEP + "            with torch.no_grad():\n                loss = reconstruction_loss(clean, model(inputs))\n")
    check = grade("autoencoder", source=variant("autoencoder", edit))["checks"][0]
    assert check["mistake"]["name"] == "loss-reported-after-step" and "weight decay" not in check["message"]


_LATENT_16 = [("        self.in_channels, self.latent_dim = in_channels, latent_dim\n", "        self.in_channels, self.latent_dim = in_channels, 16\n"),
              ("            nn.Linear(32 * 7 * 7, latent_dim),  # (N, latent_dim)\n", "            nn.Linear(32 * 7 * 7, 16),\n"),
              ("            nn.Linear(latent_dim, 32 * 7 * 7),\n", "            nn.Linear(16, 32 * 7 * 7),\n")]


def test_a_wrong_latent_size_is_reported_once_and_the_range_still_checked(grade, monkeypatch):
    """latent_dim ignored and no sigmoid: the shapes check names the latent size; the range check
    decodes codes of the size encode returns, so it still reports the outputs outside [0, 1]
    rather than a size error inside decode."""
    _only(monkeypatch, *MODEL_CHECKS)
    result = grade("autoencoder", source=variant("autoencoder", *_LATENT_16, (_SIGMOID, "")))
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["autoencoder_shapes"]["mistake"]["name"] == "latent-dim-ignored"
    assert checks["autoencoder_output_range"]["status"] == "failed"
    message = checks["autoencoder_output_range"]["message"]
    assert "outside [0, 1]" in message and "reported by autoencoder_shapes" in message
    assert "encode returns codes of shape" in checks["autoencoder_bottleneck"]["message"]
    # with the sigmoid, the latent size alone costs the range check nothing
    alone = grade("autoencoder", source=variant("autoencoder", *_LATENT_16))
    assert statuses(alone)["autoencoder_output_range"] == "passed"
