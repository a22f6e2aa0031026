"""Every check a run's inputs allow, at once: :func:`diagnose`, and :func:`diagnose_trainer` for a
:class:`~gan_tutorial.trainer.Trainer` (chapter 6)."""

from __future__ import annotations

import torch
from torch import nn

from ..losses import GANLoss
from ..trainer import Trainer
from ..updates import History
from .findings import MIN_STEPS, Finding, checked_history, loss_kind
from .monitors import check_d_rates_fakes_real, check_d_wins, check_finite, check_loss_sign, check_no_gradient
from .penalty import Penalty, check_gradient_penalty
from .setup import check_batch_norm_with_penalty, check_codes, check_data_range, check_error, check_train_mode


def diagnose(
    history: History,
    *,
    loss: str | GANLoss | None = None,
    G: nn.Module | None = None,
    D: nn.Module | None = None,
    data: torch.Tensor | None = None,
    gradient_penalty: bool | Penalty | None = None,
    z: torch.Tensor | None = None,
    error: BaseException | None = None,
) -> list[Finding]:
    """Every finding the inputs allow, checks of the monitors first.

    ``history`` is a run's :class:`~gan_tutorial.updates.History` (``updates.train``'s result or
    ``Trainer.history``); ``loss`` the losses it trained with, as ``updates.train`` takes them
    (default ``"nonsaturating"``, ``train``'s; name a WGAN ``"wgan"`` or ``"wgan-gp"``, or its
    negative critic loss reads as a cross-entropy below 0). The rest is optional and enables more
    checks: ``G`` and ``D`` as training left them, ``data`` a batch of the real data as the step
    saw it, ``gradient_penalty`` whether D's loss has one (``True``), or the penalty function
    itself (also probed with :func:`check_gradient_penalty` on samples of ``data``'s shape),
    ``z`` a batch of codes as the step drew them, ``error`` the exception that stopped the run.

    A history shorter than :data:`~.findings.MIN_STEPS` logged steps (an empty one included) skips the checks
    of trends and adds a ``too_few_steps`` finding, unless a non-finite value or ``error`` explains
    why the run was short. A history that is not one, or whose monitors disagree in length or are
    all unknown, is a ``TypeError`` or ``ValueError``.
    """
    history = checked_history(history)
    loss_kind(loss)  # an unknown loss fails here, before any check
    findings: list[Finding | None] = [
        check_finite(history),
        check_loss_sign(history, loss),
        check_no_gradient(history, "G"),
        check_no_gradient(history, "D"),
    ]
    if len(history.step) >= MIN_STEPS:
        findings += [check_d_rates_fakes_real(history, loss), check_d_wins(history, loss)]
    if G is not None and data is not None:
        findings.append(check_data_range(data, G))
    if G is not None and z is not None:
        findings.append(check_codes(z, G))
    if D is not None:
        findings.append(check_batch_norm_with_penalty(D, loss, gradient_penalty))
    findings.append(check_train_mode(G, D))
    if callable(gradient_penalty):
        shape = tuple(data.shape[1:]) if isinstance(data, torch.Tensor) and data.ndim > 1 else (2, 3, 3)
        findings.append(check_gradient_penalty(gradient_penalty, sample_shape=shape))
    if error is not None:
        findings.append(check_error(error))
    found = [f for f in findings if f is not None]
    if len(history.step) < MIN_STEPS and error is None and not any(f.code == "non_finite" for f in found):
        found.append(
            Finding(
                "too_few_steps",
                f"the history has {len(history.step)} logged step(s); the checks of trends "
                f"(d_rates_fakes_real, d_wins) need at least {MIN_STEPS} and were skipped.",
                "a run stopped early, or a log interval (log_every) as long as the run.",
                "train longer or log more often, then diagnose again.",
            )
        )
    return found


def diagnose_trainer(trainer: Trainer) -> list[Finding]:
    """:func:`diagnose` for a :class:`~gan_tutorial.trainer.Trainer` after (some of) a run: its
    history, its config's loss and penalty, its G and D, and a batch of its training images."""
    cfg = trainer.config
    return diagnose(
        trainer.history,
        loss=cfg.loss,
        G=trainer.G,
        D=trainer.D,
        data=trainer.sampler.x[: cfg.batch_size],
        gradient_penalty=bool(cfg.penalty),
    )
