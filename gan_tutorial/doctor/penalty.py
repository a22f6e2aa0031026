r"""The gradient penalty, probed: is a function ``fn(D, x_real, x_fake)`` WGAN-GP's penalty? (chapter 6)

:func:`check_gradient_penalty` calls the function on a probe critic, :class:`_ProbeCritic`, whose
gradient is known in closed form and which records what it is called on. From its records it
reads back the interpolates the function used (:func:`_check_interpolates`: one weight per
sample, in [0, 1], not the same for all), then compares the value returned with the right
penalty at those points, :func:`gan_tutorial.losses.one_centered`, and with the common wrong
ones (:func:`_penalty_variants`), and last checks that the penalty has a graph back to D's
weights. Its findings: ``gp_interpolates``, ``gp_formula``, ``gp_no_graph``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .. import losses, runtime
from .findings import Finding, describe

#: The weight lambda of the WGAN-GP penalty (Gulrajani et al. 2017): what
#: :func:`check_gradient_penalty` expects by default, and what the gallery's WGAN-GP runs use.
GP_WEIGHT = 10.0

#: A gradient penalty as a function of the critic and a real and a fake batch.
Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class _ProbeCritic(nn.Module):
    """A critic with a known gradient that records its inputs: D(x) = w . x + 1/2 v . x^2 for each
    flattened sample x, so grad_x D = w + v * x differs from sample to sample, and the penalty
    depends on D's weights w and v through that gradient (so it can train them)."""

    def __init__(self, numel: int, generator: torch.Generator) -> None:
        super().__init__()
        self.w = nn.Parameter(1.5 * torch.randn(numel, generator=generator) / math.sqrt(numel))
        self.v = nn.Parameter(0.5 * torch.rand(numel, generator=generator))
        self.inputs: list[torch.Tensor] = []

    def score(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        flat, w, v = x.flatten(1).to(dtype), self.w.to(dtype), self.v.to(dtype)
        return (flat @ w + 0.5 * (flat * flat) @ v)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.score(x)


@dataclass
class _Probe:
    """One call of a penalty function on a probe critic, and what it gave back."""

    critic: _ProbeCritic
    x_real: torch.Tensor
    x_fake: torch.Tensor
    out: object


def _probe(fn: Penalty, shape: tuple[int, ...], batch: int, seed: int) -> _Probe:
    """Call ``fn`` once on a fresh probe critic and probe batches drawn from ``seed``; PyTorch's
    global stream (which ``fn`` draws its weights from) is seeded inside and put back after."""
    gen = torch.Generator().manual_seed(seed)
    critic = _ProbeCritic(math.prod(shape), gen)
    x_real = torch.randn(batch, *shape, generator=gen)
    # fakes at a distance between 0.5 and 1.5 from their reals along every coordinate, so that
    # each coordinate's interpolation weight can be read back exactly
    offset = (0.5 + torch.rand(batch, *shape, generator=gen)) * torch.where(
        torch.rand(batch, *shape, generator=gen) < 0.5, -1.0, 1.0
    )
    x_fake = x_real + offset
    with runtime.isolated(seed=seed):
        try:
            out = fn(critic, x_real.clone(), x_fake.clone())
        except Exception as err:
            raise ValueError(
                f"the penalty function raised {type(err).__name__}: {err}, on a probe batch of shape "
                f"{(batch, *shape)}; if it is written for samples of another shape, pass sample_shape="
            ) from err
    return _Probe(critic, x_real, x_fake, out)


def _expected(probe: _Probe, lam: float) -> dict[str, float] | None:
    """The right penalty (``"expected"``) and common wrong ones at the interpolates ``fn`` used,
    or ``None`` if it used none."""
    x_hat = next((x for x in probe.critic.inputs if not _is_endpoint(x, probe.x_real, probe.x_fake)), None)
    if x_hat is None:
        return None
    x_hat = x_hat.to(torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(probe.critic.score(x_hat, torch.float64).sum(), x_hat)
    return _penalty_variants(grad, lam)


def _penalty_variants(grad: torch.Tensor, lam: float) -> dict[str, float]:
    """The right penalty (``"expected"``) and common wrong ones, for per-sample gradients ``grad``."""
    flat = grad.flatten(1).norm(dim=1)
    variants = {
        "expected": losses.one_centered(grad, lam),
        "the sum over the batch instead of the mean": lam * ((flat - 1) ** 2).sum(),
        "the squared norm ||grad||^2 in place of the norm": lam * ((flat**2 - 1) ** 2).mean(),
        "||grad||^2 with no -1 (an R1-style penalty)": lam * (flat**2).mean(),
        "|(||grad|| - 1)| not squared": lam * (flat - 1).abs().mean(),
        "the one-sided max(0, ||grad|| - 1)^2": lam * ((flat - 1).clamp(min=0) ** 2).mean(),
    }
    for dim in range(1, grad.ndim):
        variants[f"the norm over dimension {dim} only"] = lam * ((grad.norm(dim=dim) - 1) ** 2).mean()
    if grad.ndim > 2:
        variants["the norm over the last dimension only"] = lam * ((grad.norm(dim=-1) - 1) ** 2).mean()
    return {k: float(v) for k, v in variants.items()}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-7)


def check_gradient_penalty(
    fn: Penalty, *, lam: float = GP_WEIGHT, sample_shape: Sequence[int] = (2, 3, 3), batch: int = 8
) -> Finding | None:
    r"""Probe a gradient penalty ``fn(D, x_real, x_fake) -> scalar`` against WGAN-GP's definition.

    ``fn`` is called with a probe critic that records its inputs, a real batch and a fake batch of
    ``batch`` samples of shape ``sample_shape`` (default (2, 3, 3), an image with two
    channels: small, and with enough dimensions to tell a norm over the whole sample from one over
    a single dimension; pass the shape of one of your samples if ``fn`` only handles that). The
    definition (Gulrajani et al. 2017):

        x_hat = eps x_real + (1 - eps) x_fake,  eps ~ U[0, 1], one per sample;
        penalty = lam * mean over the batch of (||grad_x D(x_hat)||_2 - 1)^2,

    the norm taken over the whole flattened sample, and the gradient with ``create_graph=True``
    so that the penalty trains D. Returns a :class:`Finding` for the first departure found, in
    this order: the interpolates (``gp_interpolates``: off the segments, one weight per pixel,
    one weight for the whole batch), the value (``gp_formula``, naming the variant it matches when
    it is a common one: a norm over one dimension, a sum, another lambda, ...), the graph
    (``gp_no_graph``); ``None`` when it matches. A value off by a constant factor is probed once
    more, on another critic, to tell a different lambda from chance. PyTorch's global random
    stream is left untouched.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function fn(D, x_real, x_fake) -> penalty, got {type(fn).__name__}")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam (the penalty's weight) must be a positive number, got {lam!r}")
    shape = tuple(int(s) for s in sample_shape)
    if not shape or min(shape) < 1 or batch < 2:
        raise ValueError(
            f"sample_shape must be non-empty positive sizes and batch >= 2, got {shape}, {batch}"
        )
    probe = _probe(fn, shape, batch, seed=0)
    out = probe.out
    if not isinstance(out, torch.Tensor) or out.numel() != 1 or not out.is_floating_point():
        return Finding(
            "gp_formula",
            f"the penalty function returned {describe(out)}, not one number.",
            "the penalty left per sample (no mean over the batch), or a Python number instead of a tensor.",
            "return lam * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean(), a 0-d tensor.",
        )
    return (
        _check_interpolates(probe.critic.inputs, probe.x_real, probe.x_fake)
        or _check_value(fn, probe, float(lam), shape, batch)
        or _check_graph(probe)
    )


def _check_value(
    fn: Penalty, probe: _Probe, lam: float, shape: tuple[int, ...], batch: int
) -> Finding | None:
    """The value ``fn`` returned on ``probe`` against the right penalty at its interpolates, naming
    the common wrong variant it matches, or a constant factor (a second probe tells it from chance)."""
    variants = _expected(probe, lam)
    assert variants is not None  # _check_interpolates found the interpolates
    assert isinstance(probe.out, torch.Tensor)  # check_gradient_penalty checked it
    expected, got = variants.pop("expected"), probe.out.item()
    if _close(got, expected):
        return None
    match = next((name for name, value in variants.items() if _close(got, value)), None)
    if match is None and expected > 0 and got > 0:
        # the same ratio on a second probe (other critic, other batches): a constant factor
        second = _probe(fn, shape, batch, seed=1)
        again = _expected(second, lam)
        if isinstance(second.out, torch.Tensor) and again and again["expected"] > 0:
            ratio = got / expected
            if _close(second.out.item() / again["expected"], ratio):
                match = f"a weight lambda = {lam * ratio:.4g} instead of {lam:g} (pass lam= if it is meant)"
    matched = f", which is what {match} gives" if match else ""
    return Finding(
        "gp_formula",
        f"on the probe the penalty should be {lam:g} * mean((||grad||_2 - 1)^2) = {expected:.6g} (norm "
        f"over all {math.prod(shape)} values of each sample), and the function returned "
        f"{got:.6g}{matched}.",
        "a norm over one dimension only (grad.norm(2, dim=1) on images leaves one norm per pixel), the "
        "squared norm, a sum instead of the mean, a missing square or -1, or another weight.",
        f"penalty = {lam:g} * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean(), with grad the gradient of "
        "D(x_hat).sum() with respect to x_hat.",
    )


def _check_graph(probe: _Probe) -> Finding | None:
    """Whether the penalty ``probe`` got back has a gradient with respect to the critic's weights."""
    out = probe.out
    assert isinstance(out, torch.Tensor)  # check_gradient_penalty checked it
    weights = list(probe.critic.parameters())
    grads = (
        torch.autograd.grad(out, weights, allow_unused=True) if out.requires_grad else [None] * len(weights)
    )
    if all(g is None or not torch.any(g != 0) for g in grads):
        return Finding(
            "gp_no_graph",
            "the penalty has the right value but no gradient with respect to D's weights "
            f"(requires_grad={out.requires_grad}): adding it to D's loss changes nothing.",
            "torch.autograd.grad(..., create_graph=False) (the default) or a detach() of the gradient.",
            "torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True).",
        )
    return None


def _is_endpoint(x: torch.Tensor, x_real: torch.Tensor, x_fake: torch.Tensor) -> bool:
    return x.shape == x_real.shape and (
        torch.allclose(x, x_real, atol=1e-6) or torch.allclose(x, x_fake.to(x.dtype), atol=1e-6)
    )


def _check_interpolates(
    inputs: list[torch.Tensor], x_real: torch.Tensor, x_fake: torch.Tensor
) -> Finding | None:
    """Whether the first input D saw off the real and fake batches is one interpolate per pair,
    with one weight in [0, 1] per sample, and not the same weight for all of them."""
    fix = (
        "eps = torch.rand(B, *[1] * (x_real.ndim - 1)) (one weight per sample, broadcast over its "
        "coordinates); x_hat = eps * x_real + (1 - eps) * x_fake."
    )
    between = [x for x in inputs if not _is_endpoint(x, x_real, x_fake)]
    if not between:
        return Finding(
            "gp_interpolates",
            f"the penalty function called D {len(inputs)} time(s), only on the real and fake batches "
            "themselves: the gradient was not taken between them.",
            "the penalty taken at the real (or fake) samples instead of at interpolates between the pairs.",
            fix,
        )
    x_hat = between[0]
    if x_hat.shape != x_real.shape:
        return Finding(
            "gp_interpolates",
            f"D was called on a batch of shape {tuple(x_hat.shape)} where interpolates of the pairs would "
            f"have shape {tuple(x_real.shape)}.",
            "an interpolation weight whose shape broadcasts against the batch into a larger tensor, "
            "e.g. eps of shape (B,) against samples of shape (B, d) with B = d.",
            fix,
        )
    t = ((x_hat.double() - x_fake.double()) / (x_real.double() - x_fake.double())).flatten(1)  # (B, numel)
    spread = (t.max(dim=1).values - t.min(dim=1).values).max()
    if spread > 1e-4:
        i = int((t.max(dim=1).values - t.min(dim=1).values).argmax())
        return Finding(
            "gp_interpolates",
            f"within one sample the interpolation weights ranged from {float(t[i].min()):.3f} to "
            f"{float(t[i].max()):.3f} (sample {i}): one weight per coordinate, so x_hat lies in the box "
            "spanned by the pair, off the segment between x_real and x_fake.",
            "eps drawn with the shape of x (torch.rand_like(x_real)), one weight per pixel or coordinate.",
            fix,
        )
    eps = t[:, 0]
    if float(eps.min()) < -1e-5 or float(eps.max()) > 1 + 1e-5:
        return Finding(
            "gp_interpolates",
            f"the interpolation weights ranged from {float(eps.min()):.3f} to {float(eps.max()):.3f}: points "
            "beyond the ends of the segments, not between them.",
            "eps drawn from a normal distribution (torch.randn) instead of U[0, 1] (torch.rand).",
            fix,
        )
    if float(eps.max() - eps.min()) < 1e-6:
        return Finding(
            "gp_interpolates",
            f"every pair was interpolated with the same weight {float(eps[0]):.3f}: one weight for the "
            "whole batch.",
            "eps drawn once per batch (torch.rand(1)) instead of once per sample.",
            fix,
        )
    return None
