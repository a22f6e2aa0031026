"""Chapter 8's exercises. Part 1, little data (``notebooks/08_little_data.ipynb``): ADA's step of p
(8.1) and DiffAugment's two losses (8.2). Part 2, GANs as tools (``notebooks/08b_gans_as_tools.ipynb``):
pix2pix's G loss (8.3), a short training run that shows what an L1 regression learns (8.4), and
f-AnoGAN's izi_f anomaly score (8.5).

8.1's checker compares the new p with the rule on cases above, below and at the target, near both
ends of [0, 1] and with steps of several sizes. 8.2's gives a small D and G and a fixed,
differentiable transform T, so that the losses have one right value however the answer calls T, and
compares the values and the gradients that reach D and G (none from D's loss into G). 8.3's and
8.5's checkers run the answer on float32 inputs, compare the value with the package's
(:func:`~gan_tutorial.image2image.generator_loss`, :func:`~gan_tutorial.anomaly.izif_score`) and
the gradients with their closed forms, run it again with another weight and shape in float64, and
check that no input changed. 8.4's checker hands the answer a small linear G and data whose best L1
answer (the median) and best L2 answer (the mean) are far apart, lets it train, and measures where
G's outputs landed."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import anomaly, image2image
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, require_close
from .chapter7 import _call, _gradients

# -- 8.3 ----------------------------------------------------------------------------------


def pix2pix_g_loss(
    fake_logits: torch.Tensor, x_fake: torch.Tensor, x_real: torch.Tensor, lam: float
) -> torch.Tensor:
    """The non-saturating G term on D's patch logits plus lam times the mean absolute error."""
    return F.softplus(-fake_logits).mean() + lam * (x_fake - x_real).abs().mean()


#: 8.3's hint, shown with every failure
_HINT_83 = (
    "the adversarial term is the non-saturating one, mean(softplus(-fake_logits)) over images and "
    "patches; add lam times the mean (not the sum, not the square) of |x_fake - x_real|"
)


def _pix2pix_inputs(seed: int) -> tuple[torch.Tensor, ...]:
    """Patch logits (4, 1, 7, 7), outputs and targets (4, 1, 28, 28) in [-1, 1], and a float64 set
    of another shape, (3, 1, 5, 5) each, drawn with ``seed``."""
    with isolated(seed=seed):
        first = (torch.randn(4, 1, 7, 7), torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1)
        return (*first, *(torch.randn(3, 1, 5, 5).double() for _ in range(3)))


@exercise("8.3", "pix2pix_g_loss", pix2pix_g_loss)
def check_pix2pix_g_loss(answer) -> str:
    logits, x_fake, x_real, logits2, fake2, real2 = _pix2pix_inputs(83)
    names, call, hint = (
        ("fake_logits", "x_fake", "x_real"),
        "pix2pix_g_loss(fake_logits, x_fake, x_real, lam)",
        _HINT_83,
    )
    inputs = [logits.clone().requires_grad_(True), x_fake.clone().requires_grad_(True), x_real.clone()]
    lam = 100.0

    def run(*tensors: torch.Tensor) -> object:
        return answer(*tensors, lam)

    got = _call(run, inputs, names, call, ())
    expected = image2image.generator_loss(logits.double(), x_fake.double(), x_real.double(), lam)
    require_close(got, expected, f"{call} with lam = 100 on 4 images", hint, rtol=1e-5, atol=1e-5)
    # G learns from both terms: d/dlogits = -sigmoid(-l) / n_patches and
    # d/dx_fake = lam sign(x_fake - x_real) / n_pixels
    one = torch.ones(())
    grads = (-torch.sigmoid(-logits) / logits.numel(), lam * torch.sign(x_fake - x_real) / x_fake.numel())
    _gradients(got, one, inputs[:2], names[:2], grads, call)
    got = as_tensor_answer(answer(logits2, fake2, real2, 2.5), "pix2pix_g_loss(..., lam=2.5)", ())
    require_close(
        got,
        image2image.generator_loss(logits2, fake2, real2, 2.5),
        f"{call} with lam = 2.5 in float64",
        hint,
        rtol=1e-9,
    )
    return "lam weighs the L1 term only: the adversarial term keeps its own scale"


