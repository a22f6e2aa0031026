"""The trainer's iteration: equal to chapter 1's updates where they overlap, and each option it adds
(the fast path, one D pass, reused fakes, penalties, clipping, smoothing, noise, lazy R1, compile)
doing what it says."""

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_tutorial import accel, losses, models, updates
from gan_tutorial.average import EMA
from gan_tutorial.config import RECIPES, TrainConfig, build_models
from gan_tutorial.iteration import Iteration, build_optimizers
from gan_tutorial.models import toy_mlp
from gan_tutorial.trainer import Trainer


@pytest.fixture
def x_small():
    return torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _iteration(G, D, config=None, lr=0.0, fast=None):
    """An Iteration over G and D with plain SGD (lr 0 by default: the step computes, moves nothing)."""
    opts = [torch.optim.SGD(m.parameters(), lr=lr) for m in (G, D)]
    return Iteration(G, D, *opts, config or TrainConfig(), fast)


def _fakes(G, z, y=None, graph=False):
    with torch.set_grad_enabled(graph):
        return G(z) if y is None else G(z, y)


# -- the contract: the trainer's updates are chapter 1's ---------------------------------------


def _overlap(config: TrainConfig) -> TrainConfig:
    """The recipe with what the taught step does not do switched off (clipping, the gradient penalty,
    R2, smoothing, noise); its loss, model, optimiser and R1 stay."""
    loss = "wgan" if config.loss == "wgan-gp" else config.loss  # the same two losses, without the penalty
    return dataclasses.replace(
        config, loss=loss, gp=0.0, r2=0.0, clip=0.0, label_smoothing=0.0, instance_noise=0.0, batch_size=8
    )


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_on_the_fp32_path_the_iteration_is_the_taught_steps_bit_for_bit(name, x_small):
    """For every recipe's loss, model and optimiser, on the CPU's fast path (fp32, channels-last,
    fused Adam) with D's two batches scored apart: the same statistics, weights and optimiser
    states as updates.d_step and updates.g_step, to the last bit."""
    config = _overlap(RECIPES[name])
    fast = accel.choose("cpu")
    torch.manual_seed(0)
    G, D = (fast.place(m) for m in build_models(config))
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    opts, opts2 = build_optimizers(G, D, config, fast), build_optimizers(G2, D2, config, fast)
    it = Iteration(G, D, *opts, config, fast)
    it.joint = False
    gen = torch.Generator().manual_seed(1)
    x_real = x_small[:8]
    y = torch.arange(8) % 10 if models.is_conditional(G) else None
    for step in range(3):  # R1 on the second step only, as lazily
        z_d, z_g = (
            torch.randn(8, config.latent_dim, generator=gen),
            torch.randn(8, config.latent_dim, generator=gen),
        )
        r1 = config.r1 * (step == 1)
        with torch.random.fork_rng(devices=[]):  # the same dropout draws for both
            a = it.d_update(x_real, _fakes(G, z_d, y), y, r1=r1)
            a.update(it.g_update(_fakes(G, z_g, y, graph=True), x_real, y))
        b = updates.d_step(G2, D2, opts2[1], x_real, z_d, config.loss, r1=r1, y=y)
        b.update(updates.g_step(G2, D2, opts2[0], z_g, config.loss, x_real=x_real, y=y))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, step, key)
    for p, q in zip([*G.parameters(), *D.parameters()], [*G2.parameters(), *D2.parameters()], strict=True):
        assert torch.equal(p, q)
    for opt, opt2 in zip(opts, opts2, strict=True):
        for s, s2 in zip(opt.state.values(), opt2.state.values(), strict=True):
            assert all(torch.equal(s[k], s2[k]) for k in s)
    assert all(p.requires_grad for p in D.parameters())  # the G update restored D's flags


