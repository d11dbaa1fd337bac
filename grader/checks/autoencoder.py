"""Hidden checks for `autoencoder`: behavioural, because the architecture is the student's choice.

The grader makes its own synthetic 28x28 images (`make_shapes`: seeded discs, squares and bars with
a little pixel noise) and checks, part by part:
- `ConvAutoencoder`: the shapes of `encode`/`decode`/`forward`; outputs in [0, 1] even for large
  latent codes (shaped like what `encode` returns, so that a wrong latent size, which the shapes
  check reports, does not hide the range); a real bottleneck (the Jacobian of `forward` has rank <= latent_dim, and `decode`
  uses nothing but z); and that, trained by the grader's own loop for a fixed small budget, its
  reconstruction error is clearly below the mean-image baseline.
- `reconstruction_loss`: against the reference.
- `add_noise`: statistics against the grader's own Monte-Carlo estimates, clamping, the generator
  (same seed, same noise), input left unchanged.
- `train_autoencoder`: with one full batch and no noise the loop is deterministic, so it is compared
  exactly with the reference's (losses and final weights); with lr = 0 the reported epoch losses are
  the plain mean over the samples, and with noise they must match the clean-target loss; trained on
  the grader's conv autoencoder with noise, the denoised output must be closer to the clean images
  than the noisy input was, and not brightened by the noise (a model trained against the noisy
  input learns the clamped noise's mean). A near miss of the exact loop names the usual causes.
  The loop is graded on its own: while it runs, the module's `reconstruction_loss` and
  `add_noise` are the grader's, so a wrong loss or noise costs only its own part.
Probes return raw outputs; every threshold is applied here, in the grader, by `assess` functions.
Thresholds were set from the reference's figures with a wide margin (see `_FIT` and `_DENOISE`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from grader.checks import call, relative_gap
from grader.engine.compare import TENSOR_KEY, compare, is_tensor
from grader.engine.spec import Case, Check, Mistake, Picture

_SECTION = "Autoencoders"
SIZE = 28


# --- synthetic data ------------------------------------------------------------------------------
def make_shapes(g: torch.Generator, n: int, channels: int = 1, pixel_noise: float = 0.05) -> torch.Tensor:
    """`n` seeded 28x28 images, each one disc, square or bar (random place, size and brightness)
    on a black background, plus Gaussian pixel noise, clamped to [0, 1]. Tensor[n, channels, 28, 28] float32."""
    coords = torch.arange(SIZE, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (28, 28)
    kind = torch.randint(0, 3, (n,), generator=g)[:, None, None]
    cy = (8 + 12 * torch.rand(n, generator=g))[:, None, None]
    cx = (8 + 12 * torch.rand(n, generator=g))[:, None, None]
    r = (5 + 5 * torch.rand(n, generator=g))[:, None, None]
    brightness = (0.6 + 0.4 * torch.rand(n, channels, generator=g))[:, :, None, None]
    horizontal = (torch.rand(n, generator=g) < 0.5)[:, None, None]
    dy, dx = yy - cy, xx - cx  # (n, 28, 28)
    disc = dy**2 + dx**2 <= r**2
    square = (dy.abs() <= 0.85 * r) & (dx.abs() <= 0.85 * r)
    bar = torch.where(horizontal, (dy.abs() <= 0.4 * r) & (dx.abs() <= 2 * r), (dx.abs() <= 0.4 * r) & (dy.abs() <= 2 * r))
    mask = torch.where(kind == 0, disc, torch.where(kind == 1, square, bar))  # (n, 28, 28)
    images = mask[:, None].float() * brightness + pixel_noise * torch.randn(n, channels, SIZE, SIZE, generator=g)
    return images.clamp(0.0, 1.0)


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean())


def _tensor(value: Any) -> torch.Tensor | None:
    return value[TENSOR_KEY] if is_tensor(value) else None


def _shape_of(value: Any) -> Any:
    return list(value.shape) if isinstance(value, torch.Tensor) else f"not a tensor: {type(value).__name__}"


# --- the grader's own models and loop (trusted code, same on both sides) ---------------------------
def _tiny_mlp_autoencoder() -> nn.Module:
    """The model `train_autoencoder` is checked with where the loop must match exactly."""
    return nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 24), nn.ReLU(), nn.Linear(24, 6), nn.ReLU(),
                         nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, SIZE * SIZE), nn.Sigmoid(), nn.Unflatten(1, (1, SIZE, SIZE)))


class _Affine(nn.Module):
    """out = weight * x + bias with two scalar parameters: with lr = 0 the epoch losses are known."""

    def __init__(self, weight: float, bias: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight, dtype=torch.float64))
        self.bias = nn.Parameter(torch.tensor(bias, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x + self.bias


def _grader_conv_autoencoder(latent_dim: int = 16) -> nn.Module:
    """A plain conv autoencoder (no normalisation) that `train_autoencoder` trains in the denoising check.
    LeakyReLU and 4x4 kernels make it leave the "black background" plateau early and reliably."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (N, 16, 14, 14)
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (N, 32, 7, 7)
        nn.Flatten(), nn.Linear(32 * 7 * 7, latent_dim),  # (N, latent_dim)
        nn.Linear(latent_dim, 32 * 7 * 7), nn.LeakyReLU(0.2), nn.Unflatten(1, (32, 7, 7)),
        nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (N, 16, 14, 14)
        nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Sigmoid())  # (N, 1, 28, 28)


