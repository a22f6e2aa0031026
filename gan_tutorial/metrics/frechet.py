r"""The Frechet distance between Gaussians fitted to two sets of features (chapters 3 and 5).

.. math:: d^2 = \lVert \mu_1 - \mu_2 \rVert^2
          + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big)

With Inception features it is the FID of Heusel et al. 2017; with the MNIST judge's features
(:mod:`gan_tutorial.metrics.judge`) it is this series' measure, "FD (judge features)", not an
FID and not comparable with one. Estimated from N samples it is biased upwards, by about a
constant over N (Chong and Forsyth 2020): compare distances at equal N, or fit a line in 1/N
and read it at 1/N = 0 (their FID-infinity; chapter 5 does).
"""

from __future__ import annotations

import torch


def feature_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"need features of shape (N, D) with N >= 2, got {tuple(feats.shape)}")
    f = feats.double()
    return f.mean(0), torch.cov(f.T)


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    r"""||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) between N(mu1, S1) and N(mu2, S2).

    Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}: the matrix in brackets is
    symmetric positive semi-definite, so its square root's trace is the sum of the square
    roots of its eigenvalues (clamped at 0 against round-off). Computed in float64.
    """
    mu1, mu2, sigma1, sigma2 = (t.double().cpu() for t in (mu1, mu2, sigma1, sigma2))
    if sigma1.shape != sigma2.shape or mu1.shape != mu2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"shapes do not match: mu {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
            f"sigma {tuple(sigma1.shape)}, {tuple(sigma2.shape)}"
        )
    evals, evecs = torch.linalg.eigh(sigma1)
    root1 = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T  # S1^{1/2}
    middle = root1 @ sigma2 @ root1
    middle = (middle + middle.T) / 2  # symmetric up to round-off
    tr_sqrt = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_sqrt)


def frechet_distance_of_features(feats1: torch.Tensor, feats2: torch.Tensor) -> float:
    """:func:`frechet_distance` between Gaussians fitted to features (N1, D) and (N2, D)."""
    return frechet_distance(*feature_stats(feats1), *feature_stats(feats2))
