"""Which real MNIST images the judge's numbers use (chapter 3), so that choosing a recipe and
reporting it use different data and no floor is drawn from images the judge has learned.

The judge is trained on the first :data:`JUDGE_TRAIN` (40,000) MNIST training images only; the
other 20,000 are held out from it. Two references:

* ``"val"``, the validation reference: the last 10,000 training images. Recipes are chosen
  against it;
* ``"test"``: the 10,000 MNIST test images, reported once, for the chosen recipe.

A floor is drawn from real images that are neither in its reference nor seen by the judge:
training images 40,000 to 49,999 and the test set for ``"val"``, training images 40,000 to
59,999 for ``"test"``. (Generated images are never seen by the judge either, so a floor of
images it was trained on would be unfairly low.)
"""

from __future__ import annotations

import torch

from ...data import load_mnist

#: The judge is trained on MNIST's first 40,000 training images; the other 20,000 it never sees.
JUDGE_TRAIN = 40_000
#: Reference sets, as slices of MNIST's training set or the test set.
SPLITS = {"val": ("train", 50_000, 60_000), "test": ("test", 0, 10_000)}
#: Real images a floor against each reference is drawn from: not in it, not seen by the judge.
FLOOR_POOLS = {"val": (("train", 40_000, 50_000), ("test", 0, 10_000)), "test": (("train", 40_000, 60_000),)}


def check_split(split: str) -> None:
    """``ValueError`` unless ``split`` names a reference set ("val" or "test")."""
    if split not in SPLITS:
        raise ValueError(f"unknown reference {split!r}; choose one of {', '.join(SPLITS)}")


def real_images(part: str, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (N, 1, 28, 28) in [-1, 1] and labels ``[start, stop)`` of ``part`` ("train" or
    "test"), on the CPU."""
    x, y = load_mnist(train=part == "train", labels=True)
    return x[start:stop], y[start:stop]


def floor_pool_images(split: str = "test") -> torch.Tensor:
    """The real images a floor against ``split`` is drawn from, (20000, 1, 28, 28) in [-1, 1] on
    the CPU, in the order of :func:`~.scores.floor_pool`'s features."""
    return torch.cat([real_images(*part)[0] for part in FLOOR_POOLS[split]])


def floor_draws(pool_size: int, n: int, draws: int, seed: int = 0) -> list[torch.Tensor]:
    """Indices of ``draws`` draws of ``n`` of ``pool_size`` real images, without replacement, draw
    ``i`` seeded with ``seed + i``: the real samples behind every floor (the judge's and
    :mod:`gan_tutorial.metrics.evaluation`'s), so that the same settings draw the same images
    everywhere."""
    if not 1 <= n <= pool_size or draws < 1:
        raise ValueError(f"a floor needs 1 <= n <= {pool_size:,} and draws >= 1, got n={n:,}, draws={draws}")
    return [
        torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed + i))[:n] for i in range(draws)
    ]
