r"""Sweeps: one training recipe run over many settings and seeds, resumable, then summarised.

One GAN run says little: the same setting with another seed can collapse where the first
run covered every mode, so a setting is judged by its mean and spread over seeds, and two
settings are compared only when their difference is larger than that spread. A sweep runs
every pair (trial, seed) of a list of trials and a list of seeds and keeps one row of
numbers per run.

**Designs.** A trial is a name and a config, a dataclass such as
:class:`~gan_tutorial.config.TrainConfig` or :class:`ToySetting`. Three ways to make a list of
them from a ``base`` config:

* :func:`grid` - the Cartesian product of a few axes, ``grid(base, lr_D=[2e-4, 4e-4], k=[1, 2])``:
  four trials, every combination;
* :func:`one_at_a_time` - the base, then each axis varied alone from it: the design that
  measures what each knob does by itself (its trials differ from the base in one field);
* :func:`random_search` - ``n`` points drawn from a space of lists and ranges (log-uniform
  for learning rates), reproducible from a seed: better than a grid when only a few of many
  axes matter (Bergstra and Bengio 2012).

**Runs.** :class:`Sweep` keeps its results in a JSON-lines file, one row per finished run::

    {"trial": "lr_D=0.0004,k=2", "seed": 0, "config": {...}, "fd": 31.2, ..., "seconds": 95.1}

A run is a call ``runner(config, seed) -> {metric: value}``; :func:`mnist_runner` makes one
that trains the MNIST :class:`~gan_tutorial.trainer.Trainer` and scores it with the judge
against the validation reference. :meth:`Sweep.run` starts only the runs whose row is not in
the file yet, and writes each row as soon as its run ends (flushed and synced to the disk),
so a sweep that is killed loses at most the run in progress and the same call continues it.
The toy mixtures of chapter 2 have a faster path, :meth:`Sweep.run_toy`: all the seeds of a
trial train at once, as one ensemble of small networks (:class:`~gan_tutorial.models.ensemble.MLPEnsemble`)
in one process, by :func:`train_toy`.

**Results.** :class:`Results` holds the rows: the mean and sample standard deviation of a
metric per trial (:meth:`Results.summary`), a plain-text table (:meth:`Results.table`), the
best trial and a plot of every seed beside its trial's mean. Rows of runs that diverged
carry ``"diverged": true`` and NaN metrics; the summaries leave them out and count them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from . import data
from .accel import fused_adam_available
from .data import GaussianMixture
from .losses import GANLoss, d_loss_bce_smoothed, get_loss
from .metrics.modes import N_SAMPLES, ModeReport, mode_report
from .models.ensemble import MLPEnsemble, ensemble
from .updates import DivergenceError, d_step, g_step

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

#: A run: ``runner(config, seed)`` trains ``config`` with ``seed`` and returns its metrics.
Runner = Callable[[Any, int], Mapping[str, float]]

#: Keys of a row that are not metrics.
ROW_KEYS = ("trial", "seed", "config", "seconds")
#: Numbers in a row that describe a run rather than score it: not in a table unless asked for.
NOT_SCORES = ("diverged", "ensemble", "n_modes")

# ---------------------------------------------------------------------------------------
# Designs: lists of trials
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One setting of a sweep: a readable ``name`` ("lr_D=0.0004,k=2", "base") and its ``config``."""

    name: str
    config: Any


def _check_base(base: Any) -> list[str]:
    """The field names of ``base``, which must be a dataclass instance."""
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise ValueError(
            f"base must be a config instance (a dataclass such as TrainConfig() or ToySetting()), "
            f"got {base!r}"
        )
    return [f.name for f in dataclasses.fields(base)]


def _format(value: Any) -> str:
    """A value as it appears in a trial's name: floats in their shortest exact form (0.0004, 1e-05),
    strings bare, containers as JSON."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _name(changes: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={_format(value)}" for key, value in changes.items()) or "base"


def _trial(base: Any, changes: Mapping[str, Any]) -> Trial:
    """``base`` with ``changes`` applied (``dataclasses.replace``, so the config checks its values)."""
    name = _name(changes)
    try:
        return Trial(name, dataclasses.replace(base, **changes))
    except (ValueError, TypeError) as err:
        raise ValueError(f"trial {name}: {err}") from err


def _check_axes(base: Any, axes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each axis as a list of distinct values, its name checked against ``base``'s fields."""
    fields = _check_base(base)
    unknown = [name for name in axes if name not in fields]
    if unknown:
        raise ValueError(
            f"{type(base).__name__} has no field {', '.join(unknown)}; its fields: {', '.join(fields)}"
        )
    checked = {}
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ValueError(
                f"axis {name} must be a list of values, got {values!r}; write {name}=[{values!r}]"
            )
        values = list(values)
        if not values:
            raise ValueError(f"axis {name} lists no values: give at least one")
        names = [_format(v) for v in values]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"axis {name} lists {', '.join(twice)} more than once: trials must differ")
        checked[name] = values
    return checked


