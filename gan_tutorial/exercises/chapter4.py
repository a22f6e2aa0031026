"""Chapter 4's exercises (``notebooks/04_dcgan.ipynb``): transposed-convolution sides, their
weights, the spherical midpoint, the half-life of an average, and finding the codes of images
by gradient descent (training a code, G fixed)."""

from __future__ import annotations

import math
import numbers
import secrets
from typing import Any

import torch
from torch import nn

from .. import average, latent, models
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, close

# -- what the checkers share ------------------------------------------------------------


def _count(value: Any, call: str) -> int:
    """``value`` as an int: a side or a number of weights is a count, never a float or a tensor."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ExerciseError(
            f"{call} returned {value!r} ({type(value).__name__}); a count is an int",
            "integer arithmetic (+, -, *, //) on the ints given keeps an int",
        )
    return int(value)


def _unchanged(before: torch.Tensor, after: torch.Tensor, what: str) -> None:
    if not torch.equal(before, after):
        raise ExerciseError(
            f"{what} changed its input in place",
            "work on new tensors (z0 + z1, not z0.add_(z1)); the caller still needs its data",
        )


# -- 4.1 ----------------------------------------------------------------------------------


def transposed_side(n: int, k: int, s: int, p: int, o: int = 0) -> int:
    """Output side of ConvTranspose2d(kernel k, stride s, padding p, output_padding o) for side n."""
    return (n - 1) * s - 2 * p + k + o


@exercise("4.1", "transposed_side", transposed_side)
def check_transposed_side(answer) -> str:
    cases = [
        (1, 7, 1, 0, 0),
        (7, 4, 2, 1, 0),
        (7, 3, 2, 1, 1),
        (5, 5, 3, 2, 2),
        (14, 4, 2, 1, 0),
        (3, 2, 2, 0, 1),
        (10, 3, 1, 1, 0),  # stride 1, padding 1: the side is kept
        (4, 6, 3, 1, 2),
    ]
    for n, k, s, p, o in cases:
        layer = nn.ConvTranspose2d(1, 1, k, s, p, output_padding=o)
        with torch.no_grad():
            expected = layer(torch.zeros(1, 1, n, n)).shape[-1]
        call = f"transposed_side(n={n}, k={k}, s={s}, p={p}, o={o})"
        got = _count(answer(n, k, s, p, o) if o else answer(n, k, s, p), call)
        if got == expected:
            continue
        hint = (
            "a transposed convolution runs a convolution's connections backwards: (n - 1) s - 2 p + k, plus o"
        )
        if got == (n + 2 * p - k) // s + 1:
            hint = "that is the convolution's formula; the transposed one inverts it"
        elif got == (n - 1) * s - 2 * p + k:
            hint = "add the output padding o"
        elif got == n * s - 2 * p + k + o:
            hint = "n input pixels span n - 1 strides"
        raise ExerciseError(f"{call} gave {got!r}; nn.ConvTranspose2d gives {expected}", hint)
    return "7 -> 14 with k = 3, s = 2, p = 1 needs output_padding 1"


# -- 4.2 ----------------------------------------------------------------------------------


def conv_t_params(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    """Weights of ConvTranspose2d(c_in, c_out, k, bias=bias)."""
    return c_in * c_out * k * k + (c_out if bias else 0)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@exercise("4.2", "conv_t_params", conv_t_params)
def check_conv_t_params(answer) -> str:
    for c_in, c_out, k, bias in [
        (100, 128, 7, False),
        (128, 64, 4, False),
        (64, 1, 4, True),
        (3, 5, 2, True),
        (7, 3, 3, True),
    ]:
        expected = _n_params(nn.ConvTranspose2d(c_in, c_out, k, bias=bias))
        call = f"conv_t_params({c_in}, {c_out}, {k}, bias={bias})"
        got = _count(answer(c_in, c_out, k, bias), call)
        if got == expected:
            continue
        hint = (
            "one k x k kernel for each pair (input channel, output channel), plus one bias per output channel"
        )
        if got == c_in * c_out * k + (c_out if bias else 0):
            hint = "a kernel of size k has k x k weights"
        elif got == c_in * c_out * k * k + (c_in if bias else 0):
            hint = "one bias per output channel"
        elif got == c_in * c_out * k * k + c_out:
            hint = "with bias=False there are no biases"
        raise ExerciseError(f"{call} gave {got!r}; nn.ConvTranspose2d has {expected:,}", hint)
    first = conv_t_params(100, 128, 7, bias=False)
    with isolated(seed=0):
        total = _n_params(models.DCGANGenerator())
    return f"G's first layer holds {first:,} of its {total:,} weights"


# -- 4.3 ----------------------------------------------------------------------------------


def slerp_midpoint(z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The point halfway along the great circle from z0 to z1, two codes of equal norm."""
    s = z0 + z1
    return s / s.norm() * z0.norm()