def test_one_iteration_is_k_d_updates_then_a_g_update_on_the_last_fakes(x_small, monkeypatch):
    config = TrainConfig(model="dcgan-bn-g", dropout=0.0, k=3, latent_dim=8, batch_size=8, ema=0.9)
    G, D = build_models(config)
    ema = EMA(G, 0.9)
    it = Iteration(G, D, *(torch.optim.SGD(m.parameters(), lr=0.01) for m in (G, D)), config, ema=ema)
    calls, fakes = [], []
    d_update, g_update = it.d_update, it.g_update
    monkeypatch.setattr(
        it,
        "d_update",
        lambda x, f, *a, **kw: calls.append("D") or fakes.append(f) or d_update(x, f, *a, **kw),
    )
    monkeypatch.setattr(it, "g_update", lambda f, *a: calls.append("G") or fakes.append(f) or g_update(f, *a))
    before = [p.detach().clone() for p in ema.module.parameters()]
    stats = it([x_small[i * 8 : i * 8 + 8] for i in range(3)], [torch.randn(8, 8) for _ in range(3)])
    assert calls == ["D", "D", "D", "G"]
    assert fakes[-1] is fakes[-2] and fakes[-1].requires_grad  # one forward of G serves both
    assert not fakes[0].requires_grad and not fakes[1].requires_grad
    assert set(updates.MONITORS) <= set(stats)
    assert not all(torch.equal(p, q) for p, q in zip(ema.module.parameters(), before, strict=True))


def test_a_fake_batch_made_by_the_caller_gives_the_same_steps():
    """The iteration's updates on x_fake = G(z) (one forward of G shared) equal the steps that make
    G(z) themselves."""
    torch.manual_seed(4)
    G_a, D_a = toy_mlp(2, 1, hidden=8, depth=1), toy_mlp(1, 1, hidden=8, depth=1)
    G_b, D_b = copy.deepcopy(G_a), copy.deepcopy(D_a)
    x_real, z = torch.randn(16, 1), torch.randn(16, 2)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (D_a, G_a, D_b, G_b)]
    a = updates.d_step(G_a, D_a, opts[0], x_real, z)
    a.update(updates.g_step(G_a, D_a, opts[1], z))
    it = Iteration(G_b, D_b, opts[3], opts[2], TrainConfig())
    x_fake = G_b(z)  # with its graph
    b = it.d_update(x_real, x_fake)
    b.update(it.g_update(x_fake, x_real))
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    pairs = zip([*G_a.parameters(), *D_a.parameters()], [*G_b.parameters(), *D_b.parameters()], strict=True)
    for p, q in pairs:
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="no graph"):
        it.g_update(x_fake.detach(), x_real)


def test_joint_d_pass_matches_separate_passes_and_is_off_with_batch_norm():
    """Without batch norm, one D pass over real and fake rows gives the numbers of two passes.
    With batch norm, one pass would mix the batches' statistics: the iteration keeps two."""
    torch.manual_seed(5)
    G, D = toy_mlp(2, 1, hidden=8, depth=1), toy_mlp(1, 1, hidden=8, depth=1)
    assert not updates.has_batch_norm(D)
    x_real, z = torch.randn(16, 1), torch.randn(16, 2)
    real_logits, fake_logits = D(x_real), D(G(z).detach())
    expected = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    it = _iteration(G, D)
    assert it.joint
    stats = it.d_update(x_real, _fakes(G, z))
    torch.testing.assert_close(stats["loss_D"], expected.detach())

    D_bn = nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    assert updates.has_batch_norm(D_bn)
    real_logits, fake_logits = D_bn(x_real), D_bn(G(z).detach())
    expected = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    mixed = D_bn(torch.cat([x_real, G(z).detach()]))
    assert not torch.allclose(mixed[:16], real_logits)  # what a single pass would have computed
    it = _iteration(G, D_bn)
    assert not it.joint
    stats = it.d_update(x_real, _fakes(G, z))
    torch.testing.assert_close(stats["loss_D"], expected.detach())


