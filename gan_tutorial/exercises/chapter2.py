"""Chapter 2's exercises (``notebooks/02_losses.ipynb``): the non-saturating gradient, LSGAN's
optimal D, the mode metrics by hand, and a run of the explorer that covers the ring (training)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import data
from ..metrics import kl_from_uniform, mode_report
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, close, require_close, show

# -- 2.1 ----------------------------------------------------------------------------------


def ns_logit_grad(fake_logits: torch.Tensor) -> torch.Tensor:
    """d/dl of the per-sample non-saturating loss -log sigmoid(l), elementwise, without autograd."""
    return torch.sigmoid(fake_logits) - 1


@exercise("2.1", "ns_logit_grad", ns_logit_grad)
def check_ns_logit_grad(answer) -> None:
    inputs = [
        torch.linspace(-20, 20, 81, dtype=torch.float64),
        torch.tensor([-120.0, -50.0, -5.0, 0.0, 5.0, 50.0, 120.0]),  # float32, exp(120) overflows
    ]
    for l in inputs:
        with torch.no_grad():  # without autograd
            got = as_tensor_answer(answer(l.clone()), "ns_logit_grad(l)", l.shape)
        leaf = l.clone().requires_grad_(True)
        per_sample = F.binary_cross_entropy_with_logits(leaf, torch.ones_like(leaf), reduction="sum")
        (expected,) = torch.autograd.grad(per_sample, leaf)  # d/dl_i of -log sigmoid(l_i)
        hint = "d/dl softplus(-l) = -sigmoid(-l) = sigmoid(l) - 1"
        if close(got, -torch.sigmoid(l), atol=1e-7):
            hint = "-sigmoid(l) is the minimax loss's derivative; this one is the non-saturating loss's"
        elif close(got, -expected, atol=1e-7):
            hint = "check the sign: the loss falls as l grows, so its derivative is negative"
        elif close(got, expected / l.numel(), atol=1e-9):
            hint = "per sample: do not divide by the batch size"
        elif not bool(torch.isfinite(got).all()):
            hint = "exp(-l) overflows for very negative l: write it with torch.sigmoid"
        what = "ns_logit_grad on 81 logits from -20 to 20" if len(l) == 81 else f"ns_logit_grad({show(l)})"
        require_close(got, expected, what, hint, rtol=1e-6, atol=1e-7)


# -- 2.2 ----------------------------------------------------------------------------------


def lsgan_d_star(p_d: torch.Tensor, p_g: torch.Tensor, a: float = -1.0, b: float = 1.0) -> torch.Tensor:
    """The D that minimises 1/2 p_d (D - b)^2 + 1/2 p_g (D - a)^2 pointwise."""
    return (b * p_d + a * p_g) / (p_d + p_g)


@exercise("2.2", "lsgan_d_star", lsgan_d_star)
def check_lsgan_d_star(answer) -> None:
    gen = torch.Generator().manual_seed(0)
    p_d = torch.cat(
        [torch.rand(40, generator=gen, dtype=torch.float64), torch.tensor([0.0, 0.7], dtype=torch.float64)]
    )
    p_g = torch.cat(
        [torch.rand(40, generator=gen, dtype=torch.float64), torch.tensor([0.4, 0.0], dtype=torch.float64)]
    )
    for a, b in ((-1.0, 1.0), (0.0, 1.0), (0.5, 2.0)):
        got = (
            answer(p_d.clone(), p_g.clone())
            if (a, b) == (-1.0, 1.0)
            else answer(p_d.clone(), p_g.clone(), a, b)
        )
        got = as_tensor_answer(got, f"lsgan_d_star(p_d, p_g, a={a}, b={b})", p_d.shape)
        grid = torch.linspace(min(a, b) - 1, max(a, b) + 1, 40_001, dtype=torch.float64)[:, None]  # (N, 1)
        objective = 0.5 * p_d * (grid - b) ** 2 + 0.5 * p_g * (grid - a) ** 2  # (N, n)
        searched = grid[objective.argmin(dim=0), 0]  # brute force, step 1e-4 at most
        hint = "set the derivative p_d (D - b) + p_g (D - a) to zero and solve for D"
        if close(got, (a * p_d + b * p_g) / (p_d + p_g), atol=1e-9):
            hint = "the targets are swapped: real data (p_d) is pushed to b, fakes (p_g) to a"
        elif close(got, p_d / (p_d + p_g), atol=1e-9):
            hint = "that is the cross-entropy game's D*; here D regresses onto the targets a and b"
        what = f"lsgan_d_star with a = {a}, b = {b} (the last points have p_d = 0, then p_g = 0)"
        require_close(got, searched, what, hint, rtol=0, atol=1.5e-4)


# -- 2.3 ----------------------------------------------------------------------------------


def high_quality_share(x_fake: torch.Tensor, means: torch.Tensor, sigma: float) -> float:
    """Share of samples (n, dim) within 3 sigma of their nearest mode (means: (K, dim))."""
    nearest = torch.cdist(x_fake.double(), means.double()).min(dim=1).values  # (n,)
    return (nearest < 3 * sigma).double().mean().item()


@exercise("2.3", "high_quality_share", high_quality_share)
def check_high_quality_share(answer) -> None:
    gen = torch.Generator().manual_seed(1)
    line = data.GaussianMixture(
        torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 1.0]], dtype=torch.float64),
        torch.full((3,), 0.2, dtype=torch.float64),
        torch.full((3,), 1 / 3, dtype=torch.float64),
    )
    # on a line from the first mode: 0.59 and 0.61 sit either side of 3 sigma = 0.6
    steps = torch.tensor([0.0, 0.3, 0.59, 0.61, 1.0, 1.41, 1.7, 2.5, 3.0])
    on_line = torch.stack([steps, torch.zeros_like(steps)], dim=1)
    cases = [
        ("the ring of 8, samples blurred by 0.03", data.ring8(), 0.01, 2000, 0.03),
        ("the grid of 25, samples blurred by 0.1", data.grid25(), 0.05, 2000, 0.1),
    ]
    for name, mixture, sigma, n, blur in cases:
        x = (mixture.sample(n, gen) + blur * torch.randn(n, 2, generator=gen)).float()  # like G's output
        expected = mode_report(x, mixture).high_quality
        got = as_float_answer(
            answer(x.clone(), mixture.means.clone(), sigma), f"high_quality_share on {name}"
        )
        hint = (
            "the distance to the nearest mode (torch.cdist, then min over the modes), compared with 3 sigma"
        )
        if got > expected + 0.05:
            hint = "compare distances (not squared distances) with 3 * sigma (not 3 * sigma^2)"
        if not math.isclose(got, expected, abs_tol=1e-12):
            raise ExerciseError(f"high_quality_share on {name} gave {got:.4f}, expected {expected:.4f}", hint)
    expected = mode_report(on_line, line).high_quality  # 4 of 9: 0, 0.3, 0.59 near mode 0, 1.7 near mode 1
    got = as_float_answer(answer(on_line.clone(), line.means.clone(), 0.2), "high_quality_share")
    if not math.isclose(got, expected, abs_tol=1e-12):
        raise ExerciseError(
            f"points at x = {show(steps)} on the axis, modes at (0, 0), (2, 0), (4, 1) with sigma = 0.2: "
            f"high_quality_share gave {got:.4f}, expected {expected:.4f} (4 of 9 lie within 0.6 of a mode)",
            "each point's distance to its nearest mode, whichever mode that is",
        )


# -- 2.4 ----------------------------------------------------------------------------------


def kl_uniform(counts: torch.Tensor) -> float:
    """KL(q || u) of the mode histogram q = counts / counts.sum() from uniform, 0 log 0 = 0."""
    q = counts.double() / counts.sum()
    q = q[q > 0]  # empty modes add nothing
    return (q * torch.log(len(counts) * q)).sum().item()


@exercise("2.4", "kl_uniform", kl_uniform)
def check_kl_uniform(answer) -> str:
    histograms = [
        [10, 10, 10, 10],
        [5, 0, 3, 9, 1],
        [0, 0, 7, 0, 0, 0, 0, 0],
        [1] * 5 + [0] * 20,
        [4, 4, 4, 0, 0, 0, 0, 0],
    ]
    for counts in histograms:
        counts = torch.tensor(counts)
        expected = kl_from_uniform(counts)
        got = as_float_answer(answer(counts.clone()), f"kl_uniform({counts.tolist()})")
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
            continue
        hint = "with q = counts / counts.sum(): the sum over non-empty modes of q log(K q)"
        if not math.isfinite(got):
            hint = "an empty mode contributes 0 (0 log 0 = 0): leave it out, or use torch.xlogy"
        elif math.isclose(got, expected / math.log(2), rel_tol=1e-6):
            hint = "use the natural logarithm (nats)"
        elif math.isclose(got, expected - math.log(len(counts)), rel_tol=1e-6, abs_tol=1e-9):
            hint = "the uniform distribution's share is 1/K: log(q / (1/K)) = log(K q)"
        raise ExerciseError(f"kl_uniform({counts.tolist()}) gave {got:.6g}, expected {expected:.6g}", hint)
    return f"spread evenly over m of K modes it is log(K / m): 3 of 8 gives log(8/3) = {math.log(8 / 3):.4f}"


# -- 2.5 ----------------------------------------------------------------------------------

#: The budget of exercise 2.5: iterations in all, and D steps per G step at most.
RING_ITERATIONS, RING_MAX_K = 1000, 2
#: What "covers the ring" means in exercise 2.5, on 10,000 samples from fixed codes.
RING_MIN_HIGH_QUALITY = 0.4


def train_ring(lab) -> None:
    """Train the explorer ``lab`` (the ring, default settings) with ``lab.set_rates`` and
    ``lab.train`` so that G covers all 8 modes: at most 1,000 iterations, at most k = 2."""
    lab.set_rates(k=2, lr_G=5e-4)  # D twice per G step, and G slower than D
    lab.train(800)
    lab.set_rates(lr_G=5e-5, lr_D=1e-4)  # then a tenth of the rates: the circling settles
    lab.train(200)


def _budget_explorer():
    from ..explorer import Explorer, ExplorerConfig  # here, not at import: the explorer pulls in more

    class BudgetExplorer(Explorer):
        """An Explorer that refuses to train past exercise 2.5's budget, or to start again."""

        def reset(self, **changes):
            if hasattr(self, "step"):
                raise ExerciseError(
                    "train_ring called lab.reset(): train this run, changing only its rates",
                    "lab.set_rates(lr_G=..., lr_D=..., k=...) keeps the networks",
                )
            super().reset(**changes)

        def train(self, steps):
            if self.config.k > RING_MAX_K:
                raise ExerciseError(
                    f"k = {self.config.k} D steps per G step: the budget allows {RING_MAX_K} at most"
                )
            if self.step + steps > RING_ITERATIONS:
                raise ExerciseError(
                    f"lab.train({steps}) after {self.step} iterations would pass the budget "
                    f"of {RING_ITERATIONS:,}"
                )
            return super().train(steps)

    return BudgetExplorer(ExplorerConfig(dataset="ring", seed=0))


@exercise("2.5", "train_ring", train_ring)
def check_train_ring(answer) -> str:
    lab = _budget_explorer()
    answer(lab)
    if lab.step == 0:
        raise ExerciseError("train_ring did not train: call lab.train(steps)")
    z = torch.randn(10_000, lab.config.latent_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        report = mode_report(lab.G(z), lab.mixture)
    hint = (
        "the last iterate keeps circling: lower both learning rates for the last part of the run "
        "(lab.set_rates), and try two D steps per G step with a slower G"
    )
    if not report.all_modes:
        raise ExerciseError(
            f"after {lab.step} iterations G covers {report.modes} of 8 modes (high-quality samples per "
            f"mode, of 10,000: {report.counts.tolist()})",
            hint,
        )
    if report.high_quality < RING_MIN_HIGH_QUALITY:
        raise ExerciseError(
            f"G reaches all 8 modes, but only {report.high_quality:.0%} of its samples lie within 3 sigma "
            f"of one; the exercise asks for {RING_MIN_HIGH_QUALITY:.0%}",
            hint,
        )
    return (
        f"all 8 modes, and at least {RING_MIN_HIGH_QUALITY:.0%} of the samples on them, within "
        f"{RING_ITERATIONS:,} iterations"
    )
