"""How a classifier of the judge's architecture is trained (chapters 3 and 7).

:func:`fit_classifier` is the recipe: Adam with a one-cycle schedule and random shifts of up to
2 pixels, counted in steps, seeded, with PyTorch's global random state left as it was.
:func:`train_judge` applies it to MNIST's first :data:`~.splits.JUDGE_TRAIN` training images,
which gives the shipped weights (``python -m gan_tutorial.metrics.judge --train``); chapter 7's
classification accuracy score (:mod:`gan_tutorial.metrics.conditional`) applies it to
generated images and to real ones for the ceiling.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ...data import check_images
from ...models.conditional import check_labels
from ...runtime import isolated
from .network import Judge
from .splits import JUDGE_TRAIN, real_images


def fit_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    shifts: int = 2,
    device: str | torch.device = "cpu",
) -> Judge:
    """A classifier of the judge's architecture trained from scratch on images ``x`` (N, 1, 28,
    28) in [-1, 1] with labels ``y`` (N,): Adam with a one-cycle schedule for ``steps`` batches
    of ``batch_size``, random shifts of up to ``shifts`` pixels (the judge's recipe, counted in
    steps so that every training set gets the same budget). Seeded; the global RNG is untouched."""
    check_images(x, "training images")
    check_labels(y, len(x), what="training labels")
    if steps < 1 or not 0 < batch_size <= len(x):
        raise ValueError(f"need steps >= 1 and 1 <= batch_size <= {len(x)}, got {steps}, {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    with isolated(seed):  # the initial weights, drawn from the global generator
        clf = Judge().to(device)
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    perm, pos = torch.randperm(len(x), generator=gen), 0
    clf.train()
    for _ in range(steps):
        if pos + batch_size > len(x):  # a new epoch; the incomplete last batch is dropped
            perm, pos = torch.randperm(len(x), generator=gen), 0
        idx = perm[pos : pos + batch_size].to(device)
        pos += batch_size
        xb = x[idx]
        if shifts:
            dx, dy = torch.randint(-shifts, shifts + 1, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=(dx, dy), dims=(2, 3))  # digits have a -1 border
        loss = F.cross_entropy(clf(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return clf.eval()


def train_judge(
    epochs: int = 6, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, device: str = "cpu"
) -> Judge:
    """Train a :class:`~.network.Judge` on MNIST's first :data:`~.splits.JUDGE_TRAIN` training
    images with :func:`fit_classifier` for ``epochs`` passes (the rest stay unseen, for the
    references and floors).

    Small random shifts (up to 2 pixels) make it robust to slightly off-centre digits.
    """
    x, y = real_images("train", 0, JUDGE_TRAIN)
    steps = epochs * (JUDGE_TRAIN // batch_size)  # whole batches only
    start = time.time()
    judge = fit_classifier(x, y, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device)
    print(f"{epochs} epochs ({steps:,} steps of {batch_size}) in {time.time() - start:.0f} s")
    return judge