def grid(base: Any, **axes: Sequence[Any]) -> list[Trial]:
    """Every combination of the axes' values, applied to ``base`` with ``dataclasses.replace``.

    ``grid(TrainConfig(), lr_D=[2e-4, 4e-4], k=[1, 2])`` gives four trials named
    "lr_D=0.0002,k=1", "lr_D=0.0002,k=2", "lr_D=0.0004,k=1" and "lr_D=0.0004,k=2" (the last
    axis varies fastest); without axes, the base alone, named "base". A field ``base`` does not
    have, or a value its config refuses, is a ``ValueError``.
    """
    axes = _check_axes(base, axes)
    names = list(axes)
    return [_trial(base, dict(zip(names, combo, strict=True))) for combo in itertools.product(*axes.values())]


def one_at_a_time(base: Any, **axes: Sequence[Any]) -> list[Trial]:
    """The base ("base"), then each axis varied alone: one trial per value that differs from the base's.

    ``one_at_a_time(base, lr_D=[2e-4, 4e-4], k=[1, 2])`` with ``base.lr_D == 2e-4`` and
    ``base.k == 1`` gives "base", "lr_D=0.0004" and "k=2": every trial differs from the base
    in one field, so comparing it with the base measures that field alone. A value equal to
    the base's is the base itself and is not repeated.
    """
    axes = _check_axes(base, axes)
    trials = [Trial("base", base)]
    for name, values in axes.items():
        trials += [_trial(base, {name: v}) for v in values if v != getattr(base, name)]
    return trials


def _draw(rng: random.Random, name: str, axis: Any) -> Any:
    """One value of an axis of :func:`random_search`: a choice from a list, or from a range."""
    if isinstance(axis, list):
        if not axis:
            raise ValueError(f"axis {name} lists no values: give at least one")
        return rng.choice(axis)
    how = f'a list of values or a range (low, high) or (low, high, "log"), got {axis!r}'
    if not isinstance(axis, tuple) or len(axis) not in (2, 3):
        raise ValueError(f"axis {name} must be {how}")
    low, high, scale = (*axis, "linear") if len(axis) == 2 else axis
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not low <= high or scale not in ("linear", "log"):
        raise ValueError(f"axis {name} must be {how}, with low <= high")
    if scale == "log":
        if low <= 0:
            raise ValueError(f'axis {name}: a "log" range needs low > 0, got {low}')
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    if isinstance(low, int) and isinstance(high, int):  # a range of integers gives integers
        return min(max(round(value), low), high)
    return float(f"{value:.3g}")  # three significant digits: readable names, nothing lost in practice


def random_search(base: Any, space: Mapping[str, Any], n: int, seed: int = 0) -> list[Trial]:
    """``n`` distinct trials, each axis of ``space`` drawn independently; the same list for the same seed.

    An axis is a list (a uniform choice among its values), a range ``(low, high)`` (uniform)
    or ``(low, high, "log")`` (log-uniform: as many draws between 1e-4 and 1e-3 as between
    1e-3 and 1e-2, the scale learning rates live on). Drawn floats keep three significant
    digits; a range of two integers draws integers. Trials are named like :func:`grid`'s
    ("lr_G=0.00031,k=2"), in the space's order.
    """
    fields = _check_base(base)
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"space must be a dict of at least one axis, field -> list or range; got {space!r}")
    unknown = [name for name in space if name not in fields]
    if unknown:
        raise ValueError(
            f"{type(base).__name__} has no field {', '.join(unknown)}; its fields: {', '.join(fields)}"
        )
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of trials) must be a positive integer, got {n!r}")
    rng = random.Random(seed)  # its own generator: no global random state is drawn from or reseeded
    trials: dict[str, Trial] = {}
    for _ in range(100 * n):
        changes = {name: _draw(rng, name, axis) for name, axis in space.items()}
        name = _name(changes)
        if name not in trials:
            trials[name] = _trial(base, changes)
            if len(trials) == n:
                return list(trials.values())
    raise ValueError(
        f"the space yields only {len(trials)} distinct trials in {100 * n} draws, fewer than n={n}: "
        "ask for fewer trials or widen the space (grid() lists a small space exhaustively)"
    )