def test_d_update_with_r1_adds_the_penalty_at_the_real_images():
    """loss_D is the cross-entropy plus gamma/2 E||grad_x l(x_real)||^2, in one D pass or two."""
    torch.manual_seed(6)
    G, D = toy_mlp(2, 1, hidden=8, depth=1), toy_mlp(1, 1, hidden=8, depth=1)
    x_real, z = torch.randn(16, 1), torch.randn(16, 2)
    x = x_real.clone().requires_grad_(True)
    real_logits, fake_logits = D(x), D(G(z).detach())
    (slope,) = torch.autograd.grad(real_logits.sum(), x)
    bce = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    penalty = 0.5 * 2.0 * slope.pow(2).sum(1).mean()
    for joint in (False, True):
        it = _iteration(G, D)
        it.joint = joint
        stats = it.d_update(x_real, _fakes(G, z), r1=2.0)
        torch.testing.assert_close(stats["r1"], penalty)
        torch.testing.assert_close(stats["loss_D"], (bce + penalty).detach())
    assert "r1" not in _iteration(G, D).d_update(x_real, _fakes(G, z))
    assert not x_real.requires_grad  # the caller's batch is left as it was


# -- chapter 6's stabilisers --------------------------------------------------------------------


def test_d_update_penalties_equal_the_functions(x_small):
    torch.manual_seed(0)
    G, D = models.build("dcgan-bn-g", latent_dim=8, ngf=8, ndf=8)
    x_real, z = x_small[:8], torch.randn(8, 8)
    it = _iteration(G, D, TrainConfig(model="dcgan-bn-g", loss="wgan-gp", gp=10.0, r1=0.3, r2=0.2))
    assert it.joint
    with torch.no_grad():
        x_fake = G(z)
    torch.manual_seed(7)
    stats = it.d_update(x_real, x_fake, r1=0.3, r2=0.2)
    torch.manual_seed(7)
    x_hat, _ = losses.interpolates(x_real, x_fake)
    xr, xf, xh = (t.clone().requires_grad_(True) for t in (x_real, x_fake, x_hat))
    torch.testing.assert_close(stats["gp"], losses.gradient_penalty(D(xh), xh, 10.0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(stats["r1"], losses.r1_penalty(D(xr), xr, 0.3), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(stats["r2"], losses.r2_penalty(D(xf), xf, 0.2), rtol=1e-4, atol=1e-7)
    expected = losses.d_loss_wgan(D(x_real), D(x_fake)) + stats["gp"] + stats["r1"] + stats["r2"]
    torch.testing.assert_close(stats["loss_D"], expected.detach(), rtol=1e-4, atol=1e-5)


def test_a_critic_with_batch_norm_is_refused_for_a_gradient_penalty(x_small):
    G, D = models.build("dcgan", latent_dim=8, ngf=8, ndf=8)
    with pytest.raises(ValueError, match="batch norm"):
        _iteration(G, D, TrainConfig(model="dcgan", loss="wgan-gp", dropout=0.0))
    with pytest.raises(ValueError, match="batch norm"):
        updates.d_step(G, D, torch.optim.Adam(D.parameters()), x_small[:8], torch.randn(8, 8), "wgan", r1=1.0)
    with pytest.raises(ValueError, match="batch norm"):
        Trainer(TrainConfig(model="dcgan", loss="wgan-gp", dropout=0.0, batch_size=16), x_small)
    with pytest.raises(ValueError, match="batch norm"):
        Trainer(TrainConfig(model="dcgan", r2=1.0, dropout=0.0, batch_size=16), x_small)


def test_clipping_bounds_every_weight_after_the_step(x_small):
    G, D = models.build("dcgan-bn-g", latent_dim=8, ngf=8, ndf=8)
    it = _iteration(G, D, TrainConfig(model="dcgan-bn-g", loss="wgan", clip=0.02), lr=1.0)
    it.d_update(x_small[:8], _fakes(G, torch.randn(8, 8)))
    assert max(p.abs().max().item() for p in D.parameters()) == pytest.approx(0.02)


def test_instance_noise_reaches_d_and_smoothing_needs_cross_entropy(x_small):
    G, D = models.build("dcgan-bn-g", latent_dim=8, ngf=8, ndf=8)
    z = torch.randn(8, 8)
    clean_it = _iteration(G, D, TrainConfig(model="dcgan-bn-g"))
    noisy_it = _iteration(G, D, TrainConfig(model="dcgan-bn-g", instance_noise=0.5))
    clean = [clean_it.d_update(x_small[:8], _fakes(G, z))["d_real"] for _ in range(2)]
    noisy = [noisy_it.d_update(x_small[:8], _fakes(G, z))["d_real"] for _ in range(2)]
    assert clean[0] == clean[1] and noisy[0] != noisy[1] and noisy[0] != clean[0]
    with pytest.raises(ValueError, match="cross-entropy"):
        TrainConfig(loss="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="cross-entropy"):
        TrainConfig(loss="wgan-gp", label_smoothing=0.1)


def _spy_d_updates(monkeypatch) -> list[tuple[float, float]]:
    """The (r1, r2) weights of every D update the trainer runs."""
    seen = []
    d_update = Iteration.d_update

    def spy(self, *args, **kwargs):
        seen.append((kwargs["r1"], kwargs["r2"]))
        return d_update(self, *args, **kwargs)

    monkeypatch.setattr(Iteration, "d_update", spy)
    return seen


def test_r1_is_applied_lazily_with_its_weight_scaled(x_small, monkeypatch):
    """R1 on every r1_every-th step, weighted r1 * r1_every, and nothing in between."""
    seen = _spy_d_updates(monkeypatch)
    config = TrainConfig(model="dcgan-bn-g", dropout=0.0, r1=0.5, r1_every=3, latent_dim=8, batch_size=16)
    Trainer(config, x_small).run(steps=6, progress=False)
    weights_seen = [r1 for r1, _ in seen]
    assert weights_seen == [0.0, 0.0, 1.5, 0.0, 0.0, 1.5]
    with pytest.raises(ValueError, match="r1_every"):
        TrainConfig(r1_every=0)


def test_r2_follows_r1s_lazy_schedule(x_small, monkeypatch):
    seen = _spy_d_updates(monkeypatch)
    config = TrainConfig(model="dcgan-bn-g", loss="rpgan", dropout=0.0, r2=0.5, r1_every=2, batch_size=16)
    Trainer(config, x_small).run(steps=4, progress=False)
    assert seen == [(0.0, 0.0), (0.0, 1.0), (0.0, 0.0), (0.0, 1.0)]


# -- chapter 4's fast path -----------------------------------------------------------------------


def _pair(seed=0):
    torch.manual_seed(seed)
    return models.dcgan(latent_dim=8, ngf=4, ndf=4)


def test_bf16_autocast_step_on_cpu_is_close_and_float32():
    G, D = _pair()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    fast = accel.FastPath(torch.device("cpu"), torch.bfloat16, channels_last=True)
    G, D = fast.place(G), fast.place(D)
    opt = torch.optim.Adam(D.parameters(), lr=2e-4)
    x_real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    it = Iteration(G, D, torch.optim.SGD(G.parameters(), lr=0.0), opt, TrainConfig(model="dcgan"), fast)
    with fast.autocast():
        x_fake = _fakes(G, z)
    a = it.d_update(x_real, x_fake)
    b = updates.d_step(G2, D2, torch.optim.Adam(D2.parameters(), lr=2e-4), x_real, z, "nonsaturating")
    assert a["loss_D"].dtype == torch.float32  # losses computed in float32 from the logits
    torch.testing.assert_close(a["loss_D"], b["loss_D"], atol=0.02, rtol=0.02)


def _scaled(G, D, init_scale):
    """An iteration whose D update runs behind a GradScaler (the fp16 path's arithmetic, in fp32)."""
    it = Iteration(G, D, torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.Adam(D.parameters(), lr=2e-4),
                   TrainConfig(model="dcgan"), accel.FastPath(torch.device("cpu")))  # fmt: skip
    it.scaler_D = torch.amp.GradScaler("cpu", init_scale=init_scale)
    return it


def test_grad_scaler_path_unscales_gradients():
    # fp16 autocast is patchy on CPUs, so run the scaler's arithmetic in fp32: the reported
    # gradient norm must be the unscaled one, and the weights must match a plain step
    G, D = _pair()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    x_real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    a = _scaled(G, D, 1024.0).d_update(x_real, _fakes(G, z))
    b = updates.d_step(G2, D2, torch.optim.Adam(D2.parameters(), lr=2e-4), x_real, z, "nonsaturating")
    torch.testing.assert_close(a["grad_D"], b["grad_D"])
    for p, q in zip(D.parameters(), D2.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_step_the_scaler_skips_reports_a_norm_of_0():
    G, D = _pair()
    before = [p.detach().clone() for p in D.parameters()]
    it = _scaled(G, D, 2.0**127)  # loss * S overflows float32's gradients
    x_real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    stats = it.d_update(x_real, _fakes(G, z))
    assert float(stats["grad_D"]) == 0.0 and math.isfinite(float(stats["loss_D"]))
    assert all(torch.equal(p, q) for p, q in zip(D.parameters(), before, strict=True))  # skipped
    assert it.scaler_D.get_scale() == 2.0**126  # and the scale halved


def test_the_d_update_with_a_scaler_moves_d_as_without_one():
    """The penalty under a GradScaler (scaled before autograd.grad, unscaled after): the whole D
    update with a scaler moves D as the update without one."""
    torch.manual_seed(1)
    G = torch.nn.Linear(2, 4)
    D_a, D_b = (
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)) for _ in "ab"
    )
    D_b.load_state_dict(D_a.state_dict())
    opt_a, opt_b = (torch.optim.Adam(d.parameters(), lr=1e-2) for d in (D_a, D_b))
    x_real, z = torch.randn(6, 4), torch.randn(6, 2)
    a = updates.d_step(G, D_a, opt_a, x_real, z, r1=0.5)
    it = Iteration(G, D_b, torch.optim.SGD(G.parameters(), lr=0.0), opt_b, TrainConfig())
    it.scaler_D = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    b = it.d_update(x_real, _fakes(G, z), r1=0.5)
    torch.testing.assert_close(a["r1"], b["r1"])
    for p, q in zip(D_a.parameters(), D_b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


# -- torch.compile -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_trains_compiled(name, x_small, monkeypatch):
    """Every recipe, penalties included, trains with compile=True: an update that differentiates D
    twice (R1, R2, WGAN-GP) runs D eagerly. The backend is aot_eager, the autograd machinery of the
    default backend (where a double backward through compiled code fails) without its code generation,
    which would take a minute per recipe on a CPU."""
    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(
        torch.nn.Module, "compile", lambda self, **kw: compile_module(self, backend="aot_eager")
    )
    config = dataclasses.replace(RECIPES[name], batch_size=8, log_every=2, k=min(RECIPES[name].k, 2))
    conditional = models.is_conditional(models.build(config.model)[0])
    data = (x_small, torch.arange(96) % 10) if conditional else x_small
    if (config.r1 or config.r2 or config.penalty) and not hasattr(torch.compiler, "set_stance"):
        with pytest.raises(ValueError, match="needs torch 2.6 or later"):  # before 2.6: refused, and why
            Trainer(config, data, compile=True)
        return
    t = Trainer(config, data, compile=True)
    assert t.fast.compile
    history = t.run(steps=5, progress=False)  # R1 and R2 lazily on step 4
    assert all(math.isfinite(v) for values in history.values.values() for v in values)
