r"""GAN losses, all computed from logits (the discriminator's pre-sigmoid output).

Sign convention: D is trained so that real inputs get high logits; D(x) = sigmoid(l(x))
is the probability D assigns to "x is real". Every loss function returns a quantity to
*minimise*, averaged over the batch. Chapter 1 (``notebooks/01_minimax.ipynb``) derives
them.

Goodfellow et al. 2014 write the game as min_G max_D V(D, G) with

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

With l a logit, log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l),
which stay finite for any l. The naive forms do not: in float32, ``log(sigmoid(l))`` is
-inf once l <= -89 (exp(89) overflows), and ``log(1 - sigmoid(l))`` already once l >= 17
(sigmoid(17) rounds to 1). Hence:

* discriminator (all cross-entropy games): minimise -V =
  E[softplus(-l_real)] + E[softplus(l_fake)]; at l = 0 both terms are log 2, total log 4.
  This is binary cross-entropy with label 1 for real and 0 for fake inputs.
* minimax ("saturating") generator: minimise V's second term,
  E[log(1 - D(G(z)))] = -E[softplus(l_fake)]. Its gradient dies when D rejects fakes.
* non-saturating generator: minimise -E[log D(G(z))] = E[softplus(-l_fake)].
  D's objective is unchanged; only G's loss differs.
* LSGAN (Mao et al. 2017), a-b-c coding, on raw scores s instead of logits:
  D minimises 1/2 E[(s_real - b)^2] + 1/2 E[(s_fake - a)^2],
  G minimises 1/2 E[(s_fake - c)^2]. These are two objectives, not one min-max value.
  With b - c = 1 and b - a = 2 (e.g. a=-1, b=1, c=0) and D at its optimum
  D*(x) = (b p_data + a p_g) / (p_data + p_g), G's objective plus a term that does not
  depend on G equals 1/2 chi^2_Pearson(p_data + p_g || 2 p_g).
* R1 (Mescheder et al. 2018), a penalty added to D's loss, not a game of its own:
  gamma/2 E_x[||grad_x l(x)||^2] over real x (:func:`r1_penalty`; chapter 4's recipe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _check(name: str, t: object) -> None:
    """Raise a clear error for anything that is not a floating-point tensor."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of D's outputs, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (D's raw outputs), got dtype {t.dtype}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: a loss needs at least one sample")


