r"""The moving average of G's weights (chapter 4), and batch-norm statistics measured for it.

* :class:`EMA` - an exponential moving average of G's weights,
  :math:`\bar\theta \leftarrow \beta \bar\theta + (1 - \beta)\theta` after every update,
  whose samples are usually smoother than the last iterate's (Yazici et al. 2019);
* :func:`recalibrate_batch_norm` - batch-norm statistics measured for the averaged weights
  ("standing statistics", Brock et al. 2019): an average of running means and variances
  that belonged to other weights does not describe what the averaged layers output.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .models import batch_norm_layers, is_conditional


class EMA:
    """An exponential moving average of a module's weights, kept in a copy (``.module``).

    After each :meth:`update`, every floating-point parameter and buffer of the copy moves
    a share ``1 - decay`` of the way to the live module's:
    ``avg <- decay * avg + (1 - decay) * live``. Integer buffers (batch norm's step
    counter) are copied. The average forgets with a half-life of
    ``log(1/2) / log(decay)`` updates (693 for 0.999).


    With ``warmup=True`` the decay of update number t (counted from 1) is
    ``min(decay, (1 + t) / (10 + t))``, TensorFlow's ``num_updates`` rule: the first updates
    forget fast, so a short run's average does not keep the initial weights (after n updates
    of a constant decay their share is still decay^n: 0.37 after 1,000 updates at 0.999).
    """

    def __init__(self, module: nn.Module, decay: float = 0.999, warmup: bool = False) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    def decay_at(self, t: int) -> float:
        """The decay of update number ``t`` (1 for the first)."""
        return min(self.decay, (1 + t) / (10 + t)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, module: nn.Module, t: int | None = None) -> None:
        """Move the average towards ``module``; ``t``, the update's number, sets the warm-up's decay."""
        if self.warmup and t is None:
            raise ValueError("an EMA with warmup=True needs the update's number t")
        decay = self.decay_at(t) if t is not None else self.decay
        avg = self.module.state_dict()
        floats, targets = [], []
        for name, live in module.state_dict().items():
            if live.is_floating_point():
                floats.append(avg[name])
                targets.append(live)
            else:
                avg[name].copy_(live)
        torch._foreach_lerp_(floats, targets, 1 - decay)  # avg + (1 - decay) (live - avg), all at once

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()


#: Seed of the codes batch norms are recalibrated on: none of the seeds (0, 1, 2, ...) that samples
#: are scored with, so a score is never measured on the very codes the statistics were fitted to.
RECALIBRATION_SEED = 10_007


@torch.no_grad()
def recalibrate_batch_norm(
    G: nn.Module,
    n: int = 4096,
    batch_size: int = 512,
    seed: int = RECALIBRATION_SEED,
    device: str | torch.device | None = None,
) -> nn.Module:
    """A copy of generator ``G`` (with a ``latent_dim`` attribute) whose batch norms' running
    statistics are the plain averages over ``n`` fresh codes z ~ N(0, I), in eval mode.

    In eval mode a batch norm normalises with its running mean and variance. For the moving
    average of G's weights those buffers are averages too, of statistics measured under
    earlier weights, and can be far from what the averaged layers now output; measuring them
    again under the averaged weights fixes that (BigGAN's "standing statistics"). Codes come
    from a generator of their own: the global random state is not touched. ``G`` is unchanged;
    a ``G`` without batch norm is returned as a copy, unchanged.
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be positive, got {n}, {batch_size}")
    G = copy.deepcopy(G)
    norms = batch_norm_layers(G)
    if norms:
        if device is None:
            device = next(G.parameters()).device
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # None: a cumulative (equal-weight) average over the batches
        G.train()
        gen = torch.Generator().manual_seed(seed)
        conditional = is_conditional(G)
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z = torch.randn(b, G.latent_dim, generator=gen).to(device)
            if conditional:  # uniform digits: the mix a sampler asks for on average
                G(z, torch.randint(G.num_classes, (b,), generator=gen).to(device))
            else:
                G(z)
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum  # as before, should anyone train the copy
    return G.eval()
