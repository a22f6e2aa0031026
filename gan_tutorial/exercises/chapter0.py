"""Chapter 0's exercises (``notebooks/00_setup.ipynb``): the MNIST range, the ring of 8 by hand,
memory of a tensor, and a maximum-likelihood fit of a Gaussian (the training exercise).

:func:`optimizer_steps` (which optimiser steps an answer took, and the weights after each) is
shared with the later chapters' training exercises."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from .. import data
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, require_close, show


@dataclass
class OptimizerStep:
    """One step of an optimiser seen by :func:`optimizer_steps`: the optimiser, its parameters
    (the tensors themselves) and their values just after the step."""

    optimizer: torch.optim.Optimizer
    params: list[torch.Tensor]
    values: list[torch.Tensor]


@contextlib.contextmanager
def optimizer_steps(keep_values: bool = True) -> Iterator[list[OptimizerStep]]:
    """Inside, every ``step()`` of every PyTorch optimiser is appended to the yielded list (with a
    copy of the weights after it when ``keep_values``): what a checker observes to tell training
    from a closed form, and to count the steps an answer took."""
    seen: list[OptimizerStep] = []

    def record(optimizer, args, kwargs) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        values = [p.detach().clone() for p in params] if keep_values else []
        seen.append(OptimizerStep(optimizer, params, values))

    handle = register_optimizer_step_post_hook(record)
    try:
        yield seen
    finally:
        handle.remove()


def _unchanged(before: torch.Tensor, after: torch.Tensor) -> bool:
    return before.dtype == after.dtype and before.shape == after.shape and torch.equal(before, after)


# -- 0.1 ----------------------------------------------------------------------------------


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] back to [0, 1]: the inverse of x = p / 127.5 - 1 after dividing p by 255."""
    return (x + 1) / 2


@exercise("0.1", "to_unit", to_unit)
def check_to_unit(answer) -> None:
    gen = torch.Generator().manual_seed(0)
    levels = torch.arange(256, dtype=torch.float32)  # every pixel value p
    faint = torch.full((2, 1, 28, 28), -1.0)
    faint[:, :, 10:18, 10:18] = 0.2  # a faint digit: no pixel reaches 1
    bright = torch.full((1, 1, 28, 28), 0.25)
    bright[:, :, 5:20, 5:20] = 0.75  # a grey image: no pixel below 0, still in [-1, 1]
    tanh_like = torch.rand(4, 1, 28, 28, generator=gen, dtype=torch.float64) * 2 - 1  # any value in [-1, 1]
    cases = [
        ("to_unit([-1, 0, 1])", torch.tensor([-1.0, 0.0, 1.0]), None),
        (
            "to_unit of the 256 MNIST levels p / 127.5 - 1",
            levels / 127.5 - 1,
            "x = p / 127.5 - 1 gives p / 255 = (x + 1) / 2",
        ),
        (
            "to_unit of a faint image (background -1, strokes 0.2)",
            faint,
            "one fixed map for every image: a pixel of 0.2 is 0.6 whatever the rest of the image is "
            "(no rescaling by the image's own minimum and maximum, no clipping)",
        ),
        (
            "to_unit of a grey image with no pixel below 0 (0.25 and 0.75)",
            bright,
            "the input is always in [-1, 1], even when no pixel is negative: (x + 1) / 2 every time, "
            "without testing the range first",
        ),
        (
            "to_unit of float64 values anywhere in [-1, 1] (a Tanh generator's output)",
            tanh_like,
            "one formula for every value, not a rounding to the 256 levels of a byte",
        ),
    ]
    for what, x, hint in cases:
        before = x.clone()
        out = as_tensor_answer(answer(x), "to_unit(x)", x.shape)
        if not _unchanged(before, x):
            raise ExerciseError(
                f"{what}: to_unit changed its input in place, so the images you pass in are no longer "
                "in [-1, 1]",
                "return a new tensor, (x + 1) / 2, instead of x.add_(1) or x += 1",
            )
        if out.dtype != x.dtype:
            raise ExerciseError(
                f"{what}: to_unit returned dtype {out.dtype} for a {x.dtype} input",
                "keep the input's dtype: (x + 1) / 2 does",
            )
        require_close(out, (x + 1) / 2, what, hint, rtol=0, atol=1e-6)


