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
  gamma/2 E_x[||grad_x l(x)||^2] over real x (:func:`r1_penalty`; chapter 4's recipe), and R2,
  the same at the fakes (:func:`r2_penalty`).

Chapter 6's stabilisers, on raw scores s (a critic's output, not a probability):

* WGAN (Arjovsky et al. 2017): the critic maximises E[s_real] - E[s_fake], i.e. minimises
  E[s_fake] - E[s_real]; G minimises -E[s_fake]. The critic must stay (about) 1-Lipschitz:
  clip its weights (WGAN) or add the gradient penalty of Gulrajani et al. 2017
  (:func:`gradient_penalty`: lambda E[(||grad s(x_hat)||_2 - 1)^2] at points x_hat on the
  segments between real and fake pairs; WGAN-GP).
* hinge (Lim & Ye 2017; Miyato et al. 2018): D minimises E[relu(1 - s_real)] + E[relu(1 + s_fake)],
  G minimises -E[s_fake].
* relativistic pairing, RpGAN (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024): each fake is
  paired with a real sample and the logit is their difference, so D minimises
  E[softplus(-(s_real - s_fake))] and G minimises E[softplus(-(s_fake - s_real))]. G's loss
  needs D's scores of real images too (:meth:`GANLoss.generator_loss`). R3GAN adds R1 and R2.
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


