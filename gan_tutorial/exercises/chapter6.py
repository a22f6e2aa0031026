"""Chapter 6's exercises (``notebooks/06_tuning.ipynb``): WGAN-GP's gradient penalty, the hinge
loss of a discriminator and the relativistic pairing loss, each checked against the package's
function on inputs where the usual mistakes give other numbers."""

from __future__ import annotations

import torch

from .. import losses
from ..doctor import check_gradient_penalty
from ..runtime import isolated
from . import ExerciseError, exercise
from ._common import as_tensor_answer, require_close, show

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


def _uniform_weights(answer) -> None:
    """The weights of 64 interpolates, read back from a recording critic, must look like draws
    from U[0, 1]: a Kolmogorov-Smirnov distance below 0.3 (a right answer exceeds it about twice
    in 100,000 calls), which rejects weights of only 0 and 1 (the endpoints) and weights bunched
    near one end (0.05 * torch.rand)."""
    seen: list[torch.Tensor] = []

    class Recorder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.detach().clone())
            return (x.flatten(1) ** 2).sum(1, keepdim=True)

    gen = torch.Generator().manual_seed(612)
    x_real, x_fake = torch.zeros(64, 2), torch.ones(64, 2) + torch.rand(64, 1, generator=gen)
    with isolated(seed=612):
        answer(Recorder(), x_real.clone(), x_fake.clone())
    between = [x for x in seen if x.shape == x_real.shape and not torch.equal(x, x_real)]
    between = [x for x in between if not torch.equal(x, x_fake)]
    if not between:
        return  # the probes of check_gradient_penalty say what is wrong
    eps = (1 - between[0][:, 0] / x_fake[:, 0]).double().sort().values  # x_hat = (1 - eps) * x_fake
    n = eps.numel()
    ecdf_hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = float(torch.maximum(ecdf_hi - eps, eps - (ecdf_hi - 1 / n)).max())
    if ks > 0.3:
        raise ExerciseError(
            f"gradient_penalty: over 64 pairs the interpolation weights ranged from {float(eps[0]):.2f} "
            f"to {float(eps[-1]):.2f}, {100 * float(((eps > 0.05) & (eps < 0.95)).double().mean()):.0f}% "
            "of them between 0.05 and 0.95: they are not drawn from U[0, 1], so the penalty is not "
            "taken all along the segments (only at their ends, or only near one end).",
            "eps = torch.rand(B, *[1] * (x_real.ndim - 1)), one uniform weight per sample",
        )


def _no_side_effects(answer) -> None:
    """One call on a small real critic: the inputs, D's parameters, its gradients, its
    ``requires_grad`` flags and its mode are as they were, and the penalty is float32."""
    with isolated(seed=613):
        D = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(18, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )
        x_real, x_fake = torch.randn(6, 2, 3, 3), torch.randn(6, 2, 3, 3)
    before = [x_real.clone(), x_fake.clone(), *(p.detach().clone() for p in D.parameters())]
    with isolated(seed=613):
        out = answer(D, x_real, x_fake)
    after = [x_real, x_fake, *D.parameters()]
    if not all(torch.equal(a, b) for a, b in zip(before, after, strict=True)):
        raise ExerciseError(
            "gradient_penalty changed its inputs or D's weights in place",
            "build x_hat as a new tensor, and leave the step on D's weights to its optimiser",
        )
    if any(p.grad is not None for p in D.parameters()):
        raise ExerciseError(
            "gradient_penalty left gradients in D's parameters (a backward() inside, or "
            "torch.autograd.grad without inputs=x_hat): D's next step would apply them twice",
            "take the gradient with torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True) and "
            "return the penalty; D's loss.backward() sends it to D's weights",
        )
    if not all(p.requires_grad for p in D.parameters()) or not D.training:
        raise ExerciseError(
            "gradient_penalty left D frozen (requires_grad False) or in eval mode",
            "the penalty needs no change to D: it is a function of D's output",
        )
    if not isinstance(out, torch.Tensor) or out.dtype != torch.float32:
        got = out.dtype if isinstance(out, torch.Tensor) else type(out).__name__
        raise ExerciseError(
            f"gradient_penalty returned {got} on float32 samples, expected a float32 tensor",
            "compute in the samples' dtype (no .double(), no numpy)",
        )


@exercise("6.1", "gradient_penalty", gradient_penalty)
def check_gradient_penalty_answer(answer) -> str:
    # images of shape (2, 3, 3), then flat samples of shape (5,): the rule holds whatever the shape
    for shape, batch in (((2, 3, 3), 8), ((5,), 16)):
        try:
            finding = check_gradient_penalty(answer, sample_shape=shape, batch=batch)
        except ValueError as err:  # the probe wraps what the answer raised: a stub's NotImplementedError
            if isinstance(err.__cause__, NotImplementedError):
                raise err.__cause__ from None
            raise ExerciseError(
                f"gradient_penalty failed on samples of shape {shape}: {err.__cause__ or err}",
                "shape the weight (B, 1, ..., 1) from x_real.ndim, so one answer fits images and "
                "flat vectors alike",
            ) from None
        if finding is not None:
            raise ExerciseError(
                f"gradient_penalty, on samples of shape {shape}: {finding.evidence} {finding.cause}",
                finding.fix,
            )
    _uniform_weights(answer)
    _no_side_effects(answer)
    return "one weight per sample, the norm over the whole sample, lambda = 10, a graph back to D"


