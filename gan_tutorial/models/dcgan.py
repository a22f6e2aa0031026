"""The convolutional MNIST generator and discriminator (chapter 4), and the variants chapter 4
measures: without batch norm, with batch norm in G only, and the recipe's narrower G and deeper D."""

from __future__ import annotations

import torch
from torch import nn


def dcgan_init_(module: nn.Module) -> nn.Module:
    """Radford et al. 2016's initialisation, in place: every conv weight ~ N(0, 0.02),
    batch-norm scales ~ N(1, 0.02) and every bias 0. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


class DCGANGenerator(nn.Module):
    """Convolutional G: (B, latent_dim) or (B, latent_dim, 1, 1) -> (B, 1, 28, 28) in [-1, 1].

    A transposed convolution with kernel k, stride s and padding p maps a side of n pixels
    to (n - 1) s - 2 p + k. So

    * ``ConvTranspose2d(latent_dim, 4 ngf, 7, 1, 0)``: 1 -> 7, then BatchNorm + ReLU;
    * ``ConvTranspose2d(4 ngf, 2 ngf, 4, 2, 1)``: 7 -> 14, then BatchNorm + ReLU;
    * ``ConvTranspose2d(2 ngf, 1, 4, 2, 1)``: 14 -> 28, then Tanh (no batch norm at the output).

    No bias before a batch norm (the norm's shift replaces it); ``batch_norm=False``
    drops the norms and restores the biases. Weights start from :func:`dcgan_init_`.
    """

    def __init__(self, latent_dim: int = 100, ngf: int = 32, batch_norm: bool = True) -> None:
        super().__init__()
        if latent_dim < 1 or ngf < 1:
            raise ValueError(f"latent_dim and ngf must be positive, got {latent_dim}, {ngf}")
        self.latent_dim = latent_dim
        bn = (lambda c: [nn.BatchNorm2d(c)]) if batch_norm else (lambda c: [])
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 4 * ngf, 7, 1, 0, bias=not batch_norm),  # (B, 4ngf, 7, 7)
            *bn(4 * ngf), nn.ReLU(),
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 4, 2, 1, bias=not batch_norm),  # (B, 2ngf, 14, 14)
            *bn(2 * ngf), nn.ReLU(),
            nn.ConvTranspose2d(2 * ngf, 1, 4, 2, 1),  # (B, 1, 28, 28)
            nn.Tanh(),
        )  # fmt: skip
        dcgan_init_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 2 and z.shape[1] == self.latent_dim:
            z = z[:, :, None, None]  # (B, latent_dim) -> (B, latent_dim, 1, 1): a 1 x 1 "image"
        if z.ndim != 4 or tuple(z.shape[1:]) != (self.latent_dim, 1, 1):
            raise ValueError(
                f"z must have shape (B, {self.latent_dim}) or (B, {self.latent_dim}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """Convolutional D: (B, 1, 28, 28) -> (B, 1) logits (no Sigmoid: losses take logits).

    A convolution maps a side of n pixels to floor((n + 2 p - k) / s) + 1:

    * ``Conv2d(1, ndf, 4, 2, 1)``: 28 -> 14, LeakyReLU(0.2) (no batch norm at the input);
    * ``Conv2d(ndf, 2 ndf, 4, 2, 1)``: 14 -> 7, BatchNorm + LeakyReLU(0.2);
    * ``Conv2d(2 ndf, 1, 7, 1, 0)``: 7 -> 1, the logit.

    Strided convolutions replace pooling. ``dropout`` > 0 adds ``Dropout`` after each
    LeakyReLU (0 in the DCGAN recipes). ``extra_layers`` > 0 inserts that many
    ``Conv2d(2 ndf, 2 ndf, 3, 1, 1)`` (7 -> 7, each with its batch norm if any, and
    LeakyReLU) before the logit: a deeper D, for chapter 4's recipe. ``in_channels`` > 1 takes
    images with extra planes (chapter 7's label planes). Weights start from :func:`dcgan_init_`.
    """

    def __init__(
        self,
        ndf: int = 32,
        dropout: float = 0.0,
        batch_norm: bool = True,
        extra_layers: int = 0,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if ndf < 1 or not 0 <= dropout < 1 or extra_layers < 0 or in_channels < 1:
            raise ValueError(
                "ndf and in_channels must be positive, 0 <= dropout < 1 and extra_layers >= 0, "
                f"got {ndf}, {in_channels}, {dropout}, {extra_layers}"
            )
        self.in_channels = in_channels
        drop = (lambda: [nn.Dropout(dropout)]) if dropout > 0 else (lambda: [])
        bn = (lambda: [nn.BatchNorm2d(2 * ndf)]) if batch_norm else (lambda: [])
        extra: list[nn.Module] = []
        for _ in range(extra_layers):
            extra += [
                nn.Conv2d(2 * ndf, 2 * ndf, 3, 1, 1, bias=not batch_norm),
                *bn(),
                nn.LeakyReLU(0.2),
                *drop(),
            ]
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 4, 2, 1),  # (B, ndf, 14, 14)
            nn.LeakyReLU(0.2), *drop(),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=not batch_norm),  # (B, 2ndf, 7, 7)
            *bn(), nn.LeakyReLU(0.2), *drop(),
            *extra,  # (B, 2ndf, 7, 7)
            nn.Conv2d(2 * ndf, 1, 7, 1, 0),  # (B, 1, 1, 1)
            nn.Flatten(),  # (B, 1) logits
        )  # fmt: skip
        dcgan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, 28, 28):
            raise ValueError(f"D takes images of shape (B, {self.in_channels}, 28, 28), got {tuple(x.shape)}")
        return self.net(x)


def dcgan(
    latent_dim: int = 100, ngf: int = 32, ndf: int = 32, dropout: float = 0.0, batch_norm: bool = True
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The pair ``(G, D)`` of chapter 4 (``ngf``, ``ndf``: base widths of G and D), with batch
    norm in both, as Radford et al.'s guidelines have it (model ``"dcgan"``).

    ``batch_norm=False`` removes every batch norm (and gives those convolutions a bias):
    the ablation of chapter 4 (model ``"dcgan-no-bn"``).
    """
    return DCGANGenerator(latent_dim, ngf, batch_norm), DCGANDiscriminator(ndf, dropout, batch_norm)


def dcgan_no_bn(
    latent_dim: int = 100, ngf: int = 32, ndf: int = 32, dropout: float = 0.0
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The DCGAN with no batch norm anywhere (model ``"dcgan-no-bn"``): chapter 4's ablation."""
    return dcgan(latent_dim, ngf, ndf, dropout, batch_norm=False)


def dcgan_bn_g(
    latent_dim: int = 100, ngf: int = 32, ndf: int = 32, dropout: float = 0.0
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The DCGAN with batch norm in G only (model ``"dcgan-bn-g"``): the R1 penalty of chapter 4
    needs each of D's logits to depend on its own image alone, and such a D can also take the real
    and the fake images in one pass."""
    G = DCGANGenerator(latent_dim, ngf, batch_norm=True)
    return G, DCGANDiscriminator(ndf, dropout, batch_norm=False)


def dcgan_bn_g_deep_d(
    latent_dim: int = 100, ngf: int = 24, ndf: int = 32, dropout: float = 0.0, extra_layers: int = 1
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """Chapter 4's recipe pair (model ``"dcgan-bn-g-deep-d"``): :func:`dcgan_bn_g` with a narrower
    G (``ngf`` 24) and a deeper D (``extra_layers`` 3 x 3 convolutions at 7 x 7 before the logit):
    arithmetic moved from G to D, for about the same time per step (chapter 4, section 7)."""
    G = DCGANGenerator(latent_dim, ngf, batch_norm=True)
    return G, DCGANDiscriminator(ndf, dropout, batch_norm=False, extra_layers=extra_layers)
