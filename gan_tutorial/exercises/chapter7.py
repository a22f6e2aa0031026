"""Chapter 7's exercises (``notebooks/07_conditional.ipynb``): the projection discriminator's logit,
the KL term of a VAE's ELBO and the reparameterisation. Each is a piece of a training loss, so
each checker runs the answer twice (float32 inputs whose gradients it compares with the closed
forms, then float64 inputs of another shape), and looks at the inputs afterwards: their values
and ``requires_grad`` flags must be as they were. 7.3's noise is given: an answer that draws its
own gives other numbers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .. import vae
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_tensor_answer, require_close


def _call(
    answer: Callable[..., object],
    inputs: Sequence[torch.Tensor],
    names: Sequence[str],
    call: str,
    shape: tuple[int, ...],
) -> torch.Tensor:
    """``answer(*inputs)`` as a tensor of ``shape`` and of the inputs' dtype, after checking that
    the call changed no input (values or ``requires_grad``)."""
    before = [(t.detach().clone(), t.requires_grad) for t in inputs]
    got = as_tensor_answer(answer(*inputs), call, shape)
    for name, t, (value, flag) in zip(names, inputs, before, strict=True):
        if not torch.equal(t.detach(), value):
            raise ExerciseError(
                f"{call} changed its input {name} in place",
                "compute into new tensors (no add_, mul_, exp_, out=, or assignment into an input): "
                "the caller still needs its tensors as they were",
            )
        if t.requires_grad != flag:
            raise ExerciseError(
                f"{call} changed {name}.requires_grad", "leave the inputs' flags alone; return a new tensor"
            )
    if got.dtype != inputs[0].dtype:
        raise ExerciseError(
            f"{call} returned {got.dtype} for {inputs[0].dtype} inputs",
            "keep the inputs' dtype (no .float(), no torch.tensor(...) of a numpy array)",
        )
    return got


def _gradients(
    got: torch.Tensor,
    weights: torch.Tensor,
    inputs: Sequence[torch.Tensor],
    names: Sequence[str],
    expected: Sequence[torch.Tensor],
    call: str,
) -> None:
    """The gradient of ``(got * weights).sum()`` must reach every input and equal ``expected``."""
    cut = (
        "build the result from the inputs with tensor operations: no .detach(), .item(), "
        "torch.no_grad(), numpy or torch.tensor(...) on the way"
    )
    if got.grad_fn is None:
        raise ExerciseError(f"{call} returned a tensor with no gradient back to its inputs", cut)
    grads = torch.autograd.grad((got * weights).sum(), list(inputs), allow_unused=True)
    for name, grad, want in zip(names, grads, expected, strict=True):
        if grad is None:
            raise ExerciseError(f"no gradient reaches {name} through {call}", cut)
        require_close(grad, want, f"the gradient of {call} with respect to {name}", cut, rtol=1e-4, atol=1e-5)


# -- 7.1 ----------------------------------------------------------------------------------


def projection_logit(psi: torch.Tensor, phi: torch.Tensor, v_y: torch.Tensor) -> torch.Tensor:
    """D(x, y) = psi(phi(x)) + <v_y, phi(x)>: psi (B, 1), phi (B, F), v_y (B, F) -> (B, 1)."""
    return psi + (v_y * phi).sum(dim=1, keepdim=True)


@exercise("7.1", "projection_logit", projection_logit)
def check_projection_logit(answer) -> str:
    names, call = ("psi", "phi", "v_y"), "projection_logit(psi, phi, v_y)"
    hint = (
        "one inner product per image: multiply v_y and phi element by element and sum over the "
        "features (dim 1, keeping a column), then add the unconditional logit psi"
    )
    with isolated(seed=71):
        psi, phi, v = torch.randn(6, 1), torch.randn(6, 40), torch.randn(6, 40)
        w = torch.randn(6, 1)
        psi2, phi2, v2 = torch.randn(3, 1).double(), torch.randn(3, 7).double(), torch.randn(3, 7).double()
    inputs = [t.clone().requires_grad_(True) for t in (psi, phi, v)]
    got = _call(answer, inputs, names, call, (6, 1))
    expected = projection_logit(psi.double(), phi.double(), v.double())
    require_close(got, expected, f"{call} on 6 images of 40 features", hint, rtol=1e-5, atol=1e-5)
    # D is trained through this logit: the class vectors v_y learn from d/dv_y = phi * w
    _gradients(got, w, inputs, names, (w, v * w, phi * w), call)
    got = _call(answer, (psi2, phi2, v2), names, call, (3, 1))
    require_close(got, projection_logit(psi2, phi2, v2), f"{call} on 3 images of 7 features", hint, rtol=1e-9)
    return "the label enters as one inner product with the image's features"


# -- 7.2 ----------------------------------------------------------------------------------


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per row: 1/2 sum_j (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


@exercise("7.2", "gaussian_kl", gaussian_kl)
def check_gaussian_kl(answer) -> str:
    names, call = ("mu", "logvar"), "gaussian_kl(mu, logvar)"
    hint = (
        "sigma^2 is exp(logvar) (not exp(logvar / 2)); the terms are mu^2 + sigma^2 - 1 - logvar, "
        "halved and summed over the dimensions of each row (one number per image, not a mean)"
    )
    with isolated(seed=72):
        mu, logvar = torch.randn(5, 8), 1.5 * torch.randn(5, 8)
        w = torch.randn(5)
        mu2, logvar2 = torch.randn(3, 7).double(), torch.randn(3, 7).double()
    inputs = [mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)]
    got = _call(answer, inputs, names, call, (5,))
    expected = vae.gaussian_kl(mu.double(), logvar.double())
    require_close(got, expected, f"{call} on 5 rows of 8 dimensions", hint, rtol=1e-5, atol=1e-5)
    # the KL is half of the VAE's loss: the encoder learns from dKL/dmu = mu, dKL/dlogvar = (sigma^2 - 1) / 2
    w_ = w[:, None]
    _gradients(got, w, inputs, names, (mu * w_, 0.5 * (logvar.exp() - 1) * w_), call)
    got = _call(answer, (mu2, logvar2), names, call, (3,))
    require_close(got, vae.gaussian_kl(mu2, logvar2), f"{call} on 3 rows of 7 dimensions", hint, rtol=1e-9)
    return "zero only where q(z | x) is the prior itself: mu = 0 and sigma = 1"


# -- 7.3 ----------------------------------------------------------------------------------


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2)."""
    return mu + torch.exp(0.5 * logvar) * eps