def _fit(model: nn.Module, data: torch.Tensor, epochs: int, lr: float, batch_size: int, g: torch.Generator) -> list[float]:
    """The grader's own training loop (Adam, MSE), used to train the student's ConvAutoencoder."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(epochs):
        order = torch.randperm(data.shape[0], generator=g, device=g.device).to(data.device)
        total = 0.0
        for start in range(0, data.shape[0], batch_size):
            batch = data[order[start : start + batch_size]]
            loss = ((model(batch) - batch) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * batch.shape[0]
        losses.append(total / data.shape[0])
    return losses


# --- probes --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Train on one thread, as the worker does, also where the caller has not set it (`grade` and
    the tests do): the grader computes the reference's run while the worker runs the student's,
    and small convolutions on several threads of a busy machine are many times slower (18 s
    instead of 4 s measured on a loaded 2-core machine). One thread also makes both runs
    bitwise comparable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def probe_shapes(mod: Any, init_args: tuple, x: torch.Tensor, init_seed: int, device: str = "cpu", seed: int = 0) -> dict:
    """Shapes and dtypes of encode(x), decode(encode(x)) and forward(x)."""
    torch.manual_seed(init_seed)
    model = mod.ConvAutoencoder(*init_args).to(device)
    x = x.to(device)
    z = model.encode(x)
    out = model.decode(z)
    fwd = model(x)
    return {"encode": _shape_of(z), "decode": _shape_of(out), "forward": _shape_of(fwd),
            "dtypes": [str(getattr(t, "dtype", None)) for t in (z, out, fwd)]}


def probe_outputs(mod: Any, init_args: tuple, x: torch.Tensor, z: torch.Tensor, init_seed: int,
                  device: str = "cpu", seed: int = 0) -> dict:
    """forward(x) on images and decode(z) on large latent codes, untrained (seeded init).

    The codes are shaped like what encode returns: when that is not (N, latent_dim) (the shapes
    check says so), z is drawn again, as large, in encode's shape, so that the range is still
    checked rather than lost to a size error inside decode."""
    torch.manual_seed(init_seed)
    model = mod.ConvAutoencoder(*init_args).to(device).eval()
    with torch.no_grad():
        x = x.to(device)
        forward = model(x)
        code = model.encode(x)
        if isinstance(code, torch.Tensor) and tuple(code.shape[1:]) != tuple(z.shape[1:]):
            gen = torch.Generator().manual_seed(init_seed)
            z = z.std() * torch.randn((z.shape[0], *code.shape[1:]), generator=gen, dtype=z.dtype)
        return {"forward": forward, "decode": model.decode(z.to(device)), "code_shape": list(z.shape)}


def probe_bottleneck(mod: Any, init_args: tuple, x: torch.Tensor, other: torch.Tensor, copies: int, init_seed: int,
                     device: str = "cpu", seed: int = 0) -> dict:
    """Random projections of the Jacobian of forward at x (its rows: `copies` vector-Jacobian
    products), and decode(z) recomputed after encoding another image, next to forward(x)."""
    torch.manual_seed(init_seed)
    model = mod.ConvAutoencoder(*init_args).to(device).eval()
    x, other = x.to(device), other.to(device)
    xs = x.expand(copies, *x.shape[1:]).clone().requires_grad_(True)  # (K, C, 28, 28)
    out = model(xs)
    gen = torch.Generator().manual_seed(init_seed)
    u = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    (jac_rows,) = torch.autograd.grad((out * u).sum(), [xs])
    with torch.no_grad():
        direct = model(x)
        z = model.encode(x)
        model.encode(other)
        later = model.decode(z)
    return {"jacobian_rows": jac_rows.flatten(1), "forward": direct, "decode_after_other_encode": later,
            "code_shape": list(z.shape) if isinstance(z, torch.Tensor) else None}


def probe_fit(mod: Any, init_args: tuple, train: torch.Tensor, evaluation: torch.Tensor, epochs: int, lr: float,
              batch_size: int, data_seed: int, init_seed: int, device: str = "cpu", seed: int = 0) -> dict:
    """The student's ConvAutoencoder trained by the grader's `_fit`; its reconstructions of `evaluation`."""
    with _one_thread():
        torch.manual_seed(init_seed)
        model = mod.ConvAutoencoder(*init_args).to(device)
        g = torch.Generator(device=device).manual_seed(data_seed)
        losses = _fit(model, train.to(device), epochs, lr, batch_size, g)
        model.eval()
        with torch.no_grad():
            return {"losses": losses, "reconstructed": model(evaluation.to(device))}


def probe_add_noise(mod: Any, x: torch.Tensor, std: float, gen_seed: int, device: str = "cpu", seed: int = 0) -> dict:
    """add_noise twice with equally seeded generators, once with another seed, once with generator=None."""
    torch.manual_seed(gen_seed + 1)  # the global generator too, so that ignoring `generator` is reproducible
    x = x.to(device)
    before = x.clone()

    def gen(s: int) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(s)

    first = mod.add_noise(x, std, gen(gen_seed))
    again = mod.add_noise(x, std, gen(gen_seed))
    other = mod.add_noise(x, std, gen(gen_seed + 1))
    torch.manual_seed(gen_seed)
    global_rng = mod.add_noise(x, std)
    return {"first": first, "same_seed_again": again, "other_seed": other, "generator_none": global_rng,
            "input_changed_by": (x - before).abs().max()}


def _grader_mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return ((x_hat - x) ** 2).mean()


def _grader_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    return (x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)).clamp(0.0, 1.0)


@contextlib.contextmanager
def _loop_alone(mod: Any) -> Iterator[None]:
    """While the loop runs, the module's own reconstruction_loss and add_noise are the grader's
    (right) ones: a loop that calls them is graded on its own, whatever those parts do (they have
    their own checks). A loop that computes its loss or noise inline is unaffected."""
    saved = {name: getattr(mod, name) for name in ("reconstruction_loss", "add_noise") if hasattr(mod, name)}
    for name in saved:
        setattr(mod, name, {"reconstruction_loss": _grader_mse, "add_noise": _grader_noise}[name])
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(mod, name, value)


def probe_train_exact(mod: Any, state: dict, data: torch.Tensor, epochs: int, kwargs: dict, gen_seed: int,
                      device: str = "cpu", seed: int = 0) -> dict:
    """train_autoencoder on the grader's tiny MLP (float64, weights given); losses and final weights."""
    model = _tiny_mlp_autoencoder().double()
    model.load_state_dict(state)
    model = model.to(device)
    g = torch.Generator(device=device).manual_seed(gen_seed)
    with _loop_alone(mod):
        losses = mod.train_autoencoder(model, data.to(device), epochs, generator=g, **kwargs)
    return {"losses": losses, "weights": {k: v.detach() for k, v in model.state_dict().items()}}


