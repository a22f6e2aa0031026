"""MNIST loading (from tiny MNIST-format files written here), its errors, and the toy mixtures."""

import gzip
import math

import pytest
import torch
from scipy import stats

from gan_tutorial import data


def write_idx(path, array: torch.Tensor, magic: int) -> None:
    """Write ``array`` (uint8) in the IDX format MNIST uses: magic, sizes, payload."""
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


@pytest.fixture
def tiny_mnist(tmp_path):
    """A data root holding a 6-image train split and a 4-image test split."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    splits = {"train": 6, "t10k": 4}
    for prefix, n in splits.items():
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range appear
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 2051)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", torch.arange(n) % 10, 2049)
    return tmp_path


def test_mnist_shape_range_dtype(tiny_mnist):
    x = data.load_mnist(root=tiny_mnist, download=False)
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0


def test_mnist_pixel_mapping_and_labels(tiny_mnist):
    x, y = data.load_mnist(train=False, root=tiny_mnist, download=False, labels=True)
    raw = (tiny_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte").read_bytes()[16:]
    pixels = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(4, 1, 28, 28)
    torch.testing.assert_close(x, pixels.float() / 127.5 - 1.0)
    assert y.tolist() == [0, 1, 2, 3] and y.dtype == torch.int64


def test_mnist_from_gz_files(tiny_mnist):
    raw = tiny_mnist / "MNIST" / "raw"
    for name in data.MNIST_FILES:
        (raw / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes()))
        (raw / name).unlink()
    assert data.load_mnist(root=tiny_mnist, download=False).shape == (6, 1, 28, 28)


def test_offline_without_files_names_folder_and_files(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_online", lambda url, timeout=3.0: False)
    with pytest.raises(data.MNISTNotFoundError) as info:
        data.load_mnist(root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "no network" in message
    assert all(name in message for name in data.MNIST_FILES)
    with pytest.raises(FileNotFoundError, match="download=False"):
        data.load_mnist(root=tmp_path, download=False)


def test_truncated_file_is_a_clear_error(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.MNISTCorruptError, match="truncated or corrupt"):
        data.load_mnist(root=tiny_mnist, download=False)


def test_wrong_magic_and_bad_gzip_are_clear_errors(tiny_mnist):
    raw = tiny_mnist / "MNIST" / "raw"
    labels = raw / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x03" + labels.read_bytes()[4:])
    with pytest.raises(data.MNISTCorruptError, match="magic number 2049"):
        data.load_mnist(root=tiny_mnist, download=False)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(data.MNISTCorruptError, match="not a readable gzip"):
        data.load_mnist(root=tiny_mnist, download=False)


def test_gzip_with_damaged_contents_is_a_clear_error_and_leaves_nothing(tiny_mnist):
    raw = tiny_mnist / "MNIST" / "raw"
    name = "t10k-images-idx3-ubyte"
    packed = bytearray(gzip.compress((raw / name).read_bytes()))
    packed[12:40] = b"\xff" * 28  # a valid gzip header, then a damaged deflate stream
    (raw / name).unlink()
    (raw / f"{name}.gz").write_bytes(bytes(packed))
    with pytest.raises(data.MNISTCorruptError, match="not a readable gzip"):
        data.load_mnist(root=tiny_mnist, train=False, download=False)
    assert not (raw / name).exists() and not list(raw.glob("*.part"))


def test_random_batches_cover_an_epoch_without_repeats():
    x = torch.arange(10.0)[:, None]
    it = data.random_batches(x, 3, torch.Generator().manual_seed(0))
    epoch = torch.cat([next(it) for _ in range(3)]).flatten()
    assert epoch.shape == (9,) and epoch.unique().numel() == 9  # one epoch, last partial batch dropped
    again = data.random_batches(x, 3, torch.Generator().manual_seed(0))
    assert torch.equal(next(again).flatten(), epoch[:3])  # seeded: same order
    with pytest.raises(ValueError, match="batch_size"):
        next(data.random_batches(x, 11))


def test_mixture_log_prob_matches_scipy():
    mix = data.gaussian_mixture_1d(means=(-1.0, 0.5, 3.0), stds=(0.3, 1.0, 0.5), weights=(0.2, 0.5, 0.3))
    x = torch.linspace(-4, 6, 101, dtype=torch.float64)[:, None]
    expected = sum(
        w * stats.norm.pdf(x.numpy()[:, 0], m, s)
        for w, m, s in [(0.2, -1.0, 0.3), (0.5, 0.5, 1.0), (0.3, 3.0, 0.5)]
    )
    torch.testing.assert_close(mix.pdf(x), torch.from_numpy(expected))


def test_1d_sampler_matches_its_density():
    mix = data.gaussian_mixture_1d(means=(-2.0, 2.0), stds=(0.5, 0.8), weights=(0.3, 0.7))
    x = mix.sample(20_000, torch.Generator().manual_seed(0))
    assert x.shape == (20_000, 1) and x.dtype == torch.float32

    def cdf(t):
        return 0.3 * stats.norm.cdf(t, -2.0, 0.5) + 0.7 * stats.norm.cdf(t, 2.0, 0.8)

    assert stats.kstest(x[:, 0].numpy(), cdf).pvalue > 0.01


@pytest.mark.parametrize(("make", "k", "std"), [(data.ring8, 8, 0.01), (data.grid25, 25, 0.05)])
def test_2d_samplers_match_their_densities(make, k, std):
    mix = make()
    x = mix.sample(50_000, torch.Generator().manual_seed(1)).double()
    d2 = torch.cdist(x, mix.means) ** 2  # (n, K)
    nearest = d2.argmin(1)
    counts = torch.bincount(nearest, minlength=k).numpy()
    assert stats.chisquare(counts).pvalue > 0.01  # equal weights
    # Squared distance to the own centre / std^2 is chi-squared with 2 degrees of freedom.
    r2 = d2.gather(1, nearest[:, None]).squeeze(1) / std**2
    assert stats.kstest(r2.numpy(), stats.chi2(df=2).cdf).pvalue > 0.01
    # The density integrates to 1 (Riemann sum on a fine grid around every mode).
    h = std / 8
    ticks = torch.arange(-5 * std, 5 * std, h, dtype=torch.float64)
    local = torch.cartesian_prod(ticks, ticks)
    total = sum(mix.pdf(local + m).sum() * h * h for m in mix.means)
    assert math.isclose(float(total), 1.0, rel_tol=1e-3)


def test_ring_and_grid_geometry():
    ring, grid = data.ring8(), data.grid25()
    torch.testing.assert_close(ring.means.norm(dim=1), torch.ones(8, dtype=torch.float64))
    assert sorted(set(grid.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_mixture_rejects_bad_parameters():
    with pytest.raises(ValueError, match="sum to 1"):
        data.gaussian_mixture_1d(means=(0.0, 1.0), stds=(1.0, 1.0), weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="positive"):
        data.gaussian_mixture_1d(means=(0.0,), stds=(0.0,))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        data.ring8().log_prob(torch.zeros(3, 3))
