"""Chapter 5's exercises (``notebooks/05_evaluation.ipynb``): the Inception Score from its formula,
coverage from its definition, and a sampler that is precise but not complete (the one that
asks the learner to make something and have the metrics judge it).

The checkers print expected numbers to four significant digits, fewer than their tolerances
need, so a number copied from a message does not pass."""

from __future__ import annotations

import math

import torch

from .. import data
from ..metrics.inception_score import inception_score as package_inception_score
from ..metrics.manifold import manifold_metrics
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer


def _require_close(got: float, expected: float, what: str, hint: str, rtol: float, atol: float = 0.0) -> None:
    """Raise unless ``got`` and ``expected`` agree; the message rounds both to four digits and says
    how far apart they are."""
    if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        raise ExerciseError(
            f"{what} gave {got:.4g}, expected {expected:.4g} (they differ by {abs(got - expected):.1e})", hint
        )


def _require_unchanged(before: torch.Tensor, after: torch.Tensor, call: str) -> None:
    if not torch.equal(before, after):
        raise ExerciseError(
            f"{call} changed its input in place",
            "compute on the input without writing into it: clamp(...) rather than clamp_(...), and no "
            "slice assignments",
        )


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
    seven = torch.softmax(3 * torch.randn(350, 7, generator=g), dim=1)  # float32, as a classifier gives
    return {
        "peaked random probabilities": peaked,
        "skewed classes": skewed,
        "five classes, certain": certain_five,
        "float32 probabilities over 7 classes": seven,
    }


@exercise("5.1", "inception_score", inception_score)
def check_inception_score(answer) -> str:
    for name, probs in _probability_sets().items():
        given = probs.clone()
        got = as_float_answer(answer(given), f"inception_score({name})")
        _require_unchanged(probs, given, f"inception_score({name})")
        _require_close(
            got,
            package_inception_score(probs)[0],  # in float64, also for the float32 set
            f"inception_score on {name}",
            "exp of the mean over samples of KL(p(y|x) || p(y)), where p(y) is the mean of the rows, "
            "for any number of classes K; torch.xlogy(p, q) is p log q with 0 log 0 = 0",
            rtol=1e-6 if probs.dtype == torch.float64 else 1e-5,
        )
    return "ten equally frequent, certain classes score 10, the ceiling"


# -- 5.2 ----------------------------------------------------------------------------------


def coverage(real: torch.Tensor, fake: torch.Tensor, k: int) -> float:
    """The share of real points whose k-NN ball (radius: the distance to the k-th nearest other
    real point) holds at least one fake point; real (N, D), fake (M, D)."""
    radii = torch.cdist(real, real).topk(k + 1, dim=1, largest=False).values[:, k]  # 0: the point itself
    return (torch.cdist(real, fake) < radii[:, None]).any(1).double().mean().item()


def _coverage_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(52)
    real = torch.randn(397, 3, generator=g, dtype=torch.float64)  # 397: shares are not short decimals
    half = torch.randn(300, 3, generator=g, dtype=torch.float64)
    half[:, 0] = half[:, 0].abs()  # the half x > 0 of the real distribution
    # every fifth real point twice: its copy is another real point at distance 0, so counting
    # "other" points by dropping zero distances (rather than the point itself) gives other radii
    doubled = torch.cat([real, real[::5]])  # 477 points
    return [
        ("a wider fake set", real, torch.randn(300, 3, generator=g, dtype=torch.float64) * 1.6),
        ("the half x > 0 of the real distribution", real, half),
        ("a few fakes", real, torch.randn(40, 3, generator=g, dtype=torch.float64)),
        ("real points, some of them twice", doubled, torch.randn(300, 3, generator=g, dtype=torch.float64)),
    ]


@exercise("5.2", "coverage", coverage)
def check_coverage(answer) -> None:
    for k in (2, 5):
        for name, real, fake in _coverage_cases():
            given_real, given_fake = real.clone(), fake.clone()
            call = f"coverage(real, {name}, k={k})"
            got = as_float_answer(answer(given_real, given_fake, k), call)
            _require_unchanged(real, given_real, call)
            _require_unchanged(fake, given_fake, call)
            _require_close(
                got,
                manifold_metrics(real, fake, k_pr=k, k_dc=k).coverage,
                f"coverage of {name}, k = {k}",
                "the balls are the real points' (radius: the k-th nearest *other* real point: skip the point "
                "itself, not every distance 0, since two real points may coincide); count the real points "
                "whose ball holds a fake, and divide by N",
                rtol=0,
                atol=1e-6,  # shares of 397 or 477 points: a wrong answer is off by 2e-3 or more
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


def _sample(answer, n: int, seed: int, global_seed: int) -> torch.Tensor:
    """The answer's n points from a generator seeded with ``seed``, the global generator seeded
    with ``global_seed`` first; it must come back as it was."""
    call = f"precise_not_complete({n}, generator)"
    torch.manual_seed(global_seed)
    state = torch.get_rng_state()
    fake = as_tensor_answer(answer(n, torch.Generator().manual_seed(seed)), call, (n, 2))
    if not torch.equal(torch.get_rng_state(), state):
        raise ExerciseError(
            f"{call} used PyTorch's global random generator (or reseeded it)",
            "pass generator=generator to every torch.randn, torch.randint, torch.rand you call",
        )
    if fake.dtype != torch.float32:
        raise ExerciseError(f"{call} returned {fake.dtype}, expected torch.float32 (the ring's points are)")
    if not torch.isfinite(fake).all():
        raise ExerciseError("some points are NaN or infinite")
    return fake.detach()


@exercise("5.3", "precise_not_complete", precise_not_complete)
def check_precise_not_complete(answer) -> str:
    n = 2500
    fake = _sample(answer, n, seed=54, global_seed=5301)
    if not torch.equal(fake, _sample(answer, n, seed=54, global_seed=5302)):
        raise ExerciseError(
            "two generators seeded alike gave different points",
            "draw every random number from generator (generator=generator), none from elsewhere",
        )
    _sample(answer, 1000, seed=56, global_seed=5301)  # n is honoured
    if torch.equal(fake, _sample(answer, n, seed=55, global_seed=5301)):
        raise ExerciseError(
            "generators seeded differently gave the same points: a sampler draws them at random",
            "draw the points from generator (generator=generator) rather than from a generator of your own, "
            "or fixing them",
        )
    real = data.ring8().sample(n, torch.Generator().manual_seed(53))
    m = manifold_metrics(real, fake, k_pr=3, k_dc=5)
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
