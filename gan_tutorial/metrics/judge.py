r"""The judge: a small MNIST classifier whose view of generated digits gives numbers.

Chapter 3 judges a generator by three numbers computed from this classifier, instead of by
squinting at a grid of samples:

* **Frechet distance** (:mod:`gan_tutorial.metrics.frechet`) between Gaussians fitted to the
  classifier's penultimate features of generated images and of a real *reference* set
  ("FID with MNIST-classifier features"). It is not comparable with Inception FID numbers;
  compare it with the **floor**, the distance that as many *real* images score against the
  same reference: the mean and the spread over several draws (:func:`reference`);
* **modes covered**: classes that receive at least 1% of the samples (10 is best);
* **KL from uniform** of the predicted-class histogram h: ``sum_k h_k log(10 h_k)``
  (0 when every digit is equally frequent, log 10 = 2.30 when all samples are one digit).

**Which real images.** The judge is trained on the first :data:`JUDGE_TRAIN` (40,000) MNIST
training images only; the other 20,000 are held out from it. Two references, so that
choosing a recipe and reporting it use different data:

* ``"val"``, the validation reference: the last 10,000 training images. Recipes are chosen
  against it;
* ``"test"``: the 10,000 MNIST test images, reported once, for the chosen recipe.

A floor is drawn from real images that are neither in its reference nor seen by the judge:
training images 40,000 to 49,999 and the test set for ``"val"``, training images 40,000 to
59,999 for ``"test"``. (Generated images are never seen by the judge either, so a floor of
images it was trained on would be unfairly low.)

The distance mixes two failures: drawing digits badly and drawing them in the wrong
proportions. :func:`class_mix_distance` separates them: the distance that real digits
score when drawn in a generator's class proportions.

The weights ship in ``gan_tutorial/weights/mnist_judge.pt``; regenerate them with
``python -m gan_tutorial.metrics.judge --train`` (a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .frechet import feature_stats, frechet_distance

#: Where the shipped weights live (package data).
WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "weights" / "mnist_judge.pt"
NUM_CLASSES = 10
FEATURE_DIM = 64
#: The judge is trained on MNIST's first 40,000 training images; the other 20,000 it never sees.
JUDGE_TRAIN = 40_000
#: Reference sets, as slices of MNIST's training set or the test set.
SPLITS = {"val": ("train", 50_000, 60_000), "test": ("test", 0, 10_000)}
#: Real images a floor against each reference is drawn from: not in it, not seen by the judge.
FLOOR_POOLS = {"val": (("train", 40_000, 50_000), ("test", 0, 10_000)), "test": (("train", 40_000, 60_000),)}


class Judge(nn.Module):
    """A three-convolution MNIST classifier, (B, 1, 28, 28) in [-1, 1] -> (B, 10) logits.

    ``features(x)`` returns the (B, 64) penultimate activations the Frechet distance uses.
    About 69k parameters, so the weights stay small enough to ship in the package.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, 3, 3)
            nn.Flatten(),  # (B, 576)
            nn.Linear(576, FEATURE_DIM), nn.ReLU(),  # (B, 64): the features
        )  # fmt: skip
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class JudgeFeatures(nn.Module):
    """The judge as a feature extractor for libraries such as torchmetrics: images (N, 1, 28, 28)
    in [-1, 1], passed through unchanged, to the (N, 64) features; ``num_features`` says so."""

    num_features = FEATURE_DIM

    def __init__(self, judge: Judge) -> None:
        super().__init__()
        self.judge = judge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge.features(x.float())


class JudgeLogits(JudgeFeatures):
    """The judge as a classifier for the Inception Score: images to (N, 10) logits (not softmaxed)."""

    num_features = NUM_CLASSES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge(x.float())


def load_judge(device: str | torch.device = "cpu", path: str | Path | None = None) -> Judge:
    """The trained judge in eval mode on ``device``, from the shipped weights by default."""
    path = Path(path) if path is not None else WEIGHTS_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"the judge's weights are not at {path}; regenerate them with "
            "`python -m gan_tutorial.metrics.judge --train`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    judge = Judge()
    judge.load_state_dict({k: v.float() for k, v in state.items()})  # stored as float16
    return judge.to(device).eval().requires_grad_(False)


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"the judge takes MNIST-shaped images (N, 1, 28, 28), got {tuple(x.shape)}; "
            "reshape flat generator outputs with x.view(-1, 1, 28, 28)"
        )


def check_images(x: torch.Tensor) -> None:
    """Samples to be judged: (N, 1, 28, 28) floats in [-1, 1] (:func:`gan_tutorial.data.check_images`)."""
    from ..data import check_images as check

    check(x, "samples")


@torch.no_grad()
def predict(judge: Judge, x: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, probs)`` for images ``x`` (N, 1, 28, 28) in [-1, 1]: (N, 64) and (N, 10)."""
    _check_images(x)
    device = next(judge.parameters()).device
    feats, probs = [], []
    for start in range(0, x.shape[0], batch_size):
        h = judge.features(x[start : start + batch_size].to(device))
        feats.append(h)
        probs.append(F.softmax(judge.head(h), dim=1))
    return torch.cat(feats), torch.cat(probs)


def accuracy(judge: Judge, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``x`` whose predicted class equals ``labels``."""
    _, probs = predict(judge, x)
    return float((probs.argmax(1).cpu() == labels.cpu()).float().mean())


def class_histogram(probs: torch.Tensor) -> torch.Tensor:
    """Share of samples predicted as each class, (10,), from class probabilities (N, 10)."""
    counts = torch.bincount(probs.argmax(1).cpu(), minlength=NUM_CLASSES)
    return counts.double() / probs.shape[0]


