r"""Bugs of a WGAN-GP critic: batch norm in it, an interpolation weight per pixel (chapter 6).

The right penalty, as a function of the critic, is :func:`gp_on_critic`: interpolates from
:func:`losses.interpolates`, the gradient from :func:`losses.input_gradients`, the formula
:func:`losses.one_centered`. A run (:func:`wgan_gp_run`) is WGAN-GP on the ring: ``N_CRITIC``
critic steps on E[D(fake)] - E[D(real)] + penalty, then one G step on -E[D(G(z))], where
``d_real`` and ``d_fake`` are the critic's mean raw scores. The bugs:

* ``bn_in_wgan_gp_critic`` - :func:`bn_in_wgan_gp_critic`, batch norm in the critic;
* ``per_pixel_gp_weight`` - :func:`gp_per_coordinate`, one interpolation weight per coordinate.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from torch import Tensor, nn

from .. import losses
from ..doctor import GP_WEIGHT, Penalty
from .run import Bug, BugRun, run_with
from .setup import optimisers, ring_setup, toy_D

#: WGAN-GP's settings: Adam with beta1 = 0.5, beta2 = 0.9, two critic steps per G step and the critic's
#: learning rate five times G's. Gulrajani et al. 2017 use five critic steps at 1e-4 for both; in a
#: run of a few hundred steps that critic trails G (it scores the fakes above the reals most of the
#: time), and this one leads it, as a critic should.
WGAN_LR_D, WGAN_LR_G, WGAN_BETAS, N_CRITIC = 1e-3, 2e-4, (0.5, 0.9), 2


def gp_on_critic(D: nn.Module, x_real: Tensor, x_fake: Tensor, lam: float = GP_WEIGHT) -> Tensor:
    r"""WGAN-GP's penalty (Gulrajani et al. 2017) on the critic ``D`` itself:
    lam * E[(||grad_x D(x_hat)||_2 - 1)^2].

    One weight eps ~ U[0, 1] per sample, x_hat = eps x_real + (1 - eps) x_fake on the segment
    between each real and fake pair; the norm is over the whole flattened sample (all channels
    and pixels of an image), and the mean over the batch. The gradient is taken with
    ``create_graph=True``, so the penalty trains D's weights. D must treat each sample on its own
    (no batch norm): then the gradient of the summed outputs is each output's own gradient.
    """
    x_hat, _ = losses.interpolates(x_real, x_fake)  # one weight per sample: (B, 1, ..., 1)
    x_hat.requires_grad_(True)
    (grad,) = losses.input_gradients(D(x_hat).sum(), [x_hat])  # like x_hat, with a graph back to D
    return losses.one_centered(grad, lam)


def gp_per_coordinate(D: nn.Module, x_real: Tensor, x_fake: Tensor, lam: float = GP_WEIGHT) -> Tensor:
    """The interpolation weight drawn per coordinate (``torch.rand_like(x)``) instead of per sample.

    With one weight per coordinate x_hat = eps * x_real + (1 - eps) * x_fake lies in the box
    spanned by the pair, not on the segment between them. Gulrajani et al. 2017 (Proposition 1)
    show that the optimal critic has gradient norm 1 on the lines between *optimally coupled*
    pairs; Algorithm 1 samples independent pairs as a heuristic for those lines, with one weight
    per sample. The per-coordinate weight leaves even that heuristic. It trains; a probe of the
    penalty function finds it.
    """
    # BUG: eps of the shape of x, one weight per pixel or coordinate
    eps = torch.rand_like(x_real)
    # FIX: eps = torch.rand(len(x_real), *[1] * (x_real.ndim - 1)), one weight per sample
    x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
    (grad,) = losses.input_gradients(D(x_hat).sum(), [x_hat])
    return losses.one_centered(grad, lam)


def d_loss_wgan_gp(
    G: nn.Module, D: nn.Module, x: Tensor, z: Tensor, penalty: Penalty
) -> tuple[Tensor, Tensor, Tensor]:
    """The critic's loss E[D(fake)] - E[D(real)] + ``penalty(D, x_real, x_fake)``, and its scores."""
    x_fake = G(z).detach()
    s_real, s_fake = D(x), D(x_fake)
    return losses.d_loss_wgan(s_real, s_fake) + penalty(D, x, x_fake), s_real, s_fake


