"""Bugs in what an image GAN is fed: pixels in the wrong range, codes of the wrong shape (chapter 6).

Both runs use the MNIST set-up (:func:`~.setup.image_setup`), and MNIST on disk:

* ``data_range`` - :func:`data_range`, images in [0, 1] for a Tanh generator;
* ``noise_4d_linear`` - :func:`noise_4d_linear`, a convolutional generator's codes for a linear one.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..updates import History
from .run import Bug, BugRun, run_with
from .setup import IMAGE_BATCH, IMAGE_LATENT, Setup, image_setup, mnist_pixels, optimisers
from .step import gan_step, loop


def data_range(steps: int, seed: int) -> BugRun:
    """MNIST pixels scaled to [0, 1] (``ToTensor``'s range, without the ``Normalize`` after it)
    for a generator that ends in Tanh, whose range is (-1, 1).

    It trains: [0, 1] lies inside (-1, 1), and :func:`data.check_images` accepts the batch. But
    the background, most of every image, is at 0, Tanh's midpoint, where the rest of the package
    (and every plot of samples) expects -1: the samples show grey on grey, and half of G's output
    range goes unused. ``details``: ``data_min``, ``data_max`` of the real batch and
    ``fake_min``, ``fake_max`` of G's samples at the end.
    """
    # BUG: pixels / 255, images in [0, 1], for a Tanh generator
    x = mnist_pixels().float() / 255
    # FIX: x = mnist_pixels().float() / 127.5 - 1, as ToTensor() then Normalize((0.5,), (0.5,)) make it
    run = run_with("data_range", image_setup(seed, x), steps)
    with torch.no_grad():
        fake = run.G(run.z)
    details = {
        "data_min": float(run.data.min()),
        "data_max": float(run.data.max()),
        "fake_min": float(fake.min()),
        "fake_max": float(fake.max()),
    }
    return dataclasses.replace(run, details=details)


def noise_4d_linear(steps: int, seed: int) -> BugRun:
    """Codes shaped (B, 100, 1, 1), a convolutional generator's input, fed to a linear generator.

    The package's :class:`models.MLPGenerator` refuses them with a ``ValueError`` that names the
    shapes (``error``). A plain ``nn.Linear`` stack reads the last dimension, of size 1, and fails
    at its first layer with "mat1 and mat2 shapes cannot be multiplied (6400x1 and 100x128)",
    which names matrices, not codes (``details["plain_error"]``, the plain stack as
    ``details["plain_G"]``). Either way the run stops at its first step, before any logging.
    """
    setup = image_setup(seed, mnist_pixels().float() / 127.5 - 1)
    plain_G = nn.Sequential(
        nn.Linear(IMAGE_LATENT, 128),
        nn.LeakyReLU(0.2),
        nn.Linear(128, 784),
        nn.Tanh(),
        nn.Unflatten(1, (1, 28, 28)),
    )

    def codes() -> torch.Tensor:
        # BUG: codes shaped for a convolutional G, torch.randn(B, 100, 1, 1)
        z = setup.codes().view(IMAGE_BATCH, IMAGE_LATENT, 1, 1)
        # FIX: z = setup.codes(), of shape (B, 100), as a linear G reads it
        return z

    (history, error), (_, plain_error) = (
        _attempt(Setup(G, setup.D, setup.real, codes), steps) for G in (setup.G, plain_G)
    )
    details = {"plain_error": plain_error, "plain_G": plain_G}
    return BugRun(
        "noise_4d_linear", history, setup.G, setup.D, setup.real(), codes(), error=error, details=details
    )


def _attempt(setup: Setup, steps: int) -> tuple[History, BaseException | None]:
    """The history of a run of ``setup`` and ``None``, or an empty history and the error that stopped it."""
    opt_G, opt_D = optimisers(setup.G, setup.D)
    try:
        return loop(lambda: gan_step(setup, opt_G, opt_D), steps), None
    except (ValueError, RuntimeError) as err:
        return History(), err


DATA_RANGE = Bug(
    "data_range",
    "Images in [0, 1] for a Tanh generator",
    "x = pixels / 255 (ToTensor without Normalize) puts the images in [0, 1] while G's Tanh "
    "outputs (-1, 1): the background sits at Tanh's midpoint instead of -1, half of G's "
    "range is never used, and samples are read and shown in the wrong range.",
    "x = pixels / 127.5 - 1 (ToTensor() then Normalize((0.5,), (0.5,))), as data.load_mnist does",
    data_range,
    steps=200,
    images=True,
)
NOISE_4D_LINEAR = Bug(
    "noise_4d_linear",
    "Convolutional codes into a linear generator",
    "z = torch.randn(B, 100, 1, 1) (a DCGAN's codes) for a linear G: nn.Linear reads the last "
    "dimension, here of size 1, not the 100 of the codes.",
    "z = torch.randn(B, 100) for a linear G (or z.flatten(1) before its first layer)",
    noise_4d_linear,
    steps=10,
    images=True,
)
