"""The alternating updates of Goodfellow et al. 2014 (Algorithm 1), the size chapter 1 writes them.

One training iteration is ``k`` discriminator updates followed by one generator update:

    for k steps:  D <- D - lr * grad_D  loss_D(D(x_real), D(G(z)))     # G frozen
    once:         G <- G - lr * grad_G  loss_G(D(G(z)))                # D not updated

Chapter 1 (``notebooks/01_minimax.ipynb``) writes both steps inline and checks them against
:func:`d_step` and :func:`g_step`; chapters 1, 2 and 6 train their small networks with them. The
loss is pluggable (:mod:`gan_tutorial.losses`), D may carry R1 (chapter 2) and a conditional pair
takes labels (chapter 7). The MNIST trainer runs the same updates with its fast path and chapter
6's stabilisers around them (:mod:`gan_tutorial.iteration`, proved equal to these where they
overlap). The steps return detached tensors (no ``.item()``), so a loop never waits on the device
until it chooses to log. :func:`train` is Algorithm 1's loop around them, and
:class:`DivergenceGuard` is the one NaN check every loop here uses, the trainer's included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from .losses import GANLoss, get_loss, r1_penalty
from .models import has_batch_norm

#: What one D step and one G step report, in the order a progress bar shows them: the losses, D's
#: mean output on real images, on fakes before and after the D step, and the gradient norms.
MONITORS = ("loss_D", "loss_G", "d_real", "d_fake", "d_fake_g", "grad_D", "grad_G")


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all of ``module``'s gradients together (0 if none), as a tensor."""
    grads = [p.grad.detach() for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # sqrt(sum of all squares)


def mean_output(out: torch.Tensor, loss: GANLoss) -> torch.Tensor:
    """The batch mean of D's output as a monitor: a probability, sigmoid(logit), for a loss on
    logits; the raw score for a loss on scores (LSGAN, WGAN, hinge, RpGAN)."""
    return (torch.sigmoid(out) if loss.logits else out).mean().detach()


def score(D: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """D's output for images ``x``: ``D(x)``, or ``D(x, y)`` for a conditional D given labels ``y``."""
    return D(x) if y is None else D(x, y)


def check_r1(r1: float, D: nn.Module) -> None:
    """``ValueError`` unless R1's weight is >= 0 and, if on, D has no batch norm."""
    if r1 < 0:
        raise ValueError(f"r1 must be >= 0 (0: off), got {r1}")
    if r1 and has_batch_norm(D):
        raise ValueError(
            "the R1 penalty needs each score's gradient with respect to its own image, which batch norm "
            "in D mixes across the batch: use a D without batch norm (model 'dcgan-bn-g')"
        )


@contextlib.contextmanager
def frozen(D: nn.Module) -> Iterator[None]:
    """D's parameters get no gradient inside; each one's flag comes back as it was (some may be
    frozen on purpose)."""
    flags = [p.requires_grad for p in D.parameters()]
    D.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(D.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def d_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    x_real: torch.Tensor,
    z: torch.Tensor,
    loss: str | GANLoss = "nonsaturating",
    r1: float = 0.0,
    y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One update of D on a real batch and a fake batch G(z); G is not updated.

    Returns detached tensors: ``loss_D``, ``d_real`` (mean D(x)), ``d_fake`` (mean D(G(z)) before
    the G step), ``grad_D`` (gradient norm) and, with ``r1`` > 0, ``r1``: R1's
    ``r1 / 2 * E||grad_x l(x_real)||^2`` (:func:`losses.r1_penalty`), added to ``loss_D``.
    ``y`` (chapter 7): the real images' labels; the fakes are asked for the same digits, G(z, y),
    and D scores every row with its label, D(x, y).
    """
    loss = get_loss(loss)
    check_r1(r1, D)
    with torch.no_grad():  # no graph through G: this step only moves D
        x_fake = G(z) if y is None else G(z, y)
    if r1:
        x_real = x_real.detach().requires_grad_(True)  # R1 needs D's gradient at the real images
    opt_D.zero_grad(set_to_none=True)
    real_out, fake_out = score(D, x_real, y), score(D, x_fake, y)
    loss_D = loss.d(real_out, fake_out)  # minimise -V: real -> high logits, fake -> low
    penalty = r1_penalty(real_out, x_real, r1) if r1 else None
    if penalty is not None:
        loss_D = loss_D + penalty
    loss_D.backward()
    grad = grad_norm(D)
    opt_D.step()
    d_real, d_fake = mean_output(real_out, loss), mean_output(fake_out, loss)
    stats = {"loss_D": loss_D.detach(), "d_real": d_real, "d_fake": d_fake, "grad_D": grad}
    return stats if penalty is None else {**stats, "r1": penalty.detach()}


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    z: torch.Tensor,
    loss: str | GANLoss = "nonsaturating",
    x_real: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One update of G through a fixed D; D's parameters get no gradient and do not move.

    Returns detached tensors: ``loss_G``, ``d_fake_g`` (mean D(G(z)) seen by this step, i.e. after
    the D step) and ``grad_G``. A relativistic loss (RpGAN) pairs each fake with a real image:
    give ``x_real``. ``y``: the digits the fakes are asked for, as in :func:`d_step`.
    """
    loss = get_loss(loss)
    if loss.relativistic and x_real is None:
        raise ValueError(f"the {loss.name} loss pairs each fake with a real image: give x_real to g_step")
    opt_G.zero_grad(set_to_none=True)
    with frozen(D):  # gradients flow through D to G, but D's own are not needed
        x_fake = G(z) if y is None else G(z, y)
        real_out = score(D, x_real.detach(), y) if loss.relativistic else None
        fake_out = score(D, x_fake, y)
        loss_G = loss.generator_loss(fake_out, real_out)  # non-saturating: -E[log D(G(z))]
        loss_G.backward()
    grad = grad_norm(G)
    opt_G.step()
    return {"loss_G": loss_G.detach(), "d_fake_g": mean_output(fake_out, loss), "grad_G": grad}


@dataclass
class History:
    """What a training run records, one entry per logged step; plotting reads it."""

    step: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)

    def append(self, step: int, stats: dict[str, torch.Tensor]) -> None:
        self.step.append(step)
        for key, value in stats.items():
            self.values.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.values[key]


def train(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    opt_D: torch.optim.Optimizer,
    sample_real: Callable[[], torch.Tensor],
    sample_z: Callable[[], torch.Tensor],
    steps: int,
    loss: str | GANLoss = "nonsaturating",
    k: int = 1,
    log_every: int = 10,
    callback: Callable[[int], None] | None = None,
    r1: float = 0.0,
) -> History:
    """Run ``steps`` iterations of k D updates then one G update; return the history.

    ``sample_real()`` returns a batch of real data, ``sample_z()`` a batch of latent
    codes. Each D update draws a fresh real batch and fresh codes, as in Algorithm 1.
    ``callback(step)`` runs after every iteration (snapshots, live plots, schedules).
    ``r1`` > 0 adds the R1 penalty with that weight to every D step (:func:`d_step`).
    Statistics are read back to the host only every ``log_every`` steps (the last step's
    values are logged), and so is the :class:`DivergenceGuard`, which watches every step.
    """
    if k < 1:
        raise ValueError(f"k (D steps per G step) must be at least 1, got {k}")
    if steps < 0 or log_every < 1:
        raise ValueError(f"steps must be >= 0 and log_every >= 1, got steps={steps}, log_every={log_every}")
    loss = get_loss(loss)
    history = History()
    guard = DivergenceGuard()
    for step in range(1, steps + 1):
        for _ in range(k):
            stats = d_step(G, D, opt_D, sample_real(), sample_z(), loss, r1=r1)
        x_real = sample_real() if loss.relativistic else None  # RpGAN's G loss pairs fakes with reals
        stats.update(g_step(G, D, opt_G, sample_z(), loss, x_real=x_real))
        guard.update(stats, step)
        if step % log_every == 0 or step == steps:
            guard.check(step)
            history.append(step, stats)
        if callback is not None:
            callback(step)
    return history


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient norm.

    Attributes: ``step`` (the first bad step), ``checked_at`` (the step whose check found it),
    ``what`` (the monitors that were not finite at ``step``) and ``checkpoint`` (the last good
    checkpoint, or ``None``).
    """

    def __init__(self, message: str, step: int, checked_at: int, what: tuple[str, ...], checkpoint=None):
        super().__init__(message)
        self.step, self.checked_at, self.what, self.checkpoint = step, checked_at, what, checkpoint

    def __reduce__(self):  # so that it crosses process boundaries (multiprocessing, pytest-xdist)
        return type(self), (str(self), self.step, self.checked_at, self.what, self.checkpoint)


class DivergenceGuard:
    """The divergence check of every training loop in the package, kept on the device.

    :meth:`update` looks at one iteration's ``loss_D``, ``loss_G``, ``grad_D`` and ``grad_G``
    (whichever are present) and records, in two device tensors and without waiting for the
    device, the first step at which any of them was NaN or infinite and which ones were.
    A finite loss with a NaN gradient counts: the next optimiser step would spread the NaN
    into the weights. :meth:`check` reads the record back (one host sync) and raises
    :class:`DivergenceError`; loops call it when they log and before they write a checkpoint,
    so a bad step is found at the next such check and named exactly.
    """

    GUARDED = ("loss_D", "loss_G", "grad_D", "grad_G")

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.first_bad = torch.zeros((), dtype=torch.long, device=device)  # 0: all finite so far
        self.what = torch.zeros((), dtype=torch.long, device=device)  # bit i set: GUARDED[i] was bad

    def update(self, stats: dict[str, torch.Tensor], step: int | torch.Tensor) -> None:
        """Record ``step`` if it is the first whose watched statistics are not all finite (in place,
        so a CUDA graph can replay it; ``step`` may be a device tensor)."""
        bits = torch.zeros_like(self.what)
        for i, key in enumerate(self.GUARDED):
            if key in stats:
                bits = bits | ((~torch.isfinite(stats[key])).long() << i)
        new = (bits != 0) & (self.first_bad == 0)
        self.first_bad.copy_(torch.where(new, step, self.first_bad))
        self.what.copy_(torch.where(new, bits, self.what))

    def check(self, checked_at: int, checkpoint: object | None = None, where: str = "") -> None:
        """Raise :class:`DivergenceError` if any step so far was bad; ``checkpoint`` is named in the
        message as the last good one (left untouched: no loop writes over it after a bad step),
        ``where`` after the step (which process saw it, in a run on several)."""
        step = int(self.first_bad)  # the one host read-back the guard needs
        if not step:
            return
        bits = int(self.what)
        what = tuple(key for i, key in enumerate(self.GUARDED) if bits >> i & 1)
        names = " and ".join(what) if len(what) < 3 else ", ".join(what[:-1]) + " and " + what[-1]
        found = "" if checked_at == step else f" (found at the check of step {checked_at})"
        saved = (
            f"the last good checkpoint is {checkpoint}, left untouched"
            if checkpoint
            else "no checkpoint was written before it"
        )
        raise DivergenceError(
            f"training diverged: {names} became NaN or infinite at step {step}{where}{found}, "
            f"and the run was stopped; {saved}. Lower the learning rates, check the data range "
            "([-1, 1]) and that the losses take logits.",
            step,
            checked_at,
            what,
            checkpoint,
        )

    def reset(self) -> None:
        self.first_bad.zero_()
        self.what.zero_()