def probe_epoch_losses(mod: Any, data: torch.Tensor, epochs: int, batch_size: int, noise_std: float, weight: float,
                       bias: float, gen_seed: int, device: str = "cpu", seed: int = 0) -> dict:
    """train_autoencoder with lr = 0 on out = weight * x + bias: the model never changes."""
    model = _Affine(weight, bias).to(device)
    g = torch.Generator(device=device).manual_seed(gen_seed)
    with _loop_alone(mod):
        losses = mod.train_autoencoder(model, data.to(device), epochs, lr=0.0, batch_size=batch_size,
                                       noise_std=noise_std, generator=g)
    return {"losses": losses, "weights": {k: v.detach() for k, v in model.state_dict().items()}}


def probe_train_behaviour(mod: Any, state: dict, train: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor,
                          epochs: int, kwargs: dict, gen_seed: int, device: str = "cpu", seed: int = 0) -> dict:
    """train_autoencoder on the grader's conv autoencoder; its outputs on noisy and clean held-out images."""
    with _one_thread():
        model = _grader_conv_autoencoder()
        model.load_state_dict(state)
        model = model.to(device)
        g = torch.Generator(device=device).manual_seed(gen_seed)
        with _loop_alone(mod):
            losses = mod.train_autoencoder(model, train.to(device), epochs, generator=g, **kwargs)
        model.eval()
        with torch.no_grad():
            return {"losses": losses, "denoised": model(noisy.to(device)), "reconstructed": model(clean.to(device))}


# --- assessments (grader side) -------------------------------------------------------------------
def _range_assess(got: Any, expected: Any) -> str | None:
    """Outputs finite and in [0, 1]. A code shape other than the contract's costs nothing here
    (autoencoder_shapes reports it); it is only mentioned next to a finding."""
    shape, wanted = (got.get("code_shape"), expected.get("code_shape")) if isinstance(got, dict) and isinstance(expected, dict) else (None, None)
    note = (f" (decoded codes of shape {tuple(shape)}, the shape your encode returns, not {tuple(wanted)}: the size itself "
            "is reported by autoencoder_shapes)" if shape and wanted and shape != wanted else "")
    for key, what in (("forward", "forward(x) on images"), ("decode", "decode(z) on large latent codes (|z| up to about 30)")):
        t = _tensor(got.get(key)) if isinstance(got, dict) else None
        if t is None:
            return f"{what} did not return a tensor{note}"
        if not bool(torch.isfinite(t).all()):
            return f"{what} returned NaN or infinite values{note}"
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            return (f"{what} gave values in [{lo:.4g}, {hi:.4g}], outside [0, 1]: pixel values need a final "
                    f"sigmoid on the decoder (the MSE target images are in [0, 1]){note}")
    return None


def _bottleneck_assess(latent_dim: int) -> Callable[[Any, Any], str | None]:
    def assess(got: Any, expected: Any) -> str | None:
        rows = _tensor(got.get("jacobian_rows")) if isinstance(got, dict) else None
        if rows is None:
            return "the Jacobian probe did not get a tensor back"
        sv = torch.linalg.svdvals(rows.double())
        if float(sv[0]) == 0.0:
            return "forward(x) does not depend on x at all (zero gradient w.r.t. the input)"
        ratio = float(sv[latent_dim] / sv[0])
        shape = got.get("code_shape")
        if ratio > 1e-3 and shape is not None and list(shape[1:]) != [latent_dim]:
            return (f"encode returns codes of shape {tuple(shape)}, not (N, {latent_dim}) (the cause, see autoencoder_shapes): "
                    f"the output varies along more than latent_dim = {latent_dim} independent directions")
        if ratio > 1e-3:
            return (f"the output varies along more than latent_dim = {latent_dim} independent directions "
                    f"(Jacobian singular value {latent_dim + 1} is {ratio:.3g} of the largest; it should be ~0): "
                    "information reaches the output around the bottleneck (a skip connection, or encode() "
                    "returning more than latent_dim numbers in effect)")
        direct, later = _tensor(got.get("forward")), _tensor(got.get("decode_after_other_encode"))
        if direct is None or later is None or direct.shape != later.shape:
            return "forward(x) and decode(encode(x)) must be tensors of the same shape"
        if not torch.allclose(direct, later, rtol=1e-4, atol=1e-5):
            return ("decode(encode(x)) differs from forward(x) once another image was encoded in between: "
                    "decode must use nothing but z (no state kept from the last encode)")
        return None

    return assess


# Calibration of the training budget (8 epochs x 512 images, batch 32, Adam lr 3e-3 = 128 updates),
# measured on one CPU thread over 40 seeds of the data and the initial weights: the reference
# reaches 0.18-0.26 of the mean-image baseline; a plain maxpool/upsample conv autoencoder without
# normalisation 0.20-0.44; an encoder whose code is detached from training (so that the decoder
# learns from random features) 0.65-0.97; an untrained model is at about 1.8-2.5 and one that
# predicts the black background at about 1.7. The threshold is 0.6 of the baseline. This is the
# smallest budget with a wide margin on both sides: with 7 epochs the plain model reaches 0.51 at
# some seeds, with 6 epochs 0.52 in 6 seeds; with 10 epochs (the former budget, 25% more time)
# the detached encoder passed at 5 seeds of 20 (0.54-0.59).
_FIT = {"train": 512, "eval": 128, "epochs": 8, "lr": 3e-3, "batch_size": 32, "threshold": 0.6}


def _fit_assess(evaluation: torch.Tensor, baseline: float, threshold: float, budget: str) -> Callable[[Any, Any], str | None]:
    def assess(got: Any, expected: Any) -> str | None:
        rec = _tensor(got.get("reconstructed")) if isinstance(got, dict) else None
        if rec is None or tuple(rec.shape) != tuple(evaluation.shape):
            return f"forward() on the held-out images returned {got.get('reconstructed') if isinstance(got, dict) else got!r}, not a tensor of shape {tuple(evaluation.shape)}"
        if not bool(torch.isfinite(rec).all()):
            return f"after training ({budget}) the reconstructions contain NaN or infinite values"
        err = _mse(rec, evaluation)
        if err < threshold * baseline:
            return None
        ref = _tensor(expected.get("reconstructed")) if isinstance(expected, dict) else None
        ref_txt = f"; the reference reaches {_mse(ref, evaluation):.4f}" if ref is not None else ""
        background = float((evaluation.double() ** 2).mean())
        hint = (" It is predicting (almost) the black background: a too-small or saturated model, or a too-low learning rate?"
                if abs(err - background) < 0.1 * background else "")
        return (f"after training ({budget}) the reconstruction error on held-out images is {err:.4f}, not "
                f"clearly below the mean-image baseline {baseline:.4f} (needed: < {threshold} x baseline = "
                f"{threshold * baseline:.4f}){ref_txt}.{hint}")

    return assess


