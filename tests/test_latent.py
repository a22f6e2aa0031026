"""Latent-space helpers: lerp and slerp against closed forms, nearest neighbours against brute force."""

import math

import pytest
import torch

from gan_tutorial.latent import lerp, nearest_neighbours, slerp


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
