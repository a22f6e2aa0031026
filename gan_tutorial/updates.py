"""The alternating updates of Goodfellow et al. 2014 (Algorithm 1), as small functions.

One training iteration is ``k`` discriminator updates followed by one generator update:

    for k steps:  D <- D - lr * grad_D  loss_D(D(x_real), D(G(z)))     # G frozen
    once:         G <- G - lr * grad_G  loss_G(D(G(z)))                # D not updated

Every chapter trains with these two functions; chapter 1 (``notebooks/01_minimax.ipynb``)
explains them. They return detached tensors (no ``.item()``), so a training loop never
waits on the device until it chooses to log. :func:`train` is Algorithm 1's loop around
them (chapters 1 and 2), and :class:`DivergenceGuard` is the one NaN check every loop here
uses, the MNIST trainer's included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from .losses import GANLoss, d_loss_bce_smoothed, get_loss, input_gradients, interpolates
from .models import has_batch_norm

if TYPE_CHECKING:  # only for the type hints: accel imports this module
    from .accel import FastPath


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all of ``module``'s gradients together (0 if none), as a tensor."""
    grads = [p.grad.detach() for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # sqrt(sum of all squares)


def _prob(out: torch.Tensor, loss: GANLoss) -> torch.Tensor:
    """Batch mean of D's output as a probability (sigmoid of logits) or raw LSGAN score."""
    return (torch.sigmoid(out) if loss.logits else out).mean().detach()


def _backward_step(
    loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> torch.Tensor:
    """backward, gradient norm, optimiser step; returns the norm (a tensor: no host sync).

    With a ``GradScaler`` (fp16 only, chapter 4) the loss is scaled up before ``backward``
    so small gradients survive fp16, and the gradients are scaled back before the norm; a
    step the scaler skips (a gradient overflowed) reports a norm of 0.
    """
    if scaler is None:
        loss.backward()
        grad = grad_norm(module)
        opt.step()
        return grad
    scaler.scale(loss).backward()  # loss * S: small gradients survive fp16
    scaler.unscale_(opt)  # gradients / S, in place, inf check recorded on the device
    grad = grad_norm(module)
    scaler.step(opt)  # skipped if a gradient was inf or NaN
    scaler.update()  # S halves after an overflow, grows after a run of clean steps
    # an overflow here is the scaler's business, not a divergence: the step was skipped, so the
    # update it made had no gradient at all (a NaN loss still trips the guard)
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0)


def _penalties(
    pairs: list[tuple[str, float, torch.Tensor, torch.Tensor]], scaler: torch.amp.GradScaler | None
) -> dict[str, torch.Tensor]:
    """D's gradient penalties from one ``autograd.grad`` call: ``pairs`` holds (name, weight,
    scores, inputs) with name ``r1`` or ``r2`` (zero-centred: weight/2 E||grad||^2) or ``gp``
    (one-centred: weight E[(||grad|| - 1)^2]). Each score depends on its own input row only, so
    the gradient of the sum of all scores with respect to each input is, row by row, that
    row's own gradient; one call shares the backward pass through D between the penalties."""
    total = sum(out.sum() for _, _, out, _ in pairs)
    grads = input_gradients(total, [x for _, _, _, x in pairs], scaler)
    result = {}
    for (name, weight, out, _), grad in zip(pairs, grads, strict=True):
        if name == "gp":
            norms = grad.float().flatten(1).norm(2, dim=1)  # one norm per sample, its whole image
            result[name] = weight * (norms - 1).pow(2).mean()
        else:
            result[name] = 0.5 * weight * grad.float().pow(2).sum() / out.numel()
    return result


def _score(D: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """D's logits for images ``x``: ``D(x)``, or ``D(x, y)`` for a conditional D given labels ``y``."""
    return D(x) if y is None else D(x, y)


def _noisy(x: torch.Tensor, noise: float | torch.Tensor) -> torch.Tensor:
    """``x`` plus instance noise of standard deviation ``noise`` (Sonderby et al. 2016), or ``x``."""
    if isinstance(noise, (int, float)) and noise == 0:
        return x
    return x + noise * torch.randn_like(x)


def d_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    x_real: torch.Tensor,
    z: torch.Tensor | None,
    loss: str | GANLoss = "nonsaturating",
    fast: FastPath | None = None,
    scaler: torch.amp.GradScaler | None = None,
    x_fake: torch.Tensor | None = None,
    joint: bool = False,
    r1: float = 0.0,
    r2: float = 0.0,
    gp: float = 0.0,
    clip: float = 0.0,
    smoothing: float = 0.0,
    noise: float | torch.Tensor = 0.0,
    y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One update of D on a real batch and a fake batch G(z); G is not updated.

    Returns detached tensors: ``loss_D``, ``d_real`` (mean D(x)), ``d_fake`` (mean
    D(G(z)) before the G step) and ``grad_D`` (gradient norm). ``fast`` and ``scaler``
    apply chapter 4's GPU fast path (:mod:`gan_tutorial.accel`: autocast, channels-last,
    loss scaling); without them the step is plain float32. Losses are always computed in
    float32 from D's outputs.

    ``x_fake``, if given, is a batch G(z) the caller already computed (``z`` is then
    unused): D trains on it detached, and the caller can hand the same batch, graph and
    all, to :func:`g_step`, which saves one forward pass of G per iteration.

    ``joint=True`` runs D once over the real and fake rows concatenated along the first
    dimension: the same numbers as two passes when each row's output depends on that row
    alone (no batch norm), in larger, faster products. A D with batch norm is refused.

    Regularisers (chapters 4 and 6), each added to ``loss_D`` and returned alone under its name:
    ``r1`` > 0 adds R1, ``r1 / 2 * E||grad_x l(x_real)||^2`` (:func:`losses.r1_penalty`);
    ``r2`` > 0 the same at the fakes (:func:`losses.r2_penalty`); ``gp`` > 0 WGAN-GP's
    ``gp * E[(||grad s(x_hat)||_2 - 1)^2]`` at one random point per real/fake pair
    (:func:`losses.interpolates`, :func:`losses.gradient_penalty`). All three need per-row
    gradients, so a D with batch norm is refused. ``clip`` > 0 clamps every weight of D to
    [-clip, clip] after the step (WGAN's weight clipping). ``smoothing`` > 0 gives the real
    images target 1 - smoothing (one-sided label smoothing; cross-entropy losses only).
    ``noise`` (a number or a 0-d tensor) adds Gaussian instance noise of that standard
    deviation to everything D sees.

    ``y`` (chapter 7): the real images' labels (B,), for a conditional G and D. The fakes are
    asked for the same labels, G(z, y), so both sides of D see the same mix of digits, and every
    row D scores (real, fake, interpolate) is scored with its label, D(x, y).
    """
    loss = get_loss(loss)
    autocast = fast.autocast if fast is not None else contextlib.nullcontext
    if x_fake is None:
        if z is None:
            raise ValueError("give the latent codes z, or a fake batch x_fake")
        with torch.no_grad(), autocast():
            x_fake = G(z) if y is None else G(z, y)  # no graph through G: this step only moves D
    x_fake = x_fake.detach()
    if fast is not None:
        x_real, x_fake = fast.images(x_real), fast.images(x_fake)
    if joint and has_batch_norm(D):
        raise ValueError("joint=True would mix real and fake rows in D's batch-norm statistics")
    for name, value in (("r1", r1), ("r2", r2), ("gp", gp), ("clip", clip)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 (0: off), got {value}")
    if (r1 or r2 or gp) and has_batch_norm(D):
        which = "the gradient penalty of WGAN-GP" if gp else "the R1 and R2 penalties"
        raise ValueError(
            f"{which} needs each score's gradient with respect to its own image, which batch norm in "
            "D mixes across the batch: use a D without batch norm (model 'dcgan-bn-g'; Gulrajani et al. "
            "use layer norm or none in the critic)"
        )
    if smoothing and not loss.cross_entropy:
        raise ValueError(f"label smoothing needs a cross-entropy loss (targets 0 and 1), not {loss.name!r}")
    x_real, x_fake = _noisy(x_real, noise), _noisy(x_fake, noise)
    if r1:
        x_real = x_real.detach().requires_grad_(True)  # D's gradient at the real images
    if r2:
        x_fake = x_fake.detach().requires_grad_(True)  # ... and at the fakes
    parts = [x_real, x_fake]
    if gp:
        x_hat, _ = interpolates(x_real, x_fake)
        parts.append(x_hat.requires_grad_(True))
    opt_D.zero_grad(set_to_none=True)
    with autocast():
        if joint:  # one pass over all rows (the same function of each row; larger, faster products)
            ys = None if y is None else torch.cat([y] * len(parts))
            outs = _score(D, torch.cat(parts), ys).split([len(x) for x in parts])
        else:
            outs = [_score(D, x, y) for x in parts]
    real_out, fake_out = outs[0].float(), outs[1].float()
    if smoothing:
        loss_D = d_loss_bce_smoothed(real_out, fake_out, smoothing)
    else:
        loss_D = loss.d(real_out, fake_out)
    wanted = [
        (name, weight, out, x)
        for name, weight, out, x in (("r1", r1, real_out, x_real), ("r2", r2, fake_out, x_fake))
        if weight
    ]
    if gp:
        wanted.append(("gp", gp, outs[2].float(), parts[2]))
    penalties = _penalties(wanted, scaler) if wanted else {}
    for penalty in penalties.values():
        loss_D = loss_D + penalty
    grad = _backward_step(loss_D, D, opt_D, scaler)
    if clip:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-clip, clip)
    stats = {
        "loss_D": loss_D.detach(),
        "d_real": _prob(real_out, loss),
        "d_fake": _prob(fake_out, loss),
        "grad_D": grad,
    }
    stats.update({name: penalty.detach() for name, penalty in penalties.items()})
    return stats


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    z: torch.Tensor | None,
    loss: str | GANLoss = "nonsaturating",
    fast: FastPath | None = None,
    scaler: torch.amp.GradScaler | None = None,
    x_fake: torch.Tensor | None = None,
    x_real: torch.Tensor | None = None,
    joint: bool = False,
    noise: float | torch.Tensor = 0.0,
    y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One update of G through a fixed D; D's parameters get no gradient and do not move.

    Returns detached tensors: ``loss_G``, ``d_fake_g`` (mean D(G(z)) seen by this step,
    i.e. after the D step) and ``grad_G``. ``fast`` and ``scaler`` as in :func:`d_step`.
    ``x_fake``, if given, is G(z) computed by the caller with its graph (as pytorch/examples
    reuses the D step's fakes); ``z`` is then unused. A relativistic loss (RpGAN) pairs each
    fake with a real image: give ``x_real`` (``joint=True``: one D pass over both, for a D
    without batch norm). ``noise`` as in :func:`d_step`. ``y``: the labels the fakes were asked
    for (and of ``x_real``), for a conditional G and D, as in :func:`d_step`.
    """
    loss = get_loss(loss)
    autocast = fast.autocast if fast is not None else contextlib.nullcontext
    if x_fake is None and z is None:
        raise ValueError("give the latent codes z, or a fake batch x_fake")
    if x_fake is not None and not x_fake.requires_grad:
        raise ValueError("x_fake carries no graph back to G (was it made under no_grad or detached?)")
    if loss.relativistic and x_real is None:
        raise ValueError(f"the {loss.name} loss pairs each fake with a real image: give x_real to g_step")
    if joint and has_batch_norm(D):
        raise ValueError("joint=True would mix real and fake rows in D's batch-norm statistics")
    opt_G.zero_grad(set_to_none=True)
    # Gradients flow through D to G, but D's own are not needed: freeze D for this step
    # and restore each parameter's flag afterwards (some may have been frozen on purpose).
    flags = [p.requires_grad for p in D.parameters()]
    D.requires_grad_(False)
    try:
        with autocast():
            if x_fake is None:
                x_fake = G(z) if y is None else G(z, y)
            fake_in = _noisy(fast.images(x_fake) if fast is not None else x_fake, noise)
            real_out = None
            if loss.relativistic:
                real_in = _noisy((fast.images(x_real) if fast is not None else x_real).detach(), noise)
                if joint:
                    ys = None if y is None else torch.cat([y, y])
                    both = _score(D, torch.cat([real_in, fake_in]), ys)
                    real_out, fake_out = both.split([len(real_in), len(fake_in)])
                else:
                    real_out, fake_out = _score(D, real_in, y), _score(D, fake_in, y)
                real_out = real_out.float()
            else:
                fake_out = _score(D, fake_in, y)
        fake_out = fake_out.float()
        loss_G = loss.generator_loss(fake_out, real_out)
        grad = _backward_step(loss_G, G, opt_G, scaler)
    finally:
        for p, flag in zip(D.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return {"loss_G": loss_G.detach(), "d_fake_g": _prob(fake_out, loss), "grad_G": grad}


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

    WATCHED = ("loss_D", "loss_G", "grad_D", "grad_G")

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.first_bad = torch.zeros((), dtype=torch.long, device=device)  # 0: all finite so far
        self.what = torch.zeros((), dtype=torch.long, device=device)  # bit i set: WATCHED[i] was bad

    def update(self, stats: dict[str, torch.Tensor], step: int | torch.Tensor) -> None:
        """Record ``step`` if it is the first whose watched statistics are not all finite (in place,
        so a CUDA graph can replay it; ``step`` may be a device tensor)."""
        bits = torch.zeros_like(self.what)
        for i, key in enumerate(self.WATCHED):
            if key in stats:
                bits = bits | ((~torch.isfinite(stats[key])).long() << i)
        new = (bits != 0) & (self.first_bad == 0)
        self.first_bad.copy_(torch.where(new, step, self.first_bad))
        self.what.copy_(torch.where(new, bits, self.what))

    def check(self, checked_at: int, checkpoint: object | None = None) -> None:
        """Raise :class:`DivergenceError` if any step so far was bad; ``checkpoint`` is named in the
        message as the last good one (left untouched: no loop writes over it after a bad step)."""
        step = int(self.first_bad)  # the one host read-back the guard needs
        if not step:
            return
        bits = int(self.what)
        what = tuple(key for i, key in enumerate(self.WATCHED) if bits >> i & 1)
        names = " and ".join(what) if len(what) < 3 else ", ".join(what[:-1]) + " and " + what[-1]
        found = "" if checked_at == step else f" (found at the check of step {checked_at})"
        saved = (
            f"the last good checkpoint is {checkpoint}, left untouched"
            if checkpoint
            else "no checkpoint was written before it"
        )
        raise DivergenceError(
            f"training diverged: {names} became NaN or infinite at step {step}{found}, "
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
