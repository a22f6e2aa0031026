"""Chapter 3's exercises (``notebooks/03_mlp_mnist.ipynb``): the Frechet distance in 1-D, why the
minimax loss stalls, the judge's numbers from its probabilities, the range bug from D's side, and
finishing an interrupted run exactly (training with the trainer)."""

from __future__ import annotations

import contextlib
import math
import numbers
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.variable import Variable

from .. import losses, models
from ..config import TrainConfig
from ..metrics import frechet_distance, kl_from_uniform
from ..metrics import judge as J
from ..runtime import isolated
from ..trainer import Trainer
from . import ExerciseError, exercise
from ._common import as_tensor_answer, close, require_close, show

# -- what the checkers share ------------------------------------------------------------


def _number(value: Any, what: str, integer: bool = False) -> float:
    """``value`` (a Python or NumPy number, or a one-element tensor) as a float; with ``integer``,
    a count: an int or an integer tensor, never a float that happens to be whole."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ExerciseError(
                f"{what} returned a tensor of shape {tuple(value.shape)}, expected one number"
            )
        is_int = not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool
        value = value.item()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        is_int = isinstance(value, numbers.Integral)
        value = float(value)
    else:
        raise ExerciseError(f"{what} returned {type(value).__name__}, expected a number")
    if integer and not is_int:
        raise ExerciseError(f"{what} returned {value!r}, a float: a count is an int", "int(...) of the count")
    return float(value)


def _agree(got: float, expected: float, rel: float, abs_: float) -> bool:
    return math.isclose(got, expected, rel_tol=rel, abs_tol=abs_)


def _differ(got: float, expected: float) -> str:
    """``"gave X, expected Y"`` to 4 digits: fewer than the tolerance needs, so that the message is
    no answer key to copy from."""
    text = f"gave {got:.4g}, expected {expected:.4g}"
    if f"{got:.4g}" == f"{expected:.4g}":
        text += " (alike in the 4 digits shown, apart by more than float32 rounding)"
    return text


def _unchanged(before: torch.Tensor, after: torch.Tensor, what: str) -> None:
    if not torch.equal(before, after):
        raise ExerciseError(
            f"{what} changed its input in place",
            "work on new tensors (x.clamp(...), not x.clamp_(...)); the caller still needs its data",
        )


class _AutogradUsed(Exception):
    """Raised inside an answer that runs a backward pass where the exercise forbids autograd."""


@contextlib.contextmanager
def _no_backward() -> Iterator[list[int]]:
    """Inside, any backward pass (``.backward()``, ``torch.autograd.grad``, ``torch.func.grad``,
    all of which run PyTorch's autograd engine) raises :class:`_AutogradUsed`; the list it yields
    records each attempt, even one the answer catches."""
    engine, used = Variable._execution_engine, []

    class Refusing:
        def run_backward(self, *args: Any, **kwargs: Any) -> Any:
            used.append(1)
            raise _AutogradUsed

        def __getattr__(self, name: str) -> Any:
            return getattr(engine, name)

    Variable._execution_engine = Refusing()
    try:
        yield used
    finally:
        Variable._execution_engine = engine


# -- 3.1 ----------------------------------------------------------------------------------


def frechet_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    """Frechet distance between N(m1, s1^2) and N(m2, s2^2) (s1, s2: standard deviations)."""
    return (m1 - m2) ** 2 + (s1 - s2) ** 2  # Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = (s1 - s2)^2


@exercise("3.1", "frechet_1d", frechet_1d)
def check_frechet_1d(answer) -> None:
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    for m1, s1, m2, s2 in [
        (0.0, 1.0, 0.0, 1.0),  # the same Gaussian
        (1.0, 2.0, -1.0, 0.5),
        (3.0, 0.1, 2.0, 4.0),
        (0.0, 3.0, 0.0, 1.0),  # the spread alone differs
        (0.371, 1.733, -1.187, 0.419),  # digits that a 4-digit message does not give away
        (-2.113, 0.257, -2.113, 0.257),
    ]:
        expected = frechet_distance(t(m1), t(s1**2)[None], t(m2), t(s2**2)[None])
        call = f"frechet_1d({m1}, {s1}, {m2}, {s2})"
        got = _number(answer(m1, s1, m2, s2), call)
        if _agree(got, expected, 1e-6, 1e-9):  # float32 arithmetic is accepted
            continue
        hint = "with Sigma = s^2: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = s1^2 + s2^2 - 2 s1 s2"
        if _agree(got, (m1 - m2) ** 2 + (s1**2 - s2**2) ** 2, 1e-6, 1e-9):
            hint = "s1 and s2 are standard deviations; the difference of their squares is not the term"
        elif _agree(got, (m1 - m2) ** 2 + (s1**2 - s2**2), 1e-6, 1e-9):
            hint = "the matrix square root term, -2 (S1 S2)^(1/2) = -2 s1 s2, is missing"
        elif _agree(got, (m1 - m2) ** 2 + (math.sqrt(s1) - math.sqrt(s2)) ** 2, 1e-6, 1e-9):
            hint = "s1 and s2 are standard deviations, not variances: Sigma = s^2"
        elif _agree(got, math.sqrt((m1 - m2) ** 2 + (s1 - s2) ** 2), 1e-6, 1e-9):
            hint = "the Frechet distance here is d^2, the squared distance: no square root at the end"
        elif _agree(got, abs(m1 - m2) + abs(s1 - s2), 1e-6, 1e-9):
            hint = "the distance is made of squares: (m1 - m2)^2 + ..."
        raise ExerciseError(f"{call} {_differ(got, expected)} (metrics.frechet_distance)", hint)


# -- 3.2 ----------------------------------------------------------------------------------


def dloss_dlogit(logits: torch.Tensor, loss_name: str) -> torch.Tensor:
    """Per-sample derivative of G's loss ("minimax" or "nonsaturating") w.r.t. the fake logit."""
    if loss_name == "minimax":  # d/dl [-softplus(l)] = -sigmoid(l) = -D(G(z))
        return -torch.sigmoid(logits)
    return torch.sigmoid(logits) - 1  # d/dl [softplus(-l)] = sigmoid(l) - 1 = D(G(z)) - 1


@exercise("3.2", "dloss_dlogit", dloss_dlogit)
def check_dloss_dlogit(answer) -> str:
    gen = torch.Generator().manual_seed(32)
    inputs = [  # float32 with logits whose exp overflows; a float64 column (B, 1)
        torch.cat([torch.linspace(-8, 4, 7), torch.tensor([-100.0, 100.0])]),
        (6 * torch.randn(12, 1, generator=gen, dtype=torch.float64)),
    ]
    for logits in inputs:
        f32 = logits.dtype == torch.float32
        for name in ("minimax", "nonsaturating"):
            leaf = logits.clone().requires_grad_(True)
            (expected,) = torch.autograd.grad(
                losses.get_loss(name).g(leaf) * leaf.numel(), leaf
            )  # per sample
            call = f"dloss_dlogit(logits {tuple(logits.shape)} {str(logits.dtype)[6:]}, {name!r})"
            given = logits.clone()
            with _no_backward() as used:
                try:
                    value = answer(given, name)
                except _AutogradUsed:
                    value = None
            if used:
                raise ExerciseError(
                    f"{call} ran a backward pass (autograd)",
                    "write the derivative itself, with tensor operations: d/dl softplus(l) = sigmoid(l)",
                )
            got = as_tensor_answer(value, call, logits.shape)
            _unchanged(logits, given, "dloss_dlogit")
            if got.dtype != logits.dtype:
                raise ExerciseError(
                    f"{call} returned {got.dtype}; the logits were {logits.dtype}",
                    "compute with tensor operations on the logits, which keep their dtype",
                )
            other = "nonsaturating" if name == "minimax" else "minimax"
            hint = (
                f"differentiate G's {name} loss per sample: -softplus(l) (minimax), "
                "softplus(-l) (non-saturating)"
            )
            if close(got, dloss_dlogit(logits, other), atol=1e-7):
                hint = f"that is the {other} loss's derivative"
            elif close(got, expected / logits.numel(), atol=1e-9):
                hint = "per sample: do not divide by the batch size"
            elif close(got, -expected, atol=1e-7):
                hint = "check the sign"
            elif not bool(torch.isfinite(got).all()):
                hint = "exp(l) overflows for large logits: write it with torch.sigmoid"
            require_close(got, expected, call, hint, rtol=1e-5 if f32 else 1e-9, atol=1e-6 if f32 else 1e-12)
    mm, ns = -1 / (1 + math.exp(8)), 1 / (1 + math.exp(8)) - 1
    return f"at logit -8, where D rejects the fake: minimax {mm:.5f}, non-saturating {ns:.5f}"


# -- 3.3 ----------------------------------------------------------------------------------


def digit_stats(probs: torch.Tensor) -> tuple[int, float]:
    """From the judge's class probabilities (N, 10): (digits covered, KL from uniform), where a
    digit is covered when at least 1% of the samples are predicted as it (argmax)."""
    hist = torch.bincount(probs.argmax(dim=1), minlength=10).double() / len(probs)  # (10,) shares
    h = hist[hist > 0]
    return int((hist >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()


def _probs_with_predictions(counts: list[int], seed: int) -> torch.Tensor:
    """Class probabilities (N, 10) whose argmax gives ``counts[k]`` samples of digit k, soft enough
    that averaging the probabilities gives another histogram."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    rest = torch.softmax(2 * torch.randn(len(labels), 10, generator=gen), dim=1)
    rest[torch.arange(len(labels)), labels] = 0.0
    rest = 0.45 * rest / rest.sum(dim=1, keepdim=True)  # the other digits share 0.45, each below 0.45
    probs = rest + 0.55 * F.one_hot(labels, 10)  # the predicted digit has 0.55
    return probs[torch.randperm(len(labels), generator=gen)]


@exercise("3.3", "digit_stats", digit_stats)
def check_digit_stats(answer) -> str:
    cases = [
        [100] * 10,  # every digit alike
        [300, 300, 150, 100, 50, 43, 30, 11, 11, 5],  # digit 9 below 1%, 7 and 8 just above it
        [210, 140, 119, 70, 63, 49, 28, 7, 7, 7],  # 700 samples: digits 7, 8 and 9 at exactly 1%
        [500, 500, 0, 0, 0, 0, 0, 0, 0, 0],  # two digits
    ]
    for i, counts in enumerate(cases):
        probs = _probs_with_predictions(counts, seed=i)
        hist = J.class_histogram(probs)
        modes, kl = J.modes_covered(probs), kl_from_uniform(hist)
        given = probs.clone()
        got = answer(given)
        _unchanged(probs, given, "digit_stats")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"digit_stats returned {show(got)}, expected a pair (digits covered, KL)")
        got_modes = _number(got[0], "digit_stats' digit count", integer=True)
        got_kl = _number(got[1], "digit_stats' KL")
        where = f"for {len(probs)} samples predicted as digits 0-9 {counts} times"
        if got_modes != modes:
            raise ExerciseError(
                f"digit_stats {where} says {got_modes:g} digits covered, expected {modes}",
                "a digit counts when at least 1% of the samples are predicted as it (>= 0.01, "
                "of this batch's samples)",
            )
        if not _agree(got_kl, kl, 1e-5, 1e-6):  # float32 histograms are accepted
            hint = "the histogram of predicted digits (argmax of each row), then sum h log(10 h) over h > 0"
            mean = probs.double().mean(0)
            if _agree(got_kl, float((mean * torch.log(10 * mean)).sum()), 1e-5, 1e-6):
                hint = (
                    "count each sample's predicted digit (argmax); the average of the probabilities "
                    "is another histogram"
                )
            elif not math.isfinite(got_kl):
                hint = "a digit nobody drew contributes 0 (0 log 0 = 0)"
            raise ExerciseError(f"digit_stats {where}: the KL {_differ(got_kl, kl)}", hint)
    return f"two digits, equally often: KL = log 5 = {math.log(5):.4f}"


# -- 3.4 ----------------------------------------------------------------------------------


def range_detector(x: torch.Tensor) -> torch.Tensor:
    """A one-line "discriminator" for images (B, 1, 28, 28): True ("fake") where any pixel is < 0."""
    return (x.flatten(1) < 0).any(dim=1)  # (B,)


@exercise("3.4", "range_detector", range_detector)
def check_range_detector(answer) -> str:
    gen = torch.Generator().manual_seed(3)
    strokes = (torch.rand(64, 1, 28, 28, generator=gen) > 0.8).float()
    real_01 = strokes * torch.rand(
        64, 1, 28, 28, generator=gen
    )  # ToTensor's range: background 0, ink up to 1
    with isolated(seed=7):
        G = models.MLPGenerator(latent_dim=16, hidden=(64,))  # untrained: Tanh outputs of both signs
    with torch.no_grad():
        fake = G(torch.randn(64, 16, generator=gen))
    one_negative = real_01.clone()
    one_negative[::2, 0, 14, 14] = -0.01  # every other image has one slightly negative pixel
    barely = real_01[:5].clone()
    barely[1, 0, 3, 20], barely[4, 0, 27, 0] = -1e-6, -1e-6  # below 0 all the same
    no = lambda n: torch.zeros(n, dtype=torch.bool)  # noqa: E731
    cases = [
        ("real images in [0, 1] (ToTensor)", real_01, no(64)),
        ("an untrained Tanh generator's samples", fake, ~no(64)),
        ("real images scaled to [-1, 1] (background -1)", 2 * real_01 - 1, ~no(64)),
        (
            "images in [0, 1], every other one with a single pixel at -0.01",
            one_negative,
            torch.arange(64) % 2 == 0,
        ),
        (
            "5 images in [0, 1], two with a single pixel at -1e-6",
            barely,
            torch.tensor([0, 1, 0, 0, 1]).bool(),
        ),
        (
            "a batch of [0, 1] images and generator samples, mixed",
            torch.cat([real_01[:3], fake[:3]]),
            no(6).index_fill(0, torch.tensor([3, 4, 5]), True),
        ),
    ]
    for name, x, expected in cases:
        given = x.clone()
        got = as_tensor_answer(answer(given), f"range_detector on {name}", (len(x),))
        _unchanged(x, given, "range_detector")
        if got.dtype != torch.bool:
            raise ExerciseError(f"range_detector returned dtype {got.dtype}, expected bool (True: fake)")
        if not torch.equal(got, expected):
            wrong = int((got != expected).sum())
            raise ExerciseError(
                f"on {name}, range_detector is wrong for {wrong} of {len(x)} images",
                "one verdict per image: True when any of its pixels is below 0 (a zero pixel is a real "
                "background pixel)",
            )
        alone = torch.cat([answer(x[i : i + 1].clone()) for i in range(min(len(x), 6))])
        if not torch.equal(alone, expected[: len(alone)]):
            raise ExerciseError(
                f"on {name}, range_detector gives other verdicts to images passed one at a time",
                "each image's verdict depends on that image's pixels only, not on the rest of the batch",
            )
    return "flagged as fake: untrained G 100%, real in [0, 1] 0%, real in [-1, 1] 100%"


# -- 3.5 ----------------------------------------------------------------------------------


def finish_run(checkpoint, x_train: torch.Tensor, total_steps: int):
    """Continue the run saved in ``checkpoint`` until it has trained ``total_steps`` steps in all,
    exactly as if it had never stopped; return its Trainer."""
    from gan_tutorial.trainer import Trainer

    trainer = Trainer.resume(checkpoint, x_train)  # weights, optimisers, step, history, random states
    trainer.run(steps=total_steps - trainer.step, progress=False)
    return trainer


def _tiny_config():
    # the articles' MLP, shrunk; dropout stays in D, so its random state must resume too
    return TrainConfig(
        model="mlp",
        model_args={"g_hidden": (32,), "d_hidden": (32,)},
        latent_dim=8,
        batch_size=16,
        log_every=1,  # a history entry per step: stopping anywhere keeps it whole
        checkpoint_seconds=0,
        seed=5,
    )


@exercise("3.5", "finish_run", finish_run)
def check_finish_run(answer) -> None:
    x_train = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1  # fake images
    config = _tiny_config()
    for stopped, total in ((5, 12), (9, 11)):  # stopped neither half-way nor at one place only
        _check_one_finish(answer, config, x_train, stopped, total)


def _check_one_finish(answer, config: TrainConfig, x_train: torch.Tensor, stopped: int, total: int) -> None:
    straight = Trainer(config, x_train)
    straight.run(steps=total, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        first = Trainer(config, x_train, out_dir=folder)
        first.run(steps=stopped, progress=False)  # ends by writing folder/checkpoint.pt
        del first
        trained = []  # count the iterations the answer trains (any Trainer)
        one_step = Trainer._step
        Trainer._step = lambda self: (trained.append(1), one_step(self))[1]
        given = x_train.clone()
        try:
            trainer = answer(Path(folder) / "checkpoint.pt", given, total)
        finally:
            Trainer._step = one_step
    _unchanged(x_train, given, "finish_run")
    if not isinstance(trainer, Trainer):
        raise ExerciseError(f"finish_run returned {type(trainer).__name__}, expected the Trainer it ran")
    missing = (
        f"the checkpoint is at step {stopped} (its trainer's .step after resuming): train only the steps "
        "still missing, total_steps minus that"
    )
    where = f"(stopped at step {stopped}, total_steps={total})"
    if trainer.step != total:
        raise ExerciseError(
            f"the returned trainer is at step {trainer.step}, expected {total} {where}", missing
        )
    if len(trained) != total - stopped:
        raise ExerciseError(
            f"finish_run trained {len(trained)} iterations; {total - stopped} were missing {where}", missing
        )
    for name, a, b in (("G", straight.G, trainer.G), ("D", straight.D, trainer.D)):
        if not all(
            torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        ):
            raise ExerciseError(
                f"{name}'s weights differ from a run of {total} steps that never stopped {where}",
                "Trainer.resume(checkpoint, x_train) restores the weights and also both optimisers, "
                "the batch order and the random states; a new Trainer with only some of them loaded "
                "continues differently",
            )
    if trainer.history.step != straight.history.step:
        raise ExerciseError(
            f"the history logs steps {trainer.history.step}, the uninterrupted run {straight.history.step}",
            "the checkpoint holds the history of the first part: resume it rather than start a new one",
        )
