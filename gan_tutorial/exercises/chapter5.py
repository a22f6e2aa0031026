"""Chapter 5's exercises (``notebooks/05_evaluation.ipynb``): the Inception Score from its formula,
coverage from its definition, and a sampler that is precise but not complete (the one that
asks the learner to make something and have the metrics judge it)."""

from __future__ import annotations

import torch

from .. import data
from ..metrics.inception_score import inception_score as package_inception_score
from ..metrics.manifold import manifold_metrics
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, require_close

# -- 5.1 ----------------------------------------------------------------------------------


def inception_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities probs (N, K), with 0 log 0 = 0."""
    marginal = probs.mean(0, keepdim=True)  # p(y), (1, K)
    kl = (torch.xlogy(probs, probs) - torch.xlogy(probs, marginal)).sum(1)  # (N,)
    return kl.mean().exp().item()


def _probability_sets() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(51)
    peaked = torch.softmax(4 * torch.randn(400, 10, generator=g, dtype=torch.float64), dim=1)
    skewed = torch.softmax(
        torch.randn(300, 10, generator=g, dtype=torch.float64) + torch.arange(10.0) / 3, dim=1
    )
    certain_five = torch.eye(10, dtype=torch.float64)[
        torch.arange(500) % 5
    ]  # exactly 0 and 1: needs 0 log 0 = 0
    return {
        "peaked random probabilities": peaked,
        "skewed classes": skewed,
        "five classes, certain": certain_five,
    }


@exercise("5.1", "inception_score", inception_score)
def check_inception_score(answer) -> str:
    for name, probs in _probability_sets().items():
        got = as_float_answer(answer(probs.clone()), f"inception_score({name})")
        expected = package_inception_score(probs)[0]
        require_close(
            got,
            expected,
            f"inception_score on {name}",
            "exp of the mean over samples of KL(p(y|x) || p(y)), where p(y) is the mean of the rows; "
            "torch.xlogy(p, q) is p log q with 0 log 0 = 0",
            rtol=1e-6,
        )
    return "ten equally frequent, certain classes score 10, the ceiling"


# -- 5.2 ----------------------------------------------------------------------------------


def coverage(real: torch.Tensor, fake: torch.Tensor, k: int) -> float:
    """The share of real points whose k-NN ball (radius: the distance to the k-th nearest other
    real point) holds at least one fake point; real (N, D), fake (M, D)."""
    radii = torch.cdist(real, real).topk(k + 1, dim=1, largest=False).values[:, k]  # 0: the point itself
    return (torch.cdist(real, fake) < radii[:, None]).any(1).double().mean().item()


@exercise("5.2", "coverage", coverage)
def check_coverage(answer) -> None:
    g = torch.Generator().manual_seed(52)
    real = torch.randn(400, 3, generator=g, dtype=torch.float64)
    cases = {
        "a wider fake set": torch.randn(300, 3, generator=g, dtype=torch.float64) * 1.6,
        "half of the real support": torch.randn(300, 3, generator=g, dtype=torch.float64).abs(),
        "a few fakes": torch.randn(40, 3, generator=g, dtype=torch.float64),
    }
    for k in (2, 5):
        for name, fake in cases.items():
            got = as_float_answer(answer(real.clone(), fake.clone(), k), f"coverage(real, {name}, k={k})")
            require_close(
                got,
                manifold_metrics(real, fake, k_pr=k, k_dc=k).coverage,
                f"coverage of {name}, k = {k}",
                "the balls are the real points' (radius: the k-th nearest *other* real point, so skip the "
                "distance 0 to itself); count the real points whose ball holds a fake, and divide by N",
                rtol=0,
                atol=1e-12,
            )


# -- 5.3 ----------------------------------------------------------------------------------

PRECISION_AT_LEAST, RECALL_AT_MOST = 0.9, 0.5


def precise_not_complete(n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of the ring of 8 drawn from three of its modes only: every point realistic (high
    precision), most of the data missing (low recall)."""
    ring = data.ring8()
    keep = torch.randint(0, 3, (n,), generator=generator)  # modes 0, 1, 2 only
    return (
        ring.means[keep] + ring.stds[keep, None] * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    ).float()


@exercise("5.3", "precise_not_complete", precise_not_complete)
def check_precise_not_complete(answer) -> str:
    n = 2500
    real = data.ring8().sample(n, torch.Generator().manual_seed(53))
    fake = as_tensor_answer(
        answer(n, torch.Generator().manual_seed(54)), f"precise_not_complete({n}, generator)", (n, 2)
    )
    if not torch.isfinite(fake).all():
        raise ExerciseError("some points are NaN or infinite")
    m = manifold_metrics(real, fake.detach(), k_pr=3, k_dc=5)
    if m.precision < PRECISION_AT_LEAST:
        raise ExerciseError(
            f"precision {m.precision:.3f}: fewer than {PRECISION_AT_LEAST:.0%} of your points lie inside the "
            "real points' balls, so they do not look real",
            "draw your points the way the ring's own points are drawn (a mode's centre plus noise of its "
            "width, 0.01), only not from every mode",
        )
    if m.recall > RECALL_AT_MOST:
        raise ExerciseError(
            f"recall {m.recall:.3f}: your points' balls still hold more than {RECALL_AT_MOST:.0%} of the "
            "real points, so the data is mostly covered",
            "leave out more than half of the modes",
        )
    return f"precision >= {PRECISION_AT_LEAST}, recall <= {RECALL_AT_MOST}: realistic, but not all the data"