# ---------------------------------------------------------------------------------------
# The toy mixtures: many seeds in one ensemble
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToySetting:
    """One GAN on a 2-D mixture (chapter 2): networks, optimiser, budget and stabilisers.

    G and D are :func:`~gan_tutorial.models.toy.toy_mlp` nets of ``depth`` hidden layers of
    width ``hidden``, trained with Adam (``lr_G``, ``lr_D``, ``beta1``, ``beta2``) for ``steps``
    iterations of ``k`` D steps and one G step on batches of ``batch_size``. The options:

    * ``decay_to`` - both learning rates fall linearly to this fraction of their start over
      the run (1.0: constant; chapter 2's recipe uses 0.01);
    * ``label_smoothing`` s - one-sided: D's target for real samples is 1 - s instead of 1,
      fakes keep 0 (Salimans et al. 2016); cross-entropy losses only;
    * ``instance_noise`` - the standard deviation of Gaussian noise added to everything D
      sees, real and fake, falling linearly to 0 over the first half of the run
      (Sonderby et al. 2016);
    * ``r1`` - the weight gamma of the R1 penalty on D at real samples (Mescheder et al. 2018).
    """

    loss: str = "nonsaturating"
    hidden: int = 64
    depth: int = 3
    latent_dim: int = 2
    batch_size: int = 256
    lr_G: float = 1e-3
    lr_D: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    k: int = 1
    steps: int = 2000
    decay_to: float = 1.0
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    r1: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss", get_loss(self.loss).name)  # "ns" -> "nonsaturating"
        for name in ("hidden", "depth", "latent_dim", "batch_size", "k", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr_G", "lr_D", "beta1", "beta2", "decay_to", "label_smoothing", "instance_noise", "r1"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.lr_G <= 0 or self.lr_D <= 0:
            raise ValueError(f"learning rates must be positive, got lr_G={self.lr_G}, lr_D={self.lr_D}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's betas must be in [0, 1), got beta1={self.beta1}, beta2={self.beta2}")
        if not 0 < self.decay_to <= 1:
            raise ValueError(
                f"decay_to (the final fraction of the learning rates) must be in (0, 1], got {self.decay_to}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                "label_smoothing s (real target 1 - s) must be in [0, 1), 0 for none; "
                f"got {self.label_smoothing}"
            )
        loss = get_loss(self.loss)
        if self.label_smoothing and not getattr(loss, "cross_entropy", loss.logits):
            raise ValueError(
                f"label smoothing changes the cross-entropy targets, and loss {self.loss!r} has none: "
                "use loss 'nonsaturating' or 'minimax', or label_smoothing=0"
            )
        if getattr(loss, "gp", 0.0):
            raise ValueError(
                f"loss {self.loss!r} comes with a gradient penalty, which the toy runs do not add: "
                "choose another loss (the toy runs offer the R1 penalty, r1)"
            )
        if self.instance_noise < 0 or self.r1 < 0:
            raise ValueError(
                f"instance_noise and r1 must be >= 0 (0: off), got {self.instance_noise} and {self.r1}"
            )


def _toy_loss(setting: ToySetting, scale: float) -> GANLoss:
    """The setting's losses, label smoothing included, multiplied by ``scale``.

    For an ensemble of E members the losses are means over E x B outputs, (1/E) sum_e loss_e;
    ``scale=E`` makes them sum_e loss_e, so each member's gradient is exactly its own loss's,
    as if it trained alone, and Adam's epsilon acts on it as in a lone run.
    """
    base = get_loss(setting.loss)
    s = setting.label_smoothing

    def d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return scale * (d_loss_bce_smoothed(real, fake, s) if s else base.d(real, fake))

    def g(*outs: torch.Tensor) -> torch.Tensor:  # D's fake scores (and real ones for a paired loss)
        return scale * base.g(*outs)

    return dataclasses.replace(base, d=d, g=g)  # every other property of the loss kept


class _InstanceNoise(nn.Module):
    """D(x + sigma * eps) for an ensemble D, each member's noise drawn from its own generator."""

    def __init__(self, D: MLPEnsemble, generators: list[torch.Generator]) -> None:
        super().__init__()
        self.D, self.generators, self.sigma = D, generators, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (E, B, dim)
        if self.sigma > 0:
            eps = torch.stack([torch.randn(x.shape[1:], generator=g) for g in self.generators])
            x = x + self.sigma * eps.to(x.device, x.dtype)
        return self.D(x)


#: Seed of the fixed codes every toy member is scored on (chapter 2's).
EVAL_SEED = 7
#: D of the run with seed s starts from seed 1000 + s (chapter 2's convention), G from s.
D_SEED_OFFSET = 1000
#: The 2-D mixtures by name.
MIXTURES: dict[str, Callable[[], GaussianMixture]] = {"ring": data.ring8, "grid": data.grid25}


def _mixture(mixture: GaussianMixture | str) -> tuple[GaussianMixture, str]:
    """The mixture and the name rows record it under: "ring", "grid", or a fingerprint of its numbers."""
    if isinstance(mixture, str):
        if mixture not in MIXTURES:
            raise ValueError(
                f"unknown mixture {mixture!r}; choose one of {', '.join(MIXTURES)} or a GaussianMixture"
            )
        return MIXTURES[mixture](), mixture
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(
            f"mixture must be a GaussianMixture or a name ({', '.join(MIXTURES)}), got {mixture!r}"
        )
    tensors = (mixture.means, mixture.stds, mixture.weights)
    for name, make in MIXTURES.items():
        known = make()
        pairs = zip(tensors, (known.means, known.stds, known.weights), strict=True)
        if all(a.shape == b.shape and torch.equal(a.double(), b.double()) for a, b in pairs):
            return mixture, name
    digest = hashlib.sha256(b"".join(t.double().cpu().numpy().tobytes() for t in tensors)).hexdigest()
    return mixture, f"mixture-{digest[:12]}"


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("give at least one seed")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds!r}")
    return seeds


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """One intra-op thread for PyTorch on the CPU while the toy networks train, the previous
    number restored after. Their products are so small that more threads do not make a step
    faster, and where the cores are busy with other work, threads that wait for each other at
    every operation make it many times slower. (To use more cores, run more seeds per ensemble,
    or several sweeps, each with its own file, in separate processes.)"""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_members(
    mixture: GaussianMixture, setting: ToySetting, seeds: list[int], device: str | torch.device
) -> tuple[list[ModeReport], list[bool]]:
    """Train one run of ``setting`` per seed, all in one ensemble; their reports and which diverged."""
    s, E, B = setting, len(seeds), setting.batch_size
    device = torch.device(device)
    # G: (E, B, latent_dim) -> (E, B, dim); D: (E, B, dim) -> (E, B, 1)
    G = ensemble(seeds, s.latent_dim, mixture.dim, s.hidden, s.depth).to(device)
    D_net = ensemble([D_SEED_OFFSET + seed for seed in seeds], mixture.dim, 1, s.hidden, s.depth).to(device)
    # one generator per run for its batches, codes and noise: a run's numbers depend on its seed
    # only, not on which other seeds share its ensemble
    streams = [torch.Generator().manual_seed(seed) for seed in seeds]
    D = _InstanceNoise(D_net, streams)
    adam = {"fused": True} if fused_adam_available(device) else {}  # one kernel over all the weights
    opt_G = torch.optim.Adam(G.parameters(), lr=s.lr_G, betas=(s.beta1, s.beta2), **adam)
    opt_D = torch.optim.Adam(D.parameters(), lr=s.lr_D, betas=(s.beta1, s.beta2), **adam)
    loss = _toy_loss(s, scale=E)

    def real() -> torch.Tensor:  # (E, B, dim): every run its own batch
        return torch.stack([mixture.sample(B, g) for g in streams]).to(device)

    def codes() -> torch.Tensor:  # (E, B, latent_dim)
        return torch.stack([torch.randn(B, s.latent_dim, generator=g) for g in streams]).to(device)

    z = torch.randn(N_SAMPLES, s.latent_dim, generator=torch.Generator().manual_seed(EVAL_SEED))
    with _one_cpu_thread(device):
        for step in range(s.steps):
            fraction = 1.0 - (1.0 - s.decay_to) * step / s.steps
            for opt, lr in ((opt_G, s.lr_G), (opt_D, s.lr_D)):
                for group in opt.param_groups:
                    group["lr"] = lr * fraction
            D.sigma = s.instance_noise * max(0.0, 1.0 - step / (0.5 * s.steps))
            for _ in range(s.k):
                d_step(G, D, opt_D, real(), codes(), loss, r1=s.r1 * E)  # r1 scaled like the losses
            g_step(G, D, opt_G, codes(), loss, x_real=real() if loss.relativistic else None)
        with torch.no_grad():
            x_fake = G(z.to(device).expand(E, -1, -1)).cpu()  # (E, 2500, dim), every run on the same codes
    finite = [
        bool(torch.isfinite(x_fake[e]).all())
        and all(bool(torch.isfinite(p[e]).all()) for p in D_net.parameters())
        for e in range(E)
    ]
    return [mode_report(x_fake[e], mixture) for e in range(E)], [not ok for ok in finite]