def d_loss_bce_smoothed(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """D's cross-entropy with one-sided label smoothing (Salimans et al. 2016): real targets
    1 - ``smoothing``, fake targets 0 (smoothing the fakes' targets too would reward D for
    leaving fakes where they are). Binary cross-entropy with target t on a logit l is
    t softplus(-l) + (1 - t) softplus(l); ``smoothing=0`` gives :func:`d_loss_bce`."""
    _check("real_logits", real_logits)
    _check("fake_logits", fake_logits)
    if not 0 <= smoothing < 1:
        raise ValueError(f"label smoothing must be in [0, 1), got {smoothing}")
    t = 1.0 - smoothing
    real = t * F.softplus(-real_logits) + (1 - t) * F.softplus(real_logits)
    return real.mean() + F.softplus(fake_logits).mean()


def d_loss_wgan(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[s_fake] - E[s_real]: the critic's loss of WGAN (it maximises E[s_real] - E[s_fake], an
    estimate of the Wasserstein-1 distance when the critic is 1-Lipschitz). 0 at equal scores."""
    _check("real_scores", real_scores)
    _check("fake_scores", fake_scores)
    return fake_scores.mean() - real_scores.mean()


def g_loss_wgan(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[s_fake]: G raises the critic's score of its samples (WGAN, WGAN-GP and the hinge loss)."""
    _check("fake_scores", fake_scores)
    return -fake_scores.mean()


def d_loss_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[relu(1 - s_real)] + E[relu(1 + s_fake)]: the hinge loss; 2 at zero scores, 0 once every
    real score is >= 1 and every fake score <= -1 (D stops pushing past the margin)."""
    _check("real_scores", real_scores)
    _check("fake_scores", fake_scores)
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def d_loss_relativistic(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[softplus(-(s_real - s_fake))], pair i with pair i: RpGAN's D loss. log 2 at equal scores."""
    _check("real_scores", real_scores)
    _check("fake_scores", fake_scores)
    if real_scores.shape != fake_scores.shape:
        raise ValueError(
            "the relativistic loss pairs each real sample with a fake one: give as many of each, got "
            f"shapes {tuple(real_scores.shape)} and {tuple(fake_scores.shape)}"
        )
    return F.softplus(fake_scores - real_scores).mean()


def g_loss_relativistic(fake_scores: torch.Tensor, real_scores: torch.Tensor) -> torch.Tensor:
    """E[softplus(-(s_fake - s_real))]: RpGAN's G loss, the D loss with the roles swapped."""
    return d_loss_relativistic(fake_scores, real_scores)


def input_gradients(
    total: torch.Tensor, inputs: list[torch.Tensor], scaler: torch.amp.GradScaler | None = None
) -> list[torch.Tensor]:
    """The gradients of the scalar ``total`` with respect to each of ``inputs`` (each must have
    ``requires_grad``), with ``create_graph=True`` so that a penalty built from them trains D.

    With a ``GradScaler`` (the fp16 path) ``total`` is scaled before the gradient is taken and
    the gradients unscaled after, as PyTorch's recipe for gradient penalties under mixed
    precision does, so that small slopes do not underflow in fp16.
    """
    if scaler is None:
        return list(torch.autograd.grad(total, inputs, create_graph=True))
    scale = scaler.scale(torch.ones((), device=total.device))  # the scale S, on the device: no sync
    return [g / scale for g in torch.autograd.grad(scaler.scale(total), inputs, create_graph=True)]


def zero_centered(grad: torch.Tensor, gamma: float, n: int) -> torch.Tensor:
    """R1's and R2's formula on a gradient already taken: gamma / 2 * sum ||grad||^2 / n, the mean
    over the ``n`` scores whose summed gradient ``grad`` is (:func:`zero_centered_penalty`)."""
    return 0.5 * gamma * grad.pow(2).sum() / n


def one_centered(grad: torch.Tensor, weight: float) -> torch.Tensor:
    """WGAN-GP's formula on a gradient already taken: weight * E[(||grad_i||_2 - 1)^2], one norm per
    sample over its whole flattened image (:func:`gradient_penalty`)."""
    norms = grad.flatten(1).norm(2, dim=1)  # (B,): one norm per sample, over its whole image
    return weight * (norms - 1).pow(2).mean()


def zero_centered_penalty(
    out: torch.Tensor, x: torch.Tensor, gamma: float, scaler: torch.amp.GradScaler | None = None
) -> torch.Tensor:
    """gamma / 2 * E[ ||grad_x out||^2 ] with the mean over ``out``'s elements: R1 at real images,
    R2 at fakes (:func:`input_gradients` takes the gradient, :func:`zero_centered` is the formula)."""
    if gamma < 0:
        raise ValueError(f"the penalty's weight gamma must be >= 0, got {gamma}")
    if not x.requires_grad:
        raise ValueError("x must have requires_grad=True before D runs on it, to take D's gradient")
    (grad,) = input_gradients(out.sum(), [x], scaler)  # like x
    return zero_centered(grad, gamma, out.numel())


def r2_penalty(
    fake_out: torch.Tensor, x_fake: torch.Tensor, gamma: float, scaler: torch.amp.GradScaler | None = None
) -> torch.Tensor:
    """R2: gamma / 2 * E[ ||grad_x l(x)||^2 ] at the fakes (Mescheder et al. 2018; with R1, R3GAN's
    regulariser). ``x_fake`` must be a leaf with ``requires_grad`` (detached from G)."""
    return zero_centered_penalty(fake_out, x_fake, gamma, scaler)


def interpolates(
    x_real: torch.Tensor, x_fake: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_hat, eps)``: x_hat = eps x_real + (1 - eps) x_fake with ONE weight eps ~ U[0, 1] per
    sample (shape (B, 1, ..., 1)), so every x_hat lies on the segment between its real and fake
    pair, as Gulrajani et al. 2017's Algorithm 1 draws it (a weight per pixel would not)."""
    if x_real.shape != x_fake.shape:
        raise ValueError(
            "real and fake batches must have the same shape, got "
            f"{tuple(x_real.shape)} and {tuple(x_fake.shape)}"
        )
    shape = (x_real.shape[0],) + (1,) * (x_real.ndim - 1)
    eps = torch.rand(shape, generator=generator, device=x_real.device, dtype=x_real.dtype)
    return eps * x_real.detach() + (1 - eps) * x_fake.detach(), eps


def gradient_penalty(
    out: torch.Tensor, x_hat: torch.Tensor, weight: float = 10.0, scaler: torch.amp.GradScaler | None = None
) -> torch.Tensor:
    r"""WGAN-GP's penalty: weight * E[(||grad_{x_hat} s(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017).

    ``out`` holds the critic's scores (B, 1) of ``x_hat`` (:func:`interpolates`), which must have
    ``requires_grad`` set before the critic ran. The norm is taken over each sample's whole
    flattened image (all of C x H x W), one norm per sample, and the default weight is the
    paper's lambda = 10. The critic must have no batch norm: each score must depend on its
    own x_hat only (the paper uses layer norm or none). One-centred, unlike R1 and R2: it pulls
    the critic's slope towards 1 between the distributions, where R1 pulls it towards 0 at
    the real data.
    """
    if weight < 0:
        raise ValueError(f"the gradient penalty's weight must be >= 0, got {weight}")
    if not x_hat.requires_grad:
        raise ValueError("x_hat must have requires_grad=True before the critic runs on it")
    (grad,) = input_gradients(out.sum(), [x_hat], scaler)
    return one_centered(grad, weight)


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
    return zero_centered_penalty(real_out, x_real, gamma, scaler)


@dataclass(frozen=True)
class GANLoss:
    """A pair of losses: ``d(real_out, fake_out)`` for D and ``g(fake_out)`` for G."""

    name: str
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[..., torch.Tensor]
    #: True when D's output is a logit (D(x) = sigmoid(out)); False for raw scores (LSGAN, WGAN,
    #: hinge, RpGAN), whose monitors then show the mean score instead of a probability.
    logits: bool = True
    #: True when G's loss needs D's scores of real images too (relativistic: ``g(fake, real)``).
    relativistic: bool = False
    #: the gradient penalty's weight this loss implies when a run sets none (10 for wgan-gp)
    gp: float = 0.0
    #: True for the cross-entropy games (minimax, non-saturating): targets 0 and 1, label smoothing
    cross_entropy: bool = False

    def generator_loss(self, fake_out: torch.Tensor, real_out: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss: ``g(fake_out)``, or ``g(fake_out, real_out)`` for a relativistic loss."""
        if self.relativistic:
            if real_out is None:
                raise ValueError(f"the {self.name} loss pairs fakes with reals: give D's real scores too")
            return self.g(fake_out, real_out)
        return self.g(fake_out)


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss("minimax", d_loss_bce, g_loss_minimax, cross_entropy=True),
    "nonsaturating": GANLoss("nonsaturating", d_loss_bce, g_loss_nonsaturating, cross_entropy=True),
    "lsgan": GANLoss("lsgan", d_loss_lsgan, g_loss_lsgan, logits=False),
    # WGAN's critic must be kept Lipschitz: weight clipping (TrainConfig.clip) or a penalty
    "wgan": GANLoss("wgan", d_loss_wgan, g_loss_wgan, logits=False),
    "wgan-gp": GANLoss("wgan-gp", d_loss_wgan, g_loss_wgan, logits=False, gp=10.0),
    "hinge": GANLoss("hinge", d_loss_hinge, g_loss_wgan, logits=False),
    "rpgan": GANLoss("rpgan", d_loss_relativistic, g_loss_relativistic, logits=False, relativistic=True),
}
_ALIASES = {
    "saturating": "minimax",
    "ns": "nonsaturating",
    "non-saturating": "nonsaturating",
    "wgangp": "wgan-gp",
    "relativistic": "rpgan",
}


def get_loss(name: str | GANLoss) -> GANLoss:
    """The :class:`GANLoss` called ``name`` (a key of :data:`LOSSES` or an alias).

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