# -- 8.4 ----------------------------------------------------------------------------------


def train_l1(G: nn.Module, x_cond: torch.Tensor, x_real: torch.Tensor, steps: int) -> nn.Module:
    """Adam (lr 0.01) on mean |G(x_cond) - x_real| over the whole batch, ``steps`` steps; returns G."""
    opt = torch.optim.Adam(G.parameters(), lr=0.01)
    for _ in range(steps):
        loss = (G(x_cond) - x_real).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return G


#: 8.4's targets: -1 with probability 0.7, +1 with probability 0.3, whatever the input. The
#: median is -1; the mean, where an L2 regression lands, is 0.3 - 0.7 = -0.4.
_P_INK, _STEPS = 0.3, 300
_MEAN = 2 * _P_INK - 1


@exercise("8.4", "train_l1", train_l1)
def check_train_l1(answer) -> str:
    hint = (
        "minimise the mean absolute error (.abs().mean(), not a square) with Adam at lr 0.01, calling "
        "zero_grad, backward and step once per step, and return the trained G"
    )
    with isolated(seed=84):
        G = nn.Linear(4, 6)
        x_cond = torch.randn(256, 4)
        x_real = torch.where(torch.rand(256, 6) < _P_INK, 1.0, -1.0)
        x_new = torch.randn(100, 4)
    before = [p.detach().clone() for p in G.parameters()]
    inputs = (x_cond.clone(), x_real.clone())
    with isolated(seed=0):
        returned = answer(G, inputs[0], inputs[1], _STEPS)
    if not isinstance(returned, nn.Module):
        raise ExerciseError(f"train_l1 returned {type(returned).__name__}, not the trained G", hint)
    if not torch.equal(inputs[0], x_cond) or not torch.equal(inputs[1], x_real):
        raise ExerciseError("train_l1 changed x_cond or x_real in place", "the data stay as they were")
    if all(torch.equal(a, b.detach()) for a, b in zip(before, returned.parameters(), strict=True)):
        raise ExerciseError("G's weights did not change: nothing was trained", hint)
    with torch.no_grad():
        out = returned(x_new)  # (100, 6) for inputs G never saw
    mean_out = float(out.mean())
    if abs(mean_out - _MEAN) < 0.15:
        raise ExerciseError(
            f"G's outputs average {mean_out:.2f}, the mean of the targets ({_MEAN:.1f}): that is where an L2 "
            "(squared) loss leads",
            hint,
        )
    require_close(
        torch.tensor(mean_out), torch.tensor(-1.0), f"the mean of G's outputs after {_STEPS} steps",
        hint + "; with an L1 loss they settle at the targets' median, -1", atol=0.1,
    )  # fmt: skip
    return (
        f"G's outputs average {mean_out:.2f}: L1 learns the median of what an input can become, -1 here, "
        f"one of its answers, not the grey mean {_MEAN:.1f}"
    )


# -- 8.5 ----------------------------------------------------------------------------------


def izif_score(
    x: torch.Tensor, x_rec: torch.Tensor, f_x: torch.Tensor, f_rec: torch.Tensor, kappa: float
) -> torch.Tensor:
    """Per image: the mean squared pixel residual plus kappa times the mean squared feature residual."""
    return (x - x_rec).pow(2).flatten(1).mean(1) + kappa * (f_x - f_rec).pow(2).flatten(1).mean(1)


