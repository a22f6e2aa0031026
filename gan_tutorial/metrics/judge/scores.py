"""The judge's numbers for a set of samples, each read beside what real images score (chapters 3,
4, 6 and 7).

* :func:`reference`: a real reference set (:mod:`.splits`) and its **floor**, the Frechet
  distance that as many *real* images score against it, as the mean and spread over draws;
* :func:`score`: a sample set's distance to the reference beside that floor, the digits it
  covers and the KL of its class histogram from uniform (:class:`Scores`);
* :func:`class_mix_distance`: the distance mixes two failures, drawing digits badly and
  drawing them in the wrong proportions. This separates them: the distance that real digits
  score when drawn in a generator's class proportions.

The judge's features of the real images are computed once per judge and device, and cached on
the judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...data import check_images
from ...stats import mean_std
from ..frechet import feature_stats, frechet_distance
from ..modes import kl_from_uniform
from .network import NUM_CLASSES, Judge, class_histogram, load_judge, modes_covered, predict
from .splits import FLOOR_POOLS, SPLITS, check_split, floor_draws, real_images


def _features(judge: Judge, parts: tuple[tuple[str, int, int], ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Judge features (N, 64) and labels (N,) of the real images in ``parts``, cached on the judge."""
    cache = judge.__dict__.setdefault("_feature_cache", {})
    device = next(judge.parameters()).device
    key = (str(device), parts)
    if key not in cache:
        feats, labels = [], []
        for part in parts:
            x, y = real_images(*part)
            feats.append(predict(judge, x.to(device))[0])
            labels.append(y)
        cache[key] = torch.cat(feats), torch.cat(labels)
    return cache[key]


def reference_features(judge: Judge, split: str = "test") -> torch.Tensor:
    """Judge features (10000, 64) of the reference set ``split`` ("val" or "test"), cached."""
    check_split(split)
    return _features(judge, (SPLITS[split],))[0]


