r"""The latent space (chapters 3, 4 and 7): codes and samples, paths between codes, and a
memorisation check.

* :func:`codes` and :func:`generate` - seeded codes z ~ N(0, I), and G run on them in chunks,
  in eval mode: how every part of the package samples a generator;
* :func:`lerp` - the straight line :math:`z(t) = (1 - t)\,z_0 + t\,z_1`;
* :func:`slerp` - the great circle (Shoemake 1985, used for GANs by White 2016): with
  :math:`\cos\Omega = \hat z_0 \cdot \hat z_1`,

  .. math:: z(t) = \frac{\sin((1 - t)\Omega)}{\sin\Omega} z_0 + \frac{\sin(t\Omega)}{\sin\Omega} z_1 .

  For z ~ N(0, I) in d dimensions, :math:`\lVert z \rVert \approx \sqrt d`: almost all the
  mass lies on a thin shell. The midpoint of a straight line between two codes has norm
  about :math:`\sqrt{d/2}` (two nearly orthogonal vectors of norm sqrt d, averaged), a
  radius where the generator saw no codes in training; the great circle stays on the shell
  when :math:`\lVert z_0 \rVert = \lVert z_1 \rVert` and in between otherwise;
* :func:`nearest_neighbours` - the training images closest (in pixel L2) to generated ones:
  if samples are copies of training images, the distances are near 0;
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .models import check_labels, is_conditional


def codes(n: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """``n`` codes z ~ N(0, I), (n, latent_dim), drawn on the CPU from a generator of their own
    seeded with ``seed``: the same codes on every device, and no global random state touched."""
    if n < 1 or latent_dim < 1:
        raise ValueError(f"n and latent_dim must be positive, got {n}, {latent_dim}")
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


def random_labels(n: int, num_classes: int = 10, seed: int = 0) -> torch.Tensor:
    """``n`` digits drawn uniformly from 0..num_classes-1, (n,) int64, from a CPU generator of their
    own seeded with ``seed`` (the labels a conditional G draws when none are asked for)."""
    return torch.randint(num_classes, (n,), generator=torch.Generator().manual_seed(seed + 7919))


def labels_for(G: nn.Module, n: int, labels: torch.Tensor | int | None, seed: int = 0) -> torch.Tensor:
    """The (n,) digits conditional ``G`` is asked for: ``labels`` (an int for all n, or n digits),
    or uniform random ones (:func:`random_labels`); a ``ValueError`` names a bad one."""
    k = G.num_classes
    if labels is None:
        return random_labels(n, k, seed)
    if isinstance(labels, int) and not isinstance(labels, bool):
        if not 0 <= labels < k:
            raise ValueError(f"the label must be a digit from 0 to {k - 1}, got {labels}")
        return torch.full((n,), labels, dtype=torch.long)
    check_labels(labels, n, k)
    return labels.long().cpu()


@torch.no_grad()
def generate(
    G: nn.Module,
    n: int | None = None,
    z: torch.Tensor | None = None,
    seed: int = 0,
    chunk: int = 1000,
    labels: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """G(z) for the codes ``z``, or for ``n`` codes drawn with ``seed`` (:func:`codes`), in eval
    mode (restored after) and in chunks of ``chunk`` codes to bound memory: (n, ...) on G's device.

    ``G`` needs a ``latent_dim`` attribute when ``z`` is not given. A conditional G (chapter 7)
    draws the digits ``labels`` (:func:`labels_for`: one int, n digits, or uniform random ones);
    an unconditional G given labels raises a ``ValueError``.
    """
    if z is None:
        if n is None:
            raise ValueError("give the number of samples n or the codes z")
        z = codes(n, G.latent_dim, seed)
    device = next(G.parameters()).device
    if is_conditional(G):
        y = labels_for(G, len(z), labels, seed).split(chunk)
    elif labels is not None:
        raise ValueError(
            f"this generator ({type(G).__name__}) is unconditional and cannot be asked for a digit; "
            "drop the labels, or train a conditional model (--recipe cgan)"
        )
    else:
        y = [None] * math.ceil(len(z) / chunk)
    was_training = G.training
    G.eval()
    try:
        chunks = zip(z.split(chunk), y, strict=True)
        return torch.cat([G(c.to(device)) if t is None else G(c.to(device), t.to(device)) for c, t in chunks])
    finally:
        G.train(was_training)


def _check_pair(z0: torch.Tensor, z1: torch.Tensor) -> None:
    if z0.shape != z1.shape or z0.ndim < 1:
        raise ValueError(
            f"z0 and z1 must have the same shape (..., latent_dim), got {tuple(z0.shape)}, {tuple(z1.shape)}"
        )


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` codes on the segment from ``z0`` to ``z1`` (both ends included).

    z0, z1: (latent_dim,) -> (steps, latent_dim); or (B, latent_dim) -> (steps, B, latent_dim).
    """
    _check_pair(z0, z1)
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends), got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).view(-1, *([1] * z0.ndim))
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int, eps: float = 1e-7) -> torch.Tensor:
    """``steps`` codes on the great-circle arc from ``z0`` to ``z1`` (both ends included).

    Shapes as :func:`lerp`. Where the codes are (nearly) parallel, ``sin`` of the angle
    between them below ``eps``, no single arc is defined by the division, and :func:`lerp` is
    returned for that pair: for codes in the same direction the arc is a segment anyway; for
    opposite codes every great half-circle joins them, and the segment through the origin is
    returned (draw another pair: Gaussian codes are almost never opposite).
    """
    _check_pair(z0, z1)
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends), got {steps}")
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).view(-1, *([1] * z0.ndim))
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=-1).clamp(-1, 1).unsqueeze(-1)  # (..., 1)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    small = sin.abs() < eps
    safe = torch.where(small, torch.ones_like(sin), sin)
    arc = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / safe
    return torch.where(small, (1 - t) * z0 + t * z1, arc)


@torch.no_grad()
def nearest_neighbours(
    x_fake: torch.Tensor, x_train: torch.Tensor, k: int = 1, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` training images nearest to each generated image, in pixel L2 distance.

    x_fake (N, C, H, W) and x_train (M, C, H, W) -> ``(distances, indices)``, both (N, k),
    closest first. ``x_train`` is scanned in chunks of ``chunk`` images to bound memory.
    """
    if x_fake.shape[1:] != x_train.shape[1:]:
        raise ValueError(f"images differ in shape: {tuple(x_fake.shape[1:])} vs {tuple(x_train.shape[1:])}")
    if not 1 <= k <= x_train.shape[0]:
        raise ValueError(f"k must be between 1 and the {x_train.shape[0]} training images, got {k}")
    fake = x_fake.flatten(1).float()  # (N, P)
    best_d = torch.full((fake.shape[0], k), float("inf"), device=fake.device)
    best_i = torch.zeros((fake.shape[0], k), dtype=torch.long, device=fake.device)
    for start in range(0, x_train.shape[0], chunk):
        block = x_train[start : start + chunk].flatten(1).float().to(fake.device)  # (m, P)
        d = torch.cdist(fake, block)  # (N, m)
        kk = min(k, block.shape[0])
        d_k, i_k = d.topk(kk, dim=1, largest=False)
        cand_d, cand_i = torch.cat([best_d, d_k], 1), torch.cat([best_i, i_k + start], 1)
        best_d, order = cand_d.topk(k, dim=1, largest=False)
        best_i = cand_i.gather(1, order)
    return best_d, best_i
