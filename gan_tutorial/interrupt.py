"""Stopping a run cleanly (chapter 3): the first SIGINT (Ctrl-C) or SIGTERM is deferred until the
current iteration ends, so the trainer can write a checkpoint before it stops.

:class:`StopSignals` records the signal instead of interrupting; :class:`TrainingInterrupted` is
what the trainer raises once the checkpoint is written. A second signal interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any


class StopSignals:
    """While active (in the main thread only), the first SIGINT or SIGTERM is recorded in
    ``caught`` instead of interrupting; the previous handlers come back at once, so a second
    signal interrupts (or terminates) as usual. With ``once=False`` every signal is recorded (a
    process under torchrun, which passes a Ctrl-C on to processes that had it already, and kills
    those that do not end in time)."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)

    def __init__(self, once: bool = True) -> None:
        self.caught: int | None = None
        self.once = once
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.caught = self.caught or signum
        if self.once:
            self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM after finishing its current iteration.

    ``signal`` is the signal's number, ``step`` the last finished step, ``checkpoint`` where
    the run was saved (``None`` without an ``out_dir`` or with ``save=False``).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        name = signal.Signals(signum).name
        saved = (
            f"wrote {checkpoint}; continue with Trainer.resume"
            if checkpoint
            else "nothing saved (the run has no out_dir, or ran with save=False)"
        )
        super().__init__(f"{name} at step {step}: {saved}")
        self.signal, self.step, self.checkpoint = signum, step, checkpoint

    def __reduce__(self):  # so that it crosses process boundaries
        return type(self), (self.signal, self.step, self.checkpoint)
