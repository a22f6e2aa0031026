"""Bugs in the mechanics of the training loop: optimisers, detach, zero_grad, modes (chapter 6).

Each is one misplaced call in a loop whose losses are right, on the ring:

* ``swapped_gradients`` - :func:`swapped_gradients`, each optimiser built on the other player;
* ``detached_fake_in_g_step`` - :func:`g_loss_detached`, a ``detach()`` in the G step;
* ``zero_grad_misplaced`` - :func:`update_zero_grad_after_backward`, ``zero_grad()`` between
  ``backward()`` and ``step()``;
* ``eval_mode_left_on`` - :func:`eval_mode_left_on`, ``eval()`` left on during training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..updates import grad_norm
from .run import Bug, BugRun, run_with
from .setup import TOY, ring_setup


def d_loss_undetached(G: nn.Module, D: nn.Module, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`~.step.d_loss_bce` with G(z) not detached, as many loops write it: D's loss then
    sends gradients into G's weights too, harmless while G's step clears them before its own."""
    l_real, l_fake = D(x), D(G(z))  # G(z), not G(z).detach()
    loss_real = F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real))
    return loss_real + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake)), l_real, l_fake


def swapped_gradients(steps: int, seed: int) -> BugRun:
    """Each optimiser is built on the other player's parameters.

    The D step does not detach G(z) (:func:`d_loss_undetached`): so ``opt_D`` moves G along the
    gradient of D's loss (the fakes flee towards what D calls fake) and ``opt_G`` moves D along
    G's (D learns to call the fakes real). Symptom: d_fake climbs to 1 with d_real beside it,
    loss_D rises far above log 4 and loss_G falls to 0, the two players' losses moving the wrong
    way.
    """
    setup = ring_setup(seed)
    G, D = setup.G, setup.D
    betas = (TOY.beta1, TOY.beta2)
    # BUG: G's optimiser on D's parameters, and D's on G's
    opt_G = torch.optim.Adam(D.parameters(), lr=TOY.lr_G, betas=betas)
    opt_D = torch.optim.Adam(G.parameters(), lr=TOY.lr_D, betas=betas)
    # FIX: opt_G = torch.optim.Adam(G.parameters(), ...); opt_D = torch.optim.Adam(D.parameters(), ...)
    return run_with("swapped_gradients", setup, steps, (opt_G, opt_D), d_loss=d_loss_undetached)


def g_loss_detached(G: nn.Module, D: nn.Module, z: Tensor) -> tuple[Tensor, Tensor]:
    """``G(z).detach()`` copied from the D step into the G step: G's loss has no path back to G.

    ``loss_G.backward()`` still runs (D's weights require gradients), G's parameters get none,
    and ``opt_G.step()`` skips them: grad_G is exactly 0, G never moves, and D, facing a fixed
    G, wins outright (d_real -> 1, d_fake -> 0, loss_G climbing).
    """
    # BUG: detach() in the G step
    l_fake_g = D(G(z).detach())
    # FIX: l_fake_g = D(G(z)); detach the fakes in the D step only
    return F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g)), l_fake_g


def detached_fake_in_g_step(steps: int, seed: int) -> BugRun:
    """The ring run with G's loss of :func:`g_loss_detached`."""
    return run_with("detached_fake_in_g_step", ring_setup(seed), steps, g_loss=g_loss_detached)


def update_zero_grad_after_backward(loss: Tensor, opt: torch.optim.Optimizer, module: nn.Module) -> Tensor:
    """``opt_D.zero_grad()`` between ``loss_D.backward()`` and ``opt_D.step()``.

    ``zero_grad`` sets the gradients to None (PyTorch >= 2.0), so the step that follows has
    nothing to apply: grad_D is exactly 0 and D never moves, while G learns to please the frozen,
    random D (d_fake climbs towards 1). Of the two ways to misplace the call this is the one
    shown; never calling it instead sums the gradients of every step so far, which Adam's
    normalisation partly hides (its symptom, a grad_D growing step after step, is a trend).
    """
    loss.backward()
    # BUG: zero_grad() after backward(), so the step below has no gradient to apply
    opt.zero_grad()
    # FIX: opt.zero_grad() before loss.backward()
    grad = grad_norm(module)
    opt.step()
    return grad


def zero_grad_misplaced(steps: int, seed: int) -> BugRun:
    """The ring run with D's update of :func:`update_zero_grad_after_backward`."""
    return run_with("zero_grad_misplaced", ring_setup(seed), steps, update_D=update_zero_grad_after_backward)


def eval_mode_left_on(steps: int, seed: int) -> BugRun:
    """``G.eval()`` and ``D.eval()`` for a look at the samples before training, never undone.

    G has batch norm and D dropout. In eval mode batch norm normalises with its running
    statistics, which it then never updates (they stay at mean 0, variance 1: no normalisation
    at all), and dropout is off, so D trains without the regulariser it was built with. Nothing
    shows in the losses; the models' modes do. ``details["num_batches_tracked"]``: how many
    batches G's first batch norm layer counted (0).
    """
    G = nn.Sequential(
        nn.Linear(TOY.latent_dim, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, 2),
    )
    D = nn.Sequential(
        nn.Linear(2, 64),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(64, 64),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(64, 1),
    )
    setup = ring_setup(seed, G, D)
    G.eval()  # eval mode for a preview of the samples
    D.eval()
    with torch.no_grad():
        details: dict[str, Any] = {"preview": G(setup.codes())}
    # BUG: nothing here, so both models train in eval mode
    # FIX: G.train(); D.train()
    run = run_with("eval_mode_left_on", setup, steps)
    details["num_batches_tracked"] = int(G[1].num_batches_tracked)
    return dataclasses.replace(run, details=details)


SWAPPED_GRADIENTS = Bug(
    "swapped_gradients",
    "The optimisers swapped",
    "opt_G = Adam(D.parameters()) and opt_D = Adam(G.parameters()): each optimiser steps the "
    "other player's weights, so D follows G's gradient (towards calling the fakes real) and G "
    "follows D's (towards looking fake).",
    "opt_D = Adam(D.parameters(), lr, betas); opt_G = Adam(G.parameters(), lr, betas)",
    swapped_gradients,
    steps=200,
)
DETACHED_FAKE_IN_G_STEP = Bug(
    "detached_fake_in_g_step",
    "detach() in the G step",
    "loss_G = bce(D(G(z).detach()), 1): the detach copied from the D step cuts G's loss from G, "
    "so G gets no gradient (grad_G = 0) and never moves.",
    "loss_G = bce(D(G(z)), 1): detach the fakes in the D step only",
    detached_fake_in_g_step,
    code=(g_loss_detached,),
    steps=200,
)
ZERO_GRAD_MISPLACED = Bug(
    "zero_grad_misplaced",
    "zero_grad() between backward() and step()",
    "loss_D.backward(); opt_D.zero_grad(); opt_D.step(): the gradient is erased before the step "
    "that should apply it, so D never moves (grad_D = 0).",
    "opt_D.zero_grad(); loss_D.backward(); opt_D.step()",
    zero_grad_misplaced,
    code=(update_zero_grad_after_backward,),
    steps=200,
)
EVAL_MODE_LEFT_ON = Bug(
    "eval_mode_left_on",
    "eval() left on",
    "G.eval(); D.eval() for a preview, never undone: G's batch norm trains on frozen running "
    "statistics (never updated) and D trains without its dropout.",
    "G.train(); D.train() before training (and eval() only around sampling)",
    eval_mode_left_on,
    steps=200,
)
