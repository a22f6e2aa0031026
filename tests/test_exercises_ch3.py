"""Chapter 3's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import torch
from exercise_tools import rejected

# -- chapter 3 ----------------------------------------------------------------------------


def test_3_1_rejects_variances_a_missing_cross_term_and_absolute_values():
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2) ** 2, match="standard deviations")
    rejected("3.1", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2), match="square root")
    rejected("3.1", lambda m1, s1, m2, s2: abs(m1 - m2) + abs(s1 - s2), match="squares")


def test_3_2_rejects_swapped_losses_and_batch_means():
    def swapped(l, name):
        return torch.sigmoid(l) - 1 if name == "minimax" else -torch.sigmoid(l)

    def batch_mean(l, name):
        return (-torch.sigmoid(l) if name == "minimax" else torch.sigmoid(l) - 1) / l.numel()

    rejected("3.2", swapped, match="that is the nonsaturating")
    rejected("3.2", batch_mean, match="per sample")
    rejected("3.2", lambda l, name: torch.sigmoid(l) - 1, match="minimax")  # one formula for both


def test_3_3_rejects_soft_histograms_a_zero_threshold_and_nan():
    def soft(probs):
        h = probs.double().mean(0)
        return int((h >= 0.01).sum()), (h * torch.log(10 * h)).sum().item()

    def any_sample(probs):
        hist = torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)
        h = hist[hist > 0]
        return int((hist > 0).sum()), (h * torch.log(10 * h)).sum().item()

    def nan_kl(probs):
        hist = torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)
        return int((hist >= 0.01).sum()), (hist * torch.log(10 * hist)).sum().item()

    rejected("3.3", soft, match="argmax")
    rejected("3.3", any_sample, match="1%")
    rejected("3.3", nan_kl, match="0 log 0")


def test_3_4_rejects_all_pixels_whole_batch_and_zero_as_fake():
    rejected("3.4", lambda x: (x.flatten(1) < 0).all(dim=1), match="untrained")
    rejected("3.4", lambda x: x.min() < 0, match="shape")
    rejected("3.4", lambda x: (x.flatten(1) <= 0).any(dim=1), match="ToTensor")
    rejected("3.4", lambda x: x.flatten(1).mean(1) < 0)


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
    rejected("3.5", all_steps_again, match="step 18")
    rejected("3.5", from_scratch, match="trained 12 iterations")
