r"""The judge: a small MNIST classifier whose view of generated digits gives numbers.

Chapter 3 judges a generator by four numbers computed from this classifier, instead of
by squinting at a grid of samples:

* **Frechet distance** between Gaussians fitted to the classifier's penultimate features
  of generated and of real test images ("FID with MNIST-classifier features"):

  .. math:: d^2 = \lVert \mu_1 - \mu_2 \rVert^2
            + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big)

  It is not comparable with Inception FID numbers; compare it with the *floor*, the same
  distance between real training and real test images.
* **modes covered**: classes that receive at least 1% of the samples (10 is best);
* **KL from uniform** of the predicted-class histogram h: ``sum_k h_k log(10 h_k)``
  (0 when every digit is equally frequent, log 10 = 2.30 when all samples are one digit);
* **confident share**: fraction of samples whose top class probability is at least 0.9.

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

#: Where the shipped weights live (package data).
WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "weights" / "mnist_judge.pt"
NUM_CLASSES = 10
FEATURE_DIM = 64


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


def confident_share(probs: torch.Tensor, threshold: float = 0.9) -> float:
    """Fraction of samples whose top class probability is at least ``threshold``."""
    return float((probs.max(1).values >= threshold).float().mean())


@dataclass(frozen=True)
class Reference:
    """Judge features of real MNIST: test-set statistics and the real-data floor."""

    mu: torch.Tensor
    sigma: torch.Tensor
    floor: float  # Frechet distance between n training images and the test set


def reference(judge: Judge, n: int = 10_000, seed: int = 0) -> Reference:
    """Statistics of the 10,000 MNIST test images, and the floor: the Frechet distance of
    ``n`` training images (drawn with ``seed``) from them. Cached on the judge, per device,
    n and seed (a judge whose weights change afterwards needs a fresh :func:`load_judge`)."""
    from ..data import load_mnist

    device = next(judge.parameters()).device
    cache = judge.__dict__.setdefault("_references", {})
    key = (str(device), n, seed)
    if key not in cache:
        x_test = load_mnist(train=False, device=device)
        mu, sigma = feature_stats(predict(judge, x_test)[0])
        x_train = load_mnist(train=True)
        pick = torch.randperm(x_train.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        mu_t, sigma_t = feature_stats(predict(judge, x_train[pick].to(device))[0])
        cache[key] = Reference(mu, sigma, frechet_distance(mu_t, sigma_t, mu, sigma))
    return cache[key]


def class_mix_distance(
    hist: torch.Tensor, judge: Judge, ref: Reference | None = None, n: int = 10_000, seed: int = 0
) -> float:
    """The Frechet distance that *real* digits score when drawn in the proportions ``hist``.

    ``hist`` (10,) is a class histogram, e.g. ``score(x_fake).hist`` of a generator's samples.
    This draws ``n`` MNIST training images whose true labels follow ``hist`` (within a class,
    without replacement while there are enough) and measures their distance to the test set.
    A generator whose every digit were perfect but whose digits came in these proportions
    would score this; the rest of its distance comes from how it draws them. With MNIST's
    own proportions it is about the floor.
    """
    from ..data import load_mnist

    hist = torch.as_tensor(hist, dtype=torch.float64).cpu()
    sums_to_one = math.isclose(float(hist.sum()), 1, abs_tol=1e-6)
    if hist.shape != (NUM_CLASSES,) or (hist < 0).any() or not sums_to_one:
        raise ValueError(
            f"hist must be {NUM_CLASSES} non-negative shares summing to 1 (Scores.hist), "
            f"got shape {tuple(hist.shape)} and sum {float(hist.sum()):.4g}"
        )
    device = next(judge.parameters()).device
    ref = ref if ref is not None else reference(judge)
    x, y = load_mnist(train=True, labels=True)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(hist, n, replacement=True, generator=gen)  # the digit of each pick
    counts = torch.bincount(labels, minlength=NUM_CLASSES)
    picks = []
    for c, k in enumerate(counts.tolist()):
        members = (y == c).nonzero().squeeze(1)
        if k <= members.numel():
            picks.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
        else:  # more of this digit than MNIST holds: some images twice
            picks.append(members[torch.randint(members.numel(), (k,), generator=gen)])
    mu, sigma = feature_stats(predict(judge, x[torch.cat(picks)].to(device))[0])
    return frechet_distance(mu, sigma, ref.mu, ref.sigma)


@dataclass(frozen=True)
class Scores:
    """The judge's numbers for one set of samples."""

    fd: float  # Frechet distance to the test set (judge features)
    floor: float  # the same distance for real training images
    modes: int  # classes with >= 1% of samples
    kl: float  # KL of the class histogram from uniform, nats
    confident: float  # share with top probability >= 0.9
    hist: torch.Tensor = field(compare=False, repr=False)  # (10,) share predicted as each digit

    @property
    def ratio(self) -> float:
        """fd / floor: how many times the real-data floor."""
        return self.fd / self.floor

    def __str__(self) -> str:
        return (
            f"FD {self.fd:.2f} ({self.ratio:.1f}x the floor {self.floor:.2f}), "
            f"modes {self.modes}/10, KL {self.kl:.3f}, confident {self.confident:.0%}"
        )


def score(x_fake: torch.Tensor, judge: Judge | None = None, ref: Reference | None = None) -> Scores:
    """All four numbers for generated images ``x_fake`` (N, 1, 28, 28) in [-1, 1].

    Use N = 10,000 for numbers comparable with the floor (small N inflates the distance).
    """
    _check_images(x_fake)
    judge = judge if judge is not None else load_judge(x_fake.device)
    ref = ref if ref is not None else reference(judge)
    feats, probs = predict(judge, x_fake)
    mu, sigma = feature_stats(feats)
    hist = class_histogram(probs)
    return Scores(
        fd=frechet_distance(mu, sigma, ref.mu, ref.sigma),
        floor=ref.floor,
        modes=modes_covered(probs),
        kl=kl_from_uniform(hist),
        confident=confident_share(probs),
        hist=hist,
    )


# ---------------------------------------------------------------------------------------
# Training the judge (regenerates the shipped weights)
# ---------------------------------------------------------------------------------------


def train_judge(
    epochs: int = 3, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, device: str = "cpu"
) -> Judge:
    """Train a :class:`Judge` on the MNIST training set with Adam and a one-cycle schedule.

    Small random shifts (up to 2 pixels) make it robust to slightly off-centre digits.
    """
    from ..data import load_mnist

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = load_mnist(train=True, device=device, labels=True)
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
    parser.add_argument("--epochs", type=int, default=3)
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
    x_test, y_test = load_mnist(train=False, labels=True)
    print(f"test accuracy {accuracy(judge, x_test, y_test):.4f}")
    print(f"real-data floor (10k train vs test) {reference(judge).floor:.3f}")
    if not math.isfinite(reference(judge).floor):
        raise SystemExit("the floor is not finite: the weights are broken")


if __name__ == "__main__":
    main()
