"""Chapter 3's exercises (``notebooks/03_mlp_mnist.ipynb``): the Frechet distance in 1-D, why the
minimax loss stalls, the judge's numbers from its probabilities, the range bug from D's side, and
finishing an interrupted run exactly (training with the trainer)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import losses, models
from ..config import TrainConfig
from ..metrics import frechet_distance, kl_from_uniform
from ..metrics import judge as J
from ..runtime import isolated
from ..trainer import Trainer
from . import ExerciseError, exercise
from ._common import as_float_answer, as_tensor_answer, close, require_close, show

# -- 3.1 ----------------------------------------------------------------------------------


def frechet_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    """Frechet distance between N(m1, s1^2) and N(m2, s2^2) (s1, s2: standard deviations)."""
    return (m1 - m2) ** 2 + (s1 - s2) ** 2  # Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = (s1 - s2)^2


@exercise("3.1", "frechet_1d", frechet_1d)
def check_frechet_1d(answer) -> None:
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    for m1, s1, m2, s2 in [
        (0.0, 1.0, 0.0, 1.0),
        (1.0, 2.0, -1.0, 0.5),
        (3.0, 0.1, 2.0, 4.0),
        (0.0, 3.0, 0.0, 1.0),
    ]:
        expected = frechet_distance(t(m1), t(s1**2)[None], t(m2), t(s2**2)[None])
        got = as_float_answer(answer(m1, s1, m2, s2), f"frechet_1d({m1}, {s1}, {m2}, {s2})")
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
            continue
        hint = "with Sigma = s^2: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = s1^2 + s2^2 - 2 s1 s2"
        if math.isclose(got, (m1 - m2) ** 2 + (s1**2 - s2**2) ** 2, rel_tol=1e-9):
            hint = "s1 and s2 are standard deviations; the difference of their squares is not the term"
        elif math.isclose(got, (m1 - m2) ** 2 + (s1**2 - s2**2), rel_tol=1e-9, abs_tol=1e-12):
            hint = "the matrix square root term, -2 (S1 S2)^(1/2) = -2 s1 s2, is missing"
        elif math.isclose(got, abs(m1 - m2) + abs(s1 - s2), rel_tol=1e-9):
            hint = "the distance is made of squares: (m1 - m2)^2 + ..."
        raise ExerciseError(
            f"frechet_1d({m1}, {s1}, {m2}, {s2}) gave {got:.6g}; "
            f"metrics.frechet_distance gives {expected:.6g}",
            hint,
        )


# -- 3.2 ----------------------------------------------------------------------------------


def dloss_dlogit(logits: torch.Tensor, loss_name: str) -> torch.Tensor:
    """Per-sample derivative of G's loss ("minimax" or "nonsaturating") w.r.t. the fake logit."""
    if loss_name == "minimax":  # d/dl [-softplus(l)] = -sigmoid(l) = -D(G(z))
        return -torch.sigmoid(logits)
    return torch.sigmoid(logits) - 1  # d/dl [softplus(-l)] = sigmoid(l) - 1 = D(G(z)) - 1


