"""What the doctor reports, and what its checks share (chapter 6).

:class:`Finding` is one symptom (what was seen, the bugs that produce it, the fix) and
:func:`report` prints a list of them. :func:`loss_kind` says which game a loss name stands for,
which decides what a monitor may read; the rest are the helpers the checks of a
:class:`~gan_tutorial.updates.History` share: validation, a monitor's series, the last third of
a run, and steps as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..losses import GANLoss, d_loss_bce, d_loss_lsgan, get_loss
from ..updates import MONITORS, History

#: Logged steps the checks of trends (``check_d_rates_fakes_real``, ``check_d_wins``) need.
MIN_STEPS = 5


@dataclass(frozen=True)
class Finding:
    """One symptom: ``code`` (a short id), ``evidence`` (the numbers that show it), ``cause``
    (the bugs that produce it) and ``fix`` (what to change)."""

    code: str
    evidence: str
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.evidence}\n  likely cause: {self.cause}\n  fix: {self.fix}"


def report(findings: Sequence[Finding]) -> str:
    """The findings as text, one paragraph each; ``"no problem found"`` when there are none."""
    if not findings:
        return "no problem found"
    head = "1 problem found:" if len(findings) == 1 else f"{len(findings)} problems found:"
    return "\n\n".join([head, *map(str, findings)])


def loss_kind(loss: str | GANLoss | None) -> str:
    """What kind of game ``loss`` is: ``"cross_entropy"`` (``minimax``, ``nonsaturating``),
    ``"least_squares"`` (``lsgan``), ``"wasserstein"`` (any name with ``wgan`` in it) or
    ``"other"`` (a :class:`GANLoss` of one's own). ``None`` is :func:`updates.train`'s default,
    ``"nonsaturating"``. An unknown name is a ``ValueError``."""
    if loss is None:
        return "cross_entropy"
    if isinstance(loss, str) and "wgan" in loss.lower():
        return "wasserstein"
    try:
        game = get_loss(loss)
    except ValueError as err:
        raise ValueError(f"{err}, or a WGAN's ('wgan', 'wgan-gp'): the loss the run trained with") from None
    if game.d is d_loss_bce:
        return "cross_entropy"
    if game.d is d_loss_lsgan:
        return "least_squares"
    return "other"


def checked_history(history: object) -> History:
    """``history`` if it is a well-formed :class:`History`; a clear error otherwise."""
    if not isinstance(history, History):
        raise TypeError(
            f"history must be a gan_tutorial.updates.History (what updates.train returns, or a "
            f"Trainer's .history), got {type(history).__name__}"
        )
    n = len(history.step)
    uneven = {key: len(values) for key, values in history.values.items() if len(values) != n}
    if uneven:
        raise ValueError(
            f"the history has {n} logged steps but these monitors have other lengths: {uneven}; "
            "append every step's statistics with History.append"
        )
    if n and not any(key in history.values for key in MONITORS):
        raise ValueError(
            f"the history has none of the monitors the checks read ({', '.join(MONITORS)}); it has "
            f"{', '.join(history.values) or 'none'}. Record them as updates.train does"
        )
    return history


def series(history: History, key: str) -> list[float] | None:
    """The logged values of monitor ``key``; ``None`` if the history has none."""
    values = history.values.get(key)
    return values if values else None


def last_third(values: list[float]) -> list[float]:
    """The last third of ``values`` (at least one value): where a run has settled."""
    return values[-max(1, len(values) // 3) :]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def span(history: History, i: int, j: int) -> str:
    """The logged steps from index ``i`` to index ``j - 1``, as text."""
    first, last = history.step[i], history.step[j - 1]
    return f"step {first}" if first == last else f"steps {first}-{last}"


def describe(x: object) -> str:
    """A tensor's dtype and shape, or any other object's type, for an error message."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__
