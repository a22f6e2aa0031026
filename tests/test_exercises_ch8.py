"""Chapter 8's exercise checkers: correct forms pass, and the mistakes a learner would make are
rejected: ADA's step without its clamp, proportional to r_t - target or moving at the target (8.1);
the leak, G scored on plain fakes, D's loss into G, a cut graph (8.2); a cut graph, lambda on the
wrong term, L2 for L1, a sum for a mean, the label swapped, inputs changed in place, nothing trained
(8.3-8.5)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from exercise_tools import rejected

from gan_tutorial import exercises


@pytest.mark.parametrize(
    "exercise_id, answer",
    [
        ("8.3", lambda l, f, r, lam: F.softplus(-l).mean() + lam * (f - r).abs().mean()),
        (
            "8.3",
            lambda l, f, r, lam: (
                F.binary_cross_entropy_with_logits(l, torch.ones_like(l)) + lam * F.l1_loss(f, r)
            ),
        ),
        ("8.3", lambda l, f, r, lam: -F.logsigmoid(l).mean() + lam * torch.mean(torch.abs(r - f))),
    ],
)
def test_correct_forms_pass(exercise_id, answer, capsys):
    exercises.check(exercise_id, answer)
    assert capsys.readouterr().out.startswith(f"exercise {exercise_id}: correct")


def test_8_3_rejects_wrong_formulas():
    rejected("8.3", lambda l, f, r, lam: F.softplus(l).mean() + lam * (f - r).abs().mean())  # label swapped
    rejected("8.3", lambda l, f, r, lam: -F.softplus(l).mean() + lam * (f - r).abs().mean())  # minimax G
    rejected("8.3", lambda l, f, r, lam: lam * (F.softplus(-l).mean() + (f - r).abs().mean()))  # lam on both
    rejected(
        "8.3", lambda l, f, r, lam: lam * F.softplus(-l).mean() + (f - r).abs().mean()
    )  # on the wrong term
    rejected("8.3", lambda l, f, r, lam: F.softplus(-l).mean() + lam * (f - r).pow(2).mean())  # L2
    rejected("8.3", lambda l, f, r, lam: F.softplus(-l).mean() + lam * (f - r).abs().sum())  # a sum
    rejected("8.3", lambda l, f, r, lam: F.softplus(-l).sum() + lam * (f - r).abs().mean())  # summed patches
    rejected(
        "8.3", lambda l, f, r, lam: F.softplus(-l).mean() + 100 * (f - r).abs().mean()
    )  # lam fixed at 100
    rejected("8.3", lambda l, f, r, lam: F.softplus(-l).mean(), None)  # the L1 term forgotten
    rejected("8.3", lambda l, f, r, lam: F.softplus(-l).mean(1) + lam * (f - r).abs().mean(), "shape")


def test_8_3_rejects_cut_graphs_and_side_effects():
    rejected(
        "8.3", lambda l, f, r, lam: F.softplus(-l.detach()).mean() + lam * (f - r).abs().mean(), "gradient"
    )
    rejected(
        "8.3", lambda l, f, r, lam: F.softplus(-l).mean() + lam * (f.detach() - r).abs().mean(), "x_fake"
    )
    rejected(
        "8.3",
        lambda l, f, r, lam: (F.softplus(-l).mean() + lam * (f - r).abs().mean()).detach(),
        "no gradient",
    )

    def in_place(l, f, r, lam):
        r.sub_(f.detach())  # the caller's target overwritten with the residual
        return F.softplus(-l).mean() + lam * r.abs().mean()

    rejected("8.3", in_place, "in place|gradient")
    rejected(
        "8.3", lambda l, f, r, lam: (F.softplus(-l).mean() + lam * (f - r).abs().mean()).float(), "float64"
    )


def _loop(loss_of, zero_grad=True, lr=0.01):
    def train(G, x_cond, x_real, steps):
        opt = torch.optim.Adam(G.parameters(), lr=lr)
        for _ in range(steps):
            loss = loss_of(G(x_cond), x_real)
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            opt.step()
        return G

    return train


def test_8_4_accepts_l1_loops(capsys):
    exercises.check("8.4", _loop(lambda out, y: (out - y).abs().mean()))
    exercises.check("8.4", _loop(lambda out, y: F.l1_loss(out, y)))
    assert capsys.readouterr().out.count("exercise 8.4: correct") == 2


def test_8_4_rejects_wrong_training():
    rejected("8.4", _loop(lambda out, y: (out - y).pow(2).mean()), "L2")  # the mean, -0.4
    rejected("8.4", _loop(lambda out, y: F.mse_loss(out, y)), "L2")
    rejected("8.4", _loop(lambda out, y: (out + y).abs().mean()))  # the target's sign swapped: +1
    rejected("8.4", _loop(lambda out, y: (out - y).abs().mean(), lr=1e-5))  # barely moved
    rejected("8.4", lambda G, x, y, steps: G, "did not change")  # nothing trained
    rejected("8.4", lambda G, x, y, steps: None, "not the trained G")

    def in_place(G, x_cond, x_real, steps):
        x_real.clamp_(max=-1)  # every target made -1: the median is right, the data are not
        return _loop(lambda out, y: (out - y).abs().mean())(G, x_cond, x_real, steps)

    rejected("8.4", in_place, "in place")


def _izif(pix, feat, reduce_pix=lambda t: t.flatten(1).mean(1), reduce_feat=lambda t: t.mean(1)):
    return lambda x, r, f, fr, k: reduce_pix(pix(x - r)) + k * reduce_feat(feat(f - fr))


def test_8_5_accepts_correct_forms(capsys):
    exercises.check("8.5", _izif(torch.square, torch.square))
    exercises.check(
        "8.5", lambda x, r, f, fr, k: ((x - r) ** 2).mean(dim=(1, 2, 3)) + k * ((f - fr) ** 2).mean(-1)
    )
    exercises.check(
        "8.5",
        lambda x, r, f, fr, k: (
            F.mse_loss(r, x, reduction="none").flatten(1).mean(1) + k * (fr - f).pow(2).mean(1)
        ),
    )
    assert capsys.readouterr().out.count("exercise 8.5: correct") == 3


def test_8_5_rejects_wrong_scores():
    rejected("8.5", _izif(torch.abs, torch.square))  # L1 pixels
    rejected("8.5", _izif(torch.square, torch.abs))  # L1 features
    rejected(
        "8.5", lambda x, r, f, fr, k: k * (x - r).pow(2).flatten(1).mean(1) + (f - fr).pow(2).mean(1)
    )  # kappa swapped
    rejected("8.5", _izif(torch.square, torch.square, reduce_pix=lambda t: t.flatten(1).sum(1)))  # a sum
    rejected("8.5", _izif(torch.square, torch.square, reduce_feat=lambda t: t.sum(1)))
    rejected(
        "8.5", _izif(torch.square, torch.square, reduce_pix=lambda t: t.flatten(1).norm(dim=1))
    )  # a norm
    rejected(
        "8.5", lambda x, r, f, fr, k: (x - r).pow(2).mean() + k * (f - fr).pow(2).mean(), "shape"
    )  # batch mean
    rejected("8.5", lambda x, r, f, fr, k: (x - r).pow(2).flatten(1).mean(1))  # features forgotten


def test_8_5_rejects_cut_graphs_and_side_effects():
    rejected(
        "8.5",
        lambda x, r, f, fr, k: (x - r.detach()).pow(2).flatten(1).mean(1) + k * (f - fr).pow(2).mean(1),
        "x_rec",
    )
    rejected(
        "8.5",
        lambda x, r, f, fr, k: ((x - r).pow(2).flatten(1).mean(1) + k * (f - fr).pow(2).mean(1)).detach(),
        "no gradient",
    )

    def in_place(x, r, f, fr, k):
        f = f.detach()
        f.sub_(fr.detach())  # the caller's features overwritten
        return (x - r).pow(2).flatten(1).mean(1) + k * f.pow(2).mean(1)

    rejected("8.5", in_place, "in place|gradient")


# -- 8.1 ----------------------------------------------------------------------------------


def _ada_solution(p, r_t, target, images, images_to_one):
    step = images / images_to_one
    if r_t > target:
        p += step
    elif r_t < target:
        p -= step
    return float(np.clip(p, 0.0, 1.0))


def test_8_1_accepts_correct_forms(capsys):
    exercises.check("8.1", _ada_solution)
    exercises.check("8.1", lambda p, r, t, n, m: torch.tensor(p + float(np.sign(r - t)) * n / m).clamp(0, 1))
    assert capsys.readouterr().out.count("exercise 8.1: correct") == 2


def test_8_1_rejects_plausible_mistakes():
    sign = lambda r, t: float(np.sign(r - t))  # noqa: E731
    rejected("8.1", lambda p, r, t, n, m: p + sign(r, t) * n / m)  # no clamp
    rejected("8.1", lambda p, r, t, n, m: min(p + sign(r, t) * n / m, 1.0))  # clamped at the top only
    rejected("8.1", lambda p, r, t, n, m: min(max(p + (r - t) * n / m, 0), 1))  # proportional to r_t - target
    rejected("8.1", lambda p, r, t, n, m: min(max(p - sign(r, t) * n / m, 0), 1))  # the wrong direction
    rejected(
        "8.1", lambda p, r, t, n, m: min(max(p + (1 if r > t else -1) * n / m, 0), 1)
    )  # moves at the target
    rejected("8.1", lambda p, r, t, n, m: min(max(p + sign(r, t) / m, 0), 1))  # one image per step
    rejected("8.1", lambda p, r, t, n, m: min(max(p + sign(r, t) * m / n, 0), 1))  # the ratio upside down
    rejected("8.1", lambda p, r, t, n, m: "0.5")  # not a number


# -- 8.2 ----------------------------------------------------------------------------------


def _losses(D, x_real, x_fake, T, d_fake=None, g_input=None, d_loss=None):
    loss_D = (
        F.softplus(-D(T(x_real))).mean()
        + F.softplus(D(d_fake(x_fake) if d_fake else T(x_fake.detach()))).mean()
    )
    loss_G = F.softplus(-D(g_input(x_fake) if g_input else T(x_fake))).mean()
    return (d_loss(D, x_real, x_fake, T) if d_loss else loss_D), loss_G


def test_8_2_accepts_correct_forms(capsys):
    def joint(D, x_real, x_fake, T):  # one pass over real and fake together, BCE on logits
        out = D(T(torch.cat([x_real, x_fake.detach()])))
        labels = torch.cat([torch.ones(len(x_real), 1), torch.zeros(len(x_fake), 1)])
        loss_D = 2 * F.binary_cross_entropy_with_logits(out, labels)
        return loss_D, F.binary_cross_entropy_with_logits(D(T(x_fake)), torch.ones(len(x_fake), 1))

    exercises.check("8.2", joint)
    exercises.check(
        "8.2",
        lambda D, r, f, T: (
            -F.logsigmoid(D(T(r))).mean() - F.logsigmoid(-D(T(f.detach()))).mean(),
            -F.logsigmoid(D(T(f))).mean(),
        ),
    )
    assert capsys.readouterr().out.count("exercise 8.2: correct") == 2


def test_8_2_rejects_plausible_mistakes():
    rejected("8.2", lambda D, r, f, T: _losses(D, r, f, T, d_fake=lambda x: x.detach()), "loss_D")  # the leak
    rejected(
        "8.2", lambda D, r, f, T: _losses(D, r, f, T, g_input=lambda x: x), "loss_G"
    )  # G scored unaugmented
    rejected("8.2", lambda D, r, f, T: _losses(D, r, f, T, d_fake=T), "sends gradients into G")  # no detach
    rejected(
        "8.2",
        lambda D, r, f, T: _losses(D, r, f, T, g_input=lambda x: T(x.detach())),
        "no gradient reaches G",
    )
    rejected(
        "8.2", lambda D, r, f, T: (_losses(D, r, f, T)[0], -F.softplus(D(T(f))).mean())
    )  # minimax G loss
    rejected(
        "8.2",
        lambda D, r, f, T: (
            F.softplus(-D(T(r))).sum() + F.softplus(D(T(f.detach()))).sum(),
            _losses(D, r, f, T)[1],
        ),
    )
    rejected(
        "8.2",
        lambda D, r, f, T: (_losses(D, r, f, T)[0].detach(), _losses(D, r, f, T)[1]),
        "carries no gradient",
    )
    rejected("8.2", lambda D, r, f, T: _losses(D, r, f, T)[0])  # one loss, not the pair

    def backward_inside(D, r, f, T):
        loss_D, loss_G = _losses(D, r, f, T)
        loss_D.backward(retain_graph=True)
        return loss_D, loss_G

    rejected("8.2", backward_inside, "left gradients")

    def in_place(D, r, f, T):
        r.clamp_(-0.5, 0.5)
        return _losses(D, r, f, T)

    rejected("8.2", in_place, "in place")
