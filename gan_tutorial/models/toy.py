"""Small fully connected networks for the 1-D and 2-D chapters (1 and 2)."""

from __future__ import annotations

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