def _exact_assess(rtol: float, atol: float) -> Callable[[Any, Any], str | None]:
    """Compare like the engine; when the weights differ but every loss is within 1 % of the
    reference's, the loop is right in substance and an optimiser detail differs: say which ones."""

    def assess(got: Any, expected: Any) -> str | None:
        msg = compare(got, expected, "result", rtol, atol)
        if msg is None or not isinstance(got, dict):
            return msg
        loss_gap, weight_gap = relative_gap(got.get("losses"), expected["losses"]), relative_gap(got.get("weights"), expected["weights"])
        if weight_gap > 0 and loss_gap < 1e-2:
            msg += (f"\n  every epoch loss is within {loss_gap:.1e} (relative) of the reference's, but the weights differ: the loop "
                    "is right in substance and an optimiser detail is not. The usual causes: weight decay (AdamW, or "
                    "weight_decay=...), another Adam setting (betas, eps, amsgrad), or zero_grad / backward / step in "
                    "another order.")
        return msg

    return assess


def _noise_stats(out: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    d = (out.double() - x.double())
    return {"mean of (out - x)": float(d.mean()), "mean of (out - x)^2": float((d**2).mean()),
            "fraction of zeros": float((out == 0).double().mean()), "fraction of ones": float((out == 1).double().mean())}


def _noise_assess(x: torch.Tensor, std: float, seed: int) -> Callable[[Any, Any], str | None]:
    """Compare add_noise's outputs with the statistics of clamp(x + std * N(0, 1), 0, 1), estimated here."""
    g = torch.Generator().manual_seed(seed)
    draws = [(x + std * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1) for _ in range(16)]
    per_draw = [_noise_stats(d, x) for d in draws]
    mc = {k: sum(s[k] for s in per_draw) / len(per_draw) for k in per_draw[0]}
    spread = {k: (sum((s[k] - mc[k]) ** 2 for s in per_draw) / (len(per_draw) - 1)) ** 0.5 for k in mc}

    def check_one(name: str, value: Any) -> str | None:
        t = _tensor(value)
        if t is None:
            return f"{name}: add_noise returned {value!r}, not a tensor"
        if tuple(t.shape) != tuple(x.shape) or t.dtype != x.dtype:
            return f"{name}: shape {tuple(t.shape)} and dtype {t.dtype}, expected {tuple(x.shape)} and {x.dtype} (the input's)"
        if not bool(torch.isfinite(t).all()):
            return f"{name}: NaN or infinite values"
        if float(t.min()) < 0 or float(t.max()) > 1:
            return f"{name}: values in [{float(t.min()):.3g}, {float(t.max()):.3g}]: clamp the noisy images to [0, 1]"
        if std == 0:
            return None if torch.equal(t, x) else f"{name}: with std = 0 the images must come back unchanged"
        stats = _noise_stats(t, x)
        for key, value_mc in mc.items():
            tol = 6 * spread[key] + 1e-3 * abs(value_mc) + 3 / x.numel()
            if abs(stats[key] - value_mc) > tol:
                return (f"{name}: {key} is {stats[key]:.4g}, but clamp(x + std * randn, 0, 1) with std = {std} gives "
                        f"{value_mc:.4g} +- {tol:.2g}: is the noise Gaussian with standard deviation std (not variance), "
                        "added to x, then clamped?")
        return None

    def assess(got: Any, expected: Any) -> str | None:
        if not isinstance(got, dict):
            return "the probe got no result"
        changed = _tensor(got.get("input_changed_by"))
        if changed is not None and float(changed) != 0.0:
            return "add_noise modified its input x in place: return a new tensor"
        for key in ("first", "same_seed_again", "other_seed", "generator_none"):
            msg = check_one(key.replace("_", " "), got.get(key))
            if msg:
                return msg
        first, again, other = (_tensor(got[k]) for k in ("first", "same_seed_again", "other_seed"))
        if not torch.equal(first, again):
            return "two calls with generators seeded alike gave different noise: draw the noise from `generator`"
        if std > 0 and torch.equal(first, other):
            return "generators with different seeds gave the same noise: draw the noise from `generator`"
        return None

    return assess


def _epoch_noise_assess(data: torch.Tensor, weight: float, bias: float, std: float, epochs: int) -> Callable[[Any, Any], str | None]:
    """With lr = 0 each epoch's loss estimates E[(w * noisy + b - clean)^2]; computed here by Monte Carlo."""
    g = torch.Generator().manual_seed(1234)
    noisy = [(data + std * torch.randn(data.shape, generator=g, dtype=data.dtype)).clamp(0, 1) for _ in range(8)]
    clean_target = sum(_mse(weight * n + bias, data) for n in noisy) / len(noisy)
    noisy_target = sum(_mse(weight * n + bias, n) for n in noisy) / len(noisy)
    no_noise = _mse(weight * data + bias, data)

    def assess(got: Any, expected: Any) -> str | None:
        losses = got.get("losses") if isinstance(got, dict) else None
        if not isinstance(losses, (list, tuple)) or len(losses) != epochs or not all(isinstance(v, float) for v in losses):
            return f"train_autoencoder returned {losses!r}: expected a list of {epochs} floats, one per epoch"
        for i, value in enumerate(losses):
            if abs(value - clean_target) <= 0.1 * clean_target:
                continue
            why = ""
            if abs(value - noisy_target) <= 0.1 * max(noisy_target, 1e-12):
                why = " It matches the loss against the *noisy* input: the target must be the clean batch."
            elif abs(value - no_noise) <= 0.02 * no_noise:
                why = " It matches the loss without any noise: with noise_std > 0 the model's input must be noisy."
            return (f"epoch {i}: reported loss {value:.5g}; with lr = 0 and noise_std = {std} it should be about "
                    f"{clean_target:.5g} (the model's output on noisy inputs against the clean images).{why}")
        return None

    return assess


# Calibration of the denoising check (6 epochs x 512 images, batch 32, Adam lr 3e-3, noise_std 0.3 on the
# grader's conv autoencoder), one CPU thread: about 1.5 s; the reference's denoised error is about 0.4 of
# the noisy input's and its clean reconstruction error about 0.25-0.3 of the mean-image baseline.
# Trained against the *noisy* input instead, the model learns to reproduce the noise's mean: clamped
# to [0, 1], noise of std 0.3 brightens the images by about 0.08 on average, and so do its
# outputs (measured: 0.076), against 0.0002 for the reference's loop; the threshold is 0.35 of the
# noisy inputs' own brightening.
_DENOISE = {"train": 512, "eval": 128, "epochs": 8, "lr": 3e-3, "batch_size": 32, "noise_std": 0.3,
            "denoise_threshold": 0.75, "baseline_threshold": 0.6, "brightening_threshold": 0.35}


def _denoise_assess(clean: torch.Tensor, noisy: torch.Tensor, baseline: float, epochs: int) -> Callable[[Any, Any], str | None]:
    noisy_err = _mse(noisy, clean)
    noisy_bright = float((noisy.double() - clean.double()).mean())

    def assess(got: Any, expected: Any) -> str | None:
        losses = got.get("losses") if isinstance(got, dict) else None
        if not isinstance(losses, (list, tuple)) or len(losses) != epochs or not all(isinstance(v, float) for v in losses):
            return f"train_autoencoder returned {losses!r}: expected a list of {epochs} floats, one per epoch"
        den, rec = _tensor(got.get("denoised")), _tensor(got.get("reconstructed"))
        ref_den = _tensor(expected.get("denoised")) if isinstance(expected, dict) else None
        ref_txt = f" (the reference's loop reaches {_mse(ref_den, clean):.4f})" if ref_den is not None else ""
        if den is None or not bool(torch.isfinite(den).all()):
            return "after training the model's outputs are not finite"
        den_err = _mse(den, clean)
        if den_err >= _DENOISE["denoise_threshold"] * noisy_err:
            return (f"after {epochs} epochs with noise_std = {_DENOISE['noise_std']} the denoised images are at MSE "
                    f"{den_err:.4f} from the clean ones, not clearly closer than the noisy inputs were ({noisy_err:.4f}; "
                    f"needed < {_DENOISE['denoise_threshold']} x that){ref_txt}. Does the loop step the optimizer, "
                    "feed noisy inputs and compare with the clean batch?")
        bright = float((den.double() - clean.double()).mean())
        if bright > _DENOISE["brightening_threshold"] * noisy_bright:
            ref_bright = f" (the reference's loop: {float((ref_den.double() - clean.double()).mean()):.4f})" if ref_den is not None else ""
            return (f"the denoised images are {bright:.4f} brighter than the clean ones on average{ref_bright}, about as much "
                    f"as the noisy inputs ({noisy_bright:.4f}: noise clamped to [0, 1] brightens the dark pixels). The model "
                    "learned to reproduce the noise: is the target the noisy input instead of the clean batch?")
        rec_err = _mse(rec, clean)
        if rec_err >= _DENOISE["baseline_threshold"] * baseline:
            return (f"after training, clean images are reconstructed at MSE {rec_err:.4f}, not clearly below the "
                    f"mean-image baseline {baseline:.4f}")
        if not losses[-1] < losses[0]:
            return f"the reported epoch losses do not decrease: {losses}"
        return None

    return assess


# --- cases ---------------------------------------------------------------------------------------
def _seed(g: torch.Generator) -> int:
    return int(torch.randint(0, 2**31, (1,), generator=g))


def _shapes(g, ref):
    cases = []
    for init_args, n, label in [((), 4, "ConvAutoencoder() with the defaults (1 channel, latent_dim 16)"),
                                ((1, 2), 3, "latent_dim 2"), ((3, 8), 2, "3 channels, latent_dim 8"),
                                ((1, 32), 1, "one image, latent_dim 32")]:
        channels = init_args[0] if init_args else 1
        x = make_shapes(g, n, channels)
        cases.append(Case("grader.checks.autoencoder:probe_shapes", (init_args, x, _seed(g)), {},
                          label=f"{label}, x {tuple(x.shape)}: encode -> (N, latent_dim), decode and forward -> (N, C, 28, 28)"))
    return cases


def _outputs(g, ref):
    cases = []
    for init_args, n in [((3, 4), 2), ((1, 16), 4)]:
        x = make_shapes(g, n, init_args[0])
        z = 10.0 * torch.randn(6, init_args[1], generator=g)
        cases.append(Case("grader.checks.autoencoder:probe_outputs", (init_args, x, z, _seed(g)), {}, assess=_range_assess,
                          label=f"ConvAutoencoder{init_args} untrained: forward on {n} images and decode on 6 latent codes ~ N(0, 10^2)",
                          rtol=1e-4, atol=1e-5))
    return cases


def _bottleneck(g, ref):
    cases = []
    for init_args in [(1, 4), (1, 16)]:
        x, other = make_shapes(g, 2)[:1], make_shapes(g, 1)
        copies = init_args[1] + 8
        cases.append(Case("grader.checks.autoencoder:probe_bottleneck", (init_args, x, other, copies, _seed(g)), {},
                          assess=_bottleneck_assess(init_args[1]), rtol=1e-4, atol=1e-6,
                          label=f"ConvAutoencoder{init_args} in eval mode: {copies} random projections of the Jacobian of forward at one image"))
    return cases


def _trains(g, ref):
    train, evaluation = make_shapes(g, _FIT["train"]), make_shapes(g, _FIT["eval"])
    baseline = _mse(train.mean(dim=0, keepdim=True).expand_as(evaluation), evaluation)
    budget = f"{_FIT['epochs']} epochs over {_FIT['train']} images, batch {_FIT['batch_size']}, Adam lr {_FIT['lr']}"
    args = ((1, 16), train, evaluation, _FIT["epochs"], _FIT["lr"], _FIT["batch_size"], _seed(g), _seed(g))
    return [Case("grader.checks.autoencoder:probe_fit", args, {}, assess=_fit_assess(evaluation, baseline, _FIT["threshold"], budget),
                 rtol=1e-3, atol=1e-4, reference_explains_only=True,
                 label=f"ConvAutoencoder(1, 16) trained by the grader's loop ({budget}) on synthetic discs, squares and bars")]


def _recon_loss(g, ref):
    cases = []
    for shape, dtype in [((4, 1, 28, 28), torch.float32), ((2, 3, 28, 28), torch.float64), ((5, 1, 7, 9), torch.float64)]:
        x = torch.rand(shape, generator=g, dtype=dtype)
        x_hat = torch.rand(shape, generator=g, dtype=dtype)
        cases.append(call("reconstruction_loss", x, x_hat, grad=True, label=f"x and x_hat {shape}, {str(dtype)[6:]}"))
    x = torch.rand(3, 1, 28, 28, generator=g, dtype=torch.float64)
    cases.append(call("reconstruction_loss", x, x.clone(), grad=True, label="x_hat == x: loss 0, float64"))
    return cases


def _noise_cases(g, ref):
    cases = []
    for kind, std, dtype in [("0.5 everywhere", 0.1, torch.float32), ("zeros", 0.5, torch.float32),
                             ("ones", 0.5, torch.float64), ("synthetic images", 0.3, torch.float32),
                             ("synthetic images", 0.0, torch.float64)]:
        if kind == "synthetic images":
            x = make_shapes(g, 6).to(dtype)
        else:
            fill = {"0.5 everywhere": 0.5, "zeros": 0.0, "ones": 1.0}[kind]
            x = torch.full((6, 1, 28, 28), fill, dtype=dtype)
        gen_seed = _seed(g)
        cases.append(Case("grader.checks.autoencoder:probe_add_noise", (x, std, gen_seed), {},
                          assess=_noise_assess(x, std, gen_seed + 7), rtol=1e-5, atol=1e-6,
                          label=f"x {tuple(x.shape)} {kind}, std {std}, {str(dtype)[6:]}"))
    return cases


def _train_exact(g, ref):
    cases = []
    for n, epochs, kwargs in [(12, 3, {"lr": 3e-3, "batch_size": 64}), (20, 2, {"lr": 1e-2, "batch_size": 20}),
                              (8, 4, {"batch_size": 8}), (16, 1, {"lr": 5e-3, "batch_size": 100}),
                              (6, 0, {"lr": 1e-2, "batch_size": 64})]:
        data = make_shapes(g, n).double()
        model = _tiny_mlp_autoencoder().double()
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        gen_seed = _seed(g)
        shown = ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ("" if "lr" in kwargs else " (lr left at its default)")
        cases.append(Case("grader.checks.autoencoder:probe_train_exact", (state, data, epochs, kwargs, gen_seed), {},
                          rtol=1e-6, atol=1e-9, assess=_exact_assess(1e-6, 1e-9),
                          label=f"{n} images in one batch ({shown}), {epochs} epochs, no noise, the grader's small MLP "
                                "autoencoder in float64: losses and weights must equal the reference's"))
    return cases


def _epoch_losses(g, ref):
    cases = []
    for n, bs, epochs, weight, bias in [(40, 16, 2, 0.9, 0.05), (30, 7, 1, 1.1, -0.02), (24, 24, 2, 0.5, 0.1)]:
        data = make_shapes(g, n).double()
        gen_seed = _seed(g)
        cases.append(Case("grader.checks.autoencoder:probe_epoch_losses", (data, epochs, bs, 0.0, weight, bias, gen_seed), {},
                          rtol=1e-6, atol=1e-10,
                          label=f"{n} images, batch_size {bs}, {epochs} epochs, lr = 0 (the model out = {weight} * x + {bias} "
                                "never changes), no noise: each epoch's loss is the mean over the samples"))
    for n, bs, std, weight, bias in [(48, 20, 0.2, 0.9, 0.05), (64, 16, 0.3, 1.0, 0.0)]:
        data = make_shapes(g, n).double()
        gen_seed = _seed(g)
        cases.append(Case("grader.checks.autoencoder:probe_epoch_losses", (data, 2, bs, std, weight, bias, gen_seed), {},
                          assess=_epoch_noise_assess(data, weight, bias, std, 2), rtol=1e-6, atol=1e-10,
                          label=f"{n} images, batch_size {bs}, 2 epochs, lr = 0, model out = {weight} * x + {bias}, "
                                f"noise_std {std}: noisy inputs, clean targets"))
    return cases


def _denoising(g, ref):
    train, clean = make_shapes(g, _DENOISE["train"]), make_shapes(g, _DENOISE["eval"])
    noisy = (clean + _DENOISE["noise_std"] * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    baseline = _mse(train.mean(dim=0, keepdim=True).expand_as(clean), clean)
    state = {k: v.detach().clone() for k, v in _grader_conv_autoencoder().state_dict().items()}
    gen_seed = _seed(g)
    kwargs = {"lr": _DENOISE["lr"], "batch_size": _DENOISE["batch_size"], "noise_std": _DENOISE["noise_std"]}
    return [Case("grader.checks.autoencoder:probe_train_behaviour",
                 (state, train, noisy, clean, _DENOISE["epochs"], kwargs, gen_seed), {},
                 assess=_denoise_assess(clean, noisy, baseline, _DENOISE["epochs"]), rtol=1e-3, atol=1e-4,
                 reference_explains_only=True,
                 label=f"the grader's conv autoencoder trained by your train_autoencoder for {_DENOISE['epochs']} epochs "
                       f"over {_DENOISE['train']} synthetic images, batch {_DENOISE['batch_size']}, lr {_DENOISE['lr']}, "
                       f"noise_std {_DENOISE['noise_std']}")]


# --- known mistakes ------------------------------------------------------------------------------
def _ae_class(ref, final: str = "sigmoid", latent_fixed: int | None = None, out_kernel: int = 4, mono_decoder: bool = False):
    """A ConvAutoencoder built like the reference's, with one mistake."""

    class ConvAutoencoder(nn.Module):
        def __init__(self, in_channels: int = 1, latent_dim: int = 16) -> None:
            super().__init__()
            latent = latent_fixed or latent_dim
            out_ch = 1 if mono_decoder else in_channels
            self.encoder = nn.Sequential(nn.Conv2d(in_channels, 16, 3, stride=2, padding=1), nn.ReLU(),
                                         nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(32 * 7 * 7, latent))
            last = {"sigmoid": [nn.Sigmoid()], "none": [], "relu": [nn.ReLU()]}[final]
            pad = 1 if out_kernel == 4 else 1
            self.decoder = nn.Sequential(nn.Linear(latent, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                         nn.ConvTranspose2d(32, 16, out_kernel, stride=2, padding=pad), nn.ReLU(),
                                         nn.ConvTranspose2d(16, out_ch, out_kernel, stride=2, padding=pad), *last)

        def encode(self, x):
            return self.encoder(x)

        def decode(self, z):
            return self.decoder(z)

        def forward(self, x):
            return self.decode(self.encode(x))

    return ConvAutoencoder


def _skip_around_bottleneck(ref):
    class ConvAutoencoder(ref.ConvAutoencoder):
        def forward(self, x):
            return 0.5 * (self.decode(self.encode(x)) + x)

    return {"ConvAutoencoder": ConvAutoencoder}


AE_MISTAKES = (
    Mistake("decoder-without-sigmoid", "The decoder ends without a sigmoid, so outputs are not confined to [0, 1]: end it with nn.Sigmoid() (pixel values and the MSE targets are in [0, 1]).",
            lambda ref: {"ConvAutoencoder": _ae_class(ref, final="none")}, _SECTION, subsection="Convolutional autoencoders"),
    Mistake("decoder-ends-with-relu", "A final ReLU bounds the output below but not above: use a sigmoid to get values in [0, 1].",
            lambda ref: {"ConvAutoencoder": _ae_class(ref, final="relu")}, _SECTION, subsection="Convolutional autoencoders"),
    Mistake("latent-dim-ignored", "The latent size is hard-coded: encode must return latent_dim numbers per image, as asked.",
            lambda ref: {"ConvAutoencoder": _ae_class(ref, latent_fixed=16)}, _SECTION, subsection="What an autoencoder learns"),
    Mistake("decoder-output-not-28", "Two stride-2 transposed 3x3 convolutions with padding 1 give 7 -> 13 -> 25, not 28: use kernel 4 (or output_padding=1).",
            lambda ref: {"ConvAutoencoder": _ae_class(ref, out_kernel=3)}, _SECTION),
    Mistake("decoder-ignores-in-channels", "The decoder always outputs one channel: it must rebuild in_channels channels.",
            lambda ref: {"ConvAutoencoder": _ae_class(ref, mono_decoder=True)}, _SECTION),
    Mistake("skip-around-bottleneck", "The input reaches the output without passing through the latent code: the reconstruction must come from decode(encode(x)) alone, or the bottleneck learns nothing.",
            _skip_around_bottleneck, _SECTION, subsection="Convolutional autoencoders"),
)


def _loss_variant(fn):
    return lambda ref: {"reconstruction_loss": fn}


LOSS_MISTAKES = (
    Mistake("loss-sum-not-mean", "The squared errors are summed: the MSE is their mean over every pixel of every image.",
            _loss_variant(lambda x, x_hat: ((x_hat - x) ** 2).sum()), _SECTION, subsection="Reconstruction loss"),
    Mistake("loss-per-image-sum", "The squared errors are summed per image and averaged over the batch: the contract's MSE averages over the pixels too.",
            _loss_variant(lambda x, x_hat: ((x_hat - x) ** 2).flatten(1).sum(1).mean()), _SECTION, subsection="Reconstruction loss"),
    Mistake("loss-absolute-error", "This is the mean absolute error (L1): the reconstruction loss here is the mean *squared* error.",
            _loss_variant(lambda x, x_hat: (x_hat - x).abs().mean()), _SECTION, subsection="Reconstruction loss"),
    Mistake("loss-root-mean-square", "The square root of the MSE (RMSE) was taken: return the MSE itself.",
            _loss_variant(lambda x, x_hat: ((x_hat - x) ** 2).mean().sqrt()), _SECTION),
)


def _noise_variant(make):
    return lambda ref: {"add_noise": make}


def _noise_no_clamp(x, std, generator=None):
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _noise_variance(x, std, generator=None):
    return (x + std**2 * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)).clamp(0, 1)


def _noise_global_rng(x, std, generator=None):
    return (x + std * torch.randn(x.shape, dtype=x.dtype, device=x.device)).clamp(0, 1)


def _noise_uniform(x, std, generator=None):
    return (x + std * torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)).clamp(0, 1)


def _noise_in_place(x, std, generator=None):
    return x.add_(std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)).clamp_(0, 1)


