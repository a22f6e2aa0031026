"""Chapter 6's exercises (``notebooks/06_tuning.ipynb``): WGAN-GP's gradient penalty, the hinge
loss of a discriminator and the relativistic pairing loss, each checked against the package's
function on inputs where the usual mistakes give other numbers."""

from __future__ import annotations

import torch

from .. import losses
from ..doctor import check_gradient_penalty
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_tensor_answer, require_close, require_tensor_close, show

# -- 6.1 ----------------------------------------------------------------------------------


def gradient_penalty(D: torch.nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty, lambda = 10: one weight per sample, the norm over the flattened sample.

    Written out, as the exercise asks the learner to write it (the notebook's solution 6.1); the
    checker compares it with the package's formula, :func:`losses.one_centered`, through
    :func:`doctor.check_gradient_penalty`."""
    eps = torch.rand(x_real.shape[0], *[1] * (x_real.ndim - 1), device=x_real.device)  # (B, 1, ..., 1)
    x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return 10.0 * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


@exercise("6.1", "gradient_penalty", gradient_penalty)
def check_gradient_penalty_answer(answer) -> str:
    try:
        finding = check_gradient_penalty(answer)
    except ValueError as err:  # the probe wraps what the answer raised: a stub's NotImplementedError
        if isinstance(err.__cause__, NotImplementedError):
            raise err.__cause__ from None
        raise
    if finding is not None:
        raise ExerciseError(f"gradient_penalty: {finding.evidence} {finding.cause}", finding.fix)
    return "one weight per sample, the norm over the whole sample, lambda = 10, a graph back to D"


# -- 6.2 ----------------------------------------------------------------------------------


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge loss of D: E[relu(1 - s_real)] + E[relu(1 + s_fake)]."""
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def _scores() -> tuple[torch.Tensor, torch.Tensor]:
    with isolated(seed=62):  # spread over both margins, so a missing relu or a flipped sign shows
        return 2 * torch.randn(64, 1), 2 * torch.randn(48, 1) - 0.5


@exercise("6.2", "hinge_d_loss", hinge_d_loss)
def check_hinge_d_loss(answer) -> str:
    real, fake = _scores()
    what = f"hinge_d_loss on real scores {show(real[:3, 0])}... and fake scores {show(fake[:3, 0])}..."
    hint = (
        "relu(1 - s) for the real scores and relu(1 + s) for the fakes, each averaged over its own "
        "batch (the two batches differ in size here); without the relu it is WGAN's loss plus 2"
    )
    got = answer(real.clone(), fake.clone())
    expected = losses.d_loss_hinge(real, fake)
    require_tensor_close(got, "hinge_d_loss(real_scores, fake_scores)", (), expected, what, hint, rtol=1e-5)
    return "D stops pushing a real score past 1 and a fake one past -1"


# -- 6.3 ----------------------------------------------------------------------------------


def relativistic_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """RpGAN's D loss: E over pairs i of softplus(-(s_real_i - s_fake_i))."""
    return torch.nn.functional.softplus(fake_scores - real_scores).mean()


@exercise("6.3", "relativistic_d_loss", relativistic_d_loss)
def check_relativistic_d_loss(answer) -> str:
    with isolated(seed=63):
        real, fake = 3 * torch.randn(64, 1) + 1, 3 * torch.randn(64, 1)
    got = as_tensor_answer(
        answer(real.clone(), fake.clone()), "relativistic_d_loss(real_scores, fake_scores)", ()
    )
    require_close(
        got,
        losses.d_loss_relativistic(real, fake),
        f"relativistic_d_loss on real scores {show(real[:3, 0])}... and fake scores {show(fake[:3, 0])}...",
        "pair sample i with sample i: the logit is s_real_i - s_fake_i, and the loss the mean of "
        "softplus(-logit) over the pairs (not softplus of the difference of the means, and not "
        "the cross-entropy of each score on its own); use softplus, not log(sigmoid)",
        rtol=1e-5,
    )
    return "one logit per pair: how much more real the real image looks than its fake partner"