@exercise("8.5", "izif_score", izif_score)
def check_izif_score(answer) -> str:
    names, call = ("x", "x_rec", "f_x", "f_rec"), "izif_score(x, x_rec, f_x, f_rec, kappa)"
    hint = (
        "one score per image: the mean over its pixels of (x - x_rec)^2, plus kappa times the mean over "
        "its features of (f_x - f_rec)^2; squares, not absolute values or norms, and no mean over the batch"
    )
    with isolated(seed=85):
        x, x_rec = torch.rand(5, 1, 28, 28) * 2 - 1, torch.rand(5, 1, 28, 28) * 2 - 1
        f_x, f_rec, w = torch.randn(5, 64), torch.randn(5, 64), torch.randn(5)
        second = (torch.randn(3, 1, 4, 4).double(), torch.randn(3, 1, 4, 4).double())
        second += (torch.randn(3, 10).double(), torch.randn(3, 10).double())
    inputs = [t.clone().requires_grad_(True) for t in (x, x_rec, f_x, f_rec)]
    kappa = 0.7

    def run(*tensors: torch.Tensor) -> object:
        return answer(*tensors, kappa)

    got = _call(run, inputs, names, call, (5,))
    expected = anomaly.izif_score(x.double(), x_rec.double(), f_x.double(), f_rec.double(), kappa)
    require_close(got, expected, f"{call} with kappa = 0.7 on 5 images", hint, rtol=1e-5, atol=1e-6)
    # E is trained through the score: d/dx_rec = -2 (x - x_rec) / 784, d/df_rec = -2 kappa (f_x - f_rec) / 64
    w4, w2 = w[:, None, None, None], w[:, None]
    d_pix, d_feat = 2 * (x - x_rec) / 784 * w4, 2 * kappa * (f_x - f_rec) / 64 * w2
    _gradients(got, w, inputs, names, (d_pix, -d_pix, d_feat, -d_feat), call)
    got = as_tensor_answer(answer(*second, 3.0), "izif_score(..., kappa=3.0)", (3,))
    require_close(got, anomaly.izif_score(*second, 3.0), f"{call} with kappa = 3 in float64", hint, rtol=1e-9)
    return "one number per image, of pixels and D's features, both squared residuals"


# -- 8.1 ----------------------------------------------------------------------------------


def ada_step(p: float, r_t: float, target: float, images: int, images_to_one: int) -> float:
    """ADA's new probability: p moved by sign(r_t - target) * images / images_to_one, in [0, 1]."""
    step = images / images_to_one
    direction = (r_t > target) - (r_t < target)
    return min(max(p + direction * step, 0.0), 1.0)


#: (p, r_t, target, images, images_to_one): above and below the target, near it and far from it,
#: at it, against both ends, with steps of several sizes.
_ADA_CASES = [
    *[(0.30, r_t, 0.6, 128, 20_000) for r_t in (0.95, 0.61, 0.10, 0.60)],
    (0.30, 0.59, 0.6, 640, 500_000),
    *[(p, r_t, 0.6, 256, 10_000) for p, r_t in ((0.999, 0.9), (0.001, -0.5))],
    *[(p, r_t, 0.5, 64, 1_000) for p, r_t in ((0.0, 0.2), (1.0, 0.8))],
    (0.5, 0.7, 0.5, 1_000, 4_000),
]


@exercise("8.1", "ada_step", ada_step)
def check_ada_step(answer) -> str:
    hint = (
        "move p by images / images_to_one: up when r_t > target, down when r_t < target, not at all "
        "when they are equal (the sign of r_t - target, not its size); then keep p within [0, 1]"
    )
    for args in _ADA_CASES:
        call = "ada_step({}, {}, {}, {}, {})".format(*args)
        got = as_float_answer(answer(*args), call)
        require_close(got, ada_step(*args), call, hint, rtol=1e-6, atol=1e-9)  # float32 forms pass
    return "p moves by a fixed step in the direction r_t calls for, and stays in [0, 1]"


# -- 8.2 ----------------------------------------------------------------------------------