NOISE_MISTAKES = (
    Mistake("noise-not-clamped", "The noisy images leave [0, 1]: clamp x + std * noise back to valid pixel values.", _noise_variant(_noise_no_clamp), _SECTION, subsection="Denoising autoencoders"),
    Mistake("noise-std-squared", "The noise is scaled by std**2 (the variance): a standard deviation of std means std * randn.", _noise_variant(_noise_variance), _SECTION, subsection="Denoising autoencoders"),
    Mistake("noise-generator-ignored", "The noise comes from torch's global generator: pass `generator` to the sampling call so that runs are reproducible.", _noise_variant(_noise_global_rng), _SECTION),
    Mistake("noise-uniform", "torch.rand draws uniform noise in [0, 1), which is neither centred nor Gaussian: use torch.randn.", _noise_variant(_noise_uniform), _SECTION, subsection="Denoising autoencoders"),
    Mistake("noise-in-place", "The input batch is modified in place (add_/clamp_): the clean images are the targets, so they must stay clean.", _noise_variant(_noise_in_place), _SECTION),
)


def _loop(opt_name="adam", zero_grad=True, after=False, lr_ignored=False, target="clean", noise=True, report="weighted"):
    """A train_autoencoder with one mistake."""

    def train_autoencoder(model, data, epochs, lr=1e-3, batch_size=64, noise_std=0.0, generator=None):
        params = model.parameters()
        if opt_name == "sgd":
            opt = torch.optim.SGD(params, lr=lr)
        elif opt_name == "adamw":
            opt = torch.optim.AdamW(params, lr=lr)
        else:
            opt = torch.optim.Adam(params) if lr_ignored else torch.optim.Adam(params, lr=lr)
        model.train()
        n = data.shape[0]
        perm_device = generator.device if generator is not None else data.device
        history = []
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator, device=perm_device).to(data.device)
            values, sizes = [], []
            for start in range(0, n, batch_size):
                clean = data[order[start : start + batch_size]]
                inputs = clean
                if noise_std > 0 and noise:
                    inputs = (clean + noise_std * torch.randn(clean.shape, generator=generator, dtype=clean.dtype,
                                                              device=clean.device)).clamp(0.0, 1.0)
                goal = inputs if target == "noisy" else clean
                loss = ((model(inputs) - goal) ** 2).mean()
                if zero_grad:
                    opt.zero_grad()
                loss.backward()
                opt.step()
                if after:
                    with torch.no_grad():
                        loss = ((model(inputs) - goal) ** 2).mean()
                values.append(loss.item())
                sizes.append(clean.shape[0])
            if report == "weighted":
                history.append(sum(v * s for v, s in zip(values, sizes)) / n)
            elif report == "batch-mean":
                history.append(sum(values) / len(values))
            elif report == "sum":
                history.append(sum(values))
            else:
                history.append(values[-1])
        return history

    return lambda ref: {"train_autoencoder": train_autoencoder}


