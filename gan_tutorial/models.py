"""Networks for the chapters. Each returns a plain ``nn.Module``; D outputs logits.

* :func:`toy_mlp` - small fully connected nets for the 1-D and 2-D chapters (1 and 2).
* :func:`mlp_gan` - the fully connected MNIST generator and discriminator (chapter 3).
"""

from __future__ import annotations

import torch
from torch import nn


def toy_mlp(
    in_dim: int, out_dim: int, hidden: int = 64, depth: int = 2, act: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden``; the last layer is linear (no squashing).

    As a generator: ``toy_mlp(latent_dim, data_dim)``, (B, latent_dim) -> (B, data_dim).
    As a discriminator: ``toy_mlp(data_dim, 1)``, (B, data_dim) -> (B, 1) logits.
    """
    if depth < 1 or hidden < 1:
        raise ValueError(f"depth and hidden must be positive, got depth={depth}, hidden={hidden}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------------------
# MLP GAN for MNIST (chapter 3)
# ---------------------------------------------------------------------------------------

#: Flattened MNIST image: 1 x 28 x 28.
MNIST_PIXELS = 784


class MLPGenerator(nn.Module):
    """Fully connected G: (B, latent_dim) -> (B, 1, 28, 28) in [-1, 1].

    latent_dim -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2) between layers and Tanh at
    the end, so outputs share the range of the real images scaled by ``data.load_mnist``.
    ``hidden`` changes the widths.
    """

    def __init__(self, latent_dim: int = 100, hidden: tuple[int, ...] = (256, 512, 1024)) -> None:
        super().__init__()
        if latent_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"latent_dim and hidden widths must be positive, got {latent_dim}, {hidden}")
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [nn.Linear(width, MNIST_PIXELS), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}; a linear generator "
                "takes 2-D codes (the (B, latent_dim, 1, 1) shape belongs to a convolutional one)"
            )
        return self.net(z).view(-1, 1, 28, 28)  # (B, 784) -> (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """Fully connected D: (B, 1, 28, 28) -> (B, 1) logits (no Sigmoid: losses take logits).

    784 -> 1024 -> 512 -> 256 -> 1 with LeakyReLU(0.2) and ``Dropout(dropout)`` after each
    hidden layer (0.3 in the classic recipe, 0 disables it).
    """

    def __init__(self, hidden: tuple[int, ...] = (1024, 512, 256), dropout: float = 0.3) -> None:
        super().__init__()
        if not hidden or min(hidden) < 1 or not 0 <= dropout < 1:
            raise ValueError(f"hidden widths must be positive and 0 <= dropout < 1, got {hidden}, {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]  # (B, 1, 28, 28) -> (B, 784)
        width = MNIST_PIXELS
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def mlp_gan(
    latent_dim: int = 100,
    g_hidden: tuple[int, ...] = (256, 512, 1024),
    d_hidden: tuple[int, ...] = (1024, 512, 256),
    dropout: float = 0.3,
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """The pair ``(G, D)`` of chapter 3."""
    return MLPGenerator(latent_dim, tuple(g_hidden)), MLPDiscriminator(tuple(d_hidden), dropout)


#: Model families the trainer and the command line can build, by name.
MODELS = {"mlp": mlp_gan}