def train_toy(
    mixture: GaussianMixture | str,
    setting: ToySetting,
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
) -> list[ModeReport]:
    """Train ``setting`` on ``mixture`` once per seed, all seeds at once, and report each run's modes.

    The runs are the members of one :class:`~gan_tutorial.models.ensemble.MLPEnsemble` for G
    and one for D, trained with :func:`updates.d_step` and :func:`updates.g_step`. Run s starts
    G from seed s and D from seed 1000 + s and draws its batches, codes and instance noise from
    a generator of its own seeded with s; its losses are summed over the runs instead of
    averaged, so its gradients are its own. A run therefore gives the same numbers alone as
    beside others (up to rounding in the batched products), and nothing global is seeded or
    drawn from. Each run is scored with :func:`~gan_tutorial.metrics.modes.mode_report` on
    2,500 samples from fixed codes (seed 7, the same for every run); a run that diverged
    (NaN weights or samples) reports no high-quality sample. On the CPU the ensemble trains
    on one thread (the products are too small to share; the previous setting is restored).
    """
    if not isinstance(setting, ToySetting):
        raise ValueError(f"setting must be a ToySetting, got {type(setting).__name__}")
    gm, _ = _mixture(mixture)
    return _train_members(gm, setting, _check_seeds(seeds), device)[0]


