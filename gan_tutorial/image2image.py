r"""Image to image with a conditional GAN (Isola et al. 2017, "pix2pix"), on MNIST digits whose
lower half is hidden: the task, the pix2pix training step and the measures of chapter 8
(``notebooks/08b_gans_as_tools.ipynb``). The networks are in :mod:`gan_tutorial.models.pix2pix`.

* **The task**: :func:`mask_lower` blanks rows 14-27 of each digit to -1 (the background), and
  G's output replaces only those rows (:func:`paste`): the upper half a completion shows is
  the input's own.
* **The objective**: D is trained on pairs (input, image) with any loss of
  :mod:`gan_tutorial.losses` (its logits are one per patch); G minimises

  .. math:: L_G = \ell_{adv}(D(x_{cond}, G(x_{cond}))) + \lambda \, \mathrm{mean}\,|G(x_{cond}) - x|,

  :func:`generator_loss`, with the L1 mean taken over all 784 pixels of the pasted image (the
  upper half contributes zero). ``adversarial=False`` trains on the L1 term alone: the
  conditional median of each pixel, which is grey where the lower half is uncertain.
* **The measures** (:func:`measure`): sharpness (the mean gradient magnitude of the lower half),
  saturation (its share of pixels within 0.25 of -1 or 1), the judge's accuracy against the
  true digits and the FD (judge features) against a reference; :func:`diversity`, the spread of
  K completions of one input with dropout on, beside :func:`nearest_spread`, the spread of the
  real lower halves whose upper halves are nearest to the input's.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import check_images, random_batches
from .losses import GANLoss, get_loss
from .metrics.frechet import frechet_distance_of_features
from .metrics.judge import Judge, predict
from .runtime import isolated
from .updates import History

#: The first hidden row: rows MASK_ROW..27, the lower half, are what G fills in.
MASK_ROW = 14
#: A pixel counts as saturated within this distance of -1 or 1 (:func:`saturation`).
SATURATION_TOL = 0.25


def mask_lower(x: torch.Tensor) -> torch.Tensor:
    """Digits ``x`` (N, 1, 28, 28) in [-1, 1] with the lower half (rows 14-27) set to -1: G's input."""
    check_images(x, "digits to mask")
    x_cond = x.clone()
    x_cond[:, :, MASK_ROW:] = -1.0
    return x_cond


def paste(x_cond: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The input's upper half above ``out``'s lower half, (N, 1, 28, 28): a completion."""
    if x_cond.shape != out.shape:
        raise ValueError(
            f"the input and G's output must have one shape, got {tuple(x_cond.shape)}, {tuple(out.shape)}"
        )
    return torch.cat([x_cond[:, :, :MASK_ROW], out[:, :, MASK_ROW:]], dim=2)


def complete(G: nn.Module, x_cond: torch.Tensor) -> torch.Tensor:
    """G's completion of masked digits ``x_cond`` (N, 1, 28, 28): :func:`paste` of G(x_cond)."""
    return paste(x_cond, G(x_cond))


def l1(x_fake: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """The mean absolute difference over every pixel of the batch."""
    return (x_fake - x_real).abs().mean()


def generator_loss(
    fake_logits: torch.Tensor,
    x_fake: torch.Tensor,
    x_real: torch.Tensor,
    lam: float = 100.0,
    loss: str | GANLoss = "nonsaturating",
) -> torch.Tensor:
    """pix2pix's G loss: ``loss``'s G term on D's patch logits plus ``lam`` times the mean L1."""
    return get_loss(loss).generator_loss(fake_logits) + lam * l1(x_fake, x_real)


def pix2pix_step(
    G: nn.Module,
    D: nn.Module | None,
    opt_G: torch.optim.Optimizer,
    opt_D: torch.optim.Optimizer | None,
    x_real: torch.Tensor,
    lam: float = 100.0,
    loss: str | GANLoss = "nonsaturating",
) -> dict[str, float]:
    """One D update and one G update on real digits ``x_real`` (B, 1, 28, 28); returns the losses.

    ``D=None`` (and ``opt_D=None``) trains G on the L1 term alone (the regression baseline)."""
    gan_loss = get_loss(loss)
    x_cond = mask_lower(x_real)  # (B, 1, 28, 28): the upper halves
    x_fake = complete(G, x_cond)
    stats = {}
    if D is not None:
        # (1) D: real pairs (x_cond, x_real) get high logits, pairs with G's completion low
        real_logits, fake_logits = D(x_cond, x_real), D(x_cond, x_fake.detach())  # (B, 1, 7, 7) each
        d_loss = gan_loss.d(real_logits, fake_logits)
        opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_D.step()
        # (2) G: fool the updated D on every patch, and stay near the true lower half in L1
        g_loss = generator_loss(D(x_cond, x_fake), x_fake, x_real, lam, gan_loss)
        stats["d_loss"] = float(d_loss.detach())
    else:
        g_loss = l1(x_fake, x_real)
    opt_G.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_G.step()
    stats["g_loss"] = float(g_loss.detach())
    stats["l1"] = float(l1(x_fake.detach(), x_real))
    return stats


def train_pix2pix(
    G: nn.Module,
    D: nn.Module | None,
    x_train: torch.Tensor,
    steps: int,
    lam: float = 100.0,
    batch_size: int = 32,
    lr: float = 2e-4,
    seed: int = 0,
    log_every: int = 50,
) -> History:
    """Train ``G`` (and ``D`` unless ``None``: then L1 alone) by :func:`pix2pix_step` for ``steps``
    steps of Adam (``lr``, betas (0.5, 0.999) as chapter 4's) on batches of digits ``x_train``;
    batches and dropout are seeded with ``seed``, the caller's random state left as it was.
    Returns the losses, averaged over each ``log_every`` steps."""
    check_images(x_train, "training digits")
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    device = next(G.parameters()).device
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)) if D is not None else None
    batches = random_batches(x_train, batch_size, torch.Generator().manual_seed(seed))
    history, window = History(), []
    G.train()
    if D is not None:
        D.train()
    with isolated(seed=seed + 1):  # dropout's draws
        for step in range(1, steps + 1):
            window.append(pix2pix_step(G, D, opt_G, opt_D, next(batches).to(device), lam))
            if step % log_every == 0 or step == steps:
                history.append(step, {k: sum(w[k] for w in window) / len(window) for k in window[0]})
                window = []
    return history


