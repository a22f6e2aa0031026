"""Chapter 1's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_tools import rejected

from gan_tutorial import losses, updates
from gan_tutorial.exercises import chapter1

# -- chapter 1 ----------------------------------------------------------------------------


def test_1_1_rejects_swapped_and_ratio():
    rejected("1.1", lambda a, b: b / (a + b), match="swapped")
    rejected("1.1", lambda a, b: a / b)
    rejected("1.1", lambda a, b: torch.sigmoid(a - b))


def test_1_2_rejects_naive_minimax_sum_and_clamped_forms():
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l)).mean(), match="NaN or infinite|softplus")
    rejected("1.2", lambda l: -F.softplus(l).mean(), match="minimax")
    rejected("1.2", lambda l: F.softplus(-l).sum(), match="mean")
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l).clamp_min(1e-12)).mean())


def _jsd(p, q, x, mistake):
    m = (p + q) / 2
    if mistake == "log":  # no care for 0 log 0
        return 0.5 * (torch.trapezoid(p * torch.log(p / m), x) + torch.trapezoid(q * torch.log(q / m), x))
    if mistake == "kl_pq":  # symmetrised KL instead of the mixture
        return 0.5 * (
            torch.trapezoid(torch.xlogy(p, p) - torch.xlogy(p, q), x)
            + torch.trapezoid(torch.xlogy(q, q) - torch.xlogy(q, p), x)
        )
    kl_pm = torch.trapezoid(torch.xlogy(p, p) - torch.xlogy(p, m), x)
    kl_qm = torch.trapezoid(torch.xlogy(q, q) - torch.xlogy(q, m), x)
    if mistake == "no_half":
        return kl_pm + kl_qm
    if mistake == "log2":
        return 0.5 * (kl_pm + kl_qm) / math.log(2)
    if mistake == "sum":
        return 0.5 * (
            (torch.xlogy(p, p) - torch.xlogy(p, m)).sum() + (torch.xlogy(q, q) - torch.xlogy(q, m)).sum()
        )
    raise ValueError(mistake)


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("log", "xlogy"),
        ("kl_pq", "N\\(0, 1\\) and N\\(1, 1.5"),
        ("no_half", "1/2"),
        ("log2", "natural"),
        ("sum", "dx"),
    ],
)
def test_1_3_rejects_the_usual_jsd_mistakes(mistake, match):
    rejected("1.3", lambda p, q, x: _jsd(p, q, x, mistake), match=match)


def _r1_step(mistake):
    def step(G, D, opt_D, x_real, z, loss="minimax", gamma=0.5):
        gan_loss = losses.get_loss(loss)
        with torch.no_grad():
            x_fake = G(z)
        x_real = x_real.detach().requires_grad_(True)
        x_fake = x_fake.detach().requires_grad_(True)
        real_logits, fake_logits = D(x_real), D(x_fake)
        if mistake == "fake":  # penalises the fakes
            (g,) = torch.autograd.grad(fake_logits.sum(), x_fake, create_graph=True)
        elif mistake == "no_create_graph":  # the gradient is a constant for D's step
            (g,) = torch.autograd.grad(real_logits.sum(), x_real, retain_graph=True)
        else:
            (g,) = torch.autograd.grad(real_logits.sum(), x_real, create_graph=True)
        sq = g.pow(2).flatten(1).sum(1)
        penalty = {
            "no_half": gamma * sq.mean(),
            "unsquared": 0.5 * gamma * sq.sqrt().mean(),
            "sum_dim1": 0.5 * gamma * g.pow(2).sum(1).mean(),  # right for points, wrong for images
            "fixed_gamma": 0.25 * sq.mean(),  # gamma = 0.5 hard-coded
        }.get(mistake, 0.5 * gamma * sq.mean())
        opt_D.zero_grad(set_to_none=True)
        (gan_loss.d(real_logits, fake_logits) + penalty).backward()
        opt_D.step()

    return step


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("fake", "real batch"),
        ("no_half", "1/2"),
        ("no_create_graph", "create_graph"),
        ("unsquared", "squared norm"),
        ("sum_dim1", "shape \\(32, 1, 3, 3\\)"),
        ("fixed_gamma", "gamma = 10.0"),
    ],
)
def test_1_4_rejects_the_usual_r1_mistakes(mistake, match):
    rejected("1.4", _r1_step(mistake), match=match)


def test_1_4_rejects_a_plain_d_step_and_one_that_moves_g():
    rejected(
        "1.4",
        lambda G, D, opt_D, x_real, z, loss="minimax", gamma=0.5: updates.d_step(
            G, D, opt_D, x_real, z, loss
        ),
    )

    def moves_g(G, D, opt_D, x_real, z, loss="minimax", gamma=0.5):
        chapter1.d_step_r1(G, D, opt_D, x_real, z, loss, gamma)
        with torch.no_grad():
            next(G.parameters()).add_(1.0)

    rejected("1.4", moves_g, match="changed G's weights")


def _dirac(k, steps=200, lr=0.1, loss="minimax"):
    G, D = chapter1.dirac_pair()
    point = torch.zeros(1, 1, dtype=torch.float64)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=lr), torch.optim.SGD(D.parameters(), lr=lr)
    updates.train(G, D, opt_G, opt_D, lambda: point, lambda: point, steps, loss=loss, k=k)
    return math.hypot(G.theta.item(), D.weight.item())


def test_1_5_rejects_other_runs():
    rejected("1.5", lambda k: _dirac(1), match="pass k on")  # k ignored
    rejected("1.5", lambda k: _dirac(k, loss="nonsaturating"), match="minimax")
    rejected("1.5", lambda k: _dirac(k, steps=100))
    rejected("1.5", lambda k: _dirac(k, lr=0.01))
    rejected("1.5", lambda k: math.sqrt(2), match="distance at the start")
    rejected("1.5", lambda k: abs(_dirac_theta(k)))


def _dirac_theta(k):
    G, D = chapter1.dirac_pair()
    point = torch.zeros(1, 1, dtype=torch.float64)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    updates.train(G, D, opt_G, opt_D, lambda: point, lambda: point, 200, loss="minimax", k=k)
    return G.theta.item()  # |theta| only, not the distance


def test_1_5_closed_form_matches_the_package_loop():
    for k in (1, 2, 5):
        assert math.isclose(_dirac(k), chapter1._dirac_closed_form(k), rel_tol=1e-6)
