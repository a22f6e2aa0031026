"""The MNIST runner: one sweep run of a :class:`~gan_tutorial.config.TrainConfig`, trained and
scored with the judge (chapter 6's stabilisers at equal time)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from .. import data
from ..config import TrainConfig
from ..metrics import judge
from ..trainer import Trainer
from ..updates import DivergenceError


class MNISTRunner:
    """A runner that trains a :class:`~gan_tutorial.config.TrainConfig` on MNIST and scores it with the judge.

    ``runner(config, seed)`` trains ``Trainer(replace(config, seed=seed), x_train, device)`` for
    ``steps`` iterations and/or ``seconds`` of training time (no checkpoints), then scores
    ``n_samples`` samples (:meth:`Trainer.generate`: fixed codes, from the moving average when
    the config keeps one) against the ``reference`` set with a floor at the same sample size
    (:func:`~gan_tutorial.metrics.judge.reference`). The validation reference ("val") is the one
    to choose settings by; "test" is for reporting the chosen one, once. MNIST and the judge
    are loaded on the first call, once. Returns ``fd``, ``ratio`` (fd / floor), ``modes``,
    ``kl``, ``steps``, ``train_seconds`` and ``diverged``; a run that diverges
    (:class:`updates.DivergenceError`) gives ``diverged=True`` and NaN scores instead of an error.
    Numbers at different ``n_samples`` are not comparable: small samples inflate the distance.
    With ``keep`` (a folder) each finished run also writes its checkpoint there, at
    :meth:`checkpoint`, so a chosen run can be sampled or scored again later (on the test
    reference, once) without training it again.
    """

    def __init__(
        self,
        steps: int | None = None,
        seconds: float | None = None,
        n_samples: int = 2000,
        reference: str = "val",
        device: str | torch.device = "cpu",
        keep: str | Path | None = None,
    ) -> None:
        if steps is None and seconds is None:
            raise ValueError("give a budget per run: steps, seconds, or both")
        if (steps is not None and (not isinstance(steps, int) or steps < 1)) or (
            seconds is not None and not 0 < seconds < math.inf
        ):
            raise ValueError(f"budgets must be positive, got steps={steps!r}, seconds={seconds!r}")
        if not isinstance(n_samples, int) or not 2 <= n_samples <= 20_000:
            raise ValueError(
                f"n_samples must be an integer between 2 and 20,000 (a floor pool's size), got {n_samples!r}"
            )
        if reference not in judge.SPLITS:
            raise ValueError(
                f"unknown reference {reference!r}; choose one of {', '.join(judge.SPLITS)} "
                "('val' to choose settings, 'test' only to report the chosen one)"
            )
        self.steps, self.seconds, self.n_samples = steps, seconds, n_samples
        self.reference, self.device = reference, torch.device(device)
        self.keep = Path(keep) if keep is not None else None
        self._x_train: torch.Tensor | None = None
        self._judge: judge.Judge | None = None

    def _load(self) -> None:
        """MNIST's training images and the judge, loaded on the first call only."""
        if self._x_train is None:
            self._x_train = data.load_mnist(train=True, device=self.device)
        if self._judge is None:
            self._judge = judge.load_judge(self.device)

    @staticmethod
    def _diverged(steps: int, seconds: float) -> dict[str, float]:
        nan = math.nan
        return {"fd": nan, "ratio": nan, "modes": nan, "kl": nan, "steps": steps, "train_seconds": seconds,
                "diverged": True}  # fmt: skip

    def __call__(self, config: Any, seed: int) -> dict[str, float]:
        """Train ``config`` with ``seed`` for the budget and score its samples."""
        if not isinstance(config, TrainConfig):
            raise ValueError(f"the MNIST runner trains TrainConfig trials, got {type(config).__name__}")
        self._load()
        trainer = Trainer(dataclasses.replace(config, seed=seed), self._x_train, self.device)
        start = time.perf_counter()
        try:
            trainer.run(steps=self.steps, seconds=self.seconds, progress=False, save=False)
        except DivergenceError as err:
            return self._diverged(err.step, time.perf_counter() - start)
        seconds = time.perf_counter() - start
        if self.keep is not None:
            trainer.save(self.checkpoint(config, seed))
        x_fake = trainer.generate(self.n_samples).float()
        if not bool(torch.isfinite(x_fake).all()):  # NaN samples from weights the guard did not see go bad
            return self._diverged(trainer.step, seconds)
        ref = judge.reference(self._judge, self.reference, n=self.n_samples)
        scores = judge.score(x_fake, self._judge, ref)  # against the reference, beside its floor
        return {
            "fd": scores.fd,
            "ratio": scores.ratio,
            "modes": scores.modes,
            "kl": scores.kl,
            "steps": trainer.step,
            "train_seconds": seconds,
            "diverged": False,
        }

    def checkpoint(self, config: Any, seed: int) -> Path:
        """Where a runner with ``keep`` writes the checkpoint of the run (``config``, ``seed``):
        ``keep/<digest of the config and seed>.pt``, so that the same run maps to the same file."""
        if self.keep is None:
            raise ValueError("this runner keeps no checkpoints: make it with keep=<a folder>")
        config = dataclasses.replace(config, seed=seed)
        text = json.dumps(dataclasses.asdict(config), sort_keys=True, default=repr)
        return self.keep / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.pt"
