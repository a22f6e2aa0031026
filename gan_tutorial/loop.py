"""The trainer's bookkeeping between iterations: the logging window, the budget and the lazy
penalties' schedule.

:class:`Window` keeps running sums of the monitors on the device, read back only when the
trainer logs (averaged over the processes of a run on several); :class:`Budget` ends a run
after a number of steps and/or seconds, with a clock that stops while callbacks run;
:func:`lazy_factor` weights R1 and R2 on the steps that take them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

from .config import TrainConfig
from .distributed import World
from .updates import MONITORS

#: Logged too when an iteration reports them: the overfitting signal r_t = E[sign D(x_real)] and
#: ADA's probability p (chapter 8, runs that augment).
EXTRAS = ("r_t", "p")


class Window:
    """The logging window: running sums of the monitors (and of the :data:`EXTRAS` an iteration
    reports) in fixed device tensors, updated in place (so a CUDA graph can update them too) and
    read back only when the trainer logs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums = {key: torch.zeros((), device=device) for key in MONITORS}
        self.count = 0  # iterations in the sums (counted on the host by the trainer's loop)

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key in MONITORS:
            self.sums[key].add_(stats[key])
        for key in EXTRAS:
            if key in stats:
                self.sums.setdefault(key, torch.zeros((), device=self.device)).add_(stats[key])

    def means(self, world: World | None = None) -> dict[str, float]:
        """The monitors' means over the window (and over ``world``'s processes: the whole batch's,
        each process having the same number of rows), read back in one transfer."""
        keys = list(self.sums)
        sums = torch.stack([self.sums[k] for k in keys])
        means = ((world.mean(sums) if world is not None else sums) / self.count).tolist()
        return dict(zip(keys, means, strict=True))

    def reset(self) -> None:
        for value in self.sums.values():
            value.zero_()
        self.count = 0


class Budget:
    """A run's budget in steps and/or seconds. The clock stops while :meth:`paused`: the
    callbacks' time (grids, scores) is not charged to training."""

    def __init__(self, start_step: int, steps: int | None, seconds: float | None) -> None:
        self.end = start_step + steps if steps is not None else None
        self.seconds = seconds
        self.start, self.paused_for = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused_for

    def over(self, step: int) -> bool:
        return (self.end is not None and step >= self.end) or (
            self.seconds is not None and self.elapsed() >= self.seconds
        )

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused_for += time.perf_counter() - t0


def lazy_factor(config: TrainConfig, step: int) -> float:
    """The factor on R1's and R2's weights for ``step``'s D update: ``r1_every`` on every
    ``r1_every``-th step, 0 on the others ("lazy regularisation", Karras et al. 2020). For
    plain SGD that is the same pull on average; Adam divides each step by a running scale of
    the gradients, so with Adam it is only close to it (chapter 4)."""
    return float(config.r1_every) if (config.r1 or config.r2) and step % config.r1_every == 0 else 0.0
