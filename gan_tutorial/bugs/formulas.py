"""Bugs in the formula of a loss: a log around a sum, logs of sigmoids, labels -1 (chapter 6).

Each bug is the loss function with the wrong line, a piece of :func:`~.step.gan_step` in place
of the right one (:func:`~.step.d_loss_bce`, :func:`~.step.g_loss_bce`), and a run on the ring:

* ``misplaced_log`` - :func:`d_loss_misplaced_log`, a NaN at the first step;
* ``log_sigmoid_underflow`` - :func:`d_loss_log_sigmoid` and :func:`g_loss_log_sigmoid`, an
  infinite loss once D is confidently wrong about a fake (provoked with D's learning rate at 100
  times G's);
* ``pm1_labels_bce`` - :func:`d_loss_pm1_labels`, a cross-entropy below 0.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .run import Bug, BugRun, run_with
from .setup import TOY, optimisers, ring_setup, toy_D, toy_G


def d_loss_misplaced_log(
    G: nn.Module, D: nn.Module, x: Tensor, z: Tensor, seen: dict[str, float]
) -> tuple[Tensor, Tensor, Tensor]:
    """D outputs a probability (a Sigmoid at its end) and the log closes one bracket too late.

    ``D(x) + log(1 - D(G(z)))`` is below 0 as soon as D(x) < -log(1 - D(G(z))); at the start,
    D = 1/2 everywhere, it is 1/2 + log(1/2) = -0.19, and its log is NaN at the first step.
    ``seen["argument"]``: the smallest value the log was taken of at the first step.
    """
    d_real, d_fake = D(x), D(G(z).detach())
    with torch.no_grad():
        seen.setdefault("argument", float((d_real + torch.log(1 - d_fake)).min()))
    # BUG: log(D(x) + log(1 - D(G(z)))), the first log around the sum
    loss_D = -torch.log(d_real + torch.log(1 - d_fake)).mean()
    # FIX: loss_D = -(torch.log(d_real) + torch.log(1 - d_fake)).mean()
    return loss_D, d_real, d_fake


def g_loss_probability(G: nn.Module, D: nn.Module, z: Tensor) -> tuple[Tensor, Tensor]:
    """G's non-saturating loss for a D that outputs probabilities: -E[log D(G(z))]."""
    d_fake_g = D(G(z))
    return -torch.log(d_fake_g).mean(), d_fake_g


def misplaced_log(steps: int, seed: int) -> BugRun:
    """The ring run with D as a probability, as in the paper's notation, and D's loss of
    :func:`d_loss_misplaced_log`; ``details["argument"]`` is what that function saw."""
    G = toy_G()
    D = nn.Sequential(toy_D(), nn.Sigmoid())  # D(x) in (0, 1)
    seen: dict[str, float] = {}
    d_loss = functools.partial(d_loss_misplaced_log, seen=seen)
    run = run_with(
        "misplaced_log",
        ring_setup(seed, G, D),
        steps,
        d_loss=d_loss,
        g_loss=g_loss_probability,
        out="probabilities",
    )
    return dataclasses.replace(run, details=dict(seen))


def d_loss_log_sigmoid(
    G: nn.Module, D: nn.Module, x: Tensor, z: Tensor, seen: dict[str, float]
) -> tuple[Tensor, Tensor, Tensor]:
    """The cross-entropies written as logs of sigmoids of D's logits.

    In float32 ``1 - torch.sigmoid(l)`` is exactly 0 from about l = 16.7 (sigmoid(l) rounds to
    1), while ``torch.sigmoid(l)`` reaches 0 only below about l = -88.7 (it is subnormal, not 0,
    at -88.5): their logs are -inf, the losses inf, the gradients NaN. So D's loss breaks when D
    is confidently *wrong* about a fake (a fake's logit above about 16.7: D calls it real), and
    G's -log sigmoid(l) only when D rejects a fake with a logit below about -88.7. A fast D makes
    steep logits, and the first fake that lands far on its real side ends the run. ``seen`` at
    the step that broke: ``max_fake_logit`` and ``min_fake_logit`` (D's logits on the fakes),
    ``naive`` (the D loss as written) and ``softplus`` (the same loss on the same logits through
    softplus, finite).
    """
    l_real, l_fake = D(x), D(G(z).detach())
    # BUG: log(sigmoid(l)) and log(1 - sigmoid(l)), log 0 once a logit is steep (a fake's above 16.7)
    loss_D = -(torch.log(torch.sigmoid(l_real)).mean() + torch.log(1 - torch.sigmoid(l_fake)).mean())
    # FIX: loss_D = F.softplus(-l_real).mean() + F.softplus(l_fake).mean()
    if not torch.isfinite(loss_D):
        with torch.no_grad():
            seen.update(
                max_fake_logit=l_fake.max().item(),
                min_fake_logit=l_fake.min().item(),
                naive=loss_D.item(),
                softplus=(F.softplus(-l_real).mean() + F.softplus(l_fake).mean()).item(),
            )
    return loss_D, l_real, l_fake