@exercise("7.3", "reparameterise", reparameterise)
def check_reparameterise(answer) -> str:
    names, call = ("mu", "logvar", "eps"), "reparameterise(mu, logvar, eps)"
    hint = "sigma is the standard deviation, exp(logvar / 2); z = mu + sigma * eps, with eps given"
    with isolated(seed=73):
        mu, logvar, eps = torch.randn(4, 6), 2 * torch.randn(4, 6), torch.randn(4, 6)
        w = torch.randn(4, 6)
        mu2, logvar2, eps2 = (torch.randn(3, 5).double() for _ in range(3))
    inputs = [mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True), eps.clone()]
    got = _call(answer, inputs, names, call, (4, 6))
    expected = reparameterise(mu.double(), logvar.double(), eps.double())
    require_close(got, expected, f"{call} on 4 codes of 6 dimensions", hint, rtol=1e-5, atol=1e-6)
    # the point of the trick: dz/dmu = 1 and dz/dlogvar = sigma * eps / 2 reach the encoder
    sigma = torch.exp(0.5 * logvar)
    _gradients(got, w, inputs[:2], names[:2], (w, 0.5 * sigma * eps * w), call)
    got = _call(answer, (mu2, logvar2, eps2), names, call, (3, 5))
    require_close(
        got, reparameterise(mu2, logvar2, eps2), f"{call} on 3 codes of 5 dimensions", hint, rtol=1e-9
    )
    return "the draw is a differentiable function of mu and sigma, so gradients reach the encoder"
