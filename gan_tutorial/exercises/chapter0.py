"""Chapter 0's exercises (``notebooks/00_setup.ipynb``): the MNIST range, the ring of 8 by hand,
memory of a tensor, and a maximum-likelihood fit of a Gaussian (the training exercise)."""

from __future__ import annotations

import math

import torch

from .. import data
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, require_close, show

# -- 0.1 ----------------------------------------------------------------------------------


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] back to [0, 1]: the inverse of x = p / 127.5 - 1 after dividing p by 255."""
    return (x + 1) / 2


@exercise("0.1", "to_unit", to_unit)
def check_to_unit(answer) -> None:
    x = torch.tensor([-1.0, 0.0, 1.0])
    before = x.clone()
    out = as_tensor_answer(answer(x), "to_unit(x)", x.shape)
    if not torch.equal(x, before):
        raise ExerciseError(
            "to_unit changed its input in place: the images you pass in are no longer in [-1, 1]",
            "return a new tensor, (x + 1) / 2, instead of x.add_(1) or x += 1",
        )
    require_close(out, torch.tensor([0.0, 0.5, 1.0]), "to_unit([-1, 0, 1])", atol=1e-6)
    levels = torch.arange(256, dtype=torch.float32)  # every pixel value p
    require_close(
        answer(levels / 127.5 - 1),
        levels / 255,
        "to_unit of the 256 MNIST levels p / 127.5 - 1",
        "x = p / 127.5 - 1 gives p / 255 = (x + 1) / 2",
        atol=1e-6,
    )
    dim = torch.full((2, 1, 28, 28), -1.0)
    dim[:, :, 10:18, 10:18] = 0.2  # a faint digit: no pixel reaches 1
    require_close(
        answer(dim.clone()),
        (dim + 1) / 2,
        "to_unit of a faint image (background -1, strokes 0.2)",
        "one fixed map for every image: a pixel of 0.2 is 0.6 whatever the rest of the image is "
        "(no rescaling by the image's own minimum and maximum, no clipping)",
        atol=1e-6,
    )


# -- 0.2 ----------------------------------------------------------------------------------


def sample_ring(n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of the ring of 8: a uniform mode i, the point at angle 2 pi i / 8 on the unit
    circle, plus Gaussian noise of standard deviation 0.01; (n, 2)."""
    i = torch.randint(0, 8, (n,), generator=generator)  # 0, ..., 7
    angle = 2 * math.pi * i / 8
    centres = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (n, 2)
    return centres + 0.01 * torch.randn(n, 2, generator=generator)


@exercise("0.2", "sample_ring", sample_ring)
def check_sample_ring(answer) -> None:
    n, sigma = 8000, 0.01
    x = as_tensor_answer(answer(n, torch.Generator().manual_seed(1)), f"sample_ring({n}, generator)", (n, 2))
    if not x.is_floating_point():
        raise ExerciseError(f"sample_ring returned dtype {x.dtype}, expected floating-point points")
    again = answer(n, torch.Generator().manual_seed(1))
    if not torch.equal(x, again):
        raise ExerciseError(
            "two calls with generators seeded alike gave different points",
            "draw every random number from `generator`: torch.randint(..., generator=generator), "
            "torch.randn(..., generator=generator)",
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
    inside = (radial.abs() < sigma).double().mean().item()
    if abs(inside - 0.6827) > 0.03:
        raise ExerciseError(
            f"{inside:.1%} of the points lie within one standard deviation of the circle; for "
            "Gaussian noise it is 68.3%",
            "the noise must be Gaussian: torch.randn",
        )
    step = 2 * math.pi / 8
    angle = torch.atan2(x[:, 1], x[:, 0])
    off = torch.remainder(angle + step / 2, step) - step / 2  # distance to the nearest 2 pi i / 8, in radians
    if (off.abs() > 5 * sigma).double().mean().item() > 0.002:
        raise ExerciseError(
            "the points are on the circle but not at the angles 2 pi i / 8 (0, 45, 90, ... degrees)",
            "angles in radians, 2 * math.pi * i / 8 with i in 0..7",
        )
    counts = torch.bincount(torch.round(torch.remainder(angle, 2 * math.pi) / step).long() % 8, minlength=8)
    if counts.min() < n / 8 - 150 or counts.max() > n / 8 + 150:
        raise ExerciseError(
            f"the 8 modes received {counts.tolist()} of {n} points; each should get about {n // 8}",
            "pick the mode uniformly among all 8: torch.randint(0, 8, ...) draws 0, ..., 7",
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
    ]
    for shape, dtype in cases:
        numel = math.prod(shape)
        expected = numel * torch.empty((), dtype=dtype).element_size() / 2**20
        got = as_float_answer(answer(shape, dtype), f"tensor_mib({shape}, {dtype})")
        if math.isclose(got, expected, rel_tol=1e-9):
            continue
        hint = "bytes = number of elements x bytes per element (torch.empty((), dtype=dtype).element_size())"
        if math.isclose(got, expected * 2**20 / 1e6, rel_tol=1e-9):
            hint = "a MiB is 2**20 = 1,048,576 bytes, not 10**6 (that is a MB)"
        elif math.isclose(got, numel / 2**20, rel_tol=1e-9):
            hint = "that counts elements, not bytes: multiply by the bytes per element of the dtype"
        elif math.isclose(got, 8 * expected, rel_tol=1e-9):
            hint = "that counts bits: a byte is 8 bits"
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
        got = answer(x.clone())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"fit_gaussian returned {show(got)}, expected a pair (mu, sigma)")
        mu, sigma = (as_float_answer(v, "fit_gaussian") for v in got)
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
