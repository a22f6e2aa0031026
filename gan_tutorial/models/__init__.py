"""Networks for the chapters, one module per chapter's family; every D outputs logits.

* ``toy``         - :func:`toy_mlp`, small fully connected nets (chapters 1 and 2);
* ``ensemble``    - many toy nets in one module, trained at once as an ensemble (chapters 2 and 6);
* ``mlp``         - the fully connected MNIST G and D (chapter 3);
* ``dcgan``       - the convolutional MNIST G and D and their variants (chapter 4);
* ``conditional`` - G(z, y) and D(x, y), asked for a digit (chapter 7);
* ``pix2pix``     - a U-Net G from image to image and a patch D (chapter 8; not in :data:`MODELS`).

The trainer and the command line build a pair ``(G, D)`` by name from :data:`MODELS`, a
read-only table: a chapter that wants a variant for one run passes the family's options
instead of adding a name, ``build("dcgan", batch_norm=False)`` or
``TrainConfig(model="dcgan", model_args={"batch_norm": False})``, and the options travel
with the run's checkpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import nn

from .conditional import (
    NUM_CLASSES,
    ConcatDiscriminator,
    ConditionalGenerator,
    ProjectionDiscriminator,
    cgan_concat,
    cgan_projection,
    check_labels,
    check_training_labels,
    is_conditional,
    label_planes,
)
from .dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan,
    dcgan_bn_g,
    dcgan_bn_g_deep_d,
    dcgan_init_,
    dcgan_no_bn,
)
from .mlp import MNIST_PIXELS, MLPDiscriminator, MLPGenerator, mlp_bn_gan, mlp_gan
from .pix2pix import PatchDiscriminator, UNetGenerator, pix2pix
from .toy import toy_mlp

Factory = Callable[..., tuple[nn.Module, nn.Module]]

#: Model families by name: each factory takes ``latent_dim`` and ``dropout`` (D's) and options of
#: its own, and returns ``(G, D)``. Read-only: see the module docstring for one-run variants.
MODELS: Mapping[str, Factory] = MappingProxyType(
    {
        "mlp": mlp_gan,  # chapter 3: the articles' MLP
        "mlp-bn": mlp_bn_gan,  # chapter 3's recipe: batch norm in G's hidden layers
        "dcgan": dcgan,  # chapter 4: Radford et al.'s guidelines, batch norm in G and D
        "dcgan-no-bn": dcgan_no_bn,  # no batch norm anywhere (chapter 4's ablation)
        "dcgan-bn-g": dcgan_bn_g,  # batch norm in G only (a D that R1 can penalise)
        "dcgan-bn-g-deep-d": dcgan_bn_g_deep_d,  # the same, G narrower and D one layer deeper
        "cgan-concat": cgan_concat,  # chapter 7: the label joined to z and to the image
        "cgan-projection": cgan_projection,  # chapter 7: a projection discriminator
    }
)

#: Names used by version 0.1, still accepted (checkpoints written then store them).
ALIASES: Mapping[str, str] = MappingProxyType(
    {"dcgan-d-no-bn": "dcgan-bn-g", "dcgan-deep-d": "dcgan-bn-g-deep-d"}
)


def resolve(name: str) -> str:
    """The registered name for ``name`` (an alias maps to its new name); ``ValueError`` if unknown."""
    name = ALIASES.get(name, name)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return name


def options(name: str) -> dict[str, Any]:
    """The options family ``name`` takes besides ``latent_dim`` and ``dropout``, with their defaults."""
    params = inspect.signature(MODELS[resolve(name)]).parameters
    return {k: p.default for k, p in params.items() if k not in ("latent_dim", "dropout")}


def build(
    name: str, latent_dim: int = 100, dropout: float = 0.0, **model_args: Any
) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` of family ``name`` (a key of :data:`MODELS`), with ``model_args`` passed on.

    An option the family does not take is a ``ValueError`` that lists the ones it does.
    """
    name = resolve(name)
    check_options(name, model_args)
    return MODELS[name](latent_dim=latent_dim, dropout=dropout, **model_args)


def check_options(name: str, model_args: dict[str, Any]) -> None:
    """A ``ValueError`` that lists family ``name``'s options if ``model_args`` holds one it does not take."""
    known = options(name)
    unknown = sorted(set(model_args) - set(known))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
        raise ValueError(
            f"model {resolve(name)!r} takes no option {', '.join(unknown)}; its options: {listed}"
        )


def spectral_norm_(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every convolution and linear layer of
    ``module``, in place, with ``torch.nn.utils.parametrizations.spectral_norm``; returns ``module``.

    Each weight W is used as W / sigma(W), sigma the largest singular value of W reshaped to a
    matrix (out_channels, in_channels x kernel), estimated by power iteration: one step per
    forward pass in training mode, the vectors kept between passes. For a convolution that is
    a bound on its operator norm, not the norm itself (Miyato et al.'s choice too). Batch norm
    layers are left as they are. Apply it before moving the module to a device or an optimiser
    sees its parameters: the layers' ``weight`` becomes a computed attribute and the trained
    tensor is ``parametrizations.weight.original``."""
    from torch.nn.utils.parametrizations import spectral_norm

    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    if not layers:
        raise ValueError(f"{type(module).__name__} has no convolution or linear layer to normalise")
    for m in layers:
        # a transposed convolution's weight is (in, out, ...): its output dimension is 1
        spectral_norm(
            m, n_power_iterations=n_power_iterations, dim=1 if isinstance(m, nn.ConvTranspose2d) else 0
        )
    return module


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch norm layer inside ``module`` (1-D, 2-D or 3-D), in ``modules()`` order."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def has_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` contains a batch norm layer, whose output for one sample depends on
    the rest of its batch (so real and fake batches must not be mixed in one forward pass)."""
    return bool(batch_norm_layers(module))


__all__ = [
    "ALIASES",
    "MODELS",
    "MNIST_PIXELS",
    "NUM_CLASSES",
    "ConcatDiscriminator",
    "ConditionalGenerator",
    "ProjectionDiscriminator",
    "cgan_concat",
    "cgan_projection",
    "check_labels",
    "check_training_labels",
    "is_conditional",
    "label_planes",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "batch_norm_layers",
    "build",
    "check_options",
    "dcgan",
    "dcgan_bn_g",
    "dcgan_bn_g_deep_d",
    "dcgan_init_",
    "dcgan_no_bn",
    "has_batch_norm",
    "mlp_bn_gan",
    "mlp_gan",
    "options",
    "PatchDiscriminator",
    "UNetGenerator",
    "pix2pix",
    "resolve",
    "spectral_norm_",
    "toy_mlp",
]
