"""Every metric of chapter 5 for one set of samples, each beside its real-data floor.

:func:`evaluate` scores generated MNIST images (N, 1, 28, 28) in [-1, 1] with the judge's
features and probabilities: the Inception Score (with the judge as the classifier), the
Frechet distance to a real reference set (``"test"`` by default; ``"val"`` for choosing),
precision and recall (k = 3) and density and coverage (k = 5) against the same reference.
Beside each number stands what *real* images score: ``draws`` draws of N images the judge
never saw and that are not in the reference (mean and standard deviation), so that a number
reads as "this far from what real data gets". This is what ``python -m gan_tutorial
evaluate`` prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from .frechet import feature_stats, frechet_distance
from .inception_score import inception_score
from .judge import Judge, check_images, floor_pool, load_judge, predict, reference_features
from .manifold import RealManifold

#: The metrics, in the order they are printed, with what "better" means for each.
METRICS = {
    "inception_score": "higher (at most 10)",
    "fid": "lower",
    "precision": "higher",
    "recall": "higher",
    "density": "about 1",
    "coverage": "higher",
}


@dataclass(frozen=True)
class Evaluation:
    """One sample set's numbers and the real-data floor of each (mean, std over draws)."""

    n: int
    reference: str
    values: dict[str, float]
    floors: dict[str, tuple[float, float]]

    def to_dict(self) -> dict:
        return {
            **self.values,
            "floors": {k: {"mean": m, "std": s} for k, (m, s) in self.floors.items()},
            "n": self.n,
            "reference": self.reference,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        lines = [f"{self.n:,} samples against the {self.reference} reference; real images at the same N:"]
        for key, better in METRICS.items():
            mean, std = self.floors[key]
            lines.append(
                f"  {key:<16} {self.values[key]:10.3f}   real {mean:8.3f} +- {std:.3f}   ({better} is better)"
            )
        return "\n".join(lines)


class Evaluator:
    """The real side of every metric, computed once per reference and sample size: reference
    features and their k-NN balls, and the floors. :meth:`__call__` then scores a sample set."""

    def __init__(
        self, judge: Judge | None = None, reference: str = "test", draws: int = 3, seed: int = 0
    ) -> None:
        self.judge = judge if judge is not None else load_judge()
        self.reference = reference
        self.draws, self.seed = draws, seed
        ref = reference_features(self.judge, reference)
        self.mu, self.sigma = feature_stats(ref)
        self.manifold = RealManifold(ref, k_pr=3, k_dc=5)
        self._floors: dict[int, dict[str, tuple[float, float]]] = {}

    def scores(self, feats: torch.Tensor, probs: torch.Tensor) -> dict[str, float]:
        """Every metric of one set, from its judge features (N, 64) and probabilities (N, 10)."""
        mu, sigma = feature_stats(feats)
        m = self.manifold.score(feats)
        return {
            "inception_score": inception_score(probs)[0],
            "fid": frechet_distance(mu, sigma, self.mu, self.sigma),
            "precision": m.precision,
            "recall": m.recall,
            "density": m.density,
            "coverage": m.coverage,
        }

    def floors(self, n: int) -> dict[str, tuple[float, float]]:
        """Mean and standard deviation of every metric over ``draws`` draws of ``n`` real images."""
        if n not in self._floors:
            feats, _ = floor_pool(self.judge, self.reference)
            if n > len(feats):
                raise ValueError(f"the floor needs at most {len(feats):,} samples, got {n:,}")
            rows = []
            for i in range(self.draws):
                pick = torch.randperm(len(feats), generator=torch.Generator().manual_seed(self.seed + i))[:n]
                f = feats[pick.to(feats.device)]
                probs = torch.softmax(self.judge.head(f), dim=1)
                rows.append(self.scores(f, probs))
            self._floors[n] = {
                k: (sum(r[k] for r in rows) / len(rows), float(torch.tensor([r[k] for r in rows]).std()))
                for k in METRICS
            }
        return self._floors[n]

    def __call__(self, x_fake: torch.Tensor) -> Evaluation:
        check_images(x_fake)
        feats, probs = predict(self.judge, x_fake)
        return Evaluation(len(x_fake), self.reference, self.scores(feats, probs), self.floors(len(x_fake)))


def evaluate(
    x_fake: torch.Tensor, judge: Judge | None = None, reference: str = "test", draws: int = 3
) -> Evaluation:
    """Every metric of ``x_fake`` (N, 1, 28, 28) in [-1, 1], each beside its real-data floor."""
    return Evaluator(judge, reference, draws)(x_fake)
