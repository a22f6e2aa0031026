r"""Anomaly detection with a GAN trained on normal data only, and the baselines it must beat
(chapter 8, ``notebooks/08b_gans_as_tools.ipynb``): train on nine digits, score the tenth.

* **f-AnoGAN** (Schlegl et al. 2019): after G (and D) are trained, an encoder E is trained
  with G and D frozen to map an image to the code G redraws it from, by minimising the
  *izi_f* residual, which is also the anomaly score (:func:`izif_score`):

  .. math:: A(x) = \frac{1}{n} \lVert x - G(E(x)) \rVert^2
            + \frac{\kappa}{n_d} \lVert f(x) - f(G(E(x))) \rVert^2,

  n = 784 pixels, f D's features before its last layer (:func:`d_features`), n_d their number.
  A digit G never learned to draw should be redrawn badly, so score high.
* **Baselines**: an autoencoder of the same encoder and G bodies trained on the same nine digits
  (its mean squared reconstruction error, :func:`reconstruction_error`), and the mean distance to
  the k nearest training images (:func:`knn_score`), on raw pixels or on any features.
* **AUROC** (:func:`auroc`): the probability that a random anomaly scores above a random normal
  image, ties counting one half (the Mann-Whitney statistic); 0.5 is chance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .data import check_images, random_batches
from .models.dcgan import DCGANDiscriminator, DCGANGenerator
from .runtime import isolated
from .updates import History


class Encoder(nn.Module):
    """E: (B, 1, 28, 28) in [-1, 1] -> (B, latent_dim) codes: the DCGAN D's body (no batch norm,
    ``extra_layers`` 3 x 3 convolutions at 7 x 7) whose last 7 x 7 convolution outputs a code
    instead of a logit."""

    def __init__(self, latent_dim: int = 100, ndf: int = 32, extra_layers: int = 1) -> None:
        super().__init__()
        body = DCGANDiscriminator(ndf, 0.0, batch_norm=False, extra_layers=extra_layers)
        self.net = nn.Sequential(*body.net[:-2], nn.Conv2d(2 * ndf, latent_dim, 7), nn.Flatten())
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"the encoder takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.net(x)


def d_features(D: nn.Module) -> nn.Module:
    """D's layers up to its last convolution, flattened: x (B, 1, 28, 28) -> f(x) (B, n_d). Shares
    D's weights (a view, not a copy). ``D`` is a :class:`~gan_tutorial.models.dcgan.DCGANDiscriminator`."""
    if not isinstance(D, DCGANDiscriminator):
        raise TypeError(f"D's features are taken from a DCGANDiscriminator, got {type(D).__name__}")
    return nn.Sequential(*D.net[:-2], nn.Flatten())


def izif_score(
    x: torch.Tensor, x_rec: torch.Tensor, f_x: torch.Tensor, f_rec: torch.Tensor, kappa: float = 1.0
) -> torch.Tensor:
    """f-AnoGAN's izi_f score per image (B,): the mean squared pixel residual between ``x`` and its
    redrawing ``x_rec`` plus ``kappa`` times the mean squared residual of their D features."""
    if x.shape != x_rec.shape or f_x.shape != f_rec.shape or len(f_x) != len(x):
        raise ValueError(
            "izif_score needs x and x_rec of one shape and f_x and f_rec of one shape, one row per image; "
            f"got {tuple(x.shape)}, {tuple(x_rec.shape)}, {tuple(f_x.shape)}, {tuple(f_rec.shape)}"
        )
    pixels = (x - x_rec).pow(2).flatten(1).mean(1)
    return pixels + kappa * (f_x - f_rec).pow(2).flatten(1).mean(1)


def _izif_of(x: torch.Tensor, G: nn.Module, E: nn.Module, features: nn.Module, kappa: float) -> torch.Tensor:
    x_rec = G(E(x))  # (B, 1, 28, 28): x redrawn from its code
    return izif_score(x, x_rec, features(x), features(x_rec), kappa)


