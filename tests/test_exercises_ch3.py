"""Chapter 3's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected; correct answers in float32 pass."""

import numpy as np
import torch
from exercise_tools import rejected

from gan_tutorial import exercises, losses

# -- chapter 3 ----------------------------------------------------------------------------


def test_3_1_rejects_variances_a_missing_cross_term_a_root_and_absolute_values():
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2) ** 2, match="standard deviations")
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2), match="square root")
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**0.5 - s2**0.5) ** 2, match="not variances")
    rejected("3.1", lambda m1, s1, m2, s2: ((m1 - m2) ** 2 + (s1 - s2) ** 2) ** 0.5, match="no square root")
    rejected("3.1", lambda m1, s1, m2, s2: abs(m1 - m2) + abs(s1 - s2), match="squares")
    rejected("3.1", lambda m1, s1, m2, s2: str((m1 - m2) ** 2 + (s1 - s2) ** 2), match="expected a number")


def test_3_1_accepts_float32_tensors_and_numpy_scalars():
    def in_float32(m1, s1, m2, s2):
        m1, s1, m2, s2 = (torch.tensor(v) for v in (m1, s1, m2, s2))  # float32
        return (m1 - m2) ** 2 + s1**2 + s2**2 - 2 * s1 * s2

    exercises.check("3.1", in_float32)
    exercises.check("3.1", lambda m1, s1, m2, s2: np.float32((m1 - m2) ** 2 + (s1 - s2) ** 2))


def test_3_1_message_is_no_answer_key():
    # off by 2e-6 of the value: the 4 digits shown agree, and do not give the digits that would pass
    err = rejected("3.1", lambda m1, s1, m2, s2: (1 + 2e-6) * ((m1 - m2) ** 2 + (s1 - s2) ** 2))
    assert "alike in the 4 digits shown" in str(err)


def _minimax_or_ns(l, name):
    return -torch.sigmoid(l) if name == "minimax" else torch.sigmoid(l) - 1


def test_3_2_rejects_swapped_losses_and_batch_means():
    def swapped(l, name):
        return torch.sigmoid(l) - 1 if name == "minimax" else -torch.sigmoid(l)

    rejected("3.2", swapped, match="that is the nonsaturating")
    rejected("3.2", lambda l, name: _minimax_or_ns(l, name) / l.numel(), match="per sample")
    rejected("3.2", lambda l, name: torch.sigmoid(l) - 1, match="minimax")  # one formula for both


def test_3_2_rejects_autograd_even_when_its_error_is_caught():
    def by_autograd(l, name):
        with torch.enable_grad():
            leaf = l.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(losses.get_loss(name).g(leaf) * leaf.numel(), leaf)
        return g

    def by_backward(l, name):
        with torch.enable_grad():
            leaf = l.clone().requires_grad_(True)
            (losses.get_loss(name).g(leaf) * leaf.numel()).backward()
        return leaf.grad

    def by_func(l, name):
        return torch.func.grad(lambda t: losses.get_loss(name).g(t) * t.numel())(l)

    def hiding_it(l, name):
        try:
            return by_autograd(l, name)
        except Exception:
            return _minimax_or_ns(l, name)

    for answer in (by_autograd, by_backward, by_func, hiding_it):
        rejected("3.2", answer, match="autograd")


def test_3_2_rejects_inputs_changed_in_place_wrong_dtypes_and_flattening():
    def in_place(l, name):
        s = l.sigmoid_()
        return -s if name == "minimax" else s - 1

    rejected("3.2", in_place, match="in place")
    rejected("3.2", lambda l, name: _minimax_or_ns(l.double(), name), match="dtype|float32")
    rejected("3.2", lambda l, name: _minimax_or_ns(l.float(), name), match="float64")
    rejected("3.2", lambda l, name: _minimax_or_ns(l, name).flatten(), match="shape")
    rejected(
        "3.2",
        lambda l, name: -torch.exp(l) / (1 + torch.exp(l)) if name == "minimax" else torch.sigmoid(l) - 1,
    )


def test_3_2_accepts_other_correct_forms():
    exercises.check(
        "3.2", lambda l, name: -1 / (1 + torch.exp(-l)) if name == "minimax" else -torch.sigmoid(-l)
    )


def _hist(probs):
    return torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)


