"""Networks for the chapters. Each returns a plain ``nn.Module``; D outputs logits.

* :func:`toy_mlp` - small fully connected nets for the 1-D and 2-D chapters (1 and 2).
* :func:`mlp_gan` - the fully connected MNIST generator and discriminator (chapter 3).
* :func:`dcgan` - the convolutional MNIST generator and discriminator (chapter 4).
"""

from __future__ import annotations

import torch
from torch import nn


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch norm layer inside ``module`` (1-D, 2-D or 3-D), in ``modules()`` order."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


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


#: Model families the trainer and the command line can build, by name.
MODELS = {"mlp": mlp_gan, "mlp-bn": mlp_bn_gan}


# ---------------------------------------------------------------------------------------
# DCGAN for 28 x 28 MNIST (chapter 4)
# ---------------------------------------------------------------------------------------


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
    LeakyReLU (0 in the DCGAN recipe). ``extra_layers`` > 0 inserts that many
    ``Conv2d(2 ndf, 2 ndf, 3, 1, 1)`` (7 -> 7, each with its batch norm if any, and
    LeakyReLU) before the logit: a deeper D, for chapter 4's recipe. Weights start from
    :func:`dcgan_init_`.
    """

    def __init__(
        self, ndf: int = 32, dropout: float = 0.0, batch_norm: bool = True, extra_layers: int = 0
    ) -> None:
        super().__init__()
        if ndf < 1 or not 0 <= dropout < 1 or extra_layers < 0:
            raise ValueError(
                "ndf must be positive, 0 <= dropout < 1 and extra_layers >= 0, "
                f"got {ndf}, {dropout}, {extra_layers}"
            )
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
            nn.Conv2d(1, ndf, 4, 2, 1),  # (B, ndf, 14, 14)
            nn.LeakyReLU(0.2), *drop(),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=not batch_norm),  # (B, 2ndf, 7, 7)
            *bn(), nn.LeakyReLU(0.2), *drop(),
            *extra,  # (B, 2ndf, 7, 7)
            nn.Conv2d(2 * ndf, 1, 7, 1, 0),  # (B, 1, 1, 1)
            nn.Flatten(),  # (B, 1) logits
        )  # fmt: skip
        dcgan_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"D takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.net(x)


def dcgan(
    latent_dim: int = 100, ngf: int = 32, ndf: int = 32, dropout: float = 0.0, batch_norm: bool = True
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The pair ``(G, D)`` of chapter 4 (``ngf``, ``ndf``: base widths of G and D).

    ``batch_norm=False`` removes every batch norm (and gives those convolutions a bias):
    the ablation of chapter 4.
    """
    return DCGANGenerator(latent_dim, ngf, batch_norm), DCGANDiscriminator(ndf, dropout, batch_norm)


def dcgan_d_no_bn(
    latent_dim: int = 100, ngf: int = 32, ndf: int = 32, dropout: float = 0.0
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """The DCGAN with batch norm in G only: chapter 4's recipe, whose R1 penalty needs each of
    D's logits to depend on its own image alone (and whose D then runs real and fake images
    in one pass)."""
    G = DCGANGenerator(latent_dim, ngf, batch_norm=True)
    return G, DCGANDiscriminator(ndf, dropout, batch_norm=False)


def dcgan_deep_d(
    latent_dim: int = 100, ngf: int = 24, ndf: int = 32, dropout: float = 0.0, extra_layers: int = 1
) -> tuple[DCGANGenerator, DCGANDiscriminator]:
    """Chapter 4's recipe pair: :func:`dcgan_d_no_bn` with a narrower G (``ngf`` 24: G is most of
    a step's arithmetic) and a deeper D (``extra_layers`` 3 x 3 convolutions at 7 x 7, which
    cost little), so that D is a sharper critic for about the same time per step."""
    G = DCGANGenerator(latent_dim, ngf, batch_norm=True)
    return G, DCGANDiscriminator(ndf, dropout, batch_norm=False, extra_layers=extra_layers)


MODELS["dcgan"] = dcgan
MODELS["dcgan-d-no-bn"] = dcgan_d_no_bn
MODELS["dcgan-deep-d"] = dcgan_deep_d
