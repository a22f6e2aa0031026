"""The benchmark runs end to end (a tiny smoke run; no timing assertions), and its ladder adds
one change per row."""

import dataclasses

import pytest
import torch

from gan_tutorial import bench, cli
from gan_tutorial.config import TrainConfig
from gan_tutorial.data import MNISTNotFoundError, ensure_mnist


@pytest.fixture
def mnist():
    try:
        ensure_mnist(download=False)
    except MNISTNotFoundError:
        pytest.skip("MNIST is not in data/; the baseline reads it through torchvision")


def test_bench_smoke(mnist, capsys):
    assert cli.main(["bench", "--steps", "2", "--batch-size", "8", "--seconds", "0"]) == 0
    out = capsys.readouterr().out
    for row in (
        "pytorch/examples loop",
        "+ batches from one device tensor",
        "+ channels-last",
        "+ fused Adam",
    ):
        assert row in out
    assert "trainer (last row) / pytorch/examples loop:" in out


@pytest.mark.parametrize("compile", [False, True])
def test_each_trainer_row_adds_one_change(mnist, monkeypatch, compile):
    paths = []
    real = bench.Trainer
    monkeypatch.setattr(
        bench, "Trainer", lambda *a, fast, **kw: paths.append(fast) or real(*a, fast=fast, **kw)
    )
    # aot_eager: torch.compile's tracing without the minute of code generation on a CPU
    compile_module = torch.nn.Module.compile
    monkeypatch.setattr(
        torch.nn.Module, "compile", lambda self, **kw: compile_module(self, backend="aot_eager")
    )
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    rows = bench.ladder(TrainConfig(batch_size=8), x, torch.device("cpu"), compile=compile)
    assert (list(rows)[-1] == "+ torch.compile") == compile and paths[-1].compile == compile
    assert list(rows)[:3] == [
        "pytorch/examples loop", "+ batches from one device tensor", "+ monitors read every log_every steps",
    ]  # fmt: skip
    assert paths[0].amp_dtype is None and not paths[0].channels_last and paths[0].adam == "default"
    for before, after in zip(paths, paths[1:], strict=False):
        changed = [
            f.name for f in dataclasses.fields(before) if getattr(before, f.name) != getattr(after, f.name)
        ]
        assert len(changed) == 1, changed


def test_baseline_is_the_pytorch_examples_loop(mnist):
    b = bench.Baseline(TrainConfig(batch_size=8), torch.device("cpu"))
    assert b.next_batch.__closure__ is not None  # reads through a DataLoader ...
    loader = next(
        c.cell_contents for c in b.next_batch.__closure__ if hasattr(c.cell_contents, "num_workers")
    )
    assert loader.num_workers == 2  # ... with pytorch/examples' two workers
    assert isinstance(b.D[-1], torch.nn.Sigmoid) and isinstance(b.criterion, torch.nn.BCELoss)
    assert b.run(steps=2) == 16 and len(b.log) == 2 and isinstance(b.log[0][0], float)


def test_bench_one_process_against_two(capsys):
    """``--processes 2``: the same run on 1 process x 2 threads and under torchrun on 2 x 1."""
    argv = ["bench", "--processes", "2", "--data", "fake", "--steps", "2", "--rounds", "1"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "1 process x 2 threads" in out and "2 processes x 1 thread" in out
    assert "2 processes / 1 process:" in out