@exercise("3.2", "dloss_dlogit", dloss_dlogit)
def check_dloss_dlogit(answer) -> str:
    logits = torch.cat([torch.linspace(-8, 4, 7), torch.tensor([-100.0, 100.0])])
    for name in ("minimax", "nonsaturating"):
        leaf = logits.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(losses.get_loss(name).g(leaf) * leaf.numel(), leaf)  # per sample
        with torch.no_grad():
            got = as_tensor_answer(
                answer(logits.clone(), name), f"dloss_dlogit(logits, {name!r})", logits.shape
            )
        other = "nonsaturating" if name == "minimax" else "minimax"
        hint = (
            f"differentiate G's {name} loss per sample: -softplus(l) (minimax), softplus(-l) (non-saturating)"
        )
        if close(got, dloss_dlogit(logits, other), atol=1e-7):
            hint = f"that is the {other} loss's derivative"
        elif close(got, expected / logits.numel(), atol=1e-9):
            hint = "per sample: do not divide by the batch size"
        elif close(got, -expected, atol=1e-7):
            hint = "check the sign"
        require_close(got, expected, f"dloss_dlogit(l, {name!r}) at l = {show(logits, 3)}", hint, atol=1e-6)
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
        [500, 500, 0, 0, 0, 0, 0, 0, 0, 0],  # two digits
    ]
    for i, counts in enumerate(cases):
        probs = _probs_with_predictions(counts, seed=i)
        hist = J.class_histogram(probs)
        modes, kl = J.modes_covered(probs), kl_from_uniform(hist)
        got = answer(probs.clone())
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"digit_stats returned {show(got)}, expected a pair (digits covered, KL)")
        got_modes, got_kl = as_float_answer(got[0], "digit_stats"), as_float_answer(got[1], "digit_stats")
        where = f"for {len(probs)} samples predicted as digits 0-9 {counts} times"
        if got_modes != modes:
            raise ExerciseError(
                f"digit_stats {where} says {got_modes:g} digits covered, expected {modes}",
                "a digit counts when at least 1% of the samples are predicted as it (>= 0.01)",
            )
        if not math.isclose(got_kl, kl, rel_tol=1e-9, abs_tol=1e-12):
            hint = "the histogram of predicted digits (argmax of each row), then sum h log(10 h) over h > 0"
            mean = probs.double().mean(0)
            if math.isclose(got_kl, float((mean * torch.log(10 * mean)).sum()), rel_tol=1e-6):
                hint = (
                    "count each sample's predicted digit (argmax); the average of the probabilities "
                    "is another histogram"
                )
            elif not math.isfinite(got_kl):
                hint = "a digit nobody drew contributes 0 (0 log 0 = 0)"
            raise ExerciseError(f"digit_stats {where} gives KL {got_kl:.6g}, expected {kl:.6g}", hint)
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
    cases = [
        ("real images in [0, 1] (ToTensor)", real_01, torch.zeros(64, dtype=torch.bool)),
        ("an untrained Tanh generator's samples", fake, torch.ones(64, dtype=torch.bool)),
        ("real images scaled to [-1, 1] (background -1)", 2 * real_01 - 1, torch.ones(64, dtype=torch.bool)),
        (
            "images in [0, 1], every other one with a single pixel at -0.01",
            one_negative,
            torch.arange(64) % 2 == 0,
        ),
    ]
    for name, x, expected in cases:
        got = as_tensor_answer(answer(x.clone()), f"range_detector on {name}", (64,))
        if got.dtype != torch.bool:
            raise ExerciseError(f"range_detector returned dtype {got.dtype}, expected bool (True: fake)")
        if not torch.equal(got, expected):
            wrong = int((got != expected).sum())
            raise ExerciseError(
                f"on {name}, range_detector is wrong for {wrong} of 64 images",
                "one verdict per image: True when any of its pixels is below 0 (a zero pixel is a real "
                "background pixel)",
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
        log_every=3,
        checkpoint_seconds=0,
        seed=5,
    )


@exercise("3.5", "finish_run", finish_run)
def check_finish_run(answer) -> None:
    x_train = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1  # fake images
    config, total = _tiny_config(), 12
    straight = Trainer(config, x_train)
    straight.run(steps=total, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        first = Trainer(config, x_train, out_dir=folder)
        first.run(steps=total // 2, progress=False)  # ends by writing folder/checkpoint.pt
        del first
        trained = []  # count the iterations the answer trains (any Trainer)
        one_step = Trainer._step
        Trainer._step = lambda self: (trained.append(1), one_step(self))[1]
        try:
            trainer = answer(Path(folder) / "checkpoint.pt", x_train.clone(), total)
        finally:
            Trainer._step = one_step
    if not isinstance(trainer, Trainer):
        raise ExerciseError(f"finish_run returned {type(trainer).__name__}, expected the Trainer it ran")
    missing = "the checkpoint is at step 6: resume it and train only the steps still missing, total_steps - 6"
    if trainer.step != total:
        raise ExerciseError(f"the returned trainer is at step {trainer.step}, expected {total}", missing)
    if len(trained) != total - total // 2:
        raise ExerciseError(
            f"finish_run trained {len(trained)} iterations; {total - total // 2} were missing", missing
        )
    for name, a, b in (("G", straight.G, trainer.G), ("D", straight.D, trainer.D)):
        if not all(
            torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        ):
            raise ExerciseError(
                f"{name}'s weights differ from a run of {total} steps that never stopped",
                "Trainer.resume(checkpoint, x_train) restores the weights and also both optimisers, "
                "the batch order and the random states; a new Trainer with only the weights loaded "
                "continues differently",
            )
    if trainer.history.step != straight.history.step:
        raise ExerciseError(
            f"the history logs steps {trainer.history.step}, the uninterrupted run {straight.history.step}",
            "the checkpoint holds the history of the first half: resume it rather than start a new one",
        )