# ---------------------------------------------------------------------------------------
# The MNIST runner
# ---------------------------------------------------------------------------------------


class MNISTRunner:
    """A runner for :class:`~gan_tutorial.config.TrainConfig` trials (see :func:`mnist_runner`)."""

    def __init__(
        self,
        steps: int | None = None,
        seconds: float | None = None,
        n_samples: int = 2000,
        reference: str = "val",
        device: str | torch.device = "cpu",
        keep: str | Path | None = None,
    ) -> None:
        from .metrics.judge import SPLITS

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
        if reference not in SPLITS:
            raise ValueError(
                f"unknown reference {reference!r}; choose one of {', '.join(SPLITS)} "
                "('val' to choose settings, 'test' only to report the chosen one)"
            )
        self.steps, self.seconds, self.n_samples = steps, seconds, n_samples
        self.reference, self.device = reference, torch.device(device)
        self.keep = Path(keep) if keep is not None else None
        self._x_train: torch.Tensor | None = None
        self._judge: Any = None

    def _load(self) -> None:
        """MNIST's training images and the judge, loaded on the first call only."""
        from .metrics.judge import load_judge

        if self._x_train is None:
            self._x_train = data.load_mnist(train=True, device=self.device)
        if self._judge is None:
            self._judge = load_judge(self.device)

    @staticmethod
    def _diverged(steps: int, seconds: float) -> dict[str, float]:
        nan = math.nan
        return {"fd": nan, "ratio": nan, "modes": nan, "kl": nan, "steps": steps, "train_seconds": seconds,
                "diverged": True}  # fmt: skip

    def __call__(self, config: Any, seed: int) -> dict[str, float]:
        """Train ``config`` with ``seed`` for the budget and score its samples (see :func:`mnist_runner`)."""
        from .config import TrainConfig
        from .metrics.judge import reference, score
        from .trainer import Trainer

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
        scores = score(x_fake, self._judge, reference(self._judge, self.reference, n=self.n_samples))
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


