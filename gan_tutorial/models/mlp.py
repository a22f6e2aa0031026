"""The fully connected MNIST generator and discriminator (chapter 3)."""

from __future__ import annotations

import torch
from torch import nn

#: Flattened MNIST image: 1 x 28 x 28.
MNIST_PIXELS = 784


class MLPGenerator(nn.Module):
    """Fully connected G: (B, latent_dim) -> (B, 1, 28, 28) in [-1, 1].

    latent_dim -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2) between layers and Tanh at
    the end, so outputs share the range of the real images scaled by ``data.load_mnist``.
    ``hidden`` changes the widths. ``batch_norm=True`` puts a ``BatchNorm1d`` after each
    hidden linear layer (whose bias it then replaces): chapter 3's recipe.
    """

    def __init__(
        self, latent_dim: int = 100, hidden: tuple[int, ...] = (256, 512, 1024), batch_norm: bool = False
    ) -> None:
        super().__init__()
        if latent_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"latent_dim and hidden widths must be positive, got {latent_dim}, {hidden}")
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            layers += [nn.BatchNorm1d(h), nn.LeakyReLU(0.2)] if batch_norm else [nn.LeakyReLU(0.2)]
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
    g_batch_norm: bool = False,
) -> tuple[MLPGenerator, MLPDiscriminator]:
    """The pair ``(G, D)`` of chapter 3 (``g_batch_norm``: batch norm in G's hidden layers)."""
    return MLPGenerator(latent_dim, tuple(g_hidden), g_batch_norm), MLPDiscriminator(tuple(d_hidden), dropout)


def mlp_bn_gan(latent_dim: int = 100, dropout: float = 0.3) -> tuple[MLPGenerator, MLPDiscriminator]:
    """Chapter 3's pair with batch norm in G's hidden layers (``mlp_gan(g_batch_norm=True)``)."""
    return mlp_gan(latent_dim, dropout=dropout, g_batch_norm=True)