LOOP_MISTAKES = (
    Mistake("noisy-image-as-target", "The denoising loop compares the output with the noisy input: the target is the *clean* batch (noisy in, clean out), otherwise the model learns to reproduce the noise.", _loop(target="noisy"), _SECTION, subsection="Denoising autoencoders"),
    Mistake("noise-never-added", "With noise_std > 0 the model must see noisy inputs: add_noise(batch, noise_std, generator).", _loop(noise=False), _SECTION, subsection="Denoising autoencoders"),
    Mistake("sgd-instead-of-adam", "The contract's optimizer is Adam (torch.optim.Adam(model.parameters(), lr=lr)).", _loop(opt_name="sgd"), _SECTION),
    Mistake("zero-grad-missing", "Gradients are never reset, so every step also applies all earlier batches' gradients: call optimizer.zero_grad() before each backward().", _loop(zero_grad=False), _SECTION),
    Mistake("loss-reported-after-step", "The reported loss is recomputed after the update: report each batch's loss as computed before its step.", _loop(after=True), _SECTION),
    Mistake("lr-ignored", "The optimizer ignores the lr argument (Adam's default is 1e-3): pass lr=lr.", _loop(lr_ignored=True), _SECTION),
    Mistake("epoch-loss-mean-of-batch-means", "The epoch loss averages the batch means, so the smaller last batch counts as much as a full one: weight each batch's loss by its size (the mean over the samples).", _loop(report="batch-mean"), _SECTION),
    Mistake("epoch-loss-sum-of-batches", "The epoch loss sums the batch losses: report the mean over the epoch's samples.", _loop(report="sum"), _SECTION),
    Mistake("epoch-loss-last-batch", "Only the last batch's loss is reported: report the mean over all of the epoch's samples.", _loop(report="last"), _SECTION),
    Mistake("adamw-weight-decay", "torch.optim.AdamW decays the weights (weight_decay=0.01 by default), so every step shrinks them a little on top of Adam's update: the contract's optimizer is plain Adam(model.parameters(), lr=lr).", _loop(opt_name="adamw"), _SECTION),
)