def value_function(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))] = -E[softplus(-l_real)] - E[softplus(l_fake)].

    The quantity D maximises and G minimises; always <= 0, and -log 4 at zero logits
    (D(x) = 1/2 everywhere). Equal to ``-d_loss_bce(real_logits, fake_logits)``.
    """
    _check("real_logits", real_logits)
    _check("fake_logits", fake_logits)
    return -F.softplus(-real_logits).mean() - F.softplus(fake_logits).mean()


def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))] = softplus(-l_real) + softplus(l_fake), batch means.

    The discriminator's loss in the minimax and non-saturating games: binary
    cross-entropy with label 1 for real and 0 for fake inputs, i.e. -V(D, G).
    log 4 at zero logits.
    """
    _check("real_logits", real_logits)
    _check("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))) = -softplus(l_fake), batch mean: G's side of V (saturating).

    Its derivative with respect to one logit is -sigmoid(l_fake) / n = -D(G(z)) / n, which
    goes to 0 exactly when D confidently rejects the fakes (early training). -log 2 at
    zero logits.
    """
    _check("fake_logits", fake_logits)
    return -F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)) = softplus(-l_fake), batch mean: the non-saturating generator loss.

    Its derivative with respect to one logit is (sigmoid(l_fake) - 1) / n = (D(G(z)) - 1) / n,
    close to -1/n when D rejects the fakes: a strong gradient when G needs it most.
    log 2 at zero logits.
    """
    _check("fake_logits", fake_logits)
    return F.softplus(-fake_logits).mean()


def d_loss_lsgan(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, a: float = -1.0, b: float = 1.0
) -> torch.Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] on raw scores (LSGAN's D loss).

    ``b`` is the target for real inputs, ``a`` for fakes (no sigmoid: D's output is a score).
    """
    _check("real_scores", real_scores)
    _check("fake_scores", fake_scores)
    return 0.5 * ((real_scores - b) ** 2).mean() + 0.5 * ((fake_scores - a) ** 2).mean()


def g_loss_lsgan(fake_scores: torch.Tensor, c: float = 0.0) -> torch.Tensor:
    """1/2 E[(D(G(z)) - c)^2] on raw scores (LSGAN's G loss): ``c`` is the score G wants."""
    _check("fake_scores", fake_scores)
    return 0.5 * ((fake_scores - c) ** 2).mean()


def r1_penalty(
    real_out: torch.Tensor, x_real: torch.Tensor, gamma: float, scaler: torch.amp.GradScaler | None = None
) -> torch.Tensor:
    r"""Mescheder et al. 2018's R1 regulariser for D: gamma / 2 * E_x[ ||grad_x l(x)||^2 ] on real x.

    ``real_out`` holds D's logits l(x), one per real sample, for ``x_real``, which must have
    ``requires_grad`` set before D ran; the expectation is the mean over ``real_out``'s
    elements, so (B, 1) logits of (B, 1, 28, 28) images and an ensemble's (E, B, 1) logits of
    (E, B, 2) points both work. The gradient is taken with ``create_graph=True``, so the
    penalty is differentiable in D's weights and can be added to D's loss. Each logit must
    depend on its own sample only (no batch norm in D): then the gradient of their sum is,
    sample by sample, the gradient of each logit. The penalty pulls D's slope at real images
    towards 0, which damps the oscillation around the equilibrium (for a linear D,
    l(x) = w . x + b, it is gamma / 2 * ||w||^2).

    With a ``GradScaler`` (the fp16 path) the summed logits are scaled before the gradient is
    taken and the gradient unscaled after, as PyTorch's recipe for gradient penalties under
    mixed precision does, so that small slopes do not underflow in fp16.
    """
    if gamma < 0:
        raise ValueError(f"the R1 weight gamma must be >= 0, got {gamma}")
    if not x_real.requires_grad:
        raise ValueError("x_real must have requires_grad=True before D runs on it, to take D's gradient")
    total = real_out.sum()
    if scaler is None:
        (grad,) = torch.autograd.grad(total, x_real, create_graph=True)  # like x_real
    else:
        scale = scaler.scale(torch.ones((), device=total.device))  # the scale S, on the device: no sync
        (grad,) = torch.autograd.grad(scaler.scale(total), x_real, create_graph=True)
        grad = grad / scale  # S * gradient -> gradient
    return 0.5 * gamma * grad.pow(2).sum() / real_out.numel()


@dataclass(frozen=True)
class GANLoss:
    """A pair of losses: ``d(real_out, fake_out)`` for D and ``g(fake_out)`` for G."""

    name: str
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]
    #: True when D's output is a logit (D(x) = sigmoid(out)); False for LSGAN's raw scores.
    logits: bool = True


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss("minimax", d_loss_bce, g_loss_minimax),
    "nonsaturating": GANLoss("nonsaturating", d_loss_bce, g_loss_nonsaturating),
    "lsgan": GANLoss("lsgan", d_loss_lsgan, g_loss_lsgan, logits=False),
}
_ALIASES = {"saturating": "minimax", "ns": "nonsaturating", "non-saturating": "nonsaturating"}


def get_loss(name: str | GANLoss) -> GANLoss:
    """The :class:`GANLoss` called ``name`` (``minimax``, ``nonsaturating``, ``lsgan``).

    A :class:`GANLoss` passes through unchanged. Raises ``ValueError`` naming the known
    losses for anything else.
    """
    if isinstance(name, GANLoss):
        return name
    known = ", ".join(list(LOSSES) + list(_ALIASES))
    if not isinstance(name, str):
        raise ValueError(
            f"a loss is named by a string or given as a GANLoss, got {name!r}; known losses: {known}"
        )
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {known}")
    return LOSSES[key]