def g_loss_log_sigmoid(G: nn.Module, D: nn.Module, z: Tensor) -> tuple[Tensor, Tensor]:
    """G's non-saturating loss with the bug of :func:`d_loss_log_sigmoid`."""
    l_fake_g = D(G(z))
    # BUG: the same log of a sigmoid in G's loss
    loss_G = -torch.log(torch.sigmoid(l_fake_g)).mean()
    # FIX: loss_G = F.softplus(-l_fake_g).mean()
    return loss_G, l_fake_g


def log_sigmoid_underflow(steps: int, seed: int) -> BugRun:
    """The ring run with the losses of :func:`d_loss_log_sigmoid` and :func:`g_loss_log_sigmoid`,
    and D's learning rate 100 times G's (0.1): the bug is provoked, so that D's logits grow steep
    within the brief run; at sane learning rates a run may never reach a logit past 16.7."""
    setup = ring_setup(seed)
    opts = optimisers(setup.G, setup.D, lr_D=100 * TOY.lr_D)
    seen: dict[str, float] = {}
    d_loss = functools.partial(d_loss_log_sigmoid, seen=seen)
    run = run_with("log_sigmoid_underflow", setup, steps, opts, d_loss=d_loss, g_loss=g_loss_log_sigmoid)
    return dataclasses.replace(run, details=dict(seen))


def d_loss_pm1_labels(G: nn.Module, D: nn.Module, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Labels -1 for fakes (hinge or LSGAN habits) in a binary cross-entropy.

    BCE with logits l and target y is softplus(l) - y l; for y = -1 that is softplus(l) + l,
    which goes to -inf as l does: D can lower its loss forever by pushing the fakes' logits
    down, so loss_D falls below 0 (impossible with labels in {0, 1}) and keeps falling.
    """
    l_real, l_fake = D(x), D(G(z).detach())
    # BUG: label -1 for the fakes
    loss_fake = F.binary_cross_entropy_with_logits(l_fake, -torch.ones_like(l_fake))
    # FIX: loss_fake = F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
    return F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real)) + loss_fake, l_real, l_fake


def pm1_labels_bce(steps: int, seed: int) -> BugRun:
    """The ring run with D's loss of :func:`d_loss_pm1_labels`."""
    return run_with("pm1_labels_bce", ring_setup(seed), steps, d_loss=d_loss_pm1_labels)


MISPLACED_LOG = Bug(
    "misplaced_log",
    "A log around the sum",
    "loss_D = -log(D(x) + log(1 - D(G(z)))): the first log closes one bracket too late, and "
    "its argument D(x) + log(1 - D(G(z))) is negative (1/2 + log 1/2 at the start): a NaN loss.",
    "loss_D = -(log(D(x)) + log(1 - D(G(z)))).mean(), or on logits: "
    "F.softplus(-l_real).mean() + F.softplus(l_fake).mean()",
    misplaced_log,
    code=(d_loss_misplaced_log,),
    steps=50,
)
LOG_SIGMOID_UNDERFLOW = Bug(
    "log_sigmoid_underflow",
    "log(sigmoid(l)) on a D with steep logits",
    "loss_D = -(log(sigmoid(l_real)) + log(1 - sigmoid(l_fake))): in float32 1 - sigmoid(l) is "
    "0 from l of about 16.7, so D's loss is log 0 once D is confidently wrong about a fake "
    "(sigmoid(l) itself reaches 0 only below about -88.7): inf losses and NaN gradients. The "
    "gallery provokes it with D's learning rate at 100 times G's.",
    "loss_D = F.softplus(-l_real).mean() + F.softplus(l_fake).mean() (= "
    "F.binary_cross_entropy_with_logits with labels 1 and 0); "
    "loss_G = F.softplus(-l_fake_g).mean()",
    log_sigmoid_underflow,
    code=(d_loss_log_sigmoid, g_loss_log_sigmoid),
    steps=300,
)
PM1_LABELS_BCE = Bug(
    "pm1_labels_bce",
    "Labels -1 and +1 in a cross-entropy",
    "F.binary_cross_entropy_with_logits(l_fake, -torch.ones_like(l_fake)): BCE is only bounded "
    "below for labels in [0, 1]; with -1 it is softplus(l) + l, and D lowers its loss without "
    "end by pushing the fakes' logits down.",
    "F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake)) (labels 1 and 0; -1 "
    "and +1 belong to hinge and least-squares losses)",
    pm1_labels_bce,
    code=(d_loss_pm1_labels,),
    steps=200,
)