# The denoising check trains for seconds: only the loop mistakes that it can be the first to catch.
DENOISE_MISTAKES = tuple(m for m in LOOP_MISTAKES if m.name in ("noisy-image-as-target", "noise-never-added"))


_LOSSES = Picture("training", of="losses")


CHECKS = [
    Check("autoencoder_shapes", "ConvAutoencoder", 2, _shapes, AE_MISTAKES,
          "encode -> (N, latent_dim), decode and forward -> (N, C, 28, 28), for several channels and latent sizes", Picture("values")),
    Check("autoencoder_output_range", "ConvAutoencoder", 2, _outputs, AE_MISTAKES,
          "outputs in [0, 1], also when decoding large latent codes", Picture("maps", of="decode", difference=False)),
    Check("autoencoder_bottleneck", "ConvAutoencoder", 2, _bottleneck, AE_MISTAKES,
          "the output depends on the input only through the latent_dim numbers of the code", Picture("spectrum", of="jacobian_rows")),
    Check("autoencoder_trains_below_baseline", "ConvAutoencoder", 4, _trains, (),
          "trained for a fixed small budget, it reconstructs held-out images clearly better than the mean image", Picture("training", of="losses", images="reconstructed", inputs=(2,))),
    Check("reconstruction_loss_values", "reconstruction_loss", 2, _recon_loss, LOSS_MISTAKES,
          "the mean squared error, gradients included", Picture("values")),
    Check("add_noise_statistics", "add_noise", 4, _noise_cases, NOISE_MISTAKES,
          "Gaussian noise of the given std, clamped to [0, 1], reproducible with the generator, input unchanged", Picture("maps", of="first", difference=False)),
    Check("train_autoencoder_exact_full_batch", "train_autoencoder", 3, _train_exact, LOOP_MISTAKES,
          "one full batch, no noise: losses and final weights equal the reference's (Adam, zero_grad, lr, loss before the step)", _LOSSES),
    Check("train_autoencoder_epoch_losses", "train_autoencoder", 3, _epoch_losses, LOOP_MISTAKES,
          "with lr = 0: each epoch's loss is the mean over its samples; with noise, noisy inputs against clean targets", _LOSSES),
    Check("train_autoencoder_denoises", "train_autoencoder", 4, _denoising, DENOISE_MISTAKES,
          "trained with noise_std > 0, the denoised outputs are closer to the clean images than the noisy inputs, and not brightened by the noise", Picture("training", of="losses", images="denoised", inputs=(2, 3))),
]
