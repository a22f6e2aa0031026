"""Chapter 2's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import pytest
import torch
from exercise_tools import copies_the_message, rejected

from gan_tutorial import exercises, losses
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


def test_2_1_rejects_autograd_turned_back_on_a_changed_dtype_and_in_place():
    def enable_grad(l):
        with torch.enable_grad():
            l = l.clone().requires_grad_(True)
            return torch.autograd.grad(losses.g_loss_nonsaturating(l) * l.numel(), l)[0]

    def set_grad_enabled(l):
        with torch.set_grad_enabled(True):
            l = l.clone().requires_grad_(True)
            return torch.autograd.grad(torch.nn.functional.softplus(-l).sum(), l)[0]

    def func_grad(l):  # torch.func.grad ignores an outer no_grad
        return torch.vmap(torch.func.grad(lambda t: torch.nn.functional.softplus(-t)))(l.flatten()).view_as(l)

    for answer in (enable_grad, set_grad_enabled, func_grad):
        rejected("2.1", answer, match="autograd back on")
    rejected("2.1", lambda l: torch.sigmoid(l.double()) - 1, match="dtype")
    rejected("2.1", lambda l: l.sigmoid_().sub_(1), match="in place")


def test_2_1_accepts_other_correct_forms():
    exercises.check("2.1", lambda l: -torch.sigmoid(-l))
    exercises.check("2.1", lambda l: -1 / (1 + torch.exp(l)))  # exp(l) overflows to inf: -1 / inf = -0


def test_2_2_rejects_swapped_cross_entropy_and_fixed_coding():
    rejected("2.2", lambda p_d, p_g, a=-1.0, b=1.0: (a * p_d + b * p_g) / (p_d + p_g), match="swapped")
    rejected("2.2", lambda p_d, p_g, a=-1.0, b=1.0: p_d / (p_d + p_g), match="cross-entropy")
    rejected(
        "2.2", lambda p_d, p_g, a=-1.0, b=1.0: (p_d - p_g) / (p_d + p_g), match="a = 0.0"
    )  # a, b ignored


def test_2_2_rejects_a_changed_dtype_and_inputs_changed_in_place():
    rejected(
        "2.2", lambda p_d, p_g, a=-1.0, b=1.0: ((b * p_d + a * p_g) / (p_d + p_g)).float(), match="dtype"
    )

    def in_place(p_d, p_g, a=-1.0, b=1.0):
        total = p_d + p_g
        return p_d.mul_(b).add_(a * p_g).div_(total)

    rejected("2.2", in_place, match="in place")


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


def test_2_3_rejects_less_or_equal_two_coordinates_only_and_in_place():
    def at_most(x, means, sigma):  # <= where the rule is <: differs only at exactly 3 sigma
        return (torch.cdist(x.double(), means.double()).min(dim=1).values <= 3 * sigma).double().mean().item()

    def first_two_coordinates(x, means, sigma):  # right for 2-D points only
        d = ((x[:, None, 0] - means[None, :, 0]) ** 2 + (x[:, None, 1] - means[None, :, 1]) ** 2).sqrt()
        return (d.min(dim=1).values < 3 * sigma).double().mean().item()

    def centres_in_place(x, means, sigma):
        x[:, 0] += 1e-3  # the caller's samples moved
        return chapter2.high_quality_share(x, means, sigma)

    rejected("2.3", at_most, match="distance < 3 sigma")
    rejected("2.3", first_two_coordinates, match="3-D")
    rejected("2.3", centres_in_place, match="in place")


def test_2_3_and_2_4_accept_float32_arithmetic():
    def share32(x, means, sigma):
        nearest = torch.cdist(x.float(), means.float()).min(dim=1).values
        return (nearest < 3 * sigma).float().mean()  # a float32 tensor: 0.36500000953674316 for 730 of 2000

    def kl32(counts):
        q = counts.float() / counts.sum()
        return torch.xlogy(q, len(counts) * q).sum().item()

    exercises.check("2.3", share32)
    exercises.check("2.4", kl32)


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


def test_2_4_rejects_k_counted_without_empty_modes_and_counts_changed_in_place():
    def nonempty_k(counts):
        counts = counts[counts > 0]
        q = counts.double() / counts.sum()
        return (q * torch.log(len(counts) * q)).sum().item()

    def clamps(counts):
        counts.clamp_(min=1)  # "no empty modes": changes the histogram, and the caller's tensor
        return chapter2.kl_uniform(counts)

    rejected("2.4", nonempty_k, match="empty ones included")
    rejected("2.4", clamps, match="in place")


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


def test_2_5_rejects_a_reset_counter_training_outside_lab_train_and_weights_set_by_hand():
    from gan_tutorial import updates
    from gan_tutorial.explorer import Explorer

    calls = []

    def counted(self, steps):  # stands in for the real training: count, and move G a little
        calls.append(steps)
        self.step += steps
        with torch.no_grad():
            next(self.G.parameters()).add_(1e-3)
        return {}

    def resets_the_counter(lab):
        lab.train(600)
        lab.step = 0
        lab.train(600)

    def base_class_train(lab):  # around the budget's override
        Explorer.train(lab, 1500)

    def own_loop(lab):  # updates.train on lab's networks, outside lab.train
        updates.train(lab.G, lab.D, lab.opt_G, lab.opt_D, lab._real, lab._z, 5, k=1, log_every=5)
        lab.train(10)

    def closed_form(lab):  # train briefly, then put every weight where another run left it
        lab.train(10)
        with torch.no_grad():
            for p in lab.G.parameters():
                p.mul_(0.5)

    def new_optimiser(lab):
        lab.opt_G = torch.optim.SGD(lab.G.parameters(), lr=0.1)
        lab.train(10)

    def bigger_batch(lab):
        from dataclasses import replace

        lab.config = replace(lab.config, batch_size=4096)
        lab.train(10)

    def reseeds_the_data(lab):
        lab.train(10)
        lab.generator.manual_seed(7)
        lab.train(10)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Explorer, "train", counted)
        rejected("2.5", resets_the_counter, match="budget of 1,000")
        rejected("2.5", base_class_train, match="outside lab.train")
        rejected("2.5", own_loop, match="outside lab.train")
        rejected("2.5", closed_form, match="outside lab.train")
        rejected("2.5", new_optimiser, match="more of lab than its rates")
        rejected("2.5", bigger_batch, match="more of lab than its rates")
        rejected("2.5", reseeds_the_data, match="outside lab.train")


def test_2_3_and_2_4_reject_the_values_their_failure_messages_print():
    err = copies_the_message("2.3", r"expected about ([\d.]+)%", lambda x, means, sigma: 0.0, scale=0.01)
    assert err is not None and "the ring of 8" in str(err)
    err = copies_the_message("2.4", r"expected ([-\d.e]+)", lambda counts: 0.0)
    assert err is not None and "kl_uniform([" in str(err)
