"""Chapter 7's exercises (``notebooks/07_conditional.ipynb``): the projection discriminator's logit,
the KL term of a VAE's ELBO and the reparameterisation, each checked against the package on
inputs where the usual mistakes give other numbers."""

from __future__ import annotations

import torch

from .. import vae
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_tensor_answer, require_close, require_tensor_close, show

# -- 7.1 ----------------------------------------------------------------------------------


def projection_logit(psi: torch.Tensor, phi: torch.Tensor, v_y: torch.Tensor) -> torch.Tensor:
    """D(x, y) = psi(phi(x)) + <v_y, phi(x)>: psi (B, 1), phi (B, F), v_y (B, F) -> (B, 1)."""
    return psi + (v_y * phi).sum(dim=1, keepdim=True)


@exercise("7.1", "projection_logit", projection_logit)
def check_projection_logit(answer) -> str:
    with isolated(seed=71):
        psi, phi, v = torch.randn(6, 1), torch.randn(6, 40), torch.randn(6, 40)
    what = f"projection_logit on psi {show(psi[:3, 0])}... and features of 40 numbers"
    hint = (
        "one inner product per image: multiply v_y and phi element by element and sum over the "
        "features (dim 1, keeping a column), then add the unconditional logit psi"
    )
    got = answer(psi.clone(), phi.clone(), v.clone())
    expected = projection_logit(psi, phi, v)
    require_tensor_close(got, "projection_logit(psi, phi, v_y)", (6, 1), expected, what, hint, rtol=1e-5)
    return "the label enters as one inner product with the image's features"


# -- 7.2 ----------------------------------------------------------------------------------


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per row: 1/2 sum_j (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


@exercise("7.2", "gaussian_kl", gaussian_kl)
def check_gaussian_kl(answer) -> str:
    with isolated(seed=72):
        mu, logvar = torch.randn(5, 8), 1.5 * torch.randn(5, 8)
    got = as_tensor_answer(answer(mu.clone(), logvar.clone()), "gaussian_kl(mu, logvar)", (5,))
    require_close(
        got,
        vae.gaussian_kl(mu, logvar),
        "gaussian_kl on 5 rows of 8 dimensions",
        "sigma^2 is exp(logvar) (not exp(logvar / 2)); the terms are mu^2 + sigma^2 - 1 - logvar, "
        "halved and summed over the dimensions of each row (one number per image, not a mean)",
        rtol=1e-5,
    )
    return "zero only where q(z | x) is the prior itself: mu = 0 and sigma = 1"


# -- 7.3 ----------------------------------------------------------------------------------


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2)."""
    return mu + torch.exp(0.5 * logvar) * eps


@exercise("7.3", "reparameterise", reparameterise)
def check_reparameterise(answer) -> str:
    with isolated(seed=73):
        mu, logvar, eps = torch.randn(4, 6), 2 * torch.randn(4, 6), torch.randn(4, 6)
    mu.requires_grad_(True)
    got = as_tensor_answer(answer(mu, logvar.clone(), eps.clone()), "reparameterise(mu, logvar, eps)", (4, 6))
    require_close(
        got,
        reparameterise(mu, logvar, eps),
        "reparameterise on 4 codes of 6 dimensions",
        "sigma is the standard deviation, exp(logvar / 2); z = mu + sigma * eps, with eps given",
        rtol=1e-5,
    )
    if not got.requires_grad:
        raise ExerciseError(
            "reparameterise returned a code with no gradient back to mu",
            "build z from mu with tensor operations (no .detach(), no torch.no_grad(), no sampling by "
            "torch.distributions' sample())",
        )
    return "the draw is a differentiable function of mu and sigma, so gradients reach the encoder"
