"""Chapter 2's exercises (``notebooks/02_losses.ipynb``): the non-saturating gradient, LSGAN's
optimal D, the mode metrics by hand, and a run of the explorer that covers the ring (training)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .. import data
from ..metrics import kl_from_uniform, mode_report
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, close, require_close, show

# -- 2.1 ----------------------------------------------------------------------------------


def ns_logit_grad(fake_logits: torch.Tensor) -> torch.Tensor:
    """d/dl of the per-sample non-saturating loss -log sigmoid(l), elementwise, without autograd."""
    return torch.sigmoid(fake_logits) - 1


class _GradModeWatch(TorchFunctionMode):
    """Notes whether any torch function ran with gradients enabled (an answer that turned autograd
    back on inside ``torch.no_grad()``, by ``torch.enable_grad``, ``set_grad_enabled`` or ``torch.func``)."""

    def __init__(self) -> None:
        super().__init__()
        self.grad_enabled = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.grad_enabled = self.grad_enabled or torch.is_grad_enabled()
        return func(*args, **(kwargs or {}))


@exercise("2.1", "ns_logit_grad", ns_logit_grad)
def check_ns_logit_grad(answer) -> None:
    inputs = [
        torch.linspace(-20, 20, 81, dtype=torch.float64),
        torch.tensor([-120.0, -50.0, -5.0, 0.0, 5.0, 50.0, 120.0]),  # float32, exp(120) overflows
        torch.tensor([[-3.0, 0.5], [2.0, -40.0]]),  # any shape: (2, 2)
    ]
    for l in inputs:
        l_in = l.clone()
        watch = _GradModeWatch()
        with torch.no_grad(), watch:  # without autograd
            got = as_tensor_answer(answer(l_in), "ns_logit_grad(l)", l.shape)
        if watch.grad_enabled:
            raise ExerciseError(
                "ns_logit_grad turned autograd back on (torch.enable_grad, set_grad_enabled or torch.func): "
                "the exercise asks for the derivative without it",
                "differentiate -log sigmoid(l) = softplus(-l) by hand: -sigmoid(-l) = sigmoid(l) - 1",
            )
        if not torch.equal(l_in, l):
            raise ExerciseError("ns_logit_grad changed the logits in place", "return a new tensor")
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
        what = "ns_logit_grad on 81 logits from -20 to 20" if l.numel() == 81 else f"ns_logit_grad({show(l)})"
        require_close(got, expected, what, hint, rtol=1e-6, atol=1e-7)
        if got.dtype != l.dtype:
            raise ExerciseError(
                f"ns_logit_grad returned dtype {got.dtype} for {l.dtype} logits", "keep the logits' dtype"
            )


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
        p_d_in, p_g_in = p_d.clone(), p_g.clone()
        got = answer(p_d_in, p_g_in) if (a, b) == (-1.0, 1.0) else answer(p_d_in, p_g_in, a, b)
        got = as_tensor_answer(got, f"lsgan_d_star(p_d, p_g, a={a}, b={b})", p_d.shape)
        if not (torch.equal(p_d_in, p_d) and torch.equal(p_g_in, p_g)):
            raise ExerciseError("lsgan_d_star changed p_d or p_g in place", "return a new tensor")
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
        if got.dtype != p_d.dtype:
            raise ExerciseError(
                f"lsgan_d_star returned dtype {got.dtype} for {p_d.dtype} densities",
                "keep the densities' dtype",
            )


# -- 2.3 ----------------------------------------------------------------------------------


def high_quality_share(x_fake: torch.Tensor, means: torch.Tensor, sigma: float) -> float:
    """Share of samples (n, dim) within 3 sigma of their nearest mode (means: (K, dim))."""
    nearest = torch.cdist(x_fake.double(), means.double()).min(dim=1).values  # (n,)
    return (nearest < 3 * sigma).double().mean().item()


def _share_matches(got: float, expected: float, n: int) -> bool:
    """A share of n samples is k / n: right when it is within a quarter sample of the expected one
    (float32 arithmetic and a float32 mean included), wrong when it misses even one sample."""
    return abs(got - expected) < 0.25 / n


@exercise("2.3", "high_quality_share", high_quality_share)
def check_high_quality_share(answer) -> None:
    gen = torch.Generator().manual_seed(1)
    cases = [
        ("the ring of 8, samples blurred by 0.03", data.ring8(), 0.01, 2000, 0.03),
        ("the grid of 25, samples blurred by 0.1", data.grid25(), 0.05, 2000, 0.1),
    ]
    for name, mixture, sigma, n, blur in cases:
        x = (mixture.sample(n, gen) + blur * torch.randn(n, 2, generator=gen)).float()  # like G's output
        expected = mode_report(x, mixture).high_quality
        x_in, means_in = x.clone(), mixture.means.clone()
        got = as_float_answer(answer(x_in, means_in, sigma), f"high_quality_share on {name}")
        if not (torch.equal(x_in, x) and torch.equal(means_in, mixture.means)):
            raise ExerciseError(
                "high_quality_share changed x_fake or means in place", "compute with new tensors"
            )
        if _share_matches(got, expected, n):
            continue
        hint = (
            "the distance to the nearest mode (torch.cdist, then min over the modes), compared with 3 sigma"
        )
        if got > expected + 0.05:
            hint = "compare distances (not squared distances) with 3 * sigma (not 3 * sigma^2)"
        raise ExerciseError(  # the expected share to 1%: enough to see the gap, too coarse to copy
            f"high_quality_share on {name} gave {got:.4f} ({got * n:.1f} of {n} samples), expected about "
            f"{100 * expected:.0f}%",
            hint,
        )
    # on a line from the first of three modes (sigma = 0.2, 3 sigma = 0.6): 0.59 and 0.61 either side
    line = data.GaussianMixture(
        torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 1.0]], dtype=torch.float64),
        torch.full((3,), 0.2, dtype=torch.float64),
        torch.full((3,), 1 / 3, dtype=torch.float64),
    )
    steps = torch.tensor([0.0, 0.3, 0.59, 0.61, 1.0, 1.41, 1.7, 2.5, 3.0])
    on_line = torch.stack([steps, torch.zeros_like(steps)], dim=1)
    expected = mode_report(on_line, line).high_quality  # 4 of 9: 0, 0.3, 0.59 near mode 0, 1.7 near mode 1
    got = as_float_answer(answer(on_line.clone(), line.means.clone(), 0.2), "high_quality_share")
    if not _share_matches(got, expected, 9):
        raise ExerciseError(
            f"points at x = {show(steps)} on the axis, modes at (0, 0), (2, 0), (4, 1) with sigma = 0.2: "
            f"high_quality_share gave {got:.4f} ({got * 9:.1f} of 9), expected 4 of 9 (0, 0.3, 0.59 and "
            "1.7 lie within 0.6 of a mode)",
            "each point's distance to its nearest mode, whichever mode that is",
        )
    # 3-D points around two modes, sigma = 0.25 (3 sigma = 0.75, exact in binary): at 0.75 exactly a
    # point is not within 3 sigma, as in mode_report (distance < 3 sigma)
    means3 = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 1.0]], dtype=torch.float64)
    offsets = torch.tensor(
        [
            [0.5, 0.0, 0.0],
            [0.0, 0.75, 0.0],
            [0.0, 0.0, -0.75],
            [0.0, 0.5, 0.5],
            [0.0, 0.0, 0.8],
            [0.25, 0.0, 0.0],
        ]
    )
    x3 = torch.cat([offsets, means3[1].float() + offsets.flip(0)])  # (12, 3)
    mixture3 = data.GaussianMixture(
        means3, torch.full((2,), 0.25, dtype=torch.float64), torch.full((2,), 0.5, dtype=torch.float64)
    )
    expected = mode_report(x3, mixture3).high_quality  # 6 of 12: 0.5, 0.71 and 0.25 from a mode, twice
    got = as_float_answer(answer(x3.clone(), means3.clone(), 0.25), "high_quality_share")
    if not _share_matches(got, expected, 12):
        hint = "the distance over every coordinate of a point (x_fake is (n, dim), here dim = 3)"
        if _share_matches(got, 10 / 12, 12):
            hint = (
                "a point exactly 3 sigma from its mode is not within 3 sigma: the rule is "
                "distance < 3 sigma, as in mode_report"
            )
        raise ExerciseError(
            "12 points in 3-D around modes (0, 0, 0) and (2, 0, 1) with sigma = 0.25, four of them exactly "
            f"0.75 = 3 sigma from a mode: high_quality_share gave {got * 12:.1f} of 12, expected "
            f"{round(expected * 12)} of 12",
            hint,
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
        [2500] + [1] * 24,  # one mode holds almost everything
    ]
    for counts in histograms:
        counts = torch.tensor(counts)
        expected = kl_from_uniform(counts)
        counts_in = counts.clone()
        got = as_float_answer(answer(counts_in), f"kl_uniform({counts.tolist()})")
        if not torch.equal(counts_in, counts):
            raise ExerciseError(
                f"kl_uniform changed the counts in place (now {counts_in.tolist()})",
                "compute with new tensors",
            )
        if math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6):  # float32 arithmetic is fine
            continue
        hint = "with q = counts / counts.sum(): the sum over non-empty modes of q log(K q)"
        if not math.isfinite(got):
            hint = "an empty mode contributes 0 (0 log 0 = 0): leave it out, or use torch.xlogy"
        elif math.isclose(got, expected / math.log(2), rel_tol=1e-4):
            hint = "use the natural logarithm (nats)"
        elif math.isclose(got, expected - math.log(len(counts)), rel_tol=1e-4, abs_tol=1e-5):
            hint = "the uniform distribution's share is 1/K: log(q / (1/K)) = log(K q)"
        elif (counts == 0).any():
            hint = "K is the number of modes, len(counts), empty ones included"
        raise ExerciseError(  # 4 digits: enough to see the gap, too few to copy as an answer
            f"kl_uniform({counts.tolist()}) gave {got:.6g}, expected {expected:.4g} (to 5 digits)", hint
        )
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


_RATE_FIELDS = ("lr_G", "lr_D", "k")  # what lab.set_rates may change


def _run_state(lab) -> list[torch.Tensor]:
    """G's and D's weights and the state of lab's data generator: what only lab.train may change."""
    weights = [p.detach().clone() for net in (lab.G, lab.D) for p in net.parameters()]
    return [*weights, lab.generator.get_state()]


