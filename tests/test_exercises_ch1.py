"""Chapter 1's exercise checkers: the stored solutions pass (test_exercises.py), and the mistakes
a learner would make are rejected."""

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_tools import copies_the_message, rejected

from gan_tutorial import losses, updates
from gan_tutorial.exercises import chapter1

# -- chapter 1 ----------------------------------------------------------------------------


def test_1_1_rejects_swapped_and_ratio():
    rejected("1.1", lambda a, b: b / (a + b), match="swapped")
    rejected("1.1", lambda a, b: a / b)
    rejected("1.1", lambda a, b: torch.sigmoid(a - b))


def test_1_1_rejects_in_place_a_changed_dtype_and_a_flattened_answer():
    rejected("1.1", lambda a, b: a.div_(a + b), match="in place")
    rejected("1.1", lambda a, b: (a / (a + b)).float(), match="dtype")  # float64 weights, float32 answer
    rejected("1.1", lambda a, b: (a / (a + b)).flatten(), match="shape")  # right for 1-D inputs only


def test_1_2_rejects_naive_minimax_sum_and_clamped_forms():
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l)).mean(), match="NaN or infinite|softplus")
    rejected("1.2", lambda l: -F.softplus(l).mean(), match="minimax")
    rejected("1.2", lambda l: F.softplus(-l).sum(), match="mean")
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l).clamp_min(1e-12)).mean())


def test_1_2_rejects_cut_graphs_dtype_detours_float64_log_sigmoid_and_a_first_axis_mean():
    rejected("1.2", lambda l: F.softplus(-l).mean().detach(), match="no gradient")
    rejected("1.2", lambda l: torch.tensor(F.softplus(-l).mean().item()), match="no gradient")  # .item()
    rejected("1.2", lambda l: torch.from_numpy(F.softplus(-l.detach()).numpy()).mean(), match="no gradient")

    def no_grad(l):
        with torch.no_grad():
            return F.softplus(-l).mean()

    rejected("1.2", no_grad, match="no gradient")
    rejected("1.2", lambda l: F.softplus(-l.double()).mean(), match="dtype")  # float32 logits, float64 loss
    # the logarithm of a sigmoid computed in float64: finite at -300, -inf at -800
    rejected("1.2", lambda l: -torch.log(torch.sigmoid(l.double())).mean().to(l.dtype), match="745")
    rejected("1.2", lambda l: F.softplus(-l).sum() / l.shape[0], match="every logit")  # right for (B, 1) only
    rejected("1.2", lambda l: F.softplus(-l.neg_().neg_()).mean())  # in place on a leaf: PyTorch refuses


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


def test_1_3_rejects_an_evenly_spaced_grid_assumed_and_inputs_changed_in_place():
    def one_step(p, q, x):  # the first step of x for every interval: right on an even grid only
        m = (p + q) / 2
        f = torch.xlogy(p, p) - torch.xlogy(p, m) + torch.xlogy(q, q) - torch.xlogy(q, m)
        return 0.5 * torch.trapezoid(f, dx=(x[1] - x[0]).item())

    def clamps_in_place(p, q, x):
        p.clamp_(min=1e-300)
        q.clamp_(min=1e-300)
        return chapter1.jsd_on_grid(p, q, x)

    rejected("1.3", one_step, match="unevenly spaced")
    rejected("1.3", clamps_in_place, match="in place")


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


def _r1_step_side_effect(mistake):
    def step(G, D, opt_D, x_real, z, loss="minimax", gamma=0.5):
        gan_loss = losses.get_loss(loss)
        if mistake == "fakes_with_graph":  # no torch.no_grad(): D's loss flows back into G
            x_fake = G(z)
        else:
            with torch.no_grad():
                x_fake = G(z)
        if mistake == "in_place_flag":  # sets the flag on the caller's tensor
            x_real.requires_grad_(True)
        else:
            x_real = x_real.detach().requires_grad_(True)
        real_logits, fake_logits = D(x_real), D(x_fake)
        (g,) = torch.autograd.grad(real_logits.sum(), x_real, create_graph=True)
        penalty = 0.5 * gamma * g.pow(2).flatten(1).sum(1).mean()
        if mistake == "bce":  # the loss argument ignored: right for minimax and non-saturating alike
            loss_d = losses.d_loss_bce(real_logits, fake_logits)
        else:
            loss_d = gan_loss.d(real_logits, fake_logits)
        if mistake != "stale":
            opt_D.zero_grad(set_to_none=True)
        (loss_d + penalty).backward()
        opt_D.step()
        if mistake == "frozen_g":
            G.requires_grad_(False)
        if mistake == "eval_d":
            D.eval()

    return step


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("fakes_with_graph", "gradients on G's weights"),
        ("in_place_flag", "caller's x_real"),
        ("bce", "LSGAN's D loss"),
        ("stale", "zero_grad"),
        ("frozen_g", "requires_grad flags"),
        ("eval_d", "mode"),
    ],
)
def test_1_4_rejects_side_effects_stale_gradients_and_an_ignored_loss(mistake, match):
    rejected("1.4", _r1_step_side_effect(mistake), match=match)


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
    rejected("1.5", lambda k: _dirac(1), match="optimiser steps")  # k ignored
    rejected("1.5", lambda k: _dirac(k, loss="nonsaturating"), match="minimax")
    rejected("1.5", lambda k: _dirac(k, steps=100))
    rejected("1.5", lambda k: _dirac(k, lr=0.01))
    rejected("1.5", lambda k: math.sqrt(2), match="no optimiser steps")  # the distance at the start
    rejected("1.5", lambda k: abs(_dirac_theta(k)))


def test_1_5_rejects_the_written_out_iterates_where_training_is_asked():
    rejected("1.5", chapter1._dirac_closed_form, match="no optimiser steps")

    def by_hand(k):  # the same SGD updates without an optimiser
        G, D = chapter1.dirac_pair()
        point = torch.zeros(1, 1, dtype=torch.float64)
        for _ in range(200):
            for _ in range(k):
                (g,) = torch.autograd.grad(losses.d_loss_bce(D(point), D(G(point))), D.weight)
                with torch.no_grad():
                    D.weight -= 0.1 * g
            (g,) = torch.autograd.grad(losses.g_loss_minimax(D(G(point))), G.theta)
            with torch.no_grad():
                G.theta -= 0.1 * g
        return math.hypot(G.theta.item(), D.weight.item())

    assert math.isclose(by_hand(5), chapter1._dirac_closed_form(5), rel_tol=1e-6)  # right number, no training
    rejected("1.5", by_hand, match="no optimiser steps")


def _dirac_theta(k):
    G, D = chapter1.dirac_pair()
    point = torch.zeros(1, 1, dtype=torch.float64)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    updates.train(G, D, opt_G, opt_D, lambda: point, lambda: point, 200, loss="minimax", k=k)
    return G.theta.item()  # |theta| only, not the distance


def test_1_5_closed_form_matches_the_package_loop():
    for k in (1, 2, 5):
        assert math.isclose(_dirac(k), chapter1._dirac_closed_form(k), rel_tol=1e-6)


def test_1_3_and_1_5_reject_the_values_their_failure_messages_print():
    err = copies_the_message("1.3", r"expected ([-\d.e]+)", lambda p, q, x: 0.0)
    assert err is not None and "N(0, 1) and N(1, 1.5^2)" in str(err)
    err = copies_the_message("1.5", r"end at ([-\d.e]+)", lambda k: _dirac(k, lr=0.05))
    assert err is not None and "dirac_distance(5)" in str(err)