def mnist_runner(
    steps: int | None = None,
    seconds: float | None = None,
    n_samples: int = 2000,
    reference: str = "val",
    device: str | torch.device = "cpu",
    keep: str | Path | None = None,
) -> MNISTRunner:
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
    :meth:`MNISTRunner.checkpoint`, so a chosen run can be sampled or scored again later (on
    the test reference, once) without training it again.
    """
    return MNISTRunner(steps, seconds, n_samples, reference, device, keep)


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


class Summary(NamedTuple):
    """One group's numbers for a metric: its mean and sample standard deviation over ``n`` runs."""

    trial: str
    mean: float
    std: float
    n: int


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator; 0 for one value, NaN for none)."""
    if not values:
        return math.nan, math.nan
    mean = math.fsum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


class Results:
    """The rows of a sweep, one dict per run (``trial``, ``seed``, ``config``, the metrics, ``seconds``).

    Rows with ``"diverged": true`` are left out of the summaries (their metrics are NaN) and
    counted in the table.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows: list[dict[str, Any]] = [dict(row) for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"Results({len(self.rows)} rows, {len(self.trials)} trials)"

    @property
    def trials(self) -> list[str]:
        """The trials' names, in the order of their first row."""
        return list(dict.fromkeys(row["trial"] for row in self.rows))

    @property
    def metrics(self) -> list[str]:
        """The metrics the rows hold, in the order they first appear: their numbers and true/false
        values (a mean of those is a share), less :data:`NOT_SCORES` and ``seed`` and ``seconds``."""
        names: dict[str, None] = {}
        for row in self.rows:
            for key, value in row.items():
                if key not in ROW_KEYS + NOT_SCORES and isinstance(value, (int, float)):  # bools too
                    names.setdefault(key)
        return list(names)

    def config(self, trial: str) -> dict[str, Any]:
        """The config (as a dict) of the trial named ``trial``."""
        for row in self.rows:
            if row["trial"] == trial:
                return row["config"]
        raise ValueError(f"no trial named {trial!r}; the trials: {', '.join(self.trials)}")

    def _groups(self, by: str) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            if by == "trial":
                label = row["trial"]
            elif by in row and by not in ("config", "seconds"):
                label = f"{by}={_format(row[by])}"
            elif by in row["config"]:
                label = f"{by}={_format(row['config'][by])}"
            else:
                raise ValueError(
                    f"cannot group by {by!r}: it is neither 'trial' nor a field of the configs "
                    f"({', '.join(row['config'])})"
                )
            groups.setdefault(label, []).append(row)
        return groups

    def summary(self, metric: str, by: str = "trial") -> list[Summary]:
        """``(trial, mean, std, n)`` of ``metric`` for each trial, in trial order, over its runs that
        did not diverge: ``std`` is the sample standard deviation (0 for one run), ``n`` the runs.

        ``by`` may name a config field instead (``by="lr_D"``): the runs are then grouped by its
        value, across the other fields ("lr_D=0.0004"), to read one axis of a grid.
        """
        if not self.rows:
            return []
        if not any(metric in row for row in self.rows):
            raise ValueError(f"no metric {metric!r} in these rows; they hold: {', '.join(self.metrics)}")
        out = []
        for label, rows in self._groups(by).items():
            values = [float(row[metric]) for row in rows if not row.get("diverged") and metric in row]
            out.append(Summary(label, *_mean_std(values), len(values)))
        return out

    def best(self, metric: str, lower_is_better: bool = True) -> Summary:
        """The trial with the lowest mean ``metric`` (the highest with ``lower_is_better=False``)."""
        candidates = [s for s in self.summary(metric) if not math.isnan(s.mean)]
        if not candidates:
            raise ValueError(f"no trial has a value of {metric!r} from a run that did not diverge")
        return (min if lower_is_better else max)(candidates, key=lambda s: s.mean)

    def table(self, metrics: Sequence[str] | None = None, digits: int = 3) -> str:
        """A plain-text table: one line per trial, ``mean ± std`` of each metric over its seeds,
        the number of runs and (when any) of diverged runs. ``metrics`` defaults to all of them."""
        metrics = list(metrics) if metrics is not None else self.metrics
        groups = self._groups("trial")
        diverged = {name: sum(bool(r.get("diverged")) for r in rows) for name, rows in groups.items()}
        summaries = {m: {s.trial: s for s in self.summary(m)} for m in metrics} if self.rows else {}
        header = ["trial", *metrics, "runs"] + (["diverged"] if any(diverged.values()) else [])
        lines = []
        for name, rows in groups.items():
            cells = [name]
            for m in metrics:
                s = summaries[m][name]
                cells.append(f"{s.mean:.{digits}g} ± {s.std:.{digits}g}" if s.n else "-")
            cells.append(str(len(rows)))
            if any(diverged.values()):
                cells.append(str(diverged[name]))
            lines.append(cells)
        widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

        return "\n".join([line(header), *(line(cells) for cells in lines)])

    def __str__(self) -> str:
        return self.table()

    def plot(
        self, metric: str, ax: matplotlib.axes.Axes | None = None, by: str = "trial"
    ) -> matplotlib.axes.Axes:
        """Each trial's runs as dots, and their mean ± one standard deviation as an error bar."""
        import matplotlib.pyplot as plt

        groups, summaries = self._groups(by), self.summary(metric, by)
        if ax is None:
            _, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) + 1.5), 3.5))
        for i, (s, rows) in enumerate(zip(summaries, groups.values(), strict=True)):
            values = [float(r[metric]) for r in rows if not r.get("diverged") and metric in r]
            n = len(values)  # the runs side by side, within a quarter of the space between trials
            x = [i + 0.25 * (j / (n - 1) - 0.5) if n > 1 else i for j in range(n)]
            first = "" if i == 0 else "_"  # one legend entry for all the trials ("_": none)
            ax.scatter(x, values, s=14, color="0.55", zorder=2, label=f"{first}runs")
            if s.n:
                ax.errorbar(i, s.mean, yerr=s.std, fmt="o", color="tab:blue", capsize=4, zorder=3,
                            label=f"{first}mean ± std")  # fmt: skip
        ax.set_xticks(range(len(summaries)), [s.trial for s in summaries], rotation=30, ha="right")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
        return ax


# ---------------------------------------------------------------------------------------
# The sweep: a results file, runs started only for missing rows
# ---------------------------------------------------------------------------------------