def modes_covered(probs: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of classes predicted for at least ``threshold`` of the samples."""
    return int((class_histogram(probs) >= threshold).sum())


def kl_from_uniform(hist: torch.Tensor) -> float:
    """KL(h || uniform) = sum_k h_k log(K h_k) (terms with h_k = 0 contribute 0), in nats."""
    h = hist.double()
    k = h.numel()
    terms = torch.where(h > 0, h * torch.log(k * h.clamp_min(1e-300)), torch.zeros_like(h))
    return float(terms.sum())


def _images(part: str, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images and labels ``[start, stop)`` of ``part`` ("train" or "test"), on the CPU."""
    from ..data import load_mnist

    x, y = load_mnist(train=part == "train", labels=True)
    return x[start:stop], y[start:stop]


def _features(judge: Judge, parts: tuple[tuple[str, int, int], ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Judge features (N, 64) and labels (N,) of the real images in ``parts``, cached on the judge."""
    cache = judge.__dict__.setdefault("_feature_cache", {})
    device = next(judge.parameters()).device
    key = (str(device), parts)
    if key not in cache:
        feats, labels = [], []
        for part in parts:
            x, y = _images(*part)
            feats.append(predict(judge, x.to(device))[0])
            labels.append(y)
        cache[key] = torch.cat(feats), torch.cat(labels)
    return cache[key]


def reference_features(judge: Judge, split: str = "test") -> torch.Tensor:
    """Judge features (10000, 64) of the reference set ``split`` ("val" or "test"), cached."""
    if split not in SPLITS:
        raise ValueError(f"unknown reference {split!r}; choose one of {', '.join(SPLITS)}")
    return _features(judge, (SPLITS[split],))[0]


def floor_pool(judge: Judge, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Judge features (20000, 64) and labels of the real images a floor against ``split`` is drawn
    from (neither in the reference nor seen by the judge), cached."""
    if split not in SPLITS:
        raise ValueError(f"unknown reference {split!r}; choose one of {', '.join(SPLITS)}")
    return _features(judge, FLOOR_POOLS[split])


def floor_pool_images(split: str = "test") -> torch.Tensor:
    """The images of :func:`floor_pool`, (20000, 1, 28, 28) in [-1, 1] on the CPU, same order."""
    return torch.cat([_images(*part)[0] for part in FLOOR_POOLS[split]])


def floor_draws(pool_size: int, n: int, draws: int, seed: int = 0) -> list[torch.Tensor]:
    """Indices of ``draws`` draws of ``n`` of ``pool_size`` real images, without replacement, draw
    ``i`` seeded with ``seed + i``: the real samples behind every floor (here and in
    :mod:`.evaluation`), so that the same settings draw the same images everywhere."""
    if not 1 <= n <= pool_size or draws < 1:
        raise ValueError(f"a floor needs 1 <= n <= {pool_size:,} and draws >= 1, got n={n:,}, draws={draws}")
    return [
        torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed + i))[:n] for i in range(draws)
    ]


def mean_std(values: list[float] | tuple[float, ...]) -> tuple[float, float]:
    """Mean and (sample) standard deviation of a floor's draws; the spread of one draw is 0."""
    spread = float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else 0.0
    return sum(values) / len(values), spread


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
    """The reference set ``split`` ("val" or "test", see the module docstring) and its floor:
    the distances of ``draws`` draws of ``n`` real images (without replacement, each draw
    seeded from ``seed``) from its floor pool to it. Features are cached on the judge, per
    device (a judge whose weights change afterwards needs a fresh :func:`load_judge`)."""
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
    check_images(x_fake)  # shape, dtype, range and NaN, as evaluate checks them
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


# ---------------------------------------------------------------------------------------
# Training the judge (regenerates the shipped weights)
# ---------------------------------------------------------------------------------------


def train_judge(
    epochs: int = 6, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, device: str = "cpu"
) -> Judge:
    """Train a :class:`Judge` on MNIST's first :data:`JUDGE_TRAIN` training images with Adam and a
    one-cycle schedule (the rest stay unseen, for the references and floors).

    Small random shifts (up to 2 pixels) make it robust to slightly off-centre digits.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = _images("train", 0, JUDGE_TRAIN)
    x, y = x.to(device), y.to(device)
    judge = Judge().to(device)
    steps_per_epoch = x.shape[0] // batch_size
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        start = time.time()
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb = x[idx]
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=(dx, dy), dims=(2, 3))  # digits have a -1 border
            loss = F.cross_entropy(judge(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{epochs}: last loss {loss.item():.4f} ({time.time() - start:.0f} s)")
    return judge.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gan_tutorial.metrics.judge",
        description="Train the MNIST judge, or report its test accuracy and the real-data floor.",
    )
    parser.add_argument("--train", action="store_true", help="train and write new weights")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="weights file to write")
    args = parser.parse_args(argv)
    from ..data import load_mnist

    if args.train:
        judge = train_judge(epochs=args.epochs, seed=args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # float16 halves the file; the judge's accuracy does not change
        torch.save({k: v.half() for k, v in judge.state_dict().items()}, args.out)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    judge = load_judge(path=args.out)
    x_held, y_held = _images("train", JUDGE_TRAIN, 60_000)
    x_test, y_test = load_mnist(train=False, labels=True)
    print(f"accuracy on the 20,000 held-out training images {accuracy(judge, x_held, y_held):.4f}")
    print(f"accuracy on the 10,000 test images {accuracy(judge, x_test, y_test):.4f}")
    for split in SPLITS:
        ref = reference(judge, split)
        print(ref)
        if not math.isfinite(ref.floor):
            raise SystemExit("the floor is not finite: the weights are broken")


if __name__ == "__main__":
    main()
