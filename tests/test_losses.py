"""The GAN losses against PyTorch's own cross-entropy, closed forms and quadrature."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import losses
from gan_tutorial.losses import (
    LOSSES,
    GANLoss,
    d_loss_bce,
    d_loss_lsgan,
    g_loss_lsgan,
    g_loss_minimax,
    g_loss_nonsaturating,
    get_loss,
    value_function,
)


def _logits(n: int = 257, seed: int = 0, scale: float = 4.0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, 1, generator=g)).to(dtype)


EXTREME = torch.tensor([-100.0, -30.0, -17.0, 0.0, 17.0, 30.0, 100.0])


# --- values at zero logits (D(x) = 1/2 everywhere) ---------------------------------------


def test_values_at_zero_logits():
    zero = torch.zeros(8, 1)
    assert d_loss_bce(zero, zero).item() == pytest.approx(math.log(4))
    assert value_function(zero, zero).item() == pytest.approx(-math.log(4))
    assert g_loss_minimax(zero).item() == pytest.approx(-math.log(2))
    assert g_loss_nonsaturating(zero).item() == pytest.approx(math.log(2))


# --- agreement with independent implementations ------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])
def test_d_loss_is_bce_with_labels_one_and_zero(scale):
    real_logits, fake_logits = _logits(seed=1, scale=scale), _logits(n=131, seed=2, scale=scale)
    expected = F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    torch.testing.assert_close(d_loss_bce(real_logits, fake_logits), expected)
    torch.testing.assert_close(value_function(real_logits, fake_logits), -expected)


@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])
def test_generator_losses_against_bce(scale):
    fake_logits = _logits(seed=3, scale=scale)
    # -log D(G(z)) is BCE with label 1; log(1 - D(G(z))) is minus BCE with label 0.
    ns = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    mm = -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    torch.testing.assert_close(g_loss_nonsaturating(fake_logits), ns)
    torch.testing.assert_close(g_loss_minimax(fake_logits), mm)


def test_against_the_textbook_formula_in_float64():
    # For moderate logits the naive sigmoid-then-log form is accurate in float64.
    real_logits, fake_logits = _logits(seed=4), _logits(seed=5)
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    v = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    torch.testing.assert_close(value_function(real_logits, fake_logits), v)
    torch.testing.assert_close(d_loss_bce(real_logits, fake_logits), -v)
    torch.testing.assert_close(g_loss_minimax(fake_logits), torch.log(1 - d_fake).mean())
    torch.testing.assert_close(g_loss_nonsaturating(fake_logits), -torch.log(d_fake).mean())


# --- stability -----------------------------------------------------------------------


def test_naive_forms_overflow_where_the_docstring_says():
    # float32: log(sigmoid(l)) = -inf from l = -89, log(1 - sigmoid(l)) = -inf from l = 17.
    assert torch.isinf(torch.log(torch.sigmoid(torch.tensor(-89.0))))
    assert torch.isfinite(torch.log(torch.sigmoid(torch.tensor(-80.0))))
    assert torch.isinf(torch.log(1 - torch.sigmoid(torch.tensor(17.0))))
    assert torch.isfinite(torch.log(1 - torch.sigmoid(torch.tensor(15.0))))
    # ... while the softplus forms are exact: -log(1 - sigmoid(100)) = softplus(100) = 100.
    assert g_loss_minimax(torch.tensor([100.0])).item() == pytest.approx(-100.0)
    assert g_loss_nonsaturating(torch.tensor([-100.0])).item() == pytest.approx(100.0)


@pytest.mark.parametrize("name", list(LOSSES))
def test_finite_values_and_gradients_at_extreme_logits(name):
    loss = get_loss(name)
    real_out = EXTREME.clone().requires_grad_(True)
    fake_out = EXTREME.flip(0).clone().requires_grad_(True)
    loss_d = loss.d(real_out, fake_out)
    loss_g = loss.generator_loss(fake_out, real_out)
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    grad_real, grad_fake = torch.autograd.grad(loss_d, (real_out, fake_out))
    (grad_g,) = torch.autograd.grad(loss_g, fake_out)
    for grad in (grad_real, grad_fake, grad_g):
        assert torch.isfinite(grad).all()


def test_gradients_with_respect_to_logits():
    # d/dl of the batch mean: minimax -sigmoid(l)/n, non-saturating (sigmoid(l) - 1)/n.
    fake_logits = _logits(n=64, seed=6, scale=8.0).requires_grad_(True)
    n = fake_logits.numel()
    (g_mm,) = torch.autograd.grad(g_loss_minimax(fake_logits), fake_logits)
    (g_ns,) = torch.autograd.grad(g_loss_nonsaturating(fake_logits), fake_logits)
    d = torch.sigmoid(fake_logits.detach())
    torch.testing.assert_close(g_mm, -d / n)
    torch.testing.assert_close(g_ns, (d - 1) / n)


def test_saturation_when_d_rejects_fakes():
    # D(G(z)) = sigmoid(-10) ~ 4.5e-5: the minimax gradient vanishes, the non-saturating one does not.
    fake_logits = torch.full((1,), -10.0, requires_grad=True)
    (g_mm,) = torch.autograd.grad(g_loss_minimax(fake_logits), fake_logits)
    (g_ns,) = torch.autograd.grad(g_loss_nonsaturating(fake_logits), fake_logits)
    assert abs(g_mm.item()) < 1e-4
    assert g_ns.item() == pytest.approx(-1.0, abs=1e-4)


# --- LSGAN ---------------------------------------------------------------------------


def test_lsgan_values_by_hand():
    real_scores, fake_scores = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    # a=-1, b=1: 1/2 mean(0, 4) + 1/2 mean(1, 1) = 1.5; c=0: 1/2 mean(0, 4) = 1.0
    assert d_loss_lsgan(real_scores, fake_scores).item() == pytest.approx(1.5)
    assert g_loss_lsgan(fake_scores).item() == pytest.approx(1.0)
    # a=0, b=1: 1/2 mean(0, 4) + 1/2 mean(0, 4) = 2.0; c=1: 1/2 mean(1, 9) = 2.5
    assert d_loss_lsgan(real_scores, fake_scores, a=0.0, b=1.0).item() == pytest.approx(2.0)
    assert g_loss_lsgan(fake_scores, c=1.0).item() == pytest.approx(2.5)


@pytest.mark.parametrize(("a", "b", "c"), [(-1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (0.5, -2.0, 3.0)])
def test_lsgan_against_mse_loss(a, b, c):
    real_scores, fake_scores = _logits(seed=7), _logits(n=100, seed=8)
    expected_d = 0.5 * F.mse_loss(real_scores, torch.full_like(real_scores, b)) + 0.5 * F.mse_loss(
        fake_scores, torch.full_like(fake_scores, a)
    )
    expected_g = 0.5 * F.mse_loss(fake_scores, torch.full_like(fake_scores, c))
    torch.testing.assert_close(d_loss_lsgan(real_scores, fake_scores, a=a, b=b), expected_d)
    torch.testing.assert_close(g_loss_lsgan(fake_scores, c=c), expected_g)


def test_lsgan_optimum_is_pearson_chi2():
    # Module docstring: with b - c = 1, b - a = 2 and D = D*, G's objective (with the term
    # E_data[(D* - c)^2] / 2 added) is chi^2_Pearson(p_data + p_g || 2 p_g) / 2.
    stats = pytest.importorskip("scipy.stats")
    integrate = pytest.importorskip("scipy.integrate")
    p_data, p_g = stats.norm(0.0, 1.0).pdf, stats.norm(1.5, 0.7).pdf
    a, b, c = -1.0, 1.0, 0.0

    def d_star(x):
        return (b * p_data(x) + a * p_g(x)) / (p_data(x) + p_g(x))

    objective = integrate.quad(lambda x: 0.5 * (p_data(x) + p_g(x)) * (d_star(x) - c) ** 2, -12, 12)[0]

    def pearson(x):
        p, q = p_data(x) + p_g(x), 2 * p_g(x)
        return (q - p) ** 2 / p

    chi2 = integrate.quad(pearson, -12, 12)[0]
    assert objective == pytest.approx(0.5 * chi2, rel=1e-6)
    # and D* minimises D's loss pointwise: a finite-difference check at a few points
    for x in (-1.0, 0.3, 2.0):

        def d_loss_at(s, x=x):
            return 0.5 * p_data(x) * (s - b) ** 2 + 0.5 * p_g(x) * (s - a) ** 2

        s = d_star(x)
        assert d_loss_at(s) < d_loss_at(s + 1e-3) and d_loss_at(s) < d_loss_at(s - 1e-3)


# --- lookup and bad input ------------------------------------------------------------


def test_get_loss_names_aliases_and_passthrough():
    assert get_loss("minimax") is LOSSES["minimax"]
    assert get_loss(" Saturating ") is LOSSES["minimax"]
    assert get_loss("NS") is LOSSES["nonsaturating"]
    assert get_loss("non-saturating").g is g_loss_nonsaturating
    custom = GANLoss("custom", d_loss_bce, g_loss_minimax)
    assert get_loss(custom) is custom
    assert get_loss("lsgan").logits is False


@pytest.mark.parametrize("bad", ["wgan-div", "", None, 3])
def test_unknown_loss_lists_the_known_ones(bad):
    with pytest.raises(ValueError) as err:
        get_loss(bad)
    for name in LOSSES:
        assert name in str(err.value)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(TypeError, match="floating-point"):
        d_loss_bce(torch.ones(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        g_loss_nonsaturating([0.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        g_loss_minimax(torch.zeros(0))


def test_module_docstring_names_every_loss():
    for name in ("minimax", "non-saturating", "LSGAN"):
        assert name in losses.__doc__


def test_value_function_is_never_positive_and_is_minus_d_loss():
    # V = E[log D(x)] + E[log(1 - D(G(z)))] <= 0 since both logs are of probabilities.
    for seed in range(5):
        real_logits, fake_logits = _logits(seed=10 + seed, scale=30.0), _logits(seed=20 + seed, scale=30.0)
        v = value_function(real_logits, fake_logits)
        assert v.item() <= 0.0
        torch.testing.assert_close(v, -d_loss_bce(real_logits, fake_logits))


def test_r1_penalty_of_a_linear_d_is_half_gamma_times_the_squared_weight_norm():
    """l(x) = w . x + b has gradient w at every x, so R1 = gamma / 2 * ||w||^2, whatever the batch."""
    torch.manual_seed(0)
    D = torch.nn.Linear(5, 1).double()
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    penalty = losses.r1_penalty(D(x), x, gamma=3.0)
    torch.testing.assert_close(penalty, 1.5 * D.weight.pow(2).sum())
    penalty.backward()  # differentiable in D's weights: d/dw (gamma/2 ||w||^2) = gamma w
    torch.testing.assert_close(D.weight.grad, 3.0 * D.weight.detach())


def test_r1_penalty_of_a_quadratic_d_averages_per_image_gradients():
    """l(x) = sum of x^2 per image has gradient 2x: R1 = gamma / 2 * mean over images of ||2x||^2."""
    x = torch.randn(4, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    out = x.pow(2).sum((1, 2, 3)).unsqueeze(1)  # (4, 1), each row a function of its own image
    expected = 0.5 * 0.1 * (2 * x.detach()).pow(2).sum((1, 2, 3)).mean()
    torch.testing.assert_close(losses.r1_penalty(out, x, gamma=0.1), expected)


def test_r1_penalty_of_an_ensemble_averages_over_every_member_and_sample():
    """(E, B, 1) logits of (E, B, 2) points (chapter 2's ensembles): the mean over all E * B samples."""
    x = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    out = x.pow(2).sum(-1, keepdim=True)  # (3, 5, 1), gradient 2x per point
    expected = 0.5 * 2.0 * (2 * x.detach()).pow(2).sum(-1).mean()
    torch.testing.assert_close(losses.r1_penalty(out, x, gamma=2.0), expected)


def test_r1_penalty_under_a_grad_scaler_scales_then_unscales():
    """PyTorch's recipe for gradient penalties with a GradScaler: the summed logits are scaled
    before autograd.grad and the gradient divided by the scale, so the penalty, and its
    gradient in D's weights, are those of the unscaled computation."""
    torch.manual_seed(1)
    D = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.randn(6, 4, requires_grad=True)
    plain = losses.r1_penalty(D(x), x, gamma=0.7)
    (g_plain,) = torch.autograd.grad(plain, D[0].weight)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    scaled = losses.r1_penalty(D(x), x, gamma=0.7, scaler=scaler)
    (g_scaled,) = torch.autograd.grad(scaled, D[0].weight)
    torch.testing.assert_close(scaled, plain)
    torch.testing.assert_close(g_scaled, g_plain)


def test_r1_penalty_errors():
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        losses.r1_penalty(x.sum(1), x, gamma=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        losses.r1_penalty(x.sum(1), x.requires_grad_(), gamma=-1.0)