def _fit(
    module: nn.Module,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    x_train: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    log_every: int,
) -> History:
    """Adam on ``module``'s parameters, minimising ``loss_of(batch)`` over seeded batches of ``x_train``."""
    check_images(x_train, "training images")
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    device = next(module.parameters()).device
    opt = torch.optim.Adam(module.parameters(), lr=lr, betas=(0.5, 0.999))
    batches = random_batches(x_train, batch_size, torch.Generator().manual_seed(seed))
    history, window = History(), []
    module.train()
    with isolated(seed=seed + 1):
        for step in range(1, steps + 1):
            loss = loss_of(next(batches).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            window.append(float(loss.detach()))
            if step % log_every == 0 or step == steps:
                history.append(step, {"loss": sum(window) / len(window)})
                window = []
    module.eval()
    return history


def train_encoder(
    E: Encoder,
    G: nn.Module,
    D: DCGANDiscriminator,
    x_train: torch.Tensor,
    steps: int,
    kappa: float = 1.0,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    log_every: int = 50,
) -> History:
    """f-AnoGAN's second stage: train ``E`` alone on normal images ``x_train`` to minimise the mean
    izi_f score through the trained ``G`` and ``D``, which stay frozen (eval mode, no gradients
    into their weights; D's features as :func:`d_features`). Returns the loss per ``log_every`` steps."""
    G.eval().requires_grad_(False)
    D.eval().requires_grad_(False)
    features = d_features(D)
    return _fit(
        E,
        lambda xb: _izif_of(xb, G, E, features, kappa).mean(),
        x_train,
        steps,
        lr,
        batch_size,
        seed,
        log_every,
    )


@torch.no_grad()
def anomaly_scores(
    x: torch.Tensor, G: nn.Module, E: Encoder, D: DCGANDiscriminator, kappa: float = 1.0
) -> torch.Tensor:
    """The izi_f score of each image of ``x`` (N, 1, 28, 28) under frozen ``G``, ``E``, ``D``: (N,)."""
    check_images(x)
    for m in (G, E, D):
        m.eval()
    features = d_features(D)
    device = next(E.parameters()).device
    return torch.cat([_izif_of(c.to(device), G, E, features, kappa).cpu() for c in x.split(500)])


def autoencoder(latent_dim: int = 100, ngf: int = 24, ndf: int = 32) -> nn.Sequential:
    """The baseline: :class:`Encoder` then chapter 4's G body (:class:`DCGANGenerator`), trained
    together on the reconstruction error alone."""
    return nn.Sequential(Encoder(latent_dim, ndf), DCGANGenerator(latent_dim, ngf, batch_norm=True))


def train_autoencoder(
    ae: nn.Module, x_train: torch.Tensor, steps: int, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
    log_every: int = 50,
) -> History:  # fmt: skip
    """Train ``ae`` on normal images ``x_train`` to minimise the mean squared reconstruction error."""
    return _fit(ae, lambda xb: (ae(xb) - xb).pow(2).mean(), x_train, steps, lr, batch_size, seed, log_every)


@torch.no_grad()
def reconstruction_error(ae: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The mean squared error of ``ae``'s reconstruction of each image of ``x``, (N,), in eval mode."""
    check_images(x)
    ae.eval()
    device = next(ae.parameters()).device
    return torch.cat(
        [(ae(c.to(device)) - c.to(device)).pow(2).flatten(1).mean(1).cpu() for c in x.split(500)]
    )


@torch.no_grad()
def knn_score(train_feats: torch.Tensor, test_feats: torch.Tensor, k: int = 5) -> torch.Tensor:
    """The mean Euclidean distance from each row of ``test_feats`` (N, F) to its ``k`` nearest rows of
    ``train_feats`` (M, F): (N,). Flatten images to rows (``x.flatten(1)``) for raw pixels."""
    if train_feats.ndim != 2 or test_feats.ndim != 2 or train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"knn_score takes rows of features (M, F) and (N, F), got {tuple(train_feats.shape)}, "
            f"{tuple(test_feats.shape)}: flatten images with x.flatten(1)"
        )
    if not 1 <= k <= len(train_feats):
        raise ValueError(f"k must be between 1 and the {len(train_feats)} training rows, got {k}")
    return torch.cat(
        [torch.cdist(c, train_feats).topk(k, largest=False).values.mean(1) for c in test_feats.split(500)]
    )


def auroc(scores: torch.Tensor, is_anomaly: torch.Tensor) -> float:
    """The area under the ROC curve of ``scores`` (N,) (higher: more anomalous) for the 0/1 or boolean
    labels ``is_anomaly`` (N,): the share of (anomaly, normal) pairs in which the anomaly scores
    higher, a tie counting one half."""
    if scores.ndim != 1 or is_anomaly.shape != scores.shape:
        raise ValueError(
            f"give one score and one label per image, got {tuple(scores.shape)}, {tuple(is_anomaly.shape)}"
        )
    labels = is_anomaly.bool()
    pos, neg = scores[labels].double(), scores[~labels].double()
    if not len(pos) or not len(neg):
        raise ValueError("the AUROC needs at least one anomaly and one normal image")
    wins = sum(
        float((p[:, None] > neg).sum() + 0.5 * (p[:, None] == neg).sum()) for p in pos.split(1000)
    )  # (chunk, N_neg) comparisons at a time
    return wins / (len(pos) * len(neg))
