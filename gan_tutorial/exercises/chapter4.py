"""Chapter 4's exercises (``notebooks/04_dcgan.ipynb``): transposed-convolution sides, their
weights, the spherical midpoint, the half-life of an average, and finding the codes of images
by gradient descent (training a code, G fixed)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import average, latent, models
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, close

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
    ]
    for n, k, s, p, o in cases:
        layer = nn.ConvTranspose2d(1, 1, k, s, p, output_padding=o)
        with torch.no_grad():
            expected = layer(torch.zeros(1, 1, n, n)).shape[-1]
        got = answer(n, k, s, p, o) if o else answer(n, k, s, p)
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
        raise ExerciseError(
            f"transposed_side(n={n}, k={k}, s={s}, p={p}, o={o}) gave {got!r}; "
            f"nn.ConvTranspose2d gives {expected}",
            hint,
        )
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
    ]:
        expected = _n_params(nn.ConvTranspose2d(c_in, c_out, k, bias=bias))
        got = answer(c_in, c_out, k, bias)
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
        raise ExerciseError(
            f"conv_t_params({c_in}, {c_out}, {k}, bias={bias}) gave {got!r}; "
            f"nn.ConvTranspose2d has {expected:,}",
            hint,
        )
    first = conv_t_params(100, 128, 7, bias=False)
    with isolated(seed=0):
        total = _n_params(models.DCGANGenerator())
    return f"G's first layer holds {first:,} of its {total:,} weights"


# -- 4.3 ----------------------------------------------------------------------------------


def slerp_midpoint(z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
    """The point halfway along the great circle from z0 to z1, two codes of equal norm."""
    s = z0 + z1
    return s / s.norm() * z0.norm()


@exercise("4.3", "slerp_midpoint", slerp_midpoint)
def check_slerp_midpoint(answer) -> None:
    gen = torch.Generator().manual_seed(16)
    for dim, radius in ((100, 10.0), (100, 3.0), (2, 0.5), (16, 7.0)):
        z0, z1 = torch.randn(2, dim, generator=gen, dtype=torch.float64)
        z0, z1 = z0 / z0.norm() * radius, z1 / z1.norm() * radius  # equal norms, not sqrt(dim)
        omega = torch.acos((z0 @ z1) / radius**2)
        expected = torch.sin(omega / 2) / torch.sin(omega) * (z0 + z1)  # slerp at t = 1/2
        got = as_tensor_answer(
            answer(z0.clone(), z1.clone()), f"slerp_midpoint of two codes in {dim} dimensions", (dim,)
        )
        if close(got, expected, atol=1e-9):
            continue
        norm = got.detach().double().norm().item()
        if not math.isclose(norm, radius, rel_tol=1e-6):
            raise ExerciseError(
                f"slerp_midpoint of two codes of norm {radius} in {dim} dimensions has norm {norm:.6g}",
                "the great circle keeps the norm of its ends: scale z0 + z1 to z0's norm (not to sqrt(dim), "
                "and not halved as on the straight line)",
            )
        raise ExerciseError(
            f"slerp_midpoint in {dim} dimensions does not point along z0 + z1",
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
    for beta, every in ((0.999, 1), (0.5, 1), (0.9, 1), (0.995, 5), (0.99, 3)):
        got = as_float_answer(
            answer(beta) if every == 1 else answer(beta, every), f"half_life({beta}, every={every})"
        )
        n = _updates_to_halve(beta)  # the weight halves between update n - 1 and update n
        exact = every * math.log(0.5) / math.log(beta)
        if (n - 1) * every < got <= n * every + 1e-9 and math.isclose(got, exact, rel_tol=1e-9):
            continue
        hint = "beta^h = 1/2 after h updates, so h = log(1/2) / log(beta) updates"
        if math.isclose(got, every / (1 - beta), rel_tol=1e-6):
            hint = "1 / (1 - beta) is the average's mean age, not its half-life"
        elif math.isclose(got, exact / every, rel_tol=1e-9) and every > 1:
            hint = f"each update spans {every} steps: multiply the updates by every"
        elif math.isclose(got, every * math.log(2) / (1 - beta), rel_tol=1e-9):
            hint = "log(2) / (1 - beta) is only an approximation for beta near 1"
        raise ExerciseError(
            f"half_life({beta}, every={every}) gave {got:.6g}; average.EMA halves its start's weight after "
            f"{n} updates ({n * every} steps), and exactly at {exact:.6g} steps",
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


@exercise("4.5", "find_codes", find_codes)
def check_find_codes(answer) -> str:
    with isolated(seed=4):
        G = models.DCGANGenerator(latent_dim=16, ngf=8)
    G = average.recalibrate_batch_norm(G, n=512, batch_size=128)  # running statistics that describe G
    z_true = latent.codes(8, 16, seed=45)
    with torch.no_grad():
        x = G(z_true)  # eval mode: images G can draw, from codes the answer does not see
    G.train()  # as a trainer leaves it
    before = _state(G)
    z = as_tensor_answer(answer(G, x.clone()), "find_codes(G, x)", (8, 16))
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
    G.eval()
    with torch.no_grad():
        err = (G(z.detach().float()) - x).pow(2).mean().item()
        start = (G(torch.zeros_like(z_true)) - x).pow(2).mean().item()
    if not err <= 1e-4 * start:
        raise ExerciseError(
            f"G(z) is {err:.3g} from x (mean squared error); at z = 0 it is {start:.3g}",
            "run more steps of gradient descent on z (a few hundred with Adam at learning rate "
            "0.05), with G in eval mode, so that each image depends on its own code only",
        )
    return "G redraws the 8 images from the codes found, to within 1/10,000 of the error at z = 0"