class _SlerpCalled(Exception):
    """Raised when an answer to 4.3 calls the package's slerp instead of using the sum."""


def _refused(*args: Any, **kwargs: Any) -> Any:
    raise _SlerpCalled


@exercise("4.3", "slerp_midpoint", slerp_midpoint)
def check_slerp_midpoint(answer) -> None:
    gen = torch.Generator().manual_seed(16)
    cases = []
    for dim, radius, dtype in (
        (100, 10.0, torch.float64),
        (100, 3.0, torch.float64),
        (2, 0.5, torch.float64),
        (16, 7.0, torch.float64),
        (100, 10.0, torch.float32),  # float32 codes, as a generator takes them
    ):
        z0, z1 = torch.randn(2, dim, generator=gen, dtype=torch.float64)
        z0, z1 = z0 / z0.norm() * radius, z1 / z1.norm() * radius  # equal norms, not sqrt(dim)
        omega = torch.acos((z0 @ z1) / radius**2)
        expected = torch.sin(omega / 2) / torch.sin(omega) * (z0 + z1)  # slerp at t = 1/2
        cases.append(
            (f"two codes of norm {radius} in {dim} dimensions", z0.to(dtype), z1.to(dtype), expected)
        )
    z = cases[0][1]
    cases.append(("a code and itself (the arc has length 0)", z, z.clone(), z))
    for what, z0, z1, expected in cases:
        given0, given1 = z0.clone(), z1.clone()
        slerp = latent.slerp
        latent.slerp = _refused  # the rule: from the sum alone
        try:
            value = answer(given0, given1)
        except _SlerpCalled:
            raise ExerciseError(
                "slerp_midpoint called latent.slerp",
                "the midpoint follows from z0 + z1 alone: no angle needed",
            ) from None
        finally:
            latent.slerp = slerp
        got = as_tensor_answer(value, f"slerp_midpoint of {what}", z0.shape)
        _unchanged(z0, given0, "slerp_midpoint")
        _unchanged(z1, given1, "slerp_midpoint")
        if got.dtype != z0.dtype:
            raise ExerciseError(
                f"slerp_midpoint of {what} returned {got.dtype}; the codes were {z0.dtype}",
                "tensor operations on the codes keep their dtype",
            )
        f32 = z0.dtype == torch.float32
        if close(got, expected, rtol=1e-5 if f32 else 1e-9, atol=1e-5 if f32 else 1e-9):
            continue
        if not bool(torch.isfinite(got.detach()).all()):
            raise ExerciseError(
                f"slerp_midpoint of {what} has NaN or infinite values",
                "with the angle, sin(Omega) is 0 there and the division is 0 / 0; from the sum alone, "
                "(z0 + z1) scaled to z0's norm, nothing divides by 0",
            )
        norm = got.detach().double().norm().item()
        radius = z0.double().norm().item()
        if not math.isclose(norm, radius, rel_tol=1e-5):
            raise ExerciseError(
                f"slerp_midpoint of {what} has norm {norm:.4g}",
                "the great circle keeps the norm of its ends: scale z0 + z1 to z0's norm (not to sqrt(dim), "
                "and not halved as on the straight line)",
            )
        raise ExerciseError(
            f"slerp_midpoint of {what} does not point along z0 + z1",
            "the midpoint of the arc lies in the direction of z0 + z1",
        )


# -- 4.4 ----------------------------------------------------------------------------------


def half_life(beta: float, every: int = 1) -> float:
    """Steps until an average updated every ``every`` steps with decay ``beta`` per update gives
    half the weight it gave at first to a past value."""
    return every * math.log(0.5) / math.log(beta)


def _updates_to_halve(beta: float) -> int:
    """Updates of average.EMA until the average's weight on its starting value is <= 1/2, by trying."""
    live = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        live.weight.fill_(1.0)
    avg = average.EMA(live, decay=beta)
    with torch.no_grad():
        live.weight.fill_(0.0)  # from now on the average only forgets its start
    n = 0
    while avg.module.weight.item() > 0.5:
        avg.update(live)
        n += 1
    return n


