"""Chapter 2's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import pytest
import torch
from exercise_tools import rejected

from gan_tutorial import losses
from gan_tutorial.exercises import chapter2

# -- chapter 2 ----------------------------------------------------------------------------


def test_2_1_rejects_minimax_sign_batch_mean_and_overflow():
    rejected("2.1", lambda l: -torch.sigmoid(l), match="minimax")
    rejected("2.1", lambda l: 1 - torch.sigmoid(l), match="sign")
    rejected("2.1", lambda l: (torch.sigmoid(l) - 1) / l.numel(), match="per sample")
    rejected("2.1", lambda l: -torch.exp(-l) / (1 + torch.exp(-l)), match="overflow")

    def with_autograd(l):
        l = l.clone().requires_grad_(True)
        return torch.autograd.grad(losses.g_loss_nonsaturating(l) * len(l), l)[0]

    rejected("2.1", with_autograd, match="raised RuntimeError")


def test_2_2_rejects_swapped_cross_entropy_and_fixed_coding():
    rejected("2.2", lambda p_d, p_g, a=-1.0, b=1.0: (a * p_d + b * p_g) / (p_d + p_g), match="swapped")
    rejected("2.2", lambda p_d, p_g, a=-1.0, b=1.0: p_d / (p_d + p_g), match="cross-entropy")
    rejected(
        "2.2", lambda p_d, p_g, a=-1.0, b=1.0: (p_d - p_g) / (p_d + p_g), match="a = 0.0"
    )  # a, b ignored


def test_2_3_rejects_squared_distances_variance_and_the_first_mode_only():
    def squared(x, means, sigma):
        d2 = torch.cdist(x.double(), means.double()).min(dim=1).values ** 2
        return (d2 < 3 * sigma).double().mean().item()

    def variance(x, means, sigma):
        d = torch.cdist(x.double(), means.double()).min(dim=1).values
        return (d < 3 * sigma**2).double().mean().item()

    def first_mode(x, means, sigma):
        return ((x.double() - means[0].double()).norm(dim=1) < 3 * sigma).double().mean().item()

    rejected("2.3", squared, match="not squared")
    rejected("2.3", variance)
    rejected("2.3", first_mode)


def test_2_4_rejects_zero_logs_log2_and_a_missing_k():
    def no_zero_care(counts):
        q = counts.double() / counts.sum()
        return (q * torch.log(len(counts) * q)).sum().item()

    def log2(counts):
        return chapter2.kl_uniform(counts) / math.log(2)

    def entropy_only(counts):
        q = counts.double() / counts.sum()
        return torch.xlogy(q, q).sum().item()

    rejected("2.4", no_zero_care, match="0 log 0")
    rejected("2.4", log2, match="natural")
    rejected("2.4", entropy_only, match="1/K")


def test_2_5_rejects_a_short_run_at_constant_rates():
    # 1,000 iterations at the default rates end near the 40% line, on either side of it depending
    # on the machine's floating-point rounding; half of them stay well below it
    rejected("2.5", lambda lab: lab.train(500), match="train_ring|modes|3 sigma")


def test_2_5_enforces_the_budget_without_training():
    def too_long(lab):
        lab.train(600)
        lab.train(600)

    def many_d_steps(lab):
        lab.set_rates(k=5)
        lab.train(200)

    def restarts(lab):
        lab.reset(hidden=256)

    from gan_tutorial.explorer import Explorer

    calls = []

    def counted(self, steps):  # the real one would train: only count, and advance the step
        calls.append(steps)
        self.step += steps
        return {}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Explorer, "train", counted)
        rejected("2.5", too_long, match="budget")
        rejected("2.5", many_d_steps, match="k = 5")
        rejected("2.5", restarts, match="reset")
        rejected("2.5", lambda lab: None, match="did not train")
    assert calls == [600]