def _config_dict(config: Any) -> dict[str, Any]:
    """A config as the JSON it is stored as (tuples become lists), for comparing with a stored row."""
    try:
        return json.loads(json.dumps(dataclasses.asdict(config)))
    except TypeError as err:
        raise ValueError(
            f"a config must hold only JSON-writable values (numbers, strings, lists, dicts): {err}"
        ) from err


def _differences(ours: dict[str, Any], stored: dict[str, Any], config: Any) -> list[str]:
    """The fields in which a stored config differs from ours. A field the stored one lacks while
    ours holds that field's default is no difference: the row was written before the field existed."""
    defaults = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    defaults = json.loads(json.dumps(defaults, default=str))
    missing = object()
    return sorted(
        key
        for key in set(ours) | set(stored)
        if ours.get(key, missing) != stored.get(key, missing)
        and not (key not in stored and key in defaults and ours[key] == defaults[key])
    )


def _check_trials(trials: Iterable[Trial]) -> list[Trial]:
    trials = list(trials)
    if not trials:
        raise ValueError("give at least one trial")
    for t in trials:
        if not isinstance(t, Trial) or not isinstance(t.name, str) or not dataclasses.is_dataclass(t.config):
            raise ValueError(
                f"trials must be Trial(name, config) with a dataclass config, got {t!r}; "
                "build them with grid(), one_at_a_time() or random_search()"
            )
    names = [t.name for t in trials]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"trial names must be distinct; given more than once: {', '.join(twice)}")
    return trials


