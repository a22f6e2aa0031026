"""Chapter 6's stabilisers: the WGAN, WGAN-GP, hinge and relativistic losses, R2, the gradient
penalty (each detail implementations have got wrong), weight clipping, spectral normalisation,
label smoothing and instance noise, in the losses, the update steps, the trainer and the recipes."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_tutorial import cli, losses, models
from gan_tutorial.config import RECIPES, TrainConfig, build_models
from gan_tutorial.trainer import Trainer


@pytest.fixture
def x_small():
    return torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _scores(n=32, seed=0, scale=3.0):
    return scale * torch.randn(n, 1, generator=torch.Generator().manual_seed(seed))


# -- the losses ------------------------------------------------------------------------------


def test_loss_values_at_zero_scores():
    zero = torch.zeros(8, 1)
    assert losses.d_loss_wgan(zero, zero).item() == 0.0
    assert losses.d_loss_hinge(zero, zero).item() == 2.0  # relu(1) + relu(1)
    assert losses.g_loss_wgan(zero).item() == 0.0
    assert losses.d_loss_relativistic(zero, zero).item() == pytest.approx(math.log(2))
    assert losses.g_loss_relativistic(zero, zero).item() == pytest.approx(math.log(2))


def test_loss_formulas():
    real, fake = _scores(seed=1), _scores(seed=2)
    torch.testing.assert_close(losses.d_loss_wgan(real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(
        losses.d_loss_hinge(real, fake), (1 - real).clamp(min=0).mean() + (1 + fake).clamp(min=0).mean()
    )
    # RpGAN pairs fake i with real i: -log sigmoid(s_real - s_fake), and the other way round for G
    torch.testing.assert_close(losses.d_loss_relativistic(real, fake), -F.logsigmoid(real - fake).mean())
    torch.testing.assert_close(
        losses.get_loss("rpgan").generator_loss(fake, real), -F.logsigmoid(fake - real).mean()
    )
    # the hinge stops pushing past the margin: no gradient from reals above 1 and fakes below -1
    r = torch.tensor([[2.0], [0.5]], requires_grad=True)
    f = torch.tensor([[-3.0], [0.0]], requires_grad=True)
    gr, gf = torch.autograd.grad(losses.d_loss_hinge(r, f), (r, f))
    assert gr.flatten().tolist() == [0.0, -0.5] and gf.flatten().tolist() == [0.0, 0.5]


def test_relativistic_loss_needs_pairs_and_real_scores():
    rp = losses.get_loss("relativistic")
    assert rp is losses.LOSSES["rpgan"] and rp.relativistic
    with pytest.raises(ValueError, match="real scores"):
        rp.generator_loss(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="as many of each"):
        losses.d_loss_relativistic(torch.zeros(4, 1), torch.zeros(3, 1))


def test_one_sided_label_smoothing_is_cross_entropy_with_target_one_minus_s():
    real, fake = _scores(seed=3), _scores(seed=4)
    expected = F.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9)) + F.softplus(fake).mean()
    torch.testing.assert_close(losses.d_loss_bce_smoothed(real, fake, 0.1), expected)
    torch.testing.assert_close(losses.d_loss_bce_smoothed(real, fake, 0.0), losses.d_loss_bce(real, fake))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        losses.d_loss_bce_smoothed(real, fake, 1.0)


# -- the gradient penalty: each detail is a test ---------------------------------------------


def test_interpolates_use_one_weight_per_sample_on_the_segment():
    torch.manual_seed(0)
    real, fake = torch.rand(16, 1, 28, 28), torch.rand(16, 1, 28, 28) - 1
    x_hat, eps = losses.interpolates(real, fake)
    assert eps.shape == (16, 1, 1, 1) and ((eps >= 0) & (eps <= 1)).all()
    # x_hat - fake = eps (real - fake): the same scalar for every pixel of a sample
    torch.testing.assert_close(x_hat - fake, eps * (real - fake))
    ratio = ((x_hat - fake) / (real - fake)).flatten(1)
    assert (ratio.max(1).values - ratio.min(1).values).max() < 1e-4
    # a weight per pixel (a bug shipped more than once) leaves the segment
    bad = torch.rand_like(real)
    ratio_bad = ((bad * real + (1 - bad) * fake - fake) / (real - fake)).flatten(1)
    assert (ratio_bad.max(1).values - ratio_bad.min(1).values).min() > 0.5


def test_gradient_penalty_of_a_linear_critic():
    # s(x) = w . flatten(x): the gradient is w at every point, so the penalty is lambda (||w|| - 1)^2
    w = torch.randn(784, generator=torch.Generator().manual_seed(5)) * 0.05
    x_hat = torch.rand(8, 1, 28, 28).requires_grad_(True)
    out = (x_hat.flatten(1) @ w)[:, None]
    assert losses.gradient_penalty(out, x_hat).item() == pytest.approx(
        10 * (w.norm().item() - 1) ** 2, rel=1e-5
    )
    assert losses.gradient_penalty(out, x_hat, weight=2.0).item() == pytest.approx(
        2 * (w.norm().item() - 1) ** 2, rel=1e-5
    )


def test_gradient_penalty_norm_is_over_the_whole_flattened_image():
    # a critic whose gradient differs from pixel to pixel and sample to sample
    torch.manual_seed(1)
    x_hat = torch.rand(6, 1, 28, 28).requires_grad_(True)
    out = (x_hat**2).flatten(1).sum(1, keepdim=True) * 0.05  # gradient 0.1 x per pixel
    grad = 0.1 * x_hat.detach()
    right = 10 * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    wrong = 10 * (grad.norm(2, dim=1) - 1).pow(2).mean()  # norm over the channel axis only: per pixel
    got = losses.gradient_penalty(out, x_hat)
    torch.testing.assert_close(got, right)
    assert abs(got.item() - wrong.item()) > 1.0


def test_the_wgan_gp_recipe_has_the_papers_settings():
    c = RECIPES["wgan-gp"]
    assert c.loss == "wgan-gp" and c.penalty == 10.0  # lambda = 10, through the loss
    assert c.k == 5  # five critic steps per generator step
    assert c.optimizer == "adam" and c.lr_D == c.lr_G == 1e-4
    assert c.beta1 in (0.0, 0.5) and c.beta2 == 0.9
    assert c.clip == 0.0
    _, D = build_models(c)
    assert not models.has_batch_norm(D)  # no batch norm in the critic
    assert TrainConfig(loss="wgan-gp", gp=5.0).penalty == 5.0 and TrainConfig(loss="wgan").penalty == 0.0


def test_the_wgan_recipe_clips_with_rmsprop(x_small):
    c = RECIPES["wgan"]
    assert (c.loss, c.optimizer, c.lr_D, c.lr_G, c.clip, c.k) == ("wgan", "rmsprop", 5e-5, 5e-5, 0.01, 5)
    t = Trainer(dataclasses.replace(c, batch_size=16, log_every=2, k=1), x_small)
    assert isinstance(t.opt_D, torch.optim.RMSprop) and isinstance(t.opt_G, torch.optim.RMSprop)
    t.run(steps=2, progress=False)
    assert all(p.abs().max() <= 0.01 for p in t.D.parameters())  # clipped after every D step


# -- spectral normalisation ------------------------------------------------------------------


def _power_iteration(W, steps=200):
    v = torch.randn(W.shape[1], generator=torch.Generator().manual_seed(0), dtype=W.dtype)
    for _ in range(steps):
        u = F.normalize(W @ v, dim=0)
        v = F.normalize(W.T @ u, dim=0)
    return torch.dot(u, W @ v)


def test_spectral_norm_divides_each_weight_by_its_largest_singular_value():
    torch.manual_seed(0)
    _, D = models.build("dcgan-bn-g", ndf=8)
    D = models.spectral_norm_(D)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    for _ in range(30):  # one power-iteration step per training-mode forward pass
        D(x)
    D.eval()
    layers = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(layers) == 3
    for m in layers:
        original = m.parametrizations.weight.original.detach().flatten(1)  # (out, in * k * k)
        sigma = _power_iteration(original)
        torch.testing.assert_close(sigma, torch.linalg.matrix_norm(original, ord=2), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(m.weight.detach().flatten(1), original / sigma, rtol=1e-3, atol=1e-5)
        assert torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() == pytest.approx(
            1.0, abs=1e-3
        )
    with pytest.raises(ValueError, match="no convolution or linear"):
        models.spectral_norm_(nn.Sequential(nn.ReLU()))


def test_spectral_norm_runs_save_and_resume_exactly(x_small, tmp_path):
    config = TrainConfig(
        model="dcgan-bn-g", loss="hinge", spectral_norm=True, dropout=0.0, batch_size=16, log_every=2
    )
    straight = Trainer(config, x_small)
    straight.run(steps=4, progress=False)
    first = Trainer(config, x_small, out_dir=tmp_path)
    first.run(steps=2, progress=False)
    resumed = Trainer.resume(tmp_path / "checkpoint.pt", x_small)
    resumed.run(steps=2, progress=False)
    for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any("parametrizations" in k for k in straight.D.state_dict())


# -- the trainer and the command line --------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"loss": "hinge", "spectral_norm": True},
        {"loss": "rpgan", "r1": 0.2, "r2": 0.2, "beta1": 0.0},
        {"loss": "wgan-gp", "k": 2},
        {"loss": "nonsaturating", "label_smoothing": 0.1, "instance_noise": 0.1},
        {"loss": "wgan", "clip": 0.01, "optimizer": "rmsprop"},
    ],
)
def test_each_stabiliser_trains_with_finite_monitors(changes, x_small):
    config = TrainConfig(
        **{"model": "dcgan-bn-g", "dropout": 0.0, "batch_size": 16, "log_every": 2, **changes}
    )
    t = Trainer(config, x_small)
    t.run(steps=4, progress=False)
    assert all(math.isfinite(v) for values in t.history.values.values() for v in values)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"optimizer": "sgd"}, "unknown optimizer"),
        ({"gp": -1.0}, "gp must be >= 0"),
        ({"clip": float("nan")}, "finite"),
        ({"label_smoothing": 1.0}, r"\[0, 1\)"),
        ({"beta2": 1.0}, "betas"),
        ({"spectral_norm": "yes"}, "True or False"),
    ],
)
def test_config_errors_for_the_new_fields(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_command_line_flags_for_losses_and_spectral_norm(tmp_path, capsys):
    args = ["train", "--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress", "--no-judge"]
    assert cli.main([*args, "--recipe", "dcgan", "--loss", "hinge", "--spectral-norm", "--r1", "0",
                     "--out", str(tmp_path / "a")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "loss='hinge'" in out and "spectral_norm=True" in out
    assert cli.main([*args, "--recipe", "wgan-gp", "--out", str(tmp_path / "b")]) == 0
    assert "loss='wgan-gp'" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main([*args, "--loss", "wgan-div", "--out", str(tmp_path / "c")])
    assert "invalid choice" in capsys.readouterr().err
