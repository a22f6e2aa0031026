"""The 2-D mixtures of chapter 2 trained many seeds at once, as one ensemble (chapter 6).

:func:`train_toy` trains a :class:`~gan_tutorial.config.ToyConfig` once per seed, every run a
member of one :class:`~gan_tutorial.models.ensemble.MLPEnsemble` for G and one for D, in one
process, and scores each run with :func:`~gan_tutorial.metrics.modes.mode_report`. It is the
runner behind :meth:`gan_tutorial.sweep.Sweep.run_toy`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .. import data, runtime
from ..config import ToyConfig
from ..data import GaussianMixture
from ..losses import GANLoss, d_loss_bce_smoothed, get_loss
from ..metrics.modes import N_SAMPLES, ModeReport, mode_report
from ..models.ensemble import MLPEnsemble, ensemble
from ..updates import d_step, g_step
from .designs import _check_seeds

#: Seed of the fixed codes every toy member is scored on (chapter 2's).
EVAL_SEED = 7
#: D of the run with seed s starts from seed 1000 + s (chapter 2's convention), G from s.
D_SEED_OFFSET = 1000
#: The 2-D mixtures by name.
MIXTURES: dict[str, Callable[[], GaussianMixture]] = {"ring": data.ring8, "grid": data.grid25}


def _toy_loss(config: ToyConfig, scale: float) -> GANLoss:
    """The config's losses, label smoothing included, multiplied by ``scale``.

    For an ensemble of E members the losses are means over E x B outputs, (1/E) sum_e loss_e;
    ``scale=E`` makes them sum_e loss_e, so each member's gradient is exactly its own loss's,
    as if it trained alone, and Adam's epsilon acts on it as in a lone run.
    """
    base = get_loss(config.loss)
    s = config.label_smoothing

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


def _train_members(
    mixture: GaussianMixture, config: ToyConfig, seeds: list[int], device: str | torch.device
) -> tuple[list[ModeReport], list[bool], torch.Tensor]:
    """Train one run of ``config`` per seed, all in one ensemble: their reports, which diverged,
    and their samples (len(seeds), 2500, dim) from the fixed codes."""
    c, B = config, config.batch_size
    # a lone seed trains beside a copy of itself, which is then dropped: the batched products of
    # an ensemble of one take another routine on the CPU (a batch of one product), which rounds
    # differently, and a GAN's training grows those last bits into another run
    kept = len(seeds)
    seeds = seeds * 2 if kept == 1 else seeds
    E = len(seeds)
    device = torch.device(device)
    # G: (E, B, latent_dim) -> (E, B, dim); D: (E, B, dim) -> (E, B, 1)
    G = ensemble(seeds, c.latent_dim, mixture.dim, c.hidden, c.depth).to(device)
    D_net = ensemble([D_SEED_OFFSET + seed for seed in seeds], mixture.dim, 1, c.hidden, c.depth).to(device)
    # one generator per run for its batches, codes and noise: a run's numbers depend on its seed
    # only, not on which other seeds share its ensemble
    streams = [torch.Generator().manual_seed(seed) for seed in seeds]
    D = _InstanceNoise(D_net, streams)
    # Adam's plain form, not the fused kernel: on the CPU the fused kernel's rounding of an element
    # depends on where it sits in the stacked (E, ...) tensor, hence on E
    opt_G = torch.optim.Adam(G.parameters(), lr=c.lr_G, betas=(c.beta1, c.beta2), foreach=False)
    opt_D = torch.optim.Adam(D.parameters(), lr=c.lr_D, betas=(c.beta1, c.beta2), foreach=False)
    loss = _toy_loss(c, scale=E)

    def real() -> torch.Tensor:  # (E, B, dim): every run its own batch
        return torch.stack([mixture.sample(B, g) for g in streams]).to(device)

    def codes() -> torch.Tensor:  # (E, B, latent_dim)
        return torch.stack([torch.randn(B, c.latent_dim, generator=g) for g in streams]).to(device)

    z = torch.randn(N_SAMPLES, c.latent_dim, generator=torch.Generator().manual_seed(EVAL_SEED))
    # one thread on the CPU: the products are too small to share, and where the cores are busy
    # with other work, threads that wait for each other at every operation make a step many
    # times slower (to use more cores, run more seeds per ensemble, or several sweeps, each with
    # its own file, in separate processes)
    pinned = runtime.isolated(threads=1) if device.type == "cpu" else contextlib.nullcontext()
    with pinned:
        for step in range(c.steps):
            fraction = 1.0 - (1.0 - c.decay_to) * step / c.steps
            for opt, lr in ((opt_G, c.lr_G), (opt_D, c.lr_D)):
                for group in opt.param_groups:
                    group["lr"] = lr * fraction
            D.sigma = c.instance_noise * max(0.0, 1.0 - step / (0.5 * c.steps))
            for _ in range(c.k):
                d_step(G, D, opt_D, real(), codes(), loss, r1=c.r1 * E)  # r1 scaled like the losses
            g_step(G, D, opt_G, codes(), loss, x_real=real() if loss.relativistic else None)
        with torch.no_grad():
            x_fake = G(z.to(device).expand(E, -1, -1)).cpu()  # (E, 2500, dim), every run on the same codes
    finite = [
        bool(torch.isfinite(x_fake[e]).all())
        and all(bool(torch.isfinite(p[e]).all()) for p in D_net.parameters())
        for e in range(kept)
    ]
    reports = [mode_report(x_fake[e], mixture) for e in range(kept)]
    return reports, [not ok for ok in finite], x_fake[:kept]


def train_toy(
    mixture: GaussianMixture | str,
    config: ToyConfig,
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
) -> list[ModeReport]:
    """Train ``config`` on ``mixture`` once per seed, all seeds at once, and report each run's modes.

    The runs are the members of one :class:`~gan_tutorial.models.ensemble.MLPEnsemble` for G
    and one for D, trained with :func:`updates.d_step` and :func:`updates.g_step`. Run s starts
    G from seed s and D from seed 1000 + s and draws its batches, codes and instance noise from
    a generator of its own seeded with s; its losses are summed over the runs instead of
    averaged, so its gradients are its own. A run gives the same numbers, to the last bit, alone
    as beside any other seeds (``tests/test_sweep_toy.py`` checks it at chapter 6's budgets on the
    CPU), and nothing global is seeded or drawn from. That takes two precautions, since a GAN's
    training grows a last-bit difference into another run: Adam's plain form rather than its
    fused CPU kernel (whose rounding of an element depends on where it sits in the stacked
    tensor), and a lone seed trained beside a copy of itself (a batch of one product takes
    another routine in the CPU's batched matrix product). Each run is scored with
    :func:`~gan_tutorial.metrics.modes.mode_report` on 2,500 samples from fixed codes (seed 7,
    the same for every run); a run that diverged (NaN weights or samples) reports no
    high-quality sample. On the CPU the ensemble trains on one thread (the products are too
    small to share; the previous setting is restored).
    """
    if not isinstance(config, ToyConfig):
        raise ValueError(f"config must be a ToyConfig, got {type(config).__name__}")
    gm, _ = _mixture(mixture)
    return _train_members(gm, config, _check_seeds(seeds), device)[0]


def toy_samples(
    mixture: GaussianMixture | str,
    config: ToyConfig,
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The samples (len(seeds), 2500, dim) that :func:`train_toy` scores, from the same fixed
    codes: the runs trained again (a seed's numbers do not depend on the seeds beside it, so
    these are exactly the samples behind its report), to look at them."""
    if not isinstance(config, ToyConfig):
        raise ValueError(f"config must be a ToyConfig, got {type(config).__name__}")
    gm, _ = _mixture(mixture)
    return _train_members(gm, config, _check_seeds(seeds), device)[2]
