"""The moving average of G's weights (its update rule, warm-up and half-life) and batch-norm
statistics recalibrated for it."""

import math

import pytest
import torch
from torch import nn

from gan_tutorial.average import EMA, recalibrate_batch_norm


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
