"""The MNIST runner of sweeps (gan_tutorial.sweep.mnist): budgets, divergence, scores, checkpoints."""

import math

import pytest
import torch

from gan_tutorial import data, runtime, sweep, updates
from gan_tutorial.checkpoint import load_generator
from gan_tutorial.config import RECIPES, TrainConfig
from gan_tutorial.data import MNISTNotFoundError, ensure_mnist
from gan_tutorial.metrics import judge
from gan_tutorial.sweep import Sweep


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are tiny: one thread is as fast as two, and many times faster when other
    work keeps the cores busy (threads then wait for each other at every operation)."""
    with runtime.isolated(threads=1):
        yield


def test_mnist_runner_checks_its_budget():
    with pytest.raises(ValueError, match="give a budget"):
        sweep.MNISTRunner()
    with pytest.raises(ValueError, match="unknown reference"):
        sweep.MNISTRunner(steps=1, reference="train")
    with pytest.raises(ValueError, match="n_samples"):
        sweep.MNISTRunner(steps=1, n_samples=1)


def test_mnist_runner_records_a_divergence(monkeypatch, tmp_path):
    x = torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    monkeypatch.setattr(data, "load_mnist", lambda **kw: x)  # no MNIST needed: training never ends

    def diverge(self, *args, **kwargs):
        raise updates.DivergenceError("diverged", 3, 3, ("loss_D",))

    monkeypatch.setattr("gan_tutorial.trainer.Trainer.run", diverge)
    results = Sweep(tmp_path / "s.jsonl", sweep.MNISTRunner(steps=5)).run(
        sweep.grid(TrainConfig(batch_size=8)), [0]
    )
    row = results.rows[0]
    assert row["diverged"] is True and row["steps"] == 3 and math.isnan(row["fd"]) and math.isnan(row["kl"])
    assert results.summary("fd")[0].n == 0


@pytest.fixture
def mnist():
    try:
        ensure_mnist(download=False)
    except MNISTNotFoundError as err:
        pytest.skip(f"MNIST is not in data/ ({str(err).splitlines()[0]})")


def test_mnist_runner_on_a_tiny_budget(mnist, monkeypatch):
    # the judge's reference sets cut to 1,000 images each, so that the test takes seconds, not a
    # minute: the runner's code is the same, only the real images it is compared with are fewer
    monkeypatch.setitem(judge.SPLITS, "val", ("train", 50_000, 51_000))
    monkeypatch.setitem(judge.FLOOR_POOLS, "val", (("train", 40_000, 41_000),))
    runner = sweep.MNISTRunner(steps=5, n_samples=200)
    metrics = runner(RECIPES["classic"], 0)
    assert set(metrics) == {"fd", "ratio", "modes", "kl", "steps", "train_seconds", "diverged"}
    assert metrics["steps"] == 5 and metrics["diverged"] is False
    assert all(math.isfinite(metrics[k]) for k in ("fd", "ratio", "kl", "train_seconds"))
    assert 1 <= metrics["modes"] <= 10 and metrics["fd"] > 0
    x_train = runner._x_train
    runner(RECIPES["classic"], 1)
    assert runner._x_train is x_train  # MNIST loaded once


def test_mnist_runner_keeps_each_runs_checkpoint(mnist, monkeypatch, tmp_path):
    monkeypatch.setitem(judge.SPLITS, "val", ("train", 50_000, 51_000))
    monkeypatch.setitem(judge.FLOOR_POOLS, "val", (("train", 40_000, 41_000),))
    runner = sweep.MNISTRunner(steps=3, n_samples=100, keep=tmp_path)
    config = RECIPES["classic"]
    runner(config, 0)
    path = runner.checkpoint(config, 0)
    assert path.exists() and path.parent == tmp_path
    assert runner.checkpoint(config, 1) != path and runner.checkpoint(config, 0) == path
    G = load_generator(path)
    assert G(torch.randn(2, config.latent_dim)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="keep"):
        sweep.MNISTRunner(steps=1).checkpoint(config, 0)