# -- 0.2 ----------------------------------------------------------------------------------


def sample_ring(n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of the ring of 8: a uniform mode i, the point at angle 2 pi i / 8 on the unit
    circle, plus Gaussian noise of standard deviation 0.01; (n, 2)."""
    i = torch.randint(0, 8, (n,), generator=generator)  # 0, ..., 7
    angle = 2 * math.pi * i / 8
    centres = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 2)
    return centres + 0.01 * torch.randn(n, 2, generator=generator)


_GENERATOR_HINT = (
    "draw every random number from `generator`: torch.randint(..., generator=generator), "
    "torch.randn(..., generator=generator), and never reseed it"
)


@exercise("0.2", "sample_ring", sample_ring)
def check_sample_ring(answer) -> None:
    n, sigma = 8001, 0.01  # not a multiple of 8: every point's mode is drawn
    state = torch.get_rng_state()
    x = as_tensor_answer(answer(n, torch.Generator().manual_seed(1)), f"sample_ring({n}, generator)", (n, 2))
    if not torch.equal(torch.get_rng_state(), state):
        raise ExerciseError(
            "sample_ring drew from (or reseeded) PyTorch's global generator, not from the one it was given",
            _GENERATOR_HINT,
        )
    if x.dtype != torch.float32:
        raise ExerciseError(
            f"sample_ring returned dtype {x.dtype}, expected float32 (the default, like data.ring8().sample)"
        )
    if not torch.equal(x, answer(n, torch.Generator().manual_seed(1))):
        raise ExerciseError("two calls with generators seeded alike gave different points", _GENERATOR_HINT)
    if torch.equal(x, answer(n, torch.Generator().manual_seed(2))):
        raise ExerciseError("generators seeded differently gave the same points", _GENERATOR_HINT)
    used = torch.Generator().manual_seed(1)
    first = answer(n, used)
    if torch.equal(first, answer(n, used)):  # the second call must go on with the generator's stream
        raise ExerciseError(
            "two calls in a row with the same generator gave the same points: the generator was "
            "reseeded (or copied) instead of drawn from",
            _GENERATOR_HINT,
        )
    x = x.detach().double()
    radial = x.norm(dim=1) - 1  # the noise along the radius: N(0, sigma^2) if the centres are right
    if radial.abs().max() < 1e-6:
        raise ExerciseError(
            "every point lies exactly on the circle: there is no noise", "add 0.01 * torch.randn(n, 2)"
        )
    centre, spread = radial.median().item(), radial.std().item()
    if not 0.95 * sigma < spread < 1.05 * sigma:
        raise ExerciseError(
            f"the noise has standard deviation {spread:.4g} along the radius, expected {sigma}",
            "multiply standard normal noise (torch.randn) by the standard deviation 0.01 (not by "
            "the variance, and not twice)",
        )
    if abs(centre) > 0.003:
        raise ExerciseError(
            f"the points lie at distance {1 + centre:.4f} from the origin (median), expected 1",
            "centres on the unit circle, (cos a, sin a), and noise centred on 0: torch.randn, not torch.rand",
        )
    step = 2 * math.pi / 8
    angle = torch.atan2(x[:, 1], x[:, 0])
    off = torch.remainder(angle + step / 2, step) - step / 2  # distance to the nearest 2 pi i / 8, in radians
    if (off.abs() > 5 * sigma).double().mean().item() > 0.002:
        raise ExerciseError(
            "the points are on the circle but not at the angles 2 pi i / 8 (0, 45, 90, ... degrees)",
            "angles in radians, 2 * math.pi * i / 8 with i in 0..7",
        )
    mode = torch.round(torch.remainder(angle, 2 * math.pi) / step).long() % 8  # (n,) each point's mode
    residual = x - torch.stack([torch.cos(mode * step), torch.sin(mode * step)], dim=1)  # the noise, (n, 2)
    cov = torch.cov(residual.T) / sigma**2  # the identity for independent N(0, sigma^2) coordinates
    if not (0.9 < cov[0, 0] < 1.1 and 0.9 < cov[1, 1] < 1.1 and abs(cov[0, 1]) < 0.05):
        raise ExerciseError(
            f"the noise around each centre has covariance {show(cov.flatten())} x sigma^2; independent "
            "noise of standard deviation 0.01 on each coordinate has the identity",
            "one independent draw per coordinate: torch.randn(n, 2), not torch.randn(n, 1) for both",
        )
    inside = (radial.abs() < sigma).double().mean().item()
    if abs(inside - 0.6827) > 0.03:
        raise ExerciseError(
            f"{inside:.1%} of the points lie within one standard deviation of the circle; for "
            "Gaussian noise it is 68.3%",
            "the noise must be Gaussian: torch.randn",
        )
    counts = torch.bincount(mode, minlength=8)
    if counts.min() < n / 8 - 150 or counts.max() > n / 8 + 150:
        raise ExerciseError(
            f"the 8 modes received {counts.tolist()} of {n} points; each should get about {n // 8}",
            "pick the mode uniformly among all 8: torch.randint(0, 8, ...) draws 0, ..., 7",
        )
    repeats = (mode[1:] == mode[:-1]).double().mean().item()  # 1/8 when each mode is drawn afresh
    if abs(repeats - 1 / 8) > 0.03:
        raise ExerciseError(
            f"{repeats:.0%} of consecutive points share a mode, where independent draws give 12.5%: "
            "the modes come in a pattern",
            "draw each point's mode at random, independently: torch.randint(0, 8, (n,), generator=generator)",
        )


# -- 0.3 ----------------------------------------------------------------------------------


def tensor_mib(shape: tuple[int, ...], dtype: torch.dtype) -> float:
    """Memory of a tensor of this shape and dtype, in MiB (2**20 bytes)."""
    return math.prod(shape) * torch.empty((), dtype=dtype).element_size() / 2**20


_MNIST = (60_000, 1, 28, 28)


@exercise("0.3", "tensor_mib", tensor_mib)
def check_tensor_mib(answer) -> str:
    cases = [
        (_MNIST, torch.float32),
        (_MNIST, torch.uint8),
        ((10_000, 784), torch.float16),
        ((10_000, 784), torch.bfloat16),
        ((128, 100), torch.float64),
        ((3, 5, 7), torch.int64),
        ((1000, 1000), torch.bool),
        ((512, 512), torch.complex64),
        ((), torch.float32),  # a scalar: one element
        ((0, 784), torch.float32),  # an empty batch: no bytes
    ]
    for shape, dtype in cases:
        numel = math.prod(shape)
        expected = numel * torch.empty((), dtype=dtype).element_size() / 2**20
        got = as_float_answer(answer(shape, dtype), f"tensor_mib({shape}, {dtype})")
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-15):
            continue
        hint = "bytes = number of elements x bytes per element (torch.empty((), dtype=dtype).element_size())"
        if math.isclose(got, expected * 2**20 / 1e6, rel_tol=1e-9):
            hint = "a MiB is 2**20 = 1,048,576 bytes, not 10**6 (that is a MB)"
        elif math.isclose(got, numel / 2**20, rel_tol=1e-9):
            hint = "that counts elements, not bytes: multiply by the bytes per element of the dtype"
        elif math.isclose(got, 8 * expected, rel_tol=1e-9):
            hint = "that counts bits: a byte is 8 bits"
        elif not shape or not numel:
            hint = (
                "the number of elements is the product of the shape: 1 for (), 0 when a side is 0 (math.prod)"
            )
        raise ExerciseError(f"tensor_mib({shape}, {dtype}) gave {got:.6g}, expected {expected:.6g}", hint)
    f32, u8 = (tensor_mib(_MNIST, d) for d in (torch.float32, torch.uint8))
    return f"MNIST's training set: {f32:.1f} MiB as float32, {u8:.1f} MiB as uint8"


# -- 0.4 ----------------------------------------------------------------------------------


def fit_gaussian(x: torch.Tensor) -> tuple[float, float]:
    """Fit N(mu, sigma^2) to samples x of shape (n, 1) by gradient descent on the average
    negative log-likelihood; return (mu, sigma)."""
    mu = torch.zeros((), requires_grad=True)
    log_sigma = torch.zeros((), requires_grad=True)  # sigma = exp(log_sigma) stays positive
    opt = torch.optim.Adam([mu, log_sigma], lr=0.05)
    for _ in range(1000):
        # -log N(x; mu, sigma^2) = (x - mu)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2
        nll = (0.5 * ((x - mu) / log_sigma.exp()) ** 2 + log_sigma).mean()
        opt.zero_grad()
        nll.backward()
        opt.step()
    return mu.item(), log_sigma.exp().item()


def _trained(value: float, steps: list[OptimizerStep]) -> tuple[bool, bool]:
    """Whether ``value`` is, to float32 precision, one of the trained weights after the last step,
    or the exponential of one."""
    last: dict[int, torch.Tensor] = {}
    for step in steps:  # the last value of every trained tensor
        for p, v in zip(step.params, step.values, strict=True):
            last[id(p)] = v
    weights = torch.cat([v.detach().double().flatten() for v in last.values()]) if last else torch.zeros(0)
    target = torch.tensor(value, dtype=torch.float64)

    def near(t: torch.Tensor) -> bool:
        return bool(torch.isclose(t, target, rtol=1e-5, atol=1e-7).any())

    return near(weights), near(weights.exp())


@exercise("0.4", "fit_gaussian", fit_gaussian)
def check_fit_gaussian(answer) -> str:
    sets = {
        "the chapter's two-mode mixture": data.gaussian_mixture_1d().sample(
            4000, torch.Generator().manual_seed(0)
        ),
        "N(3, 0.25^2)": data.gaussian_mixture_1d(means=(3.0,), stds=(0.25,)).sample(
            2000, torch.Generator().manual_seed(1)
        ),
    }
    for name, x in sets.items():
        m, s = x.double().mean().item(), x.double().std(unbiased=False).item()  # the closed-form fit
        before = x.clone()
        with optimizer_steps() as steps:
            got = answer(x)
        if not _unchanged(before, x):
            raise ExerciseError(
                "fit_gaussian changed the samples x in place", "leave x alone: compute with new tensors"
            )
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"fit_gaussian returned {show(got)}, expected a pair (mu, sigma)")
        mu, sigma = (as_float_answer(v, "fit_gaussian") for v in got)
        if not steps:
            raise ExerciseError(
                "fit_gaussian took no optimiser step: the exercise asks for a fit by gradient descent",
                "train mu and log_sigma with torch.optim.Adam on the negative log-likelihood; the mean and "
                "standard deviation of x are the closed form the check compares your fit with",
            )
        mu_trained, _ = _trained(mu, steps)
        sigma_direct, sigma_exp = _trained(sigma, steps)
        if not mu_trained or not (sigma_exp or sigma_direct):
            raise ExerciseError(
                f"on samples of {name}, fit_gaussian returned mu = {mu:.4f}, sigma = {sigma:.4f}, which are "
                "not the values its optimiser reached",
                "return the trained parameters after the last step: mu.item() and log_sigma.exp().item()",
            )
        if abs(mu - m) <= 0.02 * s and abs(sigma - s) <= 0.02 * s:
            continue
        hint = "train longer or with a larger learning rate until mu and sigma stop moving"
        if not (math.isfinite(mu) and math.isfinite(sigma)) or sigma <= 0:
            hint = "sigma must stay positive: train log_sigma and use sigma = exp(log_sigma)"
        elif sigma > 1.5 * s and abs(mu - m) <= 0.05 * s:
            hint = (
                "sigma is far too large: keep the log sigma term of -log N(x; mu, sigma^2); without "
                "it a wider Gaussian always looks better"
            )
        elif abs(sigma - 1) < 1e-3:
            hint = "sigma did not move from 1: the loss must depend on sigma (a squared error fits only mu)"
        raise ExerciseError(
            f"on samples of {name}, fit_gaussian gave mu = {mu:.4f}, sigma = {sigma:.4f}; maximum "
            f"likelihood gives mu = {m:.4f}, sigma = {s:.4f} (the mean and the standard deviation)",
            hint,
        )
    x = sets["the chapter's two-mode mixture"].double()
    m, s = x.mean().item(), x.std(unbiased=False).item()
    return (
        f"the best single Gaussian for the modes at -2 and 2 is N({m:.2f}, {s:.2f}^2), centred between them"
    )