# -- 6.2 ----------------------------------------------------------------------------------


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The hinge loss of D: E[relu(1 - s_real)] + E[relu(1 + s_fake)]."""
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def _scores() -> tuple[torch.Tensor, torch.Tensor]:
    with isolated(seed=62):  # spread over both margins, so a missing relu or a flipped sign shows
        return 2 * torch.randn(64, 1), 2 * torch.randn(48, 1) - 0.5


def _loss_with_gradient(
    answer, name: str, reference, real: torch.Tensor, fake: torch.Tensor, what: str, hint: str
) -> None:
    """``answer(real, fake)`` must equal ``reference(real, fake)`` as a float32 number that carries
    the same gradient to both score batches, and leave the scores as they were."""
    call = f"{name}(real_scores, fake_scores)"
    r, f = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    got = as_tensor_answer(answer(r, f), call)
    if got.numel() != 1:
        raise ExerciseError(f"{call} returned shape {tuple(got.shape)}, expected one number (a mean)", hint)
    if got.dtype != torch.float32:
        raise ExerciseError(f"{call} returned {got.dtype} on float32 scores, expected float32", hint)
    if not (torch.equal(r.detach(), real) and torch.equal(f.detach(), fake)):
        raise ExerciseError(f"{call} changed the scores it was given in place", "compute on new tensors")
    expected = reference(real, fake)
    require_close(got.reshape(()).detach(), expected, f"{name} on {what}", hint, rtol=1e-5, atol=1e-6)
    if not got.requires_grad:
        raise ExerciseError(
            f"{call} has no graph back to the scores (requires_grad=False): a .item(), .detach(), "
            "numpy or torch.no_grad() cut it, and D would not learn from this loss",
            "stay in torch operations on the scores",
        )
    grads = torch.autograd.grad(got.sum(), (r, f), allow_unused=True)
    r2, f2 = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    want = torch.autograd.grad(reference(r2, f2), (r2, f2))
    for g, w, side in zip(grads, want, ("real", "fake"), strict=True):
        if g is None or not torch.allclose(g, w, rtol=1e-4, atol=1e-7):
            raise ExerciseError(
                f"{call} has the right value but not the right gradient with respect to the {side} "
                "scores: part of the graph is cut (a .detach() or .item() in one term)",
                hint,
            )


@exercise("6.2", "hinge_d_loss", hinge_d_loss)
def check_hinge_d_loss(answer) -> str:
    real, fake = _scores()
    hint = (
        "relu(1 - s) for the real scores and relu(1 + s) for the fakes, each averaged over its own "
        "batch (the two batches differ in size here); without the relu it is WGAN's loss plus 2"
    )
    what = f"real scores {show(real[:3, 0])}... and fake scores {show(fake[:3, 0])}..."
    _loss_with_gradient(answer, "hinge_d_loss", losses.d_loss_hinge, real, fake, what, hint)
    # flat scores (B,) as well as (B, 1): a rule that holds only for one shape is not the rule
    what = f"flat real scores {show(real[:3, 0])}... and fake scores {show(fake[:3, 0])}..."
    _loss_with_gradient(answer, "hinge_d_loss", losses.d_loss_hinge, real[:, 0], fake[:, 0], what, hint)
    return "D stops pushing a real score past 1 and a fake one past -1"


# -- 6.3 ----------------------------------------------------------------------------------


def relativistic_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """RpGAN's D loss: E over pairs i of softplus(-(s_real_i - s_fake_i))."""
    return torch.nn.functional.softplus(fake_scores - real_scores).mean()


@exercise("6.3", "relativistic_d_loss", relativistic_d_loss)
def check_relativistic_d_loss(answer) -> str:
    with isolated(seed=63):
        real, fake = 3 * torch.randn(64, 1) + 1, 3 * torch.randn(64, 1)
    # two pairs far apart, where log(sigmoid(.)) is log 0 in float32 (sigmoid(-100) rounds to 0)
    # and softplus is finite: a fake scored 100 above its real, and a real 100 above its fake
    real[:2, 0] = torch.tensor([-60.0, 70.0])
    fake[:2, 0] = torch.tensor([40.0, -30.0])
    hint = (
        "pair sample i with sample i: the logit is s_real_i - s_fake_i, and the loss the mean of "
        "softplus(-logit) over the pairs (not softplus of the difference of the means, and not "
        "the cross-entropy of each score on its own); use softplus, not log(sigmoid), which is "
        "log 0 in float32 once a pair is about 90 apart"
    )
    what = f"real scores {show(real[:3, 0])}... and fake scores {show(fake[:3, 0])}..."
    _loss_with_gradient(answer, "relativistic_d_loss", losses.d_loss_relativistic, real, fake, what, hint)
    return "one logit per pair: how much more real the real image looks than its fake partner"
