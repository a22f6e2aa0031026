"""Latent-space helpers: lerp and slerp against closed forms, nearest neighbours against brute force, EMA."""

import math

import pytest
import torch
from torch import nn

from gan_tutorial.latent import EMA, lerp, nearest_neighbours, recalibrate_batch_norm, slerp


def test_lerp_endpoints_and_midpoint():
    z0, z1 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    path = lerp(z0, z1, 5)
    assert path.shape == (5, 2)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path[2], torch.tensor([2.0, 0.0]))


def test_slerp_on_a_quarter_circle():
    # e1 -> e2: the arc is (cos(t pi/2), sin(t pi/2)), a closed form independent of the code
    e1, e2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    path = slerp(e1, e2, 7)
    t = torch.linspace(0, 1, 7, dtype=torch.float64)
    torch.testing.assert_close(path, torch.stack([torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)], 1))


def test_slerp_keeps_equal_norms_and_falls_back_to_lerp():
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(4, 50, generator=g, dtype=torch.float64)
    z1 = torch.randn(4, 50, generator=g, dtype=torch.float64)
    z1 = z1 / z1.norm(dim=-1, keepdim=True) * z0.norm(dim=-1, keepdim=True)
    path = slerp(z0, z1, 9)  # (9, 4, 50)
    assert path.shape == (9, 4, 50)
    torch.testing.assert_close(path.norm(dim=-1), z0.norm(dim=-1).expand(9, 4))
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    parallel = slerp(z0[0], 2 * z0[0], 5)  # angle 0: no division by sin(0)
    assert torch.isfinite(parallel).all()
    torch.testing.assert_close(parallel, lerp(z0[0], 2 * z0[0], 5))


def test_gaussian_shell_lerp_midpoint_shrinks():
    g = torch.Generator().manual_seed(1)
    d = 100
    z0, z1 = torch.randn(2000, d, generator=g), torch.randn(2000, d, generator=g)
    mid_lerp = lerp(z0, z1, 3)[1].norm(dim=-1).mean()
    mid_slerp = slerp(z0, z1, 3)[1].norm(dim=-1).mean()
    assert abs(mid_lerp - math.sqrt(d / 2)) < 0.2  # sqrt(50) = 7.07
    assert abs(mid_slerp - math.sqrt(d)) < 0.3  # stays on the shell, ~10


def test_lerp_slerp_errors():
    with pytest.raises(ValueError, match="same shape"):
        lerp(torch.zeros(3), torch.zeros(4), 5)
    with pytest.raises(ValueError, match="at least 2"):
        slerp(torch.ones(3), torch.ones(3), 1)


def test_nearest_neighbours_against_brute_force():
    g = torch.Generator().manual_seed(2)
    x_train = torch.rand(50, 1, 4, 4, generator=g)
    x_fake = torch.cat([torch.rand(6, 1, 4, 4, generator=g), x_train[[7, 31]]])  # two exact copies
    dist, idx = nearest_neighbours(x_fake, x_train, k=3, chunk=8)  # several chunks
    full = ((x_fake.flatten(1)[:, None] - x_train.flatten(1)[None]) ** 2).sum(-1).sqrt()  # (8, 50)
    ref_d, ref_i = full.sort(dim=1)
    torch.testing.assert_close(dist, ref_d[:, :3])
    assert torch.equal(idx, ref_i[:, :3])
    assert idx[-2, 0] == 7 and idx[-1, 0] == 31 and dist[-2:, 0].max() < 1e-3
    with pytest.raises(ValueError, match="shape"):
        nearest_neighbours(torch.zeros(2, 1, 3, 3), x_train)


def test_ema_update_rule():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(net, decay=0.9)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(8, 3))  # moves the batch-norm buffers, counts one batch
    ema.update(net)
    live = net.state_dict()
    for name, avg in ema.state_dict().items():
        if avg.is_floating_point():
            torch.testing.assert_close(avg, 0.9 * before[name] + 0.1 * live[name])
        else:
            assert torch.equal(avg, live[name])
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError, match="decay"):
        EMA(net, decay=1.0)


def test_ema_warm_up_forgets_the_initial_weights_fast():
    net = nn.Linear(2, 1, bias=False)
    ema = EMA(net, decay=0.999, warmup=True)
    assert ema.decay_at(1) == pytest.approx(2 / 11) and ema.decay_at(10_000) == 0.999
    init = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    for t in range(1, 101):
        ema.update(net, t)
    # the initial weights' share after 100 updates: the product of the decays, (2 * 3 * ... ) / ...
    share = math.prod(min(0.999, (1 + t) / (10 + t)) for t in range(1, 101))
    torch.testing.assert_close(ema.module.weight, share * init + (1 - share) * net.weight.detach())
    assert share < 1e-3 < 0.999**100
    with pytest.raises(ValueError, match="number t"):
        ema.update(net)
    plain = EMA(net, decay=0.9)
    assert plain.decay_at(1) == 0.9


def test_recalibrated_batch_norm_measures_the_statistics_of_the_given_weights():
    torch.manual_seed(3)
    G = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    G.latent_dim = 3
    G[1].running_mean.fill_(5.0)  # stale statistics, as an average of old ones would be
    state = torch.get_rng_state()
    fresh = recalibrate_batch_norm(G, n=1000, batch_size=250, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is untouched
    assert torch.all(G[1].running_mean == 5.0)  # the original is unchanged
    assert not fresh.training
    with torch.no_grad():
        gen = torch.Generator().manual_seed(7)
        h = G[0](torch.cat([torch.randn(250, 3, generator=gen) for _ in range(4)]))  # the same draws
    torch.testing.assert_close(fresh[1].running_mean, h.mean(0))
    torch.testing.assert_close(
        fresh[1].running_var, h.var(0), rtol=0.02, atol=1e-4
    )  # mean of batch variances
    plain = torch.nn.Linear(3, 2)
    plain.latent_dim = 3
    assert torch.equal(recalibrate_batch_norm(plain).weight, plain.weight)


@pytest.mark.parametrize("decay, half_life", [(0.9999, 6931), (0.999, 693), (0.998, 346)])
def test_ema_half_life_is_log_half_over_log_decay(decay, half_life):
    """The half-lives the docs quote: after log(1/2) / log(decay) updates towards a new value,
    the average has covered half the way."""
    assert round(math.log(0.5) / math.log(decay)) == half_life
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
    ema = EMA(net, decay)
    with torch.no_grad():
        net.weight.fill_(1.0)  # a step change of the live weights
    for _ in range(half_life):
        ema.update(net)
    assert abs(float(ema.module.weight) - 0.5) < 1e-3


def test_recalibration_keeps_each_norms_momentum():
    G = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, momentum=0.3))
    G.latent_dim = 3
    assert recalibrate_batch_norm(G, n=64)[1].momentum == 0.3