def g_loss_wgan(G: nn.Module, D: nn.Module, z: Tensor) -> tuple[Tensor, Tensor]:
    """G's loss -E[D(G(z))], and the critic's scores."""
    s_fake_g = D(G(z))
    return losses.g_loss_wgan(s_fake_g), s_fake_g


def wgan_gp_run(name: str, steps: int, seed: int, D: nn.Module, penalty: Penalty) -> BugRun:
    """WGAN-GP on the ring with critic ``D`` and penalty function ``penalty``.
    ``details["wasserstein_estimate"]`` is the critic's d_real - d_fake over the last third."""
    setup = ring_setup(seed, D=D)
    opts = optimisers(setup.G, D, WGAN_LR_G, WGAN_LR_D, WGAN_BETAS)
    d_loss = functools.partial(d_loss_wgan_gp, penalty=penalty)
    run = run_with(name, setup, steps, opts, d_loss=d_loss, g_loss=g_loss_wgan, k=N_CRITIC, out="scores")
    late = slice(-max(1, len(run.history.step) // 3), None)
    gap = [r - f for r, f in zip(run.history["d_real"][late], run.history["d_fake"][late], strict=True)]
    details = {"wasserstein_estimate": sum(gap) / len(gap)}
    return dataclasses.replace(run, loss="wgan-gp", gradient_penalty=penalty, details=details)


def bn_in_wgan_gp_critic(steps: int, seed: int) -> BugRun:
    """A WGAN-GP critic with batch norm: the penalty's per-sample gradients mix across the batch.

    The penalty constrains ||grad_x D(x)|| at each interpolate, a property of D as a function of
    one sample. Batch norm makes each output a function of the whole batch (every sample moves
    the mean and variance the others are normalised by), so the gradient of the summed outputs
    with respect to one sample is no longer that sample's gradient, and the penalty constrains
    something else. It trains, and the losses look fine; the structure of D gives it away. One
    sign in the monitors: a batch is normalised by its own statistics, so the critic's mean scores
    on a real batch and on a fake one come out nearly equal, and its estimate of the Wasserstein
    distance, ``details["wasserstein_estimate"]`` (d_real - d_fake), stays near 0.
    """
    # BUG: batch norm in a critic with a gradient penalty
    critic = nn.Sequential(
        nn.Linear(2, 64),
        nn.BatchNorm1d(64),  # each score now depends on the whole batch
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.BatchNorm1d(64),  # and again
        nn.ReLU(),
        nn.Linear(64, 1),
    )
    # FIX: nn.LayerNorm(64) in place of each nn.BatchNorm1d(64), or no normalisation
    return wgan_gp_run("bn_in_wgan_gp_critic", steps, seed, critic, gp_on_critic)


def per_pixel_gp_weight(steps: int, seed: int) -> BugRun:
    """WGAN-GP on the ring with the penalty of :func:`gp_per_coordinate`."""
    return wgan_gp_run("per_pixel_gp_weight", steps, seed, toy_D(), gp_per_coordinate)


BN_IN_WGAN_GP_CRITIC = Bug(
    "bn_in_wgan_gp_critic",
    "Batch norm in a WGAN-GP critic",
    "nn.BatchNorm1d in the critic of a gradient-penalty WGAN: each output then depends on the "
    "whole batch, so the gradient the penalty constrains is not the per-sample gradient of D.",
    "no batch norm in the critic: nn.LayerNorm or no normalisation (Gulrajani et al. 2017)",
    bn_in_wgan_gp_critic,
    steps=200,
)
PER_PIXEL_GP_WEIGHT = Bug(
    "per_pixel_gp_weight",
    "One interpolation weight per pixel",
    "eps = torch.rand_like(x_real): one weight per coordinate puts x_hat anywhere in the box "
    "spanned by the pair, off the segment between x_real and x_fake on which Algorithm 1 "
    "samples its penalty.",
    "eps = torch.rand(B, 1, ..., 1) (one weight per sample, broadcast over its coordinates)",
    per_pixel_gp_weight,
    code=(gp_per_coordinate,),
    steps=200,
)
