"""Every metric of chapter 5 for one set of samples, each beside its real-data floor.

:func:`evaluate` scores generated MNIST images (N, 1, 28, 28) in [-1, 1] with the judge's
features and probabilities: the Inception Score (with the judge as the classifier), the
Frechet distance of the judge's features to a real reference set (``"test"`` by default;
``"val"`` for choosing), precision and recall (k = 3) and density and coverage (k = 5)
against the same reference. The distance is "FD (judge features)", key ``"fd"``: not an FID,
which is the distance in Inception's features, and not comparable with one.
Beside each number stands what *real* images score: ``draws`` draws of N images the judge
never saw and that are not in the reference (mean and standard deviation), so that a number
reads as "this far from what real data gets". This is what ``python -m gan_tutorial
evaluate`` prints.

The real side (the reference's features and k-NN radii, and the floors) is the same on every
call with the same judge and settings, and costs most of the time, so :class:`Evaluator`
stores it in ``<data folder>/cache/`` (see :func:`runtime.data_dir`) and reads it back on
later calls: a file named by a hash of the judge's weights and the settings, written
atomically and read with ``weights_only=True``. A damaged or foreign file there is ignored
(with a warning) and recomputed; deleting the folder is always safe; ``cache=False`` turns
it off.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import atomic_save
from ..data import check_images
from ..runtime import data_dir
from ..stats import mean_std
from .frechet import feature_stats, frechet_distance
from .inception_score import inception_score
from .judge.network import Judge, load_judge, predict
from .judge.scores import floor_pool, reference_features
from .judge.splits import floor_draws
from .manifold import RealManifold

#: The metrics, in the order they are printed, with what "better" means for each.
METRICS = {
    "inception_score": "higher (at most 10)",
    "fd": "lower",
    "precision": "higher",
    "recall": "higher",
    "density": "about 1",
    "coverage": "higher",
}

#: How each metric is named where it is printed.
LABELS = {
    "inception_score": "IS (judge)",
    "fd": "FD (judge features)",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
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
                f"  {LABELS[key]:<19} {self.values[key]:10.3f}   real {mean:8.3f} +- {std:.3f}   "
                f"({better} is better)"
            )
        return "\n".join(lines)


#: k of precision and recall (Kynkäänniemi et al.), and of density and coverage (Naeem et al.).
K_PR, K_DC = 3, 5

#: Part of every cache file's name: bump it when what the real side holds or how it is computed changes.
CACHE_VERSION = 4


def _cache_file(judge: Judge, reference: str, draws: int, seed: int, folder: Path) -> Path:
    """The cache file of this judge's weights and these settings."""
    h = hashlib.sha256(f"{CACHE_VERSION}/{reference}/{draws}/{seed}/{K_PR}/{K_DC}".encode())
    for name, value in judge.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return folder / f"evaluator-{reference}-{h.hexdigest()[:16]}.pt"


class Evaluator:
    """The real side of every metric, computed once per reference and sample size: reference
    features and their k-NN balls, and the floors. :meth:`__call__` then scores a sample set.

    With ``cache`` (the default) the real side is kept in ``cache_dir`` (default
    ``<data folder>/cache``) between processes, as the module docstring says."""

    def __init__(
        self,
        judge: Judge | None = None,
        reference: str = "test",
        draws: int = 3,
        seed: int = 0,
        cache: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        if draws < 1:
            raise ValueError(f"draws (real samples behind each floor) must be at least 1, got {draws}")
        self.judge = judge if judge is not None else load_judge()
        self.reference = reference
        self.draws, self.seed = draws, seed
        folder = Path(cache_dir) if cache_dir is not None else data_dir() / "cache"
        self.cache_file = _cache_file(self.judge, reference, draws, seed, folder) if cache else None
        stored = self._read_cache()
        self._floors: dict[int, dict[str, tuple[float, float]]]
        if stored is None:
            ref, radii, self._floors = reference_features(self.judge, reference), None, {}
        else:
            ref = stored["features"].to(next(self.judge.parameters()).device)
            radii, self._floors = (stored["r_pr"], stored["r_dc"]), stored["floors"]
        self.manifold = RealManifold(ref, k_pr=K_PR, k_dc=K_DC, radii=radii)
        self._features = ref.detach().cpu()  # as the judge gave them (float32), for the cache
        self.mu, self.sigma = feature_stats(ref)
        if stored is None:
            self._write_cache()

    def _read_cache(self) -> dict | None:
        if self.cache_file is None or not self.cache_file.is_file():
            return None
        try:
            stored = torch.load(self.cache_file, map_location="cpu", weights_only=True)
            n = len(stored["features"])
            shapes = stored["r_pr"].shape, stored["r_dc"].shape
            if shapes != ((n,), (n,)) or not isinstance(stored["floors"], dict):
                raise ValueError("unexpected contents")
            return stored
        except Exception as err:  # damaged, truncated, or not ours: recompute and replace it
            warnings.warn(
                f"ignoring {self.cache_file} ({type(err).__name__}: it is damaged or was not written "
                "by this version); recomputing the real side and writing it again",
                stacklevel=3,
            )
            return None

    def _write_cache(self) -> None:
        if self.cache_file is None:
            return
        state = {
            "features": self._features,
            "r_pr": self.manifold.r_pr,
            "r_dc": self.manifold.r_dc,
            "floors": self._floors,  # {n: {metric: (mean, std)}}: plain numbers, as weights_only reads them
        }
        try:
            atomic_save(state, self.cache_file)
        except OSError as err:  # a read-only data folder: the numbers are the same, only slower
            warnings.warn(
                f"cannot write {self.cache_file} ({err}); the real side is recomputed each time",
                stacklevel=3,
            )
            self.cache_file = None

    def scores(self, feats: torch.Tensor, probs: torch.Tensor) -> dict[str, float]:
        """Every metric of one set, from its judge features (N, 64) and probabilities (N, 10)."""
        mu, sigma = feature_stats(feats)
        m = self.manifold.score(feats)
        return {
            "inception_score": inception_score(probs)[0],
            "fd": frechet_distance(mu, sigma, self.mu, self.sigma),
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
            for pick in floor_draws(len(feats), n, self.draws, self.seed):
                f = feats[pick.to(feats.device)]
                rows.append(self.scores(f, torch.softmax(self.judge.head(f), dim=1)))
            self._floors[n] = {k: mean_std([r[k] for r in rows]) for k in METRICS}
            self._write_cache()
        return self._floors[n]

    def __call__(self, x_fake: torch.Tensor) -> Evaluation:
        check_images(x_fake, "samples")
        if len(x_fake) <= K_PR:  # k-NN balls need more than k points (and a covariance 2)
            raise ValueError(f"evaluate needs at least {K_PR + 1} samples (N, 1, 28, 28), got {len(x_fake)}")
        feats, probs = predict(self.judge, x_fake)
        return Evaluation(len(x_fake), self.reference, self.scores(feats, probs), self.floors(len(x_fake)))


def evaluate(
    x_fake: torch.Tensor,
    judge: Judge | None = None,
    reference: str = "test",
    draws: int = 3,
    cache: bool = True,
) -> Evaluation:
    """Every metric of ``x_fake`` (N, 1, 28, 28) in [-1, 1], each beside its real-data floor."""
    return Evaluator(judge, reference, draws, cache=cache)(x_fake)
