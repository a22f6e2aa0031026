r"""Class-conditional MNIST networks (chapter 7): G(z, y) and D(x, y) for digits y in 0..9.

Two ways to give D the label, on chapter 4's recipe pair (G with batch norm, ``ngf`` 24; D
without batch norm, one 3 x 3 convolution deeper):

* **concatenation** (Mirza & Osindero 2014): y joins the input. G takes ``[z, e(y)]``, z
  followed by a learned embedding of y; D takes the image with 10 more channels, the one-hot
  code of y spread over 28 x 28 planes (:func:`label_planes`), so its first convolution sees
  pixels and label together;
* **projection** (Miyato & Koyama 2018): D computes features phi(x) of the image alone and
  adds an inner product with an embedding of y to its unconditional logit,

  .. math:: D(x, y) = \psi(\phi(x)) + \langle v_y, \phi(x) \rangle ,

  here with phi(x) the (2 ndf x 7 x 7) activations before the last layer, flattened, and
  psi that last layer (a 7 x 7 convolution over them, i.e. a linear map): the unconditional
  DCGAN D plus one class-specific linear term. Its G is the same as concatenation's.

A conditional network has a ``num_classes`` attribute (:func:`is_conditional`); the trainer,
:func:`gan_tutorial.latent.generate` and the command line read it to pass labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import DCGANDiscriminator, DCGANGenerator

#: Digits 0..9.
NUM_CLASSES = 10


def is_conditional(module: nn.Module) -> bool:
    """Whether ``module`` takes a label as its second input (it has a ``num_classes``)."""
    return getattr(module, "num_classes", None) is not None


def check_labels(
    y: object, n: int | None = None, num_classes: int = NUM_CLASSES, what: str = "labels"
) -> None:
    """``ValueError`` unless ``y`` is an integer tensor (n,) of classes in 0..num_classes-1."""
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool:
        kind = type(y).__name__
        if isinstance(y, torch.Tensor):
            kind = f"{y.dtype} tensor of shape {tuple(y.shape)}"
        raise ValueError(f"{what} must be a 1-D integer tensor of digits (e.g. torch.long), got a {kind}")
    if n is not None and len(y) != n:
        raise ValueError(f"{what} must have one entry per image: {n} images, {len(y)} labels")
    # the range needs the values on the host: skipped while torch.compile traces (a graph break)
    if len(y) and not torch.compiler.is_compiling() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"{what} must be classes 0 to {num_classes - 1}, got values from {int(y.min())} to {int(y.max())}"
        )


def check_training_labels(model: str, num_classes: int | None, labels: torch.Tensor | None, n: int) -> None:
    """Training labels exactly when ``model`` is conditional (its G has ``num_classes``; ``None``:
    unconditional), one class per image (the trainer's check, chapter 7)."""
    conditional = num_classes is not None
    if conditional and labels is None:
        raise ValueError(
            f"model {model!r} is conditional and trains on images with their labels: give "
            "Trainer(config, (x, y)), e.g. data.load_mnist(labels=True)"
        )
    if not conditional and labels is not None:
        raise ValueError(
            f"model {model!r} is unconditional and takes no labels: pass the images alone, "
            "or choose a conditional model (cgan-concat, cgan-projection)"
        )
    if labels is not None:
        check_labels(labels, n, num_classes, "training labels")


def label_planes(y: torch.Tensor, num_classes: int = NUM_CLASSES, size: int = 28) -> torch.Tensor:
    """The one-hot code of labels y (B,) as (B, num_classes, size, size) constant planes:
    plane k is all ones for images of class k and all zeros otherwise."""
    onehot = F.one_hot(y, num_classes).float()  # (B, num_classes)
    return onehot[:, :, None, None].expand(-1, -1, size, size)


class ConditionalGenerator(nn.Module):
    """G(z, y): (B, latent_dim) codes and (B,) digits -> (B, 1, 28, 28) in [-1, 1].

    The label's embedding e(y) (``embed_dim`` numbers, learned) is concatenated to z, and the
    pair goes through chapter 4's DCGAN generator with ``latent_dim + embed_dim`` inputs.
    ``latent_dim`` is the size of z alone (what samplers draw).
    """

    def __init__(
        self, latent_dim: int = 100, ngf: int = 24, embed_dim: int = 16, num_classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_classes < 2:
            raise ValueError(f"embed_dim must be >= 1 and num_classes >= 2, got {embed_dim}, {num_classes}")
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)  # (num_classes, embed_dim), N(0, 1) at start
        self.body = DCGANGenerator(latent_dim + embed_dim, ngf, batch_norm=True)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        check_labels(y, len(z), self.num_classes)
        return self.body(torch.cat([z, self.embed(y)], dim=1))  # (B, latent_dim + embed_dim) -> images


class ConcatDiscriminator(nn.Module):
    """D(x, y) by concatenation: the image (B, 1, 28, 28) and the label planes (B, 10, 28, 28)
    joined into (B, 11, 28, 28) and scored by a DCGAN discriminator; (B, 1) logits."""

    def __init__(
        self, ndf: int = 32, dropout: float = 0.0, extra_layers: int = 1, num_classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = DCGANDiscriminator(ndf, dropout, False, extra_layers, in_channels=1 + num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"D takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        check_labels(y, len(x), self.num_classes)
        planes = label_planes(y, self.num_classes).to(x.dtype)
        return self.body(torch.cat([x, planes], dim=1))  # (B, 11, 28, 28) -> (B, 1)


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + <v_y, phi(x)> (Miyato & Koyama 2018): (B, 1) logits.

    ``body`` is the unconditional DCGAN discriminator; phi(x) (:meth:`features`) is its
    activations before the last layer, (B, 2 ndf * 49), psi its last layer, and v_y a learned
    row of ``embed`` per class (initialised N(0, 0.02), as the DCGAN's weights)."""

    def __init__(
        self, ndf: int = 32, dropout: float = 0.0, extra_layers: int = 1, num_classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = DCGANDiscriminator(ndf, dropout, False, extra_layers)
        self.embed = nn.Embedding(num_classes, 2 * ndf * 7 * 7)  # v_y, one row per class
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def _activations(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"D takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.body.net[:-2](x)  # (B, 2 ndf, 7, 7)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x): (B, 1, 28, 28) -> (B, 2 ndf * 49), the input of D's last layer, flattened."""
        return self._activations(x).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self._activations(x)
        check_labels(y, len(x), self.num_classes)
        unconditional = self.body.net[-2:](h)  # psi(phi(x)): (B, 1)
        return unconditional + (self.embed(y) * h.flatten(1)).sum(dim=1, keepdim=True)


def cgan_concat(
    latent_dim: int = 100, ngf: int = 24, ndf: int = 32, dropout: float = 0.0, embed_dim: int = 16
) -> tuple[ConditionalGenerator, ConcatDiscriminator]:
    """Conditioning by concatenation (model ``"cgan-concat"``): chapter 4's recipe pair with the
    label joined to z in G and to the image in D."""
    return ConditionalGenerator(latent_dim, ngf, embed_dim), ConcatDiscriminator(ndf, dropout)


def cgan_projection(
    latent_dim: int = 100, ngf: int = 24, ndf: int = 32, dropout: float = 0.0, embed_dim: int = 16
) -> tuple[ConditionalGenerator, ProjectionDiscriminator]:
    """Conditioning by a projection discriminator (model ``"cgan-projection"``): the same G as
    :func:`cgan_concat`, D the unconditional DCGAN D plus the projection term."""
    return ConditionalGenerator(latent_dim, ngf, embed_dim), ProjectionDiscriminator(ndf, dropout)
