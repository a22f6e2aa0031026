"""Chapter 5's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import torch
from exercise_tools import rejected

# -- chapter 5 ----------------------------------------------------------------------------


def test_5_1_rejects_no_exp_the_marginal_entropy_alone_the_reversed_kl_and_log2():
    def no_exp(probs):
        m = probs.mean(0, keepdim=True)
        return (torch.xlogy(probs, probs) - torch.xlogy(probs, m)).sum(1).mean().item()

    def marginal_only(probs):  # exp(H(y)): forgets the samples' own entropy
        m = probs.mean(0)
        return math.exp(-torch.xlogy(m, m).sum().item())

    def reversed_kl(probs):
        m = probs.mean(0, keepdim=True).expand_as(probs)
        return (torch.xlogy(m, m) - m * probs.clamp_min(1e-30).log()).sum(1).mean().exp().item()

    def log2(probs):
        m = probs.mean(0, keepdim=True)
        kl = (probs * (probs.clamp_min(1e-30).log2() - m.log2())).sum(1)
        return 2 ** kl.mean().item()

    def naive_log(probs):  # 0 * log 0 = nan for exactly certain samples
        m = probs.mean(0, keepdim=True)
        return (probs * (probs.log() - m.log())).sum(1).mean().exp().item()

    for wrong in (no_exp, marginal_only, reversed_kl, log2, naive_log):
        rejected("5.1", wrong)


def test_5_2_rejects_recall_self_in_the_radius_precision_and_the_wrong_mean():
    def fake_balls(real, fake, k):  # recall's balls
        radii = torch.cdist(fake, fake).topk(k + 1, dim=1, largest=False).values[:, k]
        return (torch.cdist(real, fake) < radii[None, :]).any(1).double().mean().item()

    def counts_itself(real, fake, k):  # the k-th smallest distance includes the 0 to the point itself
        radii = torch.cdist(real, real).topk(k, dim=1, largest=False).values[:, k - 1]
        return (torch.cdist(real, fake) < radii[:, None]).any(1).double().mean().item()

    def share_of_fakes(real, fake, k):  # precision: the fakes inside some real ball
        radii = torch.cdist(real, real).topk(k + 1, dim=1, largest=False).values[:, k]
        return (torch.cdist(real, fake) < radii[:, None]).any(0).double().mean().item()

    for wrong in (fake_balls, counts_itself, share_of_fakes):
        rejected("5.2", wrong, "coverage of")


def test_5_3_rejects_the_perfect_sampler_noise_and_a_single_point():
    from gan_tutorial import data

    def perfect(n, generator):
        return data.ring8().sample(n, generator)

    def noise(n, generator):
        return torch.rand(n, 2, generator=generator) * 3 - 1.5

    def far_away(n, generator):
        return torch.full((n, 2), 5.0)

    rejected("5.3", perfect, "recall")
    rejected("5.3", noise, "precision")
    rejected("5.3", far_away, "precision")