def _fixed_settings(lab) -> tuple:
    """Everything about lab's run that the exercise fixes: its config beyond the rates and k, the
    networks, optimisers and data it trains with, and the optimisers' settings beyond the rate."""
    config = {f: v for f, v in vars(lab.config).items() if f not in _RATE_FIELDS}
    groups = [
        {key: v for key, v in group.items() if key not in ("params", "lr")}
        for opt in (lab.opt_G, lab.opt_D)
        for group in opt.param_groups
    ]
    objects = tuple(id(o) for o in (lab.G, lab.D, lab.opt_G, lab.opt_D, lab.mixture, lab.generator))
    params = tuple(id(p) for net in (lab.G, lab.D) for p in net.parameters())
    overridden = sorted(k for k in vars(lab) if callable(getattr(type(lab), k, None)))
    return config, repr(groups), objects, params, overridden


def _budget_explorer():
    """An explorer for exercise 2.5 that lets its run change only through ``train`` (within the
    budget) and ``set_rates``; ``finish()`` checks what happened after the last call."""
    from ..explorer import Explorer, ExplorerConfig  # here, not at import: the explorer pulls in more

    ledger = {"iterations": 0}  # kept outside the explorer, where lab.step = 0 cannot reach it

    def require_untouched(lab, when: str) -> None:
        if _fixed_settings(lab) != ledger["settings"]:
            raise ExerciseError(
                f"{when}, train_ring had changed more of lab than its rates and k (its config, networks, "
                "optimisers, data or methods)",
                "change the rates and k with lab.set_rates(lr_G=..., lr_D=..., k=...) and train with "
                "lab.train(steps); nothing else",
            )
        if not all(torch.equal(a, b) for a, b in zip(_run_state(lab), ledger["state"], strict=True)):
            raise ExerciseError(
                f"{when}, G's or D's weights (or lab's data generator) had changed outside lab.train: an "
                "optimiser step of your own, weights loaded or set by hand, or a reseeded generator",
                "the exercise trains this run through lab.train only, within its budget",
            )

    class BudgetExplorer(Explorer):
        """An Explorer that trains only within exercise 2.5's budget, and refuses to start again."""

        def reset(self, **changes):
            if hasattr(self, "step"):
                raise ExerciseError(
                    "train_ring called lab.reset(): train this run, changing only its rates",
                    "lab.set_rates(lr_G=..., lr_D=..., k=...) keeps the networks",
                )
            super().reset(**changes)

        def train(self, steps):
            require_untouched(self, f"at lab.train({steps})")
            if self.config.k > RING_MAX_K:
                raise ExerciseError(
                    f"k = {self.config.k} D steps per G step: the budget allows {RING_MAX_K} at most"
                )
            if ledger["iterations"] + steps > RING_ITERATIONS:
                raise ExerciseError(
                    f"lab.train({steps}) after {ledger['iterations']} iterations would pass the budget "
                    f"of {RING_ITERATIONS:,}"
                )
            ledger["iterations"] += steps
            stats = super().train(steps)
            ledger["state"] = _run_state(self)
            return stats

    lab = BudgetExplorer(ExplorerConfig(dataset="ring", seed=0))
    ledger["settings"], ledger["state"] = _fixed_settings(lab), _run_state(lab)

    def finish() -> int:
        require_untouched(lab, "after train_ring returned")
        return ledger["iterations"]

    return lab, finish


@exercise("2.5", "train_ring", train_ring)
def check_train_ring(answer) -> str:
    lab, finish = _budget_explorer()
    answer(lab)
    iterations = finish()
    if iterations == 0:
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
            f"after {iterations} iterations G covers {report.modes} of 8 modes (high-quality samples per "
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
