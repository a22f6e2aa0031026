"""The set-ups of the bug gallery's runs: data, players and optimisers (chapter 6).

Two set-ups. The 2-D one, :func:`ring_setup`: the ring of eight Gaussians (:func:`data.ring8`)
with :func:`models.toy_mlp` players, configured by :data:`TOY` (a :class:`config.ToyConfig`), a
second or two per run on a CPU. The MNIST one, :func:`image_setup`, for the two bugs about images
(``data_range`` and ``noise_4d_linear``): MNIST test images with a small
:class:`models.MLPGenerator` and :class:`models.MLPDiscriminator`. The pixel range and the codes'
shape are properties of the image pipeline, and a 2-D stand-in would have to pretend to be one
(a Tanh G covers a ring in [0, 1] without trouble; what goes wrong with images in [0, 1] is that
background pixels, the bulk of every image, sit at Tanh's midpoint and show grey where the rest
of the package expects -1).

Each set-up draws its batches and codes from a generator of its own, seeded by the run's seed;
the players' weights come from PyTorch's global stream, which the run has seeded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .. import data
from ..config import ToyConfig
from ..models import MLPDiscriminator, MLPGenerator, toy_mlp

#: The 2-D runs: G and D are toy_mlp nets (2 hidden layers of 64), Adam with lr 1e-3 for both and
#: betas (0.5, 0.999) (beta1 = 0.5, Radford et al. 2016), 128 samples per step, codes z in 2-D.
TOY = ToyConfig(batch_size=128, depth=2)
#: Size of the codes z of the MNIST set-up (the MLPGenerator's default).
IMAGE_LATENT = 100
#: Images per step in the MNIST set-up (its optimisers are the 2-D runs').
IMAGE_BATCH = 64


@dataclass
class Setup:
    """Players and samplers of one run: ``real()`` gives a batch of data, ``codes()`` a batch of z."""

    G: nn.Module
    D: nn.Module
    real: Callable[[], torch.Tensor]
    codes: Callable[[], torch.Tensor]


def toy_G() -> nn.Sequential:
    """The 2-D runs' G: (B, latent_dim) codes -> (B, 2) points."""
    return toy_mlp(TOY.latent_dim, 2, TOY.hidden, TOY.depth)


def toy_D() -> nn.Sequential:
    """The 2-D runs' D: (B, 2) points -> (B, 1) logits."""
    return toy_mlp(2, 1, TOY.hidden, TOY.depth)


def ring_setup(seed: int, G: nn.Module | None = None, D: nn.Module | None = None) -> Setup:
    """The 2-D set-up: batches of :func:`data.ring8`, codes N(0, I), and G and D unless given
    (:func:`toy_G` and :func:`toy_D`, drawn in that order from the global stream)."""
    ring = data.ring8()
    gen = torch.Generator().manual_seed(seed)
    G = toy_G() if G is None else G
    D = toy_D() if D is None else D
    return Setup(
        G,
        D,
        lambda: ring.sample(TOY.batch_size, gen),  # (B, 2)
        lambda: torch.randn(TOY.batch_size, TOY.latent_dim, generator=gen),  # (B, latent_dim)
    )


def mnist_pixels() -> torch.Tensor:
    """The 10,000 MNIST test images as raw uint8 pixels, shape (N, 1, 28, 28)."""
    from torchvision.datasets import MNIST  # imported where MNIST is read, as data.load_mnist does

    raw = data.ensure_mnist()
    return MNIST(str(raw.parent.parent), train=False, download=False).data.unsqueeze(1)


def image_setup(seed: int, x: torch.Tensor) -> Setup:
    """The MNIST set-up on images ``x``: a small MLP G (Tanh output) and D, codes (B, 100)."""
    gen = torch.Generator().manual_seed(seed)
    G = MLPGenerator(IMAGE_LATENT, hidden=(128,))
    D = MLPDiscriminator(hidden=(128,), dropout=0.0)
    return Setup(
        G,
        D,
        lambda: x[torch.randint(len(x), (IMAGE_BATCH,), generator=gen)],  # (B, 1, 28, 28)
        lambda: torch.randn(IMAGE_BATCH, IMAGE_LATENT, generator=gen),  # (B, 100)
    )


def optimisers(
    G: nn.Module,
    D: nn.Module,
    lr_G: float = TOY.lr_G,
    lr_D: float = TOY.lr_D,
    betas: tuple[float, float] = (TOY.beta1, TOY.beta2),
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """``(opt_G, opt_D)``: Adam on each player's own parameters, by default with :data:`TOY`'s settings."""
    return torch.optim.Adam(G.parameters(), lr=lr_G, betas=betas), torch.optim.Adam(
        D.parameters(), lr=lr_D, betas=betas
    )
