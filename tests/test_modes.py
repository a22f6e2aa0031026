"""Mode metrics (gan_tutorial.metrics.modes) against constructed samples and a second implementation."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from gan_tutorial import data
from gan_tutorial.metrics import (
    assign_modes,
    kl_from_uniform,
    mode_counts,
    mode_report,
    modes_captured,
)


def reference_report(x: np.ndarray, means: np.ndarray, stds: np.ndarray, threshold: float = 3.0):
    """A sample-by-sample loop, written independently of the vectorised package code."""
    counts = np.zeros(len(means))
    for point in x:
        best, best_k = math.inf, -1
        for k, (mu, sigma) in enumerate(zip(means, stds, strict=True)):
            d = math.sqrt(float(np.sum((point - mu) ** 2))) / sigma
            if d < best:
                best, best_k = d, k
        if best < threshold:
            counts[best_k] += 1
    hq = counts.sum() / len(x)
    kl = (
        scipy.stats.entropy(counts / counts.sum(), np.full(len(means), 1 / len(means)))
        if counts.sum()
        else math.inf
    )
    return int((counts > 0).sum()), hq, kl, counts


def test_all_samples_at_five_of_eight_centres():
    ring = data.ring8()
    x = ring.means[[0, 1, 2, 3, 4]].repeat(20, 1).float()  # (100, 2): 20 samples at each of 5 centres
    report = mode_report(x, ring)
    assert report.modes == 5 and report.n_modes == 8 and not report.all_modes
    assert report.high_quality == 1.0
    assert report.kl == pytest.approx(math.log(8 / 5), abs=1e-12)
    assert report.counts.tolist() == [20, 20, 20, 20, 20, 0, 0, 0]


def test_far_outlier_is_not_high_quality_and_captures_nothing():
    ring = data.ring8()
    x = torch.cat([ring.means.float(), torch.tensor([[50.0, 50.0]])])  # 8 on centre + 1 far away
    report = mode_report(x, ring)
    assert report.modes == 8
    assert report.high_quality == pytest.approx(8 / 9)
    assert report.kl == pytest.approx(0.0, abs=1e-12)


def test_empty_mode_and_uneven_histogram():
    grid = data.grid25()
    counts = torch.arange(25)  # mode 0 empty, mode k has k samples
    x = torch.cat([grid.means[k].repeat(k, 1) for k in range(25)]).float()
    report = mode_report(x, grid)
    assert report.modes == 24
    assert report.counts.tolist() == counts.tolist()
    q = counts.double() / counts.sum()
    expected = float(sum(qk * math.log(25 * qk) for qk in q.tolist() if qk > 0))
    assert report.kl == pytest.approx(expected, rel=1e-12)


def test_three_sigma_boundary_and_one_mode():
    ring = data.ring8()  # sigma = 0.01
    inside = ring.means[2] + torch.tensor([0.0, 0.029], dtype=torch.float64)  # 2.9 sigma
    outside = ring.means[2] + torch.tensor([0.031, 0.0], dtype=torch.float64)  # 3.1 sigma
    nearest, hq = assign_modes(torch.stack([inside, outside]), ring)
    assert nearest.tolist() == [2, 2] and hq.tolist() == [True, False]
    one = mode_report(ring.means[[3]].repeat(10, 1), ring)
    assert one.modes == 1 and one.kl == pytest.approx(math.log(8))


def test_true_samples_score_like_the_mixture():
    # P(||eps|| < 3) for a 2-D standard normal is 1 - exp(-9/2) = 0.9889
    for mixture in (data.ring8(), data.grid25()):
        x = mixture.sample(20000, torch.Generator().manual_seed(0))
        report = mode_report(x, mixture)
        assert report.all_modes
        assert report.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.005)
        assert report.kl < 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_a_loop_on_random_samples(seed):
    gen = torch.Generator().manual_seed(seed)
    for mixture, scale in ((data.ring8(), 1.2), (data.grid25(), 5.0)):
        # a blurred mixture: some samples high quality, some between modes
        x = mixture.sample(400, gen) + 0.1 * scale * torch.randn(400, 2, generator=gen) ** 3
        modes, hq, kl, counts = reference_report(
            x.double().numpy(), mixture.means.numpy(), mixture.stds.numpy()
        )
        report = mode_report(x, mixture)
        assert report.modes == modes
        assert report.high_quality == pytest.approx(hq, abs=1e-12)
        assert report.kl == pytest.approx(kl, abs=1e-10)
        assert mode_counts(x, mixture).tolist() == counts.astype(int).tolist()
        assert modes_captured(report.counts) == modes


def test_kl_matches_scipy_and_edge_cases():
    counts = torch.tensor([5, 0, 3, 9, 1])
    expected = scipy.stats.entropy(counts.numpy() / 18, np.full(5, 0.2))
    assert kl_from_uniform(counts) == pytest.approx(expected, rel=1e-12)
    # log K - H(q)
    q = counts.double() / counts.sum()
    h = -sum(p * math.log(p) for p in q.tolist() if p > 0)
    assert kl_from_uniform(counts) == pytest.approx(math.log(5) - h, rel=1e-12)
    assert kl_from_uniform(torch.zeros(8)) == math.inf
    assert modes_captured(torch.tensor([0, 19, 20, 40]), min_count=20) == 2


def test_bad_input_says_what_is_wrong():
    ring = data.ring8()
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        mode_report(torch.zeros(3, 2, 10), ring)
    with pytest.raises(ValueError, match="threshold"):
        mode_report(torch.zeros(3, 2), ring, threshold=0)
    with pytest.raises(ValueError, match="non-negative"):
        kl_from_uniform(torch.tensor([1, -1]))


def test_nearest_mode_distance_and_held_modes_fail_a_blob():
    from gan_tutorial.metrics.modes import modes_captured, nearest_mode_distance

    grid = data.grid25()
    gen = torch.Generator().manual_seed(0)
    x = grid.sample(2500, gen)
    # a sample of the mixture: |N(0, I_2)| has mean sqrt(pi / 2) standard deviations
    assert nearest_mode_distance(x, grid) == pytest.approx(math.sqrt(math.pi / 2), rel=0.05)
    blob = x.mean(0) + torch.randn(2500, 2, generator=gen) @ torch.linalg.cholesky(torch.cov(x.T)).T
    r = mode_report(blob, grid)
    assert r.modes >= 15  # the papers' count is fooled by a cloud ...
    assert modes_captured(r.counts, 25) == 0 and nearest_mode_distance(blob, grid) > 10  # ... these are not
    at_modes = grid.means.repeat(3, 1)
    assert nearest_mode_distance(at_modes, grid) == 0.0
    with pytest.raises(ValueError, match="shape"):
        nearest_mode_distance(torch.zeros(3, 3), grid)