def _metrics(metrics: Any) -> dict[str, Any]:
    """A runner's answer checked: a dict of metric names to numbers (or true/false)."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"a runner must return a dict of metrics, name -> number; got {metrics!r}")
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or key in ROW_KEYS:
            raise ValueError(
                f"a runner's metric names must be strings other than {', '.join(ROW_KEYS)}, got {key!r}"
            )
        if isinstance(value, (bool, int, float)):
            out[key] = value
        else:
            try:
                out[key] = float(value)  # a 0-d tensor or numpy number
            except (TypeError, ValueError):
                raise ValueError(f"metric {key} must be a number, got {value!r}") from None
    return out


class Sweep:
    """Runs of trials x seeds whose results live in the JSON-lines file ``path``, one row per run.

    ``runner(config, seed) -> {metric: number}`` makes one run (:func:`mnist_runner` for
    :class:`~gan_tutorial.config.TrainConfig` trials); :meth:`run_toy` needs none. The file is
    the sweep's memory: a pair (trial, seed) that has a row is never run again, so the same call
    after a kill, a crash or a Ctrl-C continues where it stopped, and once everything ran it
    only reads. Rows are written one whole line at a time, flushed and synced to the disk; a
    last line cut short by a kill is dropped (with a warning) and its run done again. A trial
    is known by its name: the same name with another config in the file is a ``ValueError``,
    since the file then belongs to another sweep. Metrics that are NaN or infinite are written
    as JSON's ``NaN`` and ``Infinity``, which Python's ``json`` reads back.
    """

    def __init__(self, path: str | Path, runner: Runner | None = None) -> None:
        self.path = Path(path)
        self.runner = runner
        if self.path.is_dir():
            raise ValueError(
                f"{self.path} is a folder; a sweep's results go to a file, e.g. {self.path / 'sweep.jsonl'}"
            )

    def __repr__(self) -> str:
        return f"Sweep({str(self.path)!r})"

    # -- the file -------------------------------------------------------------------------

    def _read(self, repair: bool) -> list[dict[str, Any]]:
        """The rows in the file; a cut last line is dropped (and cut from the file when ``repair``)."""
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        rows, offset = [], 0
        for i, line in enumerate(lines):
            start, offset = offset, offset + len(line) + 1
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if any(rest.strip() for rest in lines[i + 1 :]):
                    raise ValueError(
                        f"{self.path}, line {i + 1}, is not a JSON row, and rows follow it: the file is "
                        "damaged or not a sweep's results; repair it or choose another path"
                    ) from None
                warnings.warn(
                    f"{self.path}: ignoring its last line, cut short (a sweep killed while writing it); "
                    "that run will be done again",
                    stacklevel=3,
                )
                if repair:
                    with open(self.path, "r+b") as f:
                        f.truncate(start)
                        f.flush()
                        os.fsync(f.fileno())
                break
            if not isinstance(row, dict) or not {"trial", "seed", "config"} <= set(row):
                raise ValueError(
                    f"{self.path}, line {i + 1}, is not a sweep's row (trial, seed, config, metrics): "
                    "choose another path for this sweep"
                )
            rows.append(row)
        return rows

    def _append(self, row: dict[str, Any]) -> None:
        """Write one row as one line, flushed and synced: a kill loses at most the run in progress."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row) + "\n"
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:  # a last row written without its newline (a kill between the two)
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())

    def results(self) -> Results:
        """Every row in the file, in the order written."""
        return Results(self._read(repair=False))

    def _done(self, trials: list[Trial], configs: dict[str, dict[str, Any]]) -> dict[tuple[str, int], dict]:
        """The rows of these trials already in the file, by (trial, seed), after checking that
        each trial's name stands for the same config there."""
        by_name = {t.name: t for t in trials}
        done: dict[tuple[str, int], dict] = {}
        for row in self._read(repair=True):
            name = row["trial"]
            if name not in configs:
                continue
            differ = _differences(configs[name], row["config"], by_name[name].config)
            if differ:
                raise ValueError(
                    f"{self.path} already holds trial {name!r} with another config (it differs in "
                    f"{', '.join(differ)}): the file belongs to another sweep. Choose another path "
                    "for this one, or give the trial another name"
                )
            done.setdefault((name, row["seed"]), row)  # the first row of a pair counts
        return done

    def _row(self, trial: Trial, config: dict[str, Any], seed: int, metrics: Any, seconds: float) -> dict:
        return {"trial": trial.name, "seed": seed, "config": config, **_metrics(metrics), "seconds": seconds}

    # -- running ----------------------------------------------------------------------------

    def run(self, trials: Iterable[Trial], seeds: Iterable[int]) -> Results:
        """Run every pair (trial, seed) that has no row in the file yet, trial by trial, writing each
        row as its run ends; return the rows of all the pairs, in trial then seed order.

        A runner that raises (a Ctrl-C's ``KeyboardInterrupt`` included) stops the sweep; the rows
        written so far stay, and the same call later runs only what is missing.
        """
        if self.runner is None:
            raise ValueError(
                "this Sweep has no runner: give one, Sweep(path, runner=mnist_runner(steps=...)), "
                "or train toy settings with sweep.run_toy(mixture, trials, seeds)"
            )
        trials, seeds = _check_trials(trials), _check_seeds(seeds)
        configs = {t.name: _config_dict(t.config) for t in trials}
        done = self._done(trials, configs)
        for trial in trials:
            for seed in seeds:
                if (trial.name, seed) in done:
                    continue
                start = time.perf_counter()
                metrics = self.runner(trial.config, seed)
                row = self._row(trial, configs[trial.name], seed, metrics, time.perf_counter() - start)
                self._append(row)
                done[trial.name, seed] = row
        return Results(done[t.name, s] for t in trials for s in seeds)

    def run_toy(
        self,
        mixture: GaussianMixture | str,
        trials: Iterable[Trial],
        seeds: Iterable[int],
        device: str | torch.device = "cpu",
    ) -> Results:
        """Like :meth:`run` for :class:`ToySetting` trials on a 2-D mixture, with the seeds of a
        trial that are missing trained together, in one ensemble (:func:`train_toy`).

        Each row holds the run's ``modes``, ``n_modes``, ``high_quality``, ``kl``, ``all_modes`` and
        ``diverged`` (NaN scores when it did), ``seconds`` (the ensemble's wall time) and
        ``ensemble`` (how many runs it trained). The rows of a trial are written when its
        ensemble ends. The config of a row names the mixture too ("ring", "grid" or a
        fingerprint), so one file holds one mixture's trials under each name.
        """
        gm, key = _mixture(mixture)
        trials, seeds = _check_trials(trials), _check_seeds(seeds)
        for t in trials:
            if not isinstance(t.config, ToySetting):
                raise ValueError(
                    f"run_toy trains ToySetting trials; trial {t.name!r} has a {type(t.config).__name__} "
                    "(MNIST configs run with Sweep(path, mnist_runner(...)).run)"
                )
        configs = {t.name: {**_config_dict(t.config), "mixture": key} for t in trials}
        done = self._done(trials, configs)
        for trial in trials:
            missing = [s for s in seeds if (trial.name, s) not in done]
            if not missing:
                continue
            start = time.perf_counter()
            reports, diverged = _train_members(gm, trial.config, missing, device)
            seconds = time.perf_counter() - start
            for seed, report, bad in zip(missing, reports, diverged, strict=True):
                nan = math.nan
                metrics = {
                    "modes": nan if bad else report.modes,
                    "n_modes": report.n_modes,
                    "high_quality": nan if bad else report.high_quality,
                    "kl": nan if bad else report.kl,
                    "all_modes": False if bad else report.all_modes,
                    "diverged": bad,
                    "ensemble": len(missing),
                }
                row = self._row(trial, configs[trial.name], seed, metrics, seconds)
                self._append(row)
                done[trial.name, seed] = row
        return Results(done[t.name, s] for t in trials for s in seeds)
