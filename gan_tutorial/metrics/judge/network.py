"""The judge's network (chapter 3): a small MNIST classifier, its shipped weights, and what it
sees in a set of images: features, class probabilities, the class histogram.

Chapter 5 plugs it into ``torchmetrics`` (:class:`JudgeFeatures`, :class:`JudgeLogits`);
chapter 7 trains classifiers of the same architecture (:mod:`.training`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...data import check_images

#: Where the shipped weights live (package data).
WEIGHTS_PATH = Path(__file__).resolve().parents[2] / "weights" / "mnist_judge.pt"
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


@torch.no_grad()
def predict(judge: Judge, x: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, probs)`` for images ``x`` (N, 1, 28, 28) in [-1, 1]: (N, 64) and (N, 10)."""
    check_images(x)
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
