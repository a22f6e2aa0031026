"""The MNIST judge: Frechet distance against scipy, class statistics, shipped accuracy."""

import math

import numpy as np
import pytest
import torch

from gan_tutorial.data import MNISTNotFoundError, load_mnist
from gan_tutorial.metrics import judge as J
from gan_tutorial.metrics.frechet import feature_stats, frechet_distance
from gan_tutorial.metrics.modes import kl_from_uniform

scipy_linalg = pytest.importorskip("scipy.linalg")
scipy_stats = pytest.importorskip("scipy.stats")


def random_cov(d, seed):
    a = torch.randn(d, 2 * d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / (2 * d)


def frechet_scipy(mu1, s1, mu2, s2):
    """The textbook formula with scipy's matrix square root (a different algorithm)."""
    covmean = scipy_linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    diff = (mu1 - mu2).numpy()
    return float(diff @ diff + np.trace(s1.numpy()) + np.trace(s2.numpy()) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d, seed", [(2, 0), (8, 1), (64, 2)])
def test_frechet_matches_scipy(d, seed):
    g = torch.Generator().manual_seed(seed)
    mu1, mu2 = (
        torch.randn(d, generator=g, dtype=torch.float64),
        torch.randn(d, generator=g, dtype=torch.float64),
    )
    s1, s2 = random_cov(d, seed), random_cov(d, seed + 100)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_scipy(mu1, s1, mu2, s2), rel=1e-6)


def test_frechet_closed_forms():
    mu, s = torch.zeros(3), random_cov(3, 5)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-9)
    # diagonal covariances: sum_i (sqrt(a_i) - sqrt(b_i))^2 plus the squared mean gap
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = 3**2 + sum((math.sqrt(x) - math.sqrt(y)) ** 2 for x, y in zip(a, b, strict=True))
    assert frechet_distance(torch.tensor([3.0, 0, 0]), a.diag(), mu, b.diag()) == pytest.approx(expected)
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(mu, s, torch.zeros(4), torch.eye(4))


def test_feature_stats_match_numpy():
    f = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    mu, sigma = feature_stats(f)
    assert torch.allclose(mu, f.double().mean(0))
    assert np.allclose(sigma.numpy(), np.cov(f.numpy(), rowvar=False))


def test_class_statistics():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    probs = torch.nn.functional.one_hot(labels, 10).float() * 0.95 + 0.005
    hist = J.class_histogram(probs)
    assert hist[:3].tolist() == pytest.approx([0.5, 0.3, 0.2])
    assert J.modes_covered(probs) == 3
    uniform = torch.full((10,), 0.1)
    assert kl_from_uniform(hist) == pytest.approx(scipy_stats.entropy(hist.numpy(), uniform.numpy()))
    assert kl_from_uniform(uniform) == pytest.approx(0, abs=1e-7)  # float32 0.1 is not exact
    assert kl_from_uniform(torch.eye(10)[3]) == pytest.approx(math.log(10))


def test_shipped_weights_are_small_and_load():
    assert J.WEIGHTS_PATH.stat().st_size < 400_000
    judge = J.load_judge()
    assert sum(p.numel() for p in judge.parameters()) < 100_000
    feats, probs = J.predict(judge, torch.zeros(3, 1, 28, 28))
    assert feats.shape == (3, J.FEATURE_DIM) and probs.shape == (3, 10)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\).*x\.view\(-1, 1, 28, 28\)"):
        J.score(torch.zeros(3, 784), judge)
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\]"):  # NaN samples are not scored
        J.score(torch.full((3, 1, 28, 28), float("nan")), judge)


def test_judge_scores_99_percent_on_mnist_test():
    try:
        x, y = load_mnist(train=False, labels=True, download=False)
    except MNISTNotFoundError as err:
        pytest.skip(f"MNIST is not in data/ ({str(err).splitlines()[0]})")
    assert J.accuracy(J.load_judge(), x, y) >= 0.99


@pytest.fixture(scope="module")
def judge_and_labels():
    try:
        _, y = load_mnist(train=True, labels=True, download=False)
    except MNISTNotFoundError as err:
        pytest.skip(f"MNIST is not in data/ ({str(err).splitlines()[0]})")
    judge = J.load_judge()
    return judge, J.reference(judge), y


def test_reference_is_cached_per_seed(judge_and_labels):
    judge, ref, _ = judge_and_labels
    assert J.reference(judge) is ref
    other = J.reference(judge, n=2000, seed=1)
    assert other is not ref and other.floor != ref.floor
    assert J.reference(judge, n=2000, seed=1) is other


def test_class_mix_distance_is_the_floor_for_real_proportions_and_grows_with_skew(judge_and_labels):
    judge, ref, y = judge_and_labels
    real = torch.bincount(y, minlength=10).double() / len(y)
    assert J.class_mix_distance(real, judge, ref) < 1.25 * ref.floor  # real digits, real proportions
    skewed = torch.full((10,), 0.8 / 9, dtype=torch.float64)
    skewed[1] = 0.2  # one digit about twice as frequent as each other: KL 0.044 nats
    assert kl_from_uniform(skewed) < 0.05
    d_skewed = J.class_mix_distance(skewed, judge, ref)
    assert d_skewed > 5 * ref.floor
    only_ones = torch.zeros(10)
    only_ones[1] = 1.0  # 10,000 ones from MNIST's 6,742: some are drawn twice
    assert J.class_mix_distance(only_ones, judge, ref) > d_skewed


@pytest.mark.parametrize("hist", [torch.full((9,), 1 / 9), torch.full((10,), 0.2), -torch.eye(10)[0]])
def test_class_mix_distance_rejects_what_is_not_a_histogram(hist):
    with pytest.raises(ValueError, match="non-negative shares summing to 1"):
        J.class_mix_distance(hist, judge=None)


def test_references_and_floors_use_images_the_judge_never_saw():
    # the judge trains on the first JUDGE_TRAIN training images; references and floor pools lie after
    for split, (part, start, stop) in J.SPLITS.items():
        assert part == "test" or start >= J.JUDGE_TRAIN
        for pool in J.FLOOR_POOLS[split]:
            assert pool[0] == "test" or pool[1] >= J.JUDGE_TRAIN
            same_part = pool[0] == part
            assert not (same_part and pool[1] < stop and start < pool[2]), (
                "a floor pool overlaps its reference"
            )


def test_the_floor_is_a_mean_over_draws_with_its_spread(judge_and_labels):
    judge, _, _ = judge_and_labels
    ref = J.reference(judge, "test", n=2000, draws=4)
    assert len(ref.floors) == 4 and len(set(ref.floors)) == 4
    assert ref.floor == pytest.approx(sum(ref.floors) / 4)
    assert ref.floor_std == pytest.approx(torch.tensor(ref.floors, dtype=torch.float64).std().item())
    val = J.reference(judge, "val", n=2000, draws=4)
    assert not torch.equal(val.mu, ref.mu)  # two different real sets
    with pytest.raises(ValueError, match="unknown reference"):
        J.reference(judge, "train")
    # a fresh draw of real images scores at its floor; uniform noise is not rewarded for anything
    x, _ = J.real_images("train", 40_000, 60_000)
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(99))[:2000]
    real = J.score(x[pick], judge, ref)
    assert real.at_floor and "at the floor" in str(real) and real.modes == 10
    noise = J.score(
        torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1, judge, ref
    )
    assert not noise.at_floor and noise.ratio > 100 and noise.modes < 10