def floor_pool(judge: Judge, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Judge features (20000, 64) and labels of the real images a floor against ``split`` is drawn
    from (neither in the reference nor seen by the judge), cached."""
    check_split(split)
    return _features(judge, FLOOR_POOLS[split])


@dataclass(frozen=True)
class Reference:
    """Judge features of a real reference set, and its floor at a sample size ``n``.

    ``floors`` holds the distance of each of several draws of ``n`` real images (not in the
    reference, not seen by the judge) to the reference; ``floor`` is their mean and
    ``floor_std`` their standard deviation: a distance within about two ``floor_std`` of
    ``floor`` is as close as real data gets.
    """

    split: str  # "val" or "test"
    mu: torch.Tensor
    sigma: torch.Tensor
    n: int  # images per floor draw
    floors: tuple[float, ...]

    @property
    def floor(self) -> float:
        return mean_std(self.floors)[0]

    @property
    def floor_std(self) -> float:
        return mean_std(self.floors)[1]

    def __str__(self) -> str:
        return (
            f"{self.split} reference, floor {self.floor:.3f} +- {self.floor_std:.3f} "
            f"({len(self.floors)} draws of {self.n:,} real images)"
        )


def reference(judge: Judge, split: str = "test", n: int = 10_000, draws: int = 5, seed: int = 0) -> Reference:
    """The reference set ``split`` ("val" or "test", see :mod:`.splits`) and its floor: the
    distances of ``draws`` draws of ``n`` real images (without replacement, each draw seeded
    from ``seed``) from its floor pool to it. Features are cached on the judge, per device (a
    judge whose weights change afterwards needs a fresh :func:`~.network.load_judge`)."""
    pool_feats, _ = floor_pool(judge, split)
    if not 2 <= n <= len(pool_feats) or draws < 1:
        raise ValueError(
            f"n must be between 2 and {len(pool_feats):,} and draws >= 1, got n={n}, draws={draws}"
        )
    cache = judge.__dict__.setdefault("_references", {})
    key = (str(next(judge.parameters()).device), split, n, draws, seed)
    if key not in cache:
        mu, sigma = feature_stats(reference_features(judge, split))
        floors = [
            frechet_distance(*feature_stats(pool_feats[pick.to(pool_feats.device)]), mu, sigma)
            for pick in floor_draws(len(pool_feats), n, draws, seed)
        ]
        cache[key] = Reference(split, mu, sigma, n, tuple(floors))
    return cache[key]


def class_mix_distance(
    hist: torch.Tensor, judge: Judge, ref: Reference | None = None, n: int = 10_000, seed: int = 0
) -> float:
    """The Frechet distance that *real* digits score when drawn in the proportions ``hist``.

    ``hist`` (10,) is a class histogram, e.g. ``score(x_fake).hist`` of a generator's samples.
    This draws ``n`` real images from the reference's floor pool (so neither in the reference
    nor seen by the judge) whose true labels follow ``hist`` (within a class, without
    replacement while there are enough) and measures their distance to the reference. A
    generator whose every digit were perfect but whose digits came in these proportions would
    score this; the rest of its distance comes from how it draws them. With MNIST's own
    proportions it is about the floor.
    """
    hist = torch.as_tensor(hist, dtype=torch.float64).cpu()
    sums_to_one = math.isclose(float(hist.sum()), 1, abs_tol=1e-6)
    if hist.shape != (NUM_CLASSES,) or (hist < 0).any() or not sums_to_one:
        raise ValueError(
            f"hist must be {NUM_CLASSES} non-negative shares summing to 1 (Scores.hist), "
            f"got shape {tuple(hist.shape)} and sum {float(hist.sum()):.4g}"
        )
    ref = ref if ref is not None else reference(judge, n=n)
    feats, y = floor_pool(judge, ref.split)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(hist, n, replacement=True, generator=gen)  # the digit of each pick
    counts = torch.bincount(labels, minlength=NUM_CLASSES)
    picks = []
    for c, k in enumerate(counts.tolist()):
        members = (y == c).nonzero().squeeze(1)
        if k <= members.numel():
            picks.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
        else:  # more of this digit than the pool holds: some images twice
            picks.append(members[torch.randint(members.numel(), (k,), generator=gen)])
    mu, sigma = feature_stats(feats[torch.cat(picks).to(feats.device)])
    return frechet_distance(mu, sigma, ref.mu, ref.sigma)


@dataclass(frozen=True)
class Scores:
    """The judge's numbers for one set of samples."""

    fd: float  # Frechet distance to the reference (judge features)
    floor: float  # the mean distance of real images at the same sample size
    floor_std: float  # the spread of that distance over draws of real images
    modes: int  # classes with >= 1% of samples
    kl: float  # KL of the class histogram from uniform, nats
    hist: torch.Tensor = field(compare=False, repr=False)  # (10,) share predicted as each digit

    @property
    def ratio(self) -> float:
        """fd / floor: how many times the real-data floor."""
        return self.fd / self.floor

    @property
    def at_floor(self) -> bool:
        """Within two standard deviations of the floor: as close as real images get."""
        return self.fd <= self.floor + 2 * self.floor_std

    def __str__(self) -> str:
        floor = f"the floor {self.floor:.2f} +- {self.floor_std:.2f}"
        where = f"at {floor}" if self.at_floor else f"{self.ratio:.1f}x {floor}"
        return f"FD {self.fd:.2f} ({where}), modes {self.modes}/10, KL {self.kl:.3f}"


def score(
    x_fake: torch.Tensor, judge: Judge | None = None, ref: Reference | None = None, split: str = "test"
) -> Scores:
    """All the judge's numbers for generated images ``x_fake`` (N, 1, 28, 28) in [-1, 1].

    Without ``ref``, the reference ``split`` with a floor at the same sample size N. Small N
    inflates the distance, of real and generated images alike: compare numbers at equal N
    (10,000 on the command line).
    """
    check_images(x_fake, "samples")  # shape, dtype, range and NaN, as evaluate checks them
    judge = judge if judge is not None else load_judge(x_fake.device)
    ref = ref if ref is not None else reference(judge, split, n=len(x_fake))
    feats, probs = predict(judge, x_fake)
    mu, sigma = feature_stats(feats)
    hist = class_histogram(probs)
    return Scores(
        fd=frechet_distance(mu, sigma, ref.mu, ref.sigma),
        floor=ref.floor,
        floor_std=ref.floor_std,
        modes=modes_covered(probs),
        kl=kl_from_uniform(hist),
        hist=hist,
    )
