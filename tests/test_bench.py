"""The benchmark runs end to end (a tiny smoke run; no timing assertions)."""

import pytest

from gan_tutorial import bench
from gan_tutorial.data import MNISTNotFoundError, ensure_mnist


def test_bench_smoke(capsys):
    try:
        ensure_mnist(download=False)
    except MNISTNotFoundError:
        pytest.skip("MNIST is not in data/; the baseline reads it through torchvision")
    results = bench.main(["--steps", "2", "--batch-size", "8", "--seconds", "0"])
    assert results["baseline"] > 0 and results["trainer"] > 0
    assert results["ratio"] == pytest.approx(results["trainer"] / results["baseline"])
    assert "trainer / baseline" in capsys.readouterr().out
