"""Does a conditional generator obey? Chapter 7's measures, all from real MNIST and the judge.

* :func:`obedience` - the judge's verdict on samples asked for each digit: a confusion matrix
  (rows: the digit asked for; columns: the digit the judge sees, counted by
  ``torchmetrics``), each digit's share recognised and their mean;
* :func:`per_class_fd` - the Frechet distance in the judge's features, "FD (judge features)"
  (not an FID, which uses Inception's), between the samples asked for digit k and the real
  images of digit k in the reference, beside what as many real images of digit k score (the
  floor of each class). The pooled distance of all samples is not a sum or a mean of these:
  the digits' means and proportions enter it too; and each is estimated from ~1/10 of the
  samples, so it sits higher (its floor too): read the ratios to the floors;
* :func:`classification_accuracy_score` and :func:`test_accuracy` - the classification
  accuracy score of Ravuri & Vinyals 2019 (CAS): a classifier trained on generated images and
  the digits they were asked for only, tested on real test images. The same classifier trained
  on real images gives the ceiling; every set is trained with the judge's recipe
  (:func:`gan_tutorial.metrics.judge.fit_classifier`) for the same number of steps.

Every image set goes through the same checks (:func:`gan_tutorial.data.check_images`: shape
(N, 1, 28, 28), floats in [-1, 1]). A range check cannot catch everything: images in [0, 1] lie
inside [-1, 1], and a classifier trained on [-1, 1] and tested on [0, 1] loses accuracy with no
error raised (chapter 7 shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

from ..data import check_images
from ..models.conditional import NUM_CLASSES, check_labels
from .frechet import feature_stats, frechet_distance
from .judge.network import Judge, predict
from .judge.scores import floor_pool
from .judge.splits import SPLITS, check_split, real_images
from .judge.training import fit_classifier


@dataclass(frozen=True)
class Obedience:
    """The judge's verdict on samples asked for known digits."""

    confusion: torch.Tensor  # (10, 10) counts: row = digit asked for, column = digit the judge sees

    @property
    def per_class(self) -> torch.Tensor:
        """(10,) share of each asked digit's samples that the judge calls that digit."""
        return self.confusion.diag() / self.confusion.sum(1).clamp_min(1)

    @property
    def accuracy(self) -> float:
        """The mean of :attr:`per_class`: the share recognised, each digit weighing the same."""
        return float(self.per_class.mean())

    @property
    def worst(self) -> tuple[int, float]:
        """The digit recognised least often and its share."""
        k = int(self.per_class.argmin())
        return k, float(self.per_class[k])

    def __str__(self) -> str:
        k, worst = self.worst
        return (
            f"the judge sees the digit asked for in {self.accuracy:.1%} of samples (worst: {k}, {worst:.1%})"
        )


def balanced_labels(n_per_class: int, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(n_per_class * num_classes,) digits: n_per_class of each, in the order 0, 1, ..., 9, 0, 1, ..."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    return torch.arange(n_per_class * num_classes) % num_classes


def obedience(judge: Judge, x: torch.Tensor, asked: torch.Tensor) -> Obedience:
    """The judge's confusion matrix for images ``x`` (N, 1, 28, 28) in [-1, 1] asked to be ``asked`` (N,)."""
    check_images(x, "samples")
    check_labels(asked, len(x), what="the digits asked for")
    _, probs = predict(judge, x)
    seen = probs.argmax(1).cpu()
    return Obedience(multiclass_confusion_matrix(seen, asked.cpu(), NUM_CLASSES))


@dataclass(frozen=True)
class PerClassFD:
    """Per digit: the samples' FD (judge features) to the reference's images of that digit, and the floor."""

    fd: torch.Tensor  # (10,)
    floor: torch.Tensor  # (10,) as many real images of the digit, against the same reference

    @property
    def ratio(self) -> torch.Tensor:
        return self.fd / self.floor


def per_class_fd(judge: Judge, x: torch.Tensor, asked: torch.Tensor, split: str = "val") -> PerClassFD:
    """:class:`PerClassFD` of samples ``x`` asked to be ``asked``: for each digit k, the Frechet
    distance in the judge's features between the samples asked for k and the reference ``split``'s
    images of digit k, and the floor: the same distance for as many real images of digit k
    from the floor pool (:func:`~gan_tutorial.metrics.judge.floor_pool`), never seen by the judge."""
    check_images(x, "samples")
    check_labels(asked, len(x), what="the digits asked for")
    check_split(split)
    feats = predict(judge, x)[0].cpu()
    x_ref, y_ref = real_images(*SPLITS[split])
    ref_feats = predict(judge, x_ref.to(next(judge.parameters()).device))[0].cpu()
    pool_feats, pool_y = floor_pool(judge, split)
    pool_feats, pool_y = pool_feats.cpu(), pool_y.cpu()
    gen = torch.Generator().manual_seed(0)
    fd, floor = [], []
    for k in range(NUM_CLASSES):
        mine, ref = feats[asked.cpu() == k], ref_feats[y_ref == k]
        members = (pool_y == k).nonzero().squeeze(1)
        n = min(len(mine), len(members))
        if n < 2:
            raise ValueError(
                f"digit {k} has {len(mine)} samples; a per-digit distance needs at least 2 of each"
            )
        real = pool_feats[members[torch.randperm(len(members), generator=gen)[:n]]]
        mu, sigma = feature_stats(ref)
        fd.append(frechet_distance(*feature_stats(mine), mu, sigma))
        floor.append(frechet_distance(*feature_stats(real), mu, sigma))
    return PerClassFD(torch.tensor(fd), torch.tensor(floor))


@torch.no_grad()
def test_accuracy(clf: Judge, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> float:
    """The share of images ``x`` (default: the 10,000 MNIST test images) that ``clf`` labels ``y``."""
    if x is None:
        x, y = real_images("test", 0, 10_000)
    check_images(x, "test images")
    check_labels(y, len(x), what="test labels")
    device = next(clf.parameters()).device
    preds = torch.cat([clf(c.to(device)).argmax(1).cpu() for c in x.split(2000)])
    return float((preds == y.cpu()).float().mean())


def classification_accuracy_score(
    x_fake: torch.Tensor, asked: torch.Tensor, steps: int = 2000, seed: int = 0, **kwargs
) -> tuple[float, Judge]:
    """CAS (Ravuri & Vinyals 2019): the MNIST test accuracy of a classifier trained with
    :func:`~.judge.fit_classifier` on generated images ``x_fake`` labelled with the digits they
    were ``asked`` for, and the classifier. Train the same way on real images for the ceiling."""
    clf = fit_classifier(x_fake, asked, steps=steps, seed=seed, **kwargs)
    return test_accuracy(clf), clf
