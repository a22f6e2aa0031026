"""The ensemble of toy MLPs the toy sweeps train (gan_tutorial.models.ensemble): ensembles that
equal separate networks, and separate runs."""

import pytest
import torch

from gan_tutorial import data, runtime, updates
from gan_tutorial.models import toy_mlp
from gan_tutorial.models.ensemble import MLPEnsemble, ensemble


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are tiny: one thread is as fast as two, and many times faster when other
    work keeps the cores busy (threads then wait for each other at every operation)."""
    with runtime.isolated(threads=1):
        yield


def seeded_mlps(seeds, *args):
    mlps = []
    for seed in seeds:
        torch.manual_seed(seed)
        mlps.append(toy_mlp(*args))
    return mlps


def test_ensemble_outputs_equal_the_members_outputs():
    mlps = seeded_mlps([0, 1, 2], 2, 1, 16, 3)
    ens = MLPEnsemble(mlps)
    assert len(ens) == 3 and ens.in_dim == 2 and ens.out_dim == 1
    x = torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ens(x), torch.stack([mlp(x[e]) for e, mlp in enumerate(mlps)]))
    for e, mlp in enumerate(mlps):
        member = ens.member(e)
        assert member.state_dict().keys() == mlp.state_dict().keys()
        for a, b in zip(member.state_dict().values(), mlp.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    # the weights were copied: training the ensemble leaves the original nets alone
    before = mlps[0][0].weight.clone()
    with torch.no_grad():
        ens.weights[0].add_(1.0)
    assert torch.equal(mlps[0][0].weight, before)


def test_ensemble_from_seeds_has_no_side_effect():
    state = torch.random.get_rng_state()
    ens = ensemble([3, 5], 2, 2, hidden=8, depth=2)
    assert torch.equal(torch.random.get_rng_state(), state), "the global generator was touched"
    for e, mlp in enumerate(seeded_mlps([3, 5], 2, 2, 8, 2)):
        for a, b in zip(ens.member(e).parameters(), mlp.parameters(), strict=True):
            assert torch.equal(a, b)


def test_ensemble_refuses_mismatched_members_and_inputs():
    with pytest.raises(ValueError, match="same architecture"):
        MLPEnsemble([toy_mlp(2, 1, 16, 2), toy_mlp(2, 1, 8, 2)])
    with pytest.raises(ValueError, match="at least one member"):
        MLPEnsemble([])
    with pytest.raises(ValueError, match="not a toy_mlp"):
        MLPEnsemble([torch.nn.Linear(2, 1)])
    ens = ensemble([0, 1], 2, 1, 8, 2)
    with pytest.raises(ValueError, match=r"expand\(2, -1, -1\)"):
        ens(torch.randn(5, 2))
    with pytest.raises(ValueError, match="out of range"):
        ens.member(2)


def test_training_the_ensemble_with_adam_equals_training_the_members_apart():
    """Notebook 02, cell 21: the loss over E x B outputs is (1/E) sum_e loss_e, and Adam cancels 1/E."""
    E, B, ring = 3, 64, data.ring8()
    Gs, Ds = seeded_mlps(range(E), 2, 2, 32, 2), seeded_mlps(range(10, 10 + E), 2, 1, 32, 2)
    G_ens, D_ens = MLPEnsemble(Gs), MLPEnsemble(Ds)

    def adam(module):
        return torch.optim.Adam(module.parameters(), lr=1e-3, betas=(0.5, 0.999))

    opts = [(adam(g), adam(d)) for g, d in zip(Gs, Ds, strict=True)]
    opt_G, opt_D = adam(G_ens), adam(D_ens)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x_real = ring.sample(E * B, gen).view(E, B, 2)
        z_d, z_g = torch.randn(E, B, 2, generator=gen), torch.randn(E, B, 2, generator=gen)
        updates.d_step(G_ens, D_ens, opt_D, x_real, z_d, "nonsaturating")
        updates.g_step(G_ens, D_ens, opt_G, z_g, "nonsaturating")
        for e, (g, d) in enumerate(zip(Gs, Ds, strict=True)):
            updates.d_step(g, d, opts[e][1], x_real[e], z_d[e], "nonsaturating")
            updates.g_step(g, d, opts[e][0], z_g[e], "nonsaturating")
    z = torch.randn(E, 100, 2, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(
            G_ens(z), torch.stack([g(z[e]) for e, g in enumerate(Gs)]), atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            D_ens(z), torch.stack([d(z[e]) for e, d in enumerate(Ds)]), atol=1e-4, rtol=0
        )