def test_3_3_rejects_soft_histograms_a_zero_threshold_and_nan():
    def soft(probs):
        h = probs.double().mean(0)
        return int((h >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    def any_sample(probs):
        hist, h = _hist(probs), _hist(probs)[_hist(probs) > 0]
        return int((hist > 0).sum()), (h * torch.log(10 * h)).sum().item()

    def nan_kl(probs):
        hist = _hist(probs)
        return int((hist >= 0.01).sum()), (hist * torch.log(10 * hist)).sum().item()

    rejected("3.3", soft, match="argmax")
    rejected("3.3", any_sample, match="1%")
    rejected("3.3", nan_kl, match="0 log 0")


def test_3_3_rejects_strictly_above_a_fixed_sample_count_a_float_count_and_changed_inputs():
    def strictly_above(probs):
        hist, h = _hist(probs), _hist(probs)[_hist(probs) > 0]
        return int((hist > 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    def thousand_samples(probs):
        hist = torch.bincount(probs.argmax(1), minlength=10).double() / 1000
        h = hist[hist > 0]
        return int((hist >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    def float_count(probs):
        hist, h = _hist(probs), _hist(probs)[_hist(probs) > 0]
        return float((hist >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    def sharpened_in_place(probs):
        probs.pow_(4)  # sharper, the same argmax: but the caller's tensor is gone
        hist, h = _hist(probs), _hist(probs)[_hist(probs) > 0]
        return int((hist >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    rejected("3.3", strictly_above, match="1%")
    rejected("3.3", thousand_samples)
    rejected("3.3", float_count, match="a count is an int")
    rejected("3.3", sharpened_in_place, match="in place")


def test_3_3_accepts_float32_and_tensor_answers():
    def in_float32(probs):
        hist = torch.bincount(probs.argmax(1), minlength=10).float() / len(probs)
        h = hist[hist > 0]
        return (hist >= 0.01).sum(), (h * (torch.log(h) + torch.log(torch.tensor(10.0)))).sum()

    exercises.check("3.3", in_float32)


def test_3_4_rejects_all_pixels_whole_batch_and_zero_as_fake():
    rejected("3.4", lambda x: (x.flatten(1) < 0).all(dim=1), match="untrained")
    rejected("3.4", lambda x: x.min() < 0, match="shape")
    rejected("3.4", lambda x: (x.flatten(1) <= 0).any(dim=1), match="ToTensor")
    rejected("3.4", lambda x: x.flatten(1).mean(1) < 0)


def test_3_4_rejects_a_margin_a_fixed_batch_size_and_changed_inputs():
    rejected("3.4", lambda x: (x.flatten(1) < -1e-3).any(dim=1), match="-1e-6")
    rejected("3.4", lambda x: (x.reshape(64, -1) < 0).any(dim=1), match="RuntimeError")
    rejected("3.4", lambda x: x.flatten(1).lt_(0).any(dim=1), match="in place")


def test_3_4_rejects_integer_verdicts():
    rejected("3.4", lambda x: (x.flatten(1) < 0).any(dim=1).int(), match="expected bool")


def test_3_3_message_is_no_answer_key():
    def kl_a_little_off(probs):
        hist = _hist(probs)
        h = hist[hist > 0]
        return int((hist >= 0.01).sum()), 1.00002 * (h * torch.log(10 * h)).sum().item()

    err = rejected("3.3", kl_a_little_off, match="KL")
    assert "alike in the 4 digits shown" in str(err)


def test_3_4_rejects_a_verdict_that_depends_on_the_batch():
    def by_batch(x):
        verdict = (x.flatten(1) < 0).any(dim=1)
        return verdict if len(x) > 1 else torch.zeros(1, dtype=torch.bool)

    rejected("3.4", by_batch, match="one at a time")


def test_3_5_rejects_a_fresh_trainer_a_full_second_run_and_a_new_history():
    from gan_tutorial.checkpoint import config_of
    from gan_tutorial.trainer import Trainer

    def fresh_with_weights(checkpoint, x_train, total_steps):
        state = torch.load(checkpoint, weights_only=True)
        t = Trainer(config_of(state, checkpoint), x_train)
        t.G.load_state_dict(state["G"])
        t.D.load_state_dict(state["D"])
        t.step = state["step"]
        t.run(steps=total_steps - t.step, progress=False)
        return t

    def all_but_the_random_states(checkpoint, x_train, total_steps):
        state = torch.load(checkpoint, weights_only=True)
        t = Trainer(config_of(state, checkpoint), x_train)
        for module, key in ((t.G, "G"), (t.D, "D"), (t.opt_G, "opt_G"), (t.opt_D, "opt_D")):
            module.load_state_dict(state[key])
        t.step = state["step"]
        t.run(steps=total_steps - t.step, progress=False)
        return t

    def all_steps_again(checkpoint, x_train, total_steps):
        t = Trainer.resume(checkpoint, x_train)
        t.run(steps=total_steps, progress=False)
        return t

    def from_scratch(checkpoint, x_train, total_steps):
        state = torch.load(checkpoint, weights_only=True)
        t = Trainer(config_of(state, checkpoint), x_train)
        t.run(steps=total_steps, progress=False)
        return t

    rejected("3.5", fresh_with_weights, match="weights differ")
    rejected("3.5", all_but_the_random_states, match="weights differ")
    rejected("3.5", all_steps_again, match="step 17")
    rejected("3.5", from_scratch, match="trained 12 iterations")


def test_3_5_rejects_a_stop_assumed_half_way():
    from gan_tutorial.trainer import Trainer

    def half_way(checkpoint, x_train, total_steps):
        t = Trainer.resume(checkpoint, x_train)
        t.run(steps=total_steps // 2, progress=False)
        return t

    def six_more(checkpoint, x_train, total_steps):
        t = Trainer.resume(checkpoint, x_train)
        t.run(steps=6, progress=False)
        return t

    rejected("3.5", half_way, match="stopped at step 5")
    rejected("3.5", six_more, match="stopped at step 5")


def test_3_5_rejects_changed_images():
    from gan_tutorial.trainer import Trainer

    def scaled_in_place(checkpoint, x_train, total_steps):
        t = Trainer.resume(checkpoint, x_train.clamp_(-1, 1))  # a no-op here, but in place
        x_train.mul_(1.0)
        x_train[0, 0, 0, 0] = 0.0
        t.run(steps=total_steps - t.step, progress=False)
        return t

    rejected("3.5", scaled_in_place, match="in place")
