"""Chapter 5's exercise checkers: the stored solutions pass (test_exercises.py), the mistakes a
learner would make are rejected, and every correct form, float32 included, is accepted."""

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_tools import rejected

from gan_tutorial import data, exercises


def accepted(exercise_id, answer, capsys):
    exercises.check(exercise_id, answer)
    assert capsys.readouterr().out.startswith(f"exercise {exercise_id}: correct")


def copied_from_messages(solution, digits):
    """An answer that returns, call by call, what the checker's messages print: the solution's value
    rounded to ``digits`` significant digits."""

    def answer(*args):
        return float(f"{float(solution(*args)):.{digits}g}")

    return answer


# -- 5.1 ----------------------------------------------------------------------------------


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

    def uniform_marginal(probs):  # p(y) taken as uniform instead of measured
        return math.exp(math.log(probs.shape[1]) + torch.xlogy(probs, probs).sum(1).mean().item())

    for wrong in (no_exp, marginal_only, reversed_kl, log2, naive_log, uniform_marginal):
        rejected("5.1", wrong)


def test_5_1_rejects_an_input_clamped_in_place_ten_classes_assumed_and_copied_numbers():
    def clamped_in_place(probs):  # right value, but the caller's probabilities are changed
        probs.clamp_(min=1e-12)
        m = probs.mean(0, keepdim=True)
        return (probs * (probs.log() - m.log())).sum(1).mean().exp().item()

    def ten_classes(probs):  # written for MNIST's K = 10 only
        p = probs.reshape(-1, 10)
        m = p.mean(0, keepdim=True)
        return (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(1).mean().exp().item()

    rejected("5.1", clamped_in_place, "changed its input in place")
    rejected("5.1", ten_classes, "7 classes")
    rejected("5.1", copied_from_messages(exercises.solution("5.1"), 4), "expected")


def test_5_1_accepts_float32_a_small_epsilon_kl_div_and_a_tensor(capsys):
    def in_float32(probs):
        p = probs.float()
        m = p.mean(0, keepdim=True)
        return (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(1).mean().exp().item()

    def epsilon(probs):
        m = probs.mean(0, keepdim=True)
        return (probs * ((probs + 1e-12).log() - (m + 1e-12).log())).sum(1).mean().exp().item()

    def kl_div(probs):  # F.kl_div(log q, p) is sum p (log p - log q), with 0 where p = 0
        log_m = probs.mean(0, keepdim=True).clamp_min(1e-30).log().expand_as(probs)
        return F.kl_div(log_m, probs, reduction="batchmean").exp().item()

    def tensor(probs):
        m = probs.mean(0)
        return (torch.special.entr(m).sum() - torch.special.entr(probs).sum(1).mean()).exp()

    for right in (in_float32, epsilon, kl_div, tensor):
        accepted("5.1", right, capsys)


# -- 5.2 ----------------------------------------------------------------------------------


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


def test_5_2_rejects_dropping_every_zero_distance_changed_inputs_and_copied_numbers():
    def drops_zeros(real, fake, k):  # "skip itself" by dropping distance 0: drops coinciding points too
        d = torch.cdist(real, real)
        d[d < 1e-6] = float("inf")
        radii = d.topk(k, dim=1, largest=False).values[:, k - 1]
        return (torch.cdist(real, fake) < radii[:, None]).any(1).double().mean().item()

    def centres_in_place(real, fake, k):  # distances unchanged, the caller's tensors not
        fake -= real.mean(0)
        real -= real.mean(0)
        return exercises.solution("5.2")(real, fake, k)

    rejected("5.2", drops_zeros, "some of them twice")
    rejected("5.2", centres_in_place, "changed its input in place")
    rejected("5.2", copied_from_messages(exercises.solution("5.2"), 4), "expected")


def test_5_2_accepts_float32_less_or_equal_and_an_infinite_diagonal(capsys):
    def float32_share(real, fake, k):
        radii = torch.cdist(real, real).sort(dim=1).values[:, k]
        return (torch.cdist(real, fake) < radii[:, None]).any(1).float().mean()

    def less_or_equal(real, fake, k):  # Kynkaanniemi et al.'s convention: differs only on exact ties
        radii = torch.cdist(real, real).topk(k + 1, dim=1, largest=False).values[:, k]
        return (torch.cdist(real, fake) <= radii[:, None]).any(1).double().mean().item()

    def infinite_diagonal(real, fake, k):  # the point itself excluded by its index
        d = torch.cdist(real, real)
        d.fill_diagonal_(float("inf"))
        radii = d.topk(k, dim=1, largest=False).values[:, k - 1]
        return (torch.cdist(real, fake) < radii[:, None]).any(1).double().mean().item()

    for right in (float32_share, less_or_equal, infinite_diagonal):
        accepted("5.2", right, capsys)


# -- 5.3 ----------------------------------------------------------------------------------

RING = data.ring8()


def modes(n, generator, count=3, width=1.0, dtype=torch.float32, use_global=False):
    """Points of the first ``count`` modes of the ring, their noise ``width`` times the modes'
    (drawn from the global generator instead of ``generator`` with ``use_global``)."""
    generator = None if use_global else generator
    keep = torch.randint(0, count, (n,), generator=generator)
    noise = torch.randn(n, 2, dtype=torch.float64, generator=generator)
    return (RING.means[keep] + width * RING.stds[keep, None] * noise).to(dtype)


def test_5_3_rejects_the_perfect_sampler_noise_and_points_off_the_ring():
    def perfect(n, generator):
        return RING.sample(n, generator)

    def noise(n, generator):
        return torch.rand(n, 2, generator=generator) * 3 - 1.5

    def far_away(n, generator):
        return torch.randn(n, 2, generator=generator) * 0.01 + 5.0

    rejected("5.3", perfect, "recall")
    rejected("5.3", noise, "precision")
    rejected("5.3", far_away, "precision")


def test_5_3_rejects_the_global_generator_a_generator_of_its_own_and_fixed_points():
    def global_generator(n, generator):  # torch.randn without generator=
        return modes(n, generator, use_global=True)

    def reseeds(n, generator):
        torch.manual_seed(0)
        return modes(n, generator, use_global=True)

    def own_generator(n, generator):
        return modes(n, torch.Generator().manual_seed(0))

    def one_point(n, generator):  # a mode's centre, n times: precise and incomplete, but not drawn
        return RING.means[[0] * n].float()

    rejected("5.3", global_generator, "global random generator")
    rejected("5.3", reseeds, "global random generator")
    rejected("5.3", own_generator, "seeded differently gave the same points")
    rejected("5.3", one_point, "seeded differently gave the same points")


def test_5_3_rejects_float64_and_a_fixed_n():
    def in_float64(n, generator):
        return modes(n, generator, dtype=torch.float64)

    def always_2500(n, generator):
        return modes(2500, generator)

    rejected("5.3", in_float64, "float64")
    rejected("5.3", always_2500, r"shape \(2500, 2\)")


@pytest.mark.parametrize("count, width", [(3, 1.0), (4, 1.0), (8, 0.1)])
def test_5_3_accepts_few_modes_or_every_mode_too_sharp(count, width, capsys):
    # eight modes at a tenth of their width: the fakes' own balls are too small to hold many real
    # points, so recall falls as it does for missing modes
    accepted("5.3", lambda n, generator: modes(n, generator, count, width), capsys)
