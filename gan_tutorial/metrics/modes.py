r"""Mode coverage on the toy mixtures (chapter 2): mode collapse counted, not just pictured.

The numbers of VEEGAN (Srivastava et al. 2017, arXiv:1705.07761, section 5.1: modes captured
and high-quality share) and PacGAN (Lin et al. 2018, arXiv:1712.04086, section 5, which adds
the reverse KL), computed on samples ``x_fake`` of
shape (n, dim) against a :class:`~gan_tutorial.data.GaussianMixture` with means mu_k and
standard deviations sigma_k (k = 1..K):

* every sample goes to its nearest mode in units of that mode's standard deviation,
  k*(x) = argmin_k ||x - mu_k|| / sigma_k, and is **high quality** when that distance is
  below 3 (``threshold``); the rest are off every mode and belong to no mode;
* **modes captured**: the number of modes that at least one high-quality sample goes to
  (``min_count = 1``, the papers' rule);
* **high-quality share**: (number of high-quality samples) / n;
* **modes held** (chapter 6): ``modes_captured(counts, min_count)`` with ``min_count`` a share
  of n, such as 1% (25 of 2,500 samples; an even spread over 25 modes gives each 4%): a
  structureless cloud puts a sample near most modes by chance, but few near any one of them;
* **nearest-mode distance** (chapter 6): the mean over samples of min_k ||x - mu_k|| / sigma_k;
* **KL from uniform** (PacGAN's "reverse KL"): with c_k the high-quality samples of
  mode k and q_k = c_k / sum_j c_j the mode histogram,

  .. math:: \mathrm{KL}(q \,\|\, u) = \sum_k q_k \log(K q_k) = \log K - H(q),

  with 0 log 0 = 0, so an empty mode adds nothing and the KL stays finite: 0 when every mode
  gets the same share, log K when all high-quality samples sit at one mode, log(K / m) when
  they are spread evenly over m modes. It is undefined (``inf`` here) when no sample is
  high quality.

With equal standard deviations (``ring8``, ``grid25``) the nearest mode in units of sigma is
the nearest mode in plain distance. The papers draw 2,500 samples from the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data import GaussianMixture

#: Samples the papers draw to compute the metrics.
N_SAMPLES = 2500


def assign_modes(
    x_fake: torch.Tensor, mixture: GaussianMixture, threshold: float = 3.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest mode of every sample and whether it is high quality.

    Returns ``(nearest, high_quality)``, both of shape (n,): ``nearest[i]`` = argmin_k
    ||x_i - mu_k|| / sigma_k (int64) and ``high_quality[i]`` = that distance < ``threshold``.
    """
    if x_fake.ndim != 2 or x_fake.shape[1] != mixture.dim:
        raise ValueError(
            f"x_fake must have shape (n, {mixture.dim}) to match the mixture, got {tuple(x_fake.shape)}; "
            "for a batch of generators (E, n, dim) call the metrics once per generator"
        )
    if threshold <= 0:
        raise ValueError(f"threshold (in standard deviations) must be positive, got {threshold}")
    x = x_fake.detach().to("cpu", torch.float64)
    dist = torch.cdist(x, mixture.means.to(torch.float64)) / mixture.stds.to(torch.float64)  # (n, K)
    nearest_dist, nearest = dist.min(dim=1)
    return nearest, nearest_dist < threshold


def nearest_mode_distance(x_fake: torch.Tensor, mixture: GaussianMixture) -> float:
    """The mean over samples of min_k ||x - mu_k|| / sigma_k: how far a sample sits from its nearest
    mode, in that mode's standard deviations (a sample of the mixture itself: about 1.25 in 2-D).

    Unlike the mode count, a diffuse cloud cannot score well on it by chance: every sample
    that lies between the modes adds its whole distance.
    """
    if x_fake.ndim != 2 or x_fake.shape[1] != mixture.dim:
        raise ValueError(
            f"x_fake must have shape (n, {mixture.dim}) to match the mixture, got {tuple(x_fake.shape)}"
        )
    x = x_fake.detach().to("cpu", torch.float64)
    dist = torch.cdist(x, mixture.means.to(torch.float64)) / mixture.stds.to(torch.float64)  # (n, K)
    return float(dist.min(dim=1).values.mean())


def mode_counts(x_fake: torch.Tensor, mixture: GaussianMixture, threshold: float = 3.0) -> torch.Tensor:
    """c_k: the number of high-quality samples whose nearest mode is k; shape (K,), int64."""
    nearest, high_quality = assign_modes(x_fake, mixture, threshold)
    return torch.bincount(nearest[high_quality], minlength=mixture.means.shape[0])


def modes_captured(counts: torch.Tensor, min_count: int = 1) -> int:
    """The number of modes with at least ``min_count`` high-quality samples."""
    return int((counts >= min_count).sum())


def kl_from_uniform(counts: torch.Tensor) -> float:
    """KL(q || u) = sum_k q_k log(K q_k) of the histogram q = c / sum(c) (0 log 0 = 0), in nats.

    ``counts`` (K,) are counts c_k, such as :func:`mode_counts`, or shares that already sum to
    1, such as the judge's class histogram (chapter 3): q is the same. ``inf`` when every count
    is 0 (no sample is high quality: q is undefined).
    """
    counts = counts.to(torch.float64)
    total = float(counts.sum())
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("counts must be a 1-D tensor of non-negative mode counts")
    if total == 0:
        return math.inf
    q = counts / total
    k = counts.shape[0]
    terms = torch.where(q > 0, q * torch.log(k * q), torch.zeros_like(q))
    return float(terms.sum())


@dataclass(frozen=True)
class ModeReport:
    """The papers' three numbers for one set of samples (plus the histogram behind them)."""

    modes: int  # modes captured, out of n_modes
    n_modes: int
    high_quality: float  # share of samples within `threshold` sigma of their nearest mode
    kl: float  # KL(mode histogram || uniform), in nats
    counts: torch.Tensor  # (K,) high-quality samples per mode

    @property
    def all_modes(self) -> bool:
        return self.modes == self.n_modes

    def __str__(self) -> str:
        return (
            f"{self.modes}/{self.n_modes} modes, {100 * self.high_quality:.1f}% high quality, "
            f"KL {self.kl:.3f}"
        )


def mode_report(
    x_fake: torch.Tensor, mixture: GaussianMixture, threshold: float = 3.0, min_count: int = 1
) -> ModeReport:
    """Modes captured, high-quality share and KL from uniform of samples ``x_fake`` (n, dim)."""
    nearest, high_quality = assign_modes(x_fake, mixture, threshold)
    counts = torch.bincount(nearest[high_quality], minlength=mixture.means.shape[0])
    return ModeReport(
        modes=modes_captured(counts, min_count),
        n_modes=mixture.means.shape[0],
        high_quality=float(high_quality.double().mean()),
        kl=kl_from_uniform(counts),
        counts=counts,
    )