# -- measures --------------------------------------------------------------------------------


def _lower(x: torch.Tensor) -> torch.Tensor:
    check_images(x)
    return x[:, :, MASK_ROW:]


def sharpness(x: torch.Tensor) -> torch.Tensor:
    """Per image (N,): the mean gradient magnitude sqrt(dx^2 + dy^2) of the lower half, by forward
    differences between neighbouring pixels. A blurred stroke has gentler edges, hence a lower value."""
    check_images(x)
    dx = x[:, :, MASK_ROW:, 1:] - x[:, :, MASK_ROW:, :-1]  # (N, 1, 14, 27)
    dy = x[:, :, MASK_ROW:, :] - x[:, :, MASK_ROW - 1 : -1, :]  # (N, 1, 14, 28): row 13 to 14 counts
    return (dx.pow(2) + dy[..., 1:].pow(2)).sqrt().flatten(1).mean(1)  # (N, 1, 14, 27) -> (N,)


def saturation(x: torch.Tensor, tol: float = SATURATION_TOL) -> torch.Tensor:
    """Per image (N,): the share of lower-half pixels within ``tol`` of -1 (ink-free) or 1 (ink).
    Real MNIST strokes are mostly saturated; grey, uncertain pixels are what blur looks like."""
    lower = _lower(x)
    return ((lower + 1).abs() <= tol).logical_or((lower - 1).abs() <= tol).float().flatten(1).mean(1)


@torch.no_grad()
def diversity(G: nn.Module, x_cond: torch.Tensor, k: int = 8, seed: int = 0) -> torch.Tensor:
    """Per input (N,): the standard deviation over ``k`` completions of each pixel of the lower
    half, averaged over the pixels; dropout on (``G.train()``), as pix2pix samples at test time."""
    check_images(x_cond, "masked digits")
    if k < 2:
        raise ValueError(f"a spread needs k >= 2 completions, got {k}")
    was_training = G.training
    G.train()
    try:
        with isolated(seed=seed):
            samples = torch.stack(
                [complete(G, x_cond)[:, :, MASK_ROW:] for _ in range(k)]
            )  # (k, N, 1, 14, 28)
    finally:
        G.train(was_training)
    return samples.std(dim=0).flatten(1).mean(1)


@torch.no_grad()
def nearest_spread(x_query: torch.Tensor, x_pool: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Per query (N,): the spread of real completions, the pixel standard deviation of the lower
    halves of the ``k`` pool digits whose upper halves are nearest (L2) to the query's, averaged
    over the pixels as :func:`diversity` does. A query in the pool finds itself among them."""
    check_images(x_query, "query digits")
    check_images(x_pool, "pool digits")
    if not 2 <= k <= len(x_pool):
        raise ValueError(f"k must be between 2 and the {len(x_pool)} pool digits, got {k}")
    top_pool = x_pool[:, :, :MASK_ROW].flatten(1)
    spreads = []
    for q in x_query.split(500):
        nearest = (
            torch.cdist(q[:, :, :MASK_ROW].flatten(1), top_pool).topk(k, largest=False).indices
        )  # (n, k)
        spreads.append(x_pool[:, :, MASK_ROW:][nearest].std(dim=1).flatten(1).mean(1))  # (n,)
    return torch.cat(spreads)


def measure(judge: Judge, x: torch.Tensor, labels: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """The numbers chapter 8 reports for completed digits ``x`` (N, 1, 28, 28): mean sharpness and
    saturation, the judge's accuracy against ``labels`` (N,) and the FD (judge features) against the
    ``reference`` features (M, 64)."""
    if labels.shape != (len(x),):
        raise ValueError(f"give one label per digit: {len(x)} digits, labels of shape {tuple(labels.shape)}")
    feats, probs = predict(judge, x)
    return {
        "sharpness": float(sharpness(x).mean()),
        "saturation": float(saturation(x).mean()),
        "accuracy": float((probs.argmax(1).cpu() == labels.cpu()).float().mean()),
        "fd": frechet_distance_of_features(feats.cpu(), reference.cpu()),
    }
