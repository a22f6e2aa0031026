r"""Precision, recall, density and coverage: how much of each set lies on the other's manifold (chapter 5).

Both pairs estimate the support of a set of features by balls around its points: the ball
around point :math:`a` of set :math:`A` has as radius :math:`\mathrm{NND}_k(a)`, the distance to
its k-th nearest neighbour in :math:`A` (itself not counted). With real features
:math:`X_1..X_N` and fake ones :math:`Y_1..Y_M` and :math:`B(a, r)` the open ball:

* **precision** (Kynkäänniemi et al. 2019, k = 3): the share of fakes inside the real manifold,
  :math:`\frac1M \sum_j 1[\exists i: Y_j \in B(X_i, \mathrm{NND}_k(X_i))]`: are the samples realistic?
* **recall** (same paper): the share of real points inside the fake manifold,
  :math:`\frac1N \sum_i 1[\exists j: X_i \in B(Y_j, \mathrm{NND}_k(Y_j))]`: is the data covered?
* **density** (Naeem et al. 2020, k = 5): how many real balls contain each fake, on average,
  divided by k, :math:`\frac{1}{kM} \sum_j \sum_i 1[Y_j \in B(X_i, \mathrm{NND}_k(X_i))]`; about 1
  for a perfect generator, above 1 where fakes crowd into dense real regions;
* **coverage** (same paper): the share of real balls that contain at least one fake,
  :math:`\frac1N \sum_i 1[\exists j: Y_j \in B(X_i, \mathrm{NND}_k(X_i))]`. Unlike recall it
  uses only the real balls, so a few outlying fakes with huge balls cannot inflate it.

Comparisons are strict (``<``), as in the reference implementation ``prdc`` (Naeem et al.'s);
Kynkäänniemi et al.'s own code uses ``<=``, which differs only on exact ties. Distances are
Euclidean, computed in float64, in blocks of rows so that 10,000 x 10,000 features need
tens of megabytes, not gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Rows of a distance block: a block of 10,000 columns of float64 is then 80 MB.
BLOCK = 1024


def _check(name: str, feats: torch.Tensor, k: int) -> torch.Tensor:
    if not isinstance(feats, torch.Tensor) or feats.ndim != 2:
        raise ValueError(f"{name} must be a (N, D) tensor of features, got {getattr(feats, 'shape', feats)}")
    if feats.shape[0] <= k:
        raise ValueError(f"{name} needs more than k = {k} points, got {feats.shape[0]}")
    if not torch.isfinite(feats).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return feats.detach().to("cpu", torch.float64)


def knn_radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    """NND_k of every point: the distance to its k-th nearest neighbour in ``feats`` (N, D), itself
    not counted; returns (N,) float64."""
    return _radii(_check("feats", feats, k), (k,))[0]


def _radii(x: torch.Tensor, ks: tuple[int, ...]) -> list[torch.Tensor]:
    """:func:`knn_radii` of checked float64 features for several k, from one pass of distances."""
    radii = torch.empty(len(ks), len(x), dtype=torch.float64)
    for start in range(0, len(x), BLOCK):
        d = torch.cdist(x[start : start + BLOCK], x)  # (b, N), the point itself at distance 0
        nearest = d.topk(max(ks) + 1, dim=1, largest=False).values  # sorted, nearest first
        for i, k in enumerate(ks):
            radii[i, start : start + BLOCK] = nearest[:, k]
    return list(radii)


@dataclass(frozen=True)
class Manifold:
    """Precision, recall, density and coverage of one fake set against one real set."""

    precision: float
    recall: float
    density: float
    coverage: float
    k_pr: int  # k of precision and recall
    k_dc: int  # k of density and coverage

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.3f}, recall {self.recall:.3f} (k={self.k_pr}); "
            f"density {self.density:.3f}, coverage {self.coverage:.3f} (k={self.k_dc})"
        )


class RealManifold:
    """The real side, computed once: real features (N, D) and their two sets of k-NN radii, so that
    many fake sets (several generators, or the draws of a floor) are scored against it cheaply.
    ``radii`` (the (N,) radii for ``k_pr`` and ``k_dc``, as :attr:`r_pr` and :attr:`r_dc` hold
    them) skips their computation, for radii stored from an earlier run."""

    def __init__(
        self,
        real: torch.Tensor,
        k_pr: int = 3,
        k_dc: int = 5,
        radii: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.x = _check("real", real, max(k_pr, k_dc))
        self.k_pr, self.k_dc = k_pr, k_dc
        if radii is None:
            radii = _radii(self.x, (k_pr, k_dc))
        elif any(r.shape != (len(self.x),) for r in radii):
            shapes = [tuple(r.shape) for r in radii]
            raise ValueError(f"radii must be two ({len(self.x)},) tensors, got {shapes}")
        self.r_pr, self.r_dc = (r.to("cpu", torch.float64) for r in radii)  # (N,) real balls

    def score(self, fake: torch.Tensor) -> Manifold:
        """All four numbers for ``fake`` (M, D), in one pass over the N x M distances (plus one
        within the fakes, for the fake balls of recall)."""
        x, y = self.x, _check("fake", fake, self.k_pr)
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"real and fake features differ in size: {x.shape[1]} vs {y.shape[1]}")
        s_pr = knn_radii(y, self.k_pr)  # (M,) fake balls, for recall
        in_real = torch.zeros(len(y), dtype=torch.bool)  # fake j inside some real ball (k_pr)
        in_count = torch.zeros(len(y), dtype=torch.float64)  # real balls (k_dc) holding fake j
        covered = torch.zeros(len(x), dtype=torch.bool)  # real ball i (k_dc) holds some fake
        recalled = torch.zeros(len(x), dtype=torch.bool)  # real point i inside some fake ball
        for start in range(0, len(x), BLOCK):
            rows = slice(start, start + BLOCK)
            d = torch.cdist(x[rows], y)  # (b, M): real rows, fake columns
            in_real |= (d < self.r_pr[rows, None]).any(0)
            inside_dc = d < self.r_dc[rows, None]
            in_count += inside_dc.sum(0)
            covered[rows] = inside_dc.any(1)
            recalled[rows] = (d < s_pr[None, :]).any(1)
        return Manifold(
            precision=float(in_real.double().mean()),
            recall=float(recalled.double().mean()),
            density=float(in_count.mean() / self.k_dc),
            coverage=float(covered.double().mean()),
            k_pr=self.k_pr,
            k_dc=self.k_dc,
        )


def manifold_metrics(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> Manifold:
    """Precision and recall (k = ``k_pr``), density and coverage (k = ``k_dc``) of features
    ``fake`` (M, D) against ``real`` (N, D)."""
    return RealManifold(real, k_pr, k_dc).score(fake)