@exercise("4.4", "half_life", half_life)
def check_half_life(answer) -> str:
    for beta, every in ((0.999, 1), (0.5, 1), (0.9, 1), (0.995, 5), (0.99, 3), (0.97, 7)):
        call = f"half_life({beta}, every={every})"
        got = as_float_answer(answer(beta) if every == 1 else answer(beta, every), call)
        n = _updates_to_halve(beta)  # the weight halves between update n - 1 and update n
        exact = every * math.log(0.5) / math.log(beta)
        # 5e-5 of the value: float32's rounding of beta = 0.999 moves log(beta) by 1.3e-5 of itself
        if math.isclose(got, exact, rel_tol=5e-5) and (n - 1) * every < got * (1 + 5e-5):
            continue
        hint = "beta^h = 1/2 after h updates, so h = log(1/2) / log(beta) updates"
        if math.isclose(got, every / (1 - beta), rel_tol=1e-6):
            hint = "1 / (1 - beta) is the average's mean age, not its half-life"
        elif math.isclose(got, exact / every, rel_tol=5e-5) and every > 1:
            hint = f"each update spans {every} steps: multiply the updates by every"
        elif math.isclose(got, every * math.log(2) / (1 - beta), rel_tol=1e-6):
            hint = "log(2) / (1 - beta) is only an approximation for beta near 1"
        elif got == round(got):
            hint = "the half-life is a real number of steps, log(1/2) / log(beta) per update: no rounding"
        raise ExerciseError(
            f"{call} gave {got:.4g}; average.EMA's weight on a past value is still above half after "
            f"{n - 1} updates ({(n - 1) * every} steps) and below it after {n} ({n * every} steps)",
            hint,
        )
    return f"decay 0.999 per step: half-life {half_life(0.999):.1f} steps"


# -- 4.5 ----------------------------------------------------------------------------------


def find_codes(G: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Codes z (B, latent_dim) with G(z) close to the images x (B, 1, 28, 28), found by gradient
    descent on z alone; G, in eval mode, stays as it is."""
    was_training = G.training
    G.eval()  # batch norm with its running statistics: each image depends on its own code only
    z = torch.zeros(len(x), G.latent_dim, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.05)  # only z is optimised
    for _ in range(300):
        loss = (G(z) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    G.train(was_training)
    G.zero_grad(set_to_none=True)  # the loss left gradients on G's weights: not ours to keep
    return z.detach()


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _flags(module: nn.Module) -> tuple[list[bool], list[bool]]:
    """Each submodule's training flag and each parameter's requires_grad."""
    return [m.training for m in module.modules()], [p.requires_grad for p in module.parameters()]


def _hidden_images(G: nn.Module, n: int) -> torch.Tensor:
    """n images G draws in eval mode from codes drawn afresh on every call (from the operating
    system's entropy) and then forgotten: nothing in this source rebuilds them."""
    gen = torch.Generator().manual_seed(secrets.randbits(62))
    with torch.no_grad():
        return G.eval()(torch.randn(n, G.latent_dim, generator=gen))


@exercise("4.5", "find_codes", find_codes)
def check_find_codes(answer) -> str:
    with isolated(seed=4):
        G = models.DCGANGenerator(latent_dim=16, ngf=8)
    G = average.recalibrate_batch_norm(G, n=512, batch_size=128)  # running statistics that describe G
    x = _hidden_images(G, 8)  # images G can draw, from codes the answer cannot know
    G.train()  # as a trainer leaves it
    before, flags = _state(G), _flags(G)
    given = x.clone()
    z = as_tensor_answer(answer(G, given), "find_codes(G, x)", (8, 16))
    _unchanged(x, given, "find_codes")
    after = _state(G)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:
        buffers = all("running" in k or "num_batches" in k for k in changed)
        raise ExerciseError(
            f"find_codes changed G: {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}",
            "G ran in training mode, where batch norm updates its running statistics (and "
            "normalises over the batch): call G.eval() first"
            if buffers
            else "optimise the codes z only: torch.optim.Adam([z], ...), not G's parameters",
        )
    training, requires_grad = _flags(G)
    if training != flags[0]:
        raise ExerciseError(
            "find_codes left G in eval mode; it came in training mode",
            "note G.training first and give it back with G.train(was_training)",
        )
    if requires_grad != flags[1]:
        raise ExerciseError(
            "find_codes changed which of G's weights require gradients",
            "z alone goes to the optimiser, so G's weights need no freezing; if you freeze them, "
            "unfreeze them afterwards",
        )
    stale = [name for name, p in G.named_parameters() if p.grad is not None and bool(p.grad.any())]
    if stale:
        raise ExerciseError(
            f"find_codes left gradients on G's weights: {', '.join(stale[:3])}"
            + (" ..." if len(stale) > 3 else ""),
            "backward() also fills G's .grad: clear them with G.zero_grad(set_to_none=True), or take the "
            "gradient of z alone with torch.autograd.grad(loss, z)",
        )
    if z.dtype != x.dtype:
        raise ExerciseError(f"find_codes returned {z.dtype} codes; G takes {x.dtype}")
    G.eval()
    with torch.no_grad():
        err = (G(z.detach()) - x).pow(2).mean().item()
        start = (G(torch.zeros_like(z)) - x).pow(2).mean().item()
    if not err <= 1e-4 * start:
        raise ExerciseError(
            f"G(z) is {err:.3g} from x (mean squared error); at z = 0 it is {start:.3g}",
            "run more steps of gradient descent on z (a few hundred with Adam at learning rate "
            "0.05), with G in eval mode, so that each image depends on its own code only",
        )
    return "G redraws the 8 images from the codes found, to within 1/10,000 of the error at z = 0"
