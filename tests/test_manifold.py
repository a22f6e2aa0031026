"""Precision, recall, density and coverage against prdc (the reference implementation) and a
brute-force loop written straight from the definitions."""

import numpy as np
import pytest
import torch

from gan_tutorial.metrics.manifold import RealManifold, knn_radii, manifold_metrics

prdc = pytest.importorskip("prdc", reason="prdc is a dev dependency: pip install -e '.[dev]'")


def _sets(n_real=600, n_fake=500, dim=8, seed=0, shift=0.4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_real, dim, generator=g), torch.randn(n_fake, dim, generator=g) * 1.3 + shift


def brute_force(real, fake, k):
    """The four definitions, one point at a time."""
    x, y = real.double(), fake.double()

    def radius(points, i):
        d = sorted(float((points[i] - points[j]).norm()) for j in range(len(points)) if j != i)
        return d[k - 1]  # the k-th nearest other point

    r = [radius(x, i) for i in range(len(x))]
    s = [radius(y, j) for j in range(len(y))]
    d = torch.cdist(x, y)
    precision = np.mean([any(d[i, j] < r[i] for i in range(len(x))) for j in range(len(y))])
    recall = np.mean([any(d[i, j] < s[j] for j in range(len(y))) for i in range(len(x))])
    density = np.mean([sum(d[i, j] < r[i] for i in range(len(x))) for j in range(len(y))]) / k
    coverage = np.mean([any(d[i, j] < r[i] for j in range(len(y))) for i in range(len(x))])
    return precision, recall, float(density), coverage


def test_equal_to_a_brute_force_loop():
    real, fake = _sets(60, 50, 3)
    for k in (1, 3, 5):
        m = manifold_metrics(real, fake, k_pr=k, k_dc=k)
        assert (m.precision, m.recall, m.density, m.coverage) == pytest.approx(
            brute_force(real, fake, k), abs=1e-12
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_equal_to_prdc_to_1e_6(seed, capsys):
    real, fake = _sets(seed=seed)
    for k_pr, k_dc in ((3, 5), (5, 5)):
        m = manifold_metrics(real, fake, k_pr, k_dc)
        pr = prdc.compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k=k_pr)
        dc = prdc.compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k=k_dc)
        assert m.precision == pytest.approx(pr["precision"], abs=1e-6)
        assert m.recall == pytest.approx(pr["recall"], abs=1e-6)
        assert m.density == pytest.approx(dc["density"], abs=1e-6)
        assert m.coverage == pytest.approx(dc["coverage"], abs=1e-6)
    capsys.readouterr()  # prdc prints its set sizes


def test_blocks_do_not_change_the_answer(monkeypatch):
    real, fake = _sets(300, 250)
    whole = manifold_metrics(real, fake)
    import gan_tutorial.metrics.manifold as mod

    monkeypatch.setattr(mod, "BLOCK", 7)  # many uneven blocks
    assert manifold_metrics(real, fake) == whole
    assert torch.equal(knn_radii(real, 3), mod.knn_radii(real, 3))


def test_real_balls_from_one_pass_or_stored():
    real, fake = _sets(300, 250)
    ref = RealManifold(real, k_pr=3, k_dc=5)  # both radii from one pass of distances
    assert torch.equal(ref.r_pr, knn_radii(real, 3)) and torch.equal(ref.r_dc, knn_radii(real, 5))
    stored = RealManifold(real, 3, 5, radii=(ref.r_pr.clone(), ref.r_dc.clone()))
    assert stored.score(fake) == ref.score(fake)
    with pytest.raises(ValueError, match=r"two \(300,\) tensors"):
        RealManifold(real, 3, 5, radii=(ref.r_pr[:10], ref.r_dc))


def test_what_each_number_sees():
    real, _ = _sets(800, 10, 2, shift=0.0)
    g = torch.Generator().manual_seed(5)
    same = torch.randn(800, 2, generator=g)  # a perfect generator: all four near their real-vs-real values
    half = same[same[:, 0] < 0]  # drops half the data: recall and coverage fall, precision stays
    collapsed = torch.zeros(400, 2) + 0.01 * torch.randn(400, 2, generator=g)  # one point: recall ~0
    ref = RealManifold(real)
    m_same, m_half, m_one = ref.score(same), ref.score(half), ref.score(collapsed)
    assert m_same.precision > 0.8 and m_same.recall > 0.8 and 0.8 < m_same.density < 1.2
    assert m_half.precision > 0.8 and m_half.coverage < 0.65 * m_same.coverage and m_half.recall < 0.7
    assert m_one.precision == 1.0 and m_one.recall < 0.05 and m_one.coverage < 0.05
    assert m_one.density > m_same.density  # every fake in the densest real balls


def test_bad_features_say_what_is_wrong():
    real, fake = _sets(20, 20)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        manifold_metrics(real[0], fake)
    with pytest.raises(ValueError, match="more than k"):
        manifold_metrics(real[:3], fake)
    with pytest.raises(ValueError, match="differ in size"):
        manifold_metrics(real, fake[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        manifold_metrics(real, fake.clone().fill_(float("nan")))
