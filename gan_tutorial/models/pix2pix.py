"""The image-to-image networks of chapter 8 (Isola et al. 2017, "pix2pix"): a U-Net generator that
maps a conditioning image to an output image, and a patch discriminator that gives one logit per
patch of an (input, output) pair. Neither is a z -> image model, so neither is in ``MODELS``.

* :class:`UNetGenerator` (Ronneberger et al. 2015's U-Net, shrunk to 28 x 28): an encoder
  28 -> 14 -> 7 -> 3, a decoder back to 28, and skip connections that concatenate each encoder
  map to the decoder map of the same size, so that what the input already shows (the upper half
  of a digit) need not squeeze through the 3 x 3 bottleneck. There is no z: as in pix2pix, the
  only noise is dropout in the decoder, kept on at test time when samples are asked for. Batch
  norm follows every convolution but the first, the innermost and the last, as in the paper's
  U-Net; pix2pix samples in ``train()`` mode, so at test time it too normalises with the test
  batch's statistics. Without batch norm the decoder's activations grow unchecked and L1 saturates the
  Tanh at -1 (a blank lower half), where no gradient gets through (tested).
* :class:`PatchDiscriminator`: the conditioning image and a candidate output, concatenated as
  channels, -> (B, 1, 7, 7) logits, one per overlapping 18 x 18 patch (the receptive field of
  two 4 x 4 stride-2 convolutions and one 3 x 3 convolution: 1 + 3 + 3 x 2 + 2 x 4 = 18 pixels).
  Every loss of :mod:`gan_tutorial.losses` takes these logits as they are: its batch means become
  means over images and patches.
"""

from __future__ import annotations

import torch
from torch import nn

from .dcgan import dcgan_init_


def _check_pair(x: torch.Tensor, channels: int, who: str) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != (channels, 28, 28):
        raise ValueError(f"{who} takes images of shape (B, {channels}, 28, 28), got {tuple(x.shape)}")


class UNetGenerator(nn.Module):
    """U-Net G: a conditioning image (B, in_channels, 28, 28) -> an image (B, 1, 28, 28) in [-1, 1].

    * ``down1`` ``Conv2d(in, ngf, 4, 2, 1)``: 28 -> 14, LeakyReLU(0.2);
    * ``down2`` ``Conv2d(ngf, 2 ngf, 4, 2, 1)``: 14 -> 7, BatchNorm, LeakyReLU(0.2);
    * ``down3`` ``Conv2d(2 ngf, 4 ngf, 3, 2, 0)``: 7 -> 3, ReLU (the bottleneck);
    * ``up3`` ``ConvTranspose2d(4 ngf, 2 ngf, 3, 2, 0)``: 3 -> 7, BatchNorm, Dropout, ReLU;
    * ``up2`` on [up3, down2] (skip): ``ConvTranspose2d(4 ngf, ngf, 4, 2, 1)``: 7 -> 14, BatchNorm,
      Dropout, ReLU;
    * ``up1`` on [up2, down1] (skip): ``ConvTranspose2d(2 ngf, 1, 4, 2, 1)``: 14 -> 28, Tanh.

    ``dropout`` (0.5 by default, 0 for a deterministic G) is the noise source. Weights start
    from :func:`~gan_tutorial.models.dcgan.dcgan_init_`.
    """

    def __init__(self, in_channels: int = 1, ngf: int = 32, dropout: float = 0.5) -> None:
        super().__init__()
        if in_channels < 1 or ngf < 1 or not 0 <= dropout < 1:
            raise ValueError(
                "in_channels and ngf must be positive and 0 <= dropout < 1, "
                f"got {in_channels}, {ngf}, {dropout}"
            )
        self.in_channels = in_channels
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.down1 = nn.Sequential(
            nn.Conv2d(in_channels, ngf, 4, 2, 1), nn.LeakyReLU(0.2)
        )  # (B, ngf, 14, 14)
        self.down2 = nn.Sequential(
            nn.Conv2d(ngf, 2 * ngf, 4, 2, 1), nn.BatchNorm2d(2 * ngf), nn.LeakyReLU(0.2)
        )  # (B, 2ngf, 7, 7)
        self.down3 = nn.Sequential(nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 0), nn.ReLU())  # (B, 4ngf, 3, 3)
        self.up3 = nn.Sequential(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 0), nn.BatchNorm2d(2 * ngf), *drop, nn.ReLU()
        )  # (B, 2ngf, 7, 7)
        self.up2 = nn.Sequential(
            nn.ConvTranspose2d(4 * ngf, ngf, 4, 2, 1), nn.BatchNorm2d(ngf), *drop, nn.ReLU()
        )  # (B, ngf, 14, 14)
        self.up1 = nn.Sequential(nn.ConvTranspose2d(2 * ngf, 1, 4, 2, 1), nn.Tanh())  # (B, 1, 28, 28)
        dcgan_init_(self)

    def forward(self, x_cond: torch.Tensor) -> torch.Tensor:
        _check_pair(x_cond, self.in_channels, "the U-Net G")
        d1 = self.down1(x_cond)
        d2 = self.down2(d1)
        u3 = self.up3(self.down3(d2))
        u2 = self.up2(torch.cat([u3, d2], dim=1))  # skip: the 7 x 7 encoder map joins the decoder's
        return self.up1(torch.cat([u2, d1], dim=1))  # skip at 14 x 14


class PatchDiscriminator(nn.Module):
    """Patch D: the pair (conditioning image (B, cond_channels, 28, 28), image (B, 1, 28, 28)) ->
    (B, 1, 7, 7) logits, one per 18 x 18 patch (no Sigmoid: losses take logits).

    * ``Conv2d(cond_channels + 1, ndf, 4, 2, 1)``: 28 -> 14, LeakyReLU(0.2);
    * ``Conv2d(ndf, 2 ndf, 4, 2, 1)``: 14 -> 7, LeakyReLU(0.2);
    * ``Conv2d(2 ndf, 1, 3, 1, 1)``: 7 -> 7, one logit per position.
    """

    def __init__(self, cond_channels: int = 1, ndf: int = 32) -> None:
        super().__init__()
        if cond_channels < 1 or ndf < 1:
            raise ValueError(f"cond_channels and ndf must be positive, got {cond_channels}, {ndf}")
        self.cond_channels = cond_channels
        self.net = nn.Sequential(
            nn.Conv2d(cond_channels + 1, ndf, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, ndf, 14, 14)
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, 2ndf, 7, 7)
            nn.Conv2d(2 * ndf, 1, 3, 1, 1),  # (B, 1, 7, 7) logits
        )  # fmt: skip
        dcgan_init_(self)

    def forward(self, x_cond: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        _check_pair(x_cond, self.cond_channels, "the patch D's condition")
        _check_pair(x, 1, "the patch D")
        if x.shape[0] != x_cond.shape[0]:
            raise ValueError(
                f"the patch D needs one condition per image, got {x_cond.shape[0]} and {x.shape[0]}"
            )
        return self.net(torch.cat([x_cond, x], dim=1))  # conditioned by concatenation


def pix2pix(
    in_channels: int = 1, ngf: int = 32, ndf: int = 32, dropout: float = 0.5
) -> tuple[UNetGenerator, PatchDiscriminator]:
    """The pair ``(G, D)`` of chapter 8's image-to-image task: a U-Net G and a patch D that sees
    G's input beside its output."""
    return UNetGenerator(in_channels, ngf, dropout), PatchDiscriminator(in_channels, ndf)
