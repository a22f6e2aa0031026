"""The gallery's training step, written as the pieces a bug replaces, and the loop around it (chapter 6).

:func:`gan_step` is one iteration of the alternating updates: ``k`` D steps, then one G step.
Its pieces are plain functions, each a few lines, so that a bug is the one piece it gets wrong,
written out beside the right one:

* ``d_loss(G, D, x_real, z) -> (loss_D, real_out, fake_out)``: right, :func:`d_loss_bce`;
* ``g_loss(G, D, z) -> (loss_G, fake_out_g)``: right, :func:`g_loss_bce`;
* ``update_D(loss, opt, module) -> grad_norm``: right, :func:`update` (zero_grad, backward, step).

Each step returns the monitors of :func:`updates.train` (:data:`updates.MONITORS`), measured
where the package's steps measure them: ``grad_D`` and ``grad_G`` are the norms of the gradients
the optimiser step is about to apply, read just before ``step()``. :func:`loop` stops a run at
the first step whose monitors are not finite, with that step logged, as the package's
:class:`~gan_tutorial.updates.DivergenceGuard` stops its loops.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..updates import History, grad_norm
from .setup import Setup

Stats = dict[str, torch.Tensor]
DLoss = Callable[[nn.Module, nn.Module, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
GLoss = Callable[[nn.Module, nn.Module, Tensor], tuple[Tensor, Tensor]]
Update = Callable[[Tensor, torch.optim.Optimizer, nn.Module], Tensor]
Output = Literal["logits", "probabilities", "scores"]


def d_loss_bce(G: nn.Module, D: nn.Module, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """D's cross-entropy on its logits, reals labelled 1 and fakes 0, the fakes detached so that
    D's loss trains D only. Returns the loss and D's logits on the reals and on the fakes."""
    l_real, l_fake = D(x), D(G(z).detach())
    loss_D = F.binary_cross_entropy_with_logits(
        l_real, torch.ones_like(l_real)
    ) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
    return loss_D, l_real, l_fake


def g_loss_bce(G: nn.Module, D: nn.Module, z: Tensor) -> tuple[Tensor, Tensor]:
    """G's non-saturating loss: the cross-entropy of D's logits on fresh fakes against label 1."""
    l_fake_g = D(G(z))
    return F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g)), l_fake_g


def update(loss: Tensor, opt: torch.optim.Optimizer, module: nn.Module) -> Tensor:
    """One optimiser step on ``loss``; returns the norm of ``module``'s gradient as the step applies it."""
    opt.zero_grad()
    loss.backward()
    grad = grad_norm(module)
    opt.step()
    return grad


def monitors(
    loss_D: Tensor,
    loss_G: Tensor,
    real_out: Tensor,
    fake_out: Tensor,
    fake_out_g: Tensor,
    grad_D: Tensor,
    grad_G: Tensor,
    out: Output = "logits",
) -> Stats:
    """The monitors of :func:`updates.train`, detached. ``d_real``, ``d_fake`` (D step) and
    ``d_fake_g`` (G step) are D's mean output as a probability: the sigmoid of logits, a
    probability D already outputs, or a WGAN critic's raw score (``out="scores"``)."""

    def mean(t: Tensor) -> Tensor:
        return (torch.sigmoid(t) if out == "logits" else t).mean().detach()

    return {
        "loss_D": loss_D.detach(),
        "loss_G": loss_G.detach(),
        "d_real": mean(real_out),
        "d_fake": mean(fake_out),
        "d_fake_g": mean(fake_out_g),
        "grad_D": grad_D,
        "grad_G": grad_G,
    }


def gan_step(
    setup: Setup,
    opt_G: torch.optim.Optimizer,
    opt_D: torch.optim.Optimizer,
    d_loss: DLoss = d_loss_bce,
    g_loss: GLoss = g_loss_bce,
    update_D: Update = update,
    k: int = 1,
    out: Output = "logits",
) -> Stats:
    """``k`` D steps on fresh batches, then one G step on fresh codes; ``out`` is what D outputs."""
    for _ in range(k):
        x, z = setup.real(), setup.codes()
        loss_D, real_out, fake_out = d_loss(setup.G, setup.D, x, z)
        grad_D = update_D(loss_D, opt_D, setup.D)
    loss_G, fake_out_g = g_loss(setup.G, setup.D, setup.codes())
    grad_G = update(loss_G, opt_G, setup.G)
    return monitors(loss_D, loss_G, real_out, fake_out, fake_out_g, grad_D, grad_G, out)


def loop(step: Callable[[], Stats], steps: int) -> History:
    """Call ``step`` ``steps`` times, logging every step; stop after the first non-finite one."""
    history = History()
    for i in range(1, steps + 1):
        history.append(i, step())
        if not all(math.isfinite(values[-1]) for values in history.values.values()):
            break
    return history