def diffaugment_losses(
    D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, T: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """DiffAugment's non-saturating losses: T on every image D sees; D's loss on detached fakes."""
    loss_D = F.softplus(-D(T(x_real))).mean() + F.softplus(D(T(x_fake.detach()))).mean()
    loss_G = F.softplus(-D(T(x_fake))).mean()
    return loss_D, loss_G


def _flip_and_dim(x: torch.Tensor) -> torch.Tensor:
    """The checker's augmentation: a fixed, differentiable transform (mirror, then fade), so the
    losses have one right value however often and on what batches the answer calls it."""
    return 0.8 * x.flip(-1) - 0.1


@exercise("8.2", "diffaugment_losses", diffaugment_losses)
def check_diffaugment_losses(answer) -> str:
    call = "diffaugment_losses(D, x_real, x_fake, T)"
    with isolated(seed=82):
        D = nn.Sequential(nn.Flatten(), nn.Linear(36, 1))  # 6 x 6 images: small, and not mirror-symmetric
        G = nn.Linear(4, 36)
        x_real = torch.rand(8, 1, 6, 6) * 2 - 1
        z = torch.randn(8, 4)
    x_fake = G(z).view(8, 1, 6, 6)  # with its graph back to G, as a generator's output
    real_before = x_real.clone()
    got = answer(D, x_real, x_fake, _flip_and_dim)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise ExerciseError(f"{call} returned {type(got).__name__}, expected the pair (loss_D, loss_G)")
    loss_D, loss_G = (as_tensor_answer(v, call, ()) for v in got)
    if not torch.equal(x_real, real_before):
        raise ExerciseError(f"{call} changed x_real in place", "augment into new tensors")
    if any(p.grad is not None for p in [*D.parameters(), *G.parameters()]):
        raise ExerciseError(
            f"{call} left gradients in D's or G's parameters",
            "return the losses; the training step calls backward (no .backward() inside)",
        )
    want_D, want_G = diffaugment_losses(D, x_real, G(z).view(8, 1, 6, 6), _flip_and_dim)  # a graph of its own
    hint = (
        "T on every image D sees, real and fake, in both losses: "
        "loss_D = mean(softplus(-D(T(x_real)))) + mean(softplus(D(T(x_fake)))), "
        "loss_G = mean(softplus(-D(T(x_fake))))"
    )
    require_close(loss_D, want_D, f"loss_D of {call}", hint, rtol=1e-5, atol=1e-6)
    require_close(loss_G, want_G, f"loss_G of {call}", hint, rtol=1e-5, atol=1e-6)
    cut = "build the losses from D's outputs with tensor operations: no .item(), .detach() or no_grad on them"
    for name, loss in (("loss_D", loss_D), ("loss_G", loss_G)):
        if loss.grad_fn is None:
            raise ExerciseError(f"{name} of {call} carries no gradient", cut)
    into_G = torch.autograd.grad(loss_D, list(G.parameters()), retain_graph=True, allow_unused=True)
    if any(g is not None and bool(g.abs().sum() > 0) for g in into_G):
        raise ExerciseError(
            f"loss_D of {call} sends gradients into G",
            "D's update treats the fakes as data: score x_fake.detach() in loss_D",
        )
    params = list(D.parameters())
    for name, loss, want in (("loss_D", loss_D, want_D), ("loss_G", loss_G, want_G)):
        got_grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        want_grads = torch.autograd.grad(want, params, retain_graph=True)
        for g, w in zip(got_grads, want_grads, strict=True):
            if g is None:
                raise ExerciseError(f"no gradient reaches D's weights through {name}", cut)
            require_close(g, w, f"the gradient of {name} with respect to D's weights", hint, 1e-4, 1e-6)
    got_G = torch.autograd.grad(loss_G, list(G.parameters()), retain_graph=True, allow_unused=True)
    want_G_grads = torch.autograd.grad(want_G, list(G.parameters()))
    for g, w in zip(got_G, want_G_grads, strict=True):
        if g is None:
            raise ExerciseError(
                f"no gradient reaches G through loss_G of {call}",
                "G learns through D and T: do not detach x_fake in loss_G",
            )
        require_close(g, w, "the gradient of loss_G with respect to G's weights", hint, 1e-4, 1e-6)
    return "T on every image D sees, D's loss stops at the fakes, G's flows through T"
