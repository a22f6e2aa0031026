"""Device choice, seeding, quick mode and the data folder."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_tutorial import runtime


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in (runtime.DEVICE_ENV, runtime.QUICK_ENV, runtime.DATA_ENV):
        monkeypatch.delenv(var, raising=False)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.get_device() == torch.device("cpu")
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.get_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device() == torch.device("cuda")


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "definitely-not-a-device")
    assert runtime.get_device("cpu") == torch.device("cpu")
    assert runtime.get_device(torch.device("cpu")) == torch.device("cpu")


def test_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "CPU")
    assert runtime.get_device() == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:0", "tpu", ""])
def test_unknown_name_lists_the_choices(name):
    with pytest.raises(ValueError, match="choose one of auto, cpu, cuda, cuda:N, mps"):
        runtime.get_device(name)


def test_unknown_name_from_environment_says_where_it_came_from(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "gpu")
    with pytest.raises(ValueError, match=r"\$GAN_TUTORIAL_DEVICE"):
        runtime.get_device()


def test_missing_cuda_is_a_clear_runtime_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        runtime.get_device("cuda")
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS is not available"):
        runtime.get_device("mps")


def _draw():
    return random.random(), float(np.random.rand()), torch.randn(3)


def test_seeding_reproduces_python_numpy_and_torch():
    runtime.seed_everything(123)
    a = _draw()
    runtime.seed_everything(123)
    b = _draw()
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    runtime.seed_everything(124)
    assert not torch.equal(a[2], _draw()[2])


def test_seeding_reproduces_a_small_training_run():
    def run():
        runtime.seed_everything(7)
        net = torch.nn.Linear(4, 1)
        opt = torch.optim.Adam(net.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            net(torch.randn(8, 4)).pow(2).mean().backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in net.parameters()])

    assert torch.equal(run(), run())


def test_seed_returns_seeded_generator_and_rejects_bad_seeds():
    g = runtime.seed_everything(5)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5)))
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="non-negative int"):
            runtime.seed_everything(bad)


@pytest.mark.parametrize(("value", "quick"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode_and_budget(monkeypatch, value, quick):
    monkeypatch.setenv(runtime.QUICK_ENV, value)
    assert runtime.quick_mode() is quick
    assert runtime.budget(full=1000, quick=10) == (10 if quick else 1000)


def test_quick_mode_unset_is_full_and_nonsense_is_an_error(monkeypatch):
    assert runtime.quick_mode() is False
    monkeypatch.setenv(runtime.QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match="GAN_TUTORIAL_QUICK"):
        runtime.quick_mode()


def test_quick_mode_writes_no_figures(monkeypatch):
    monkeypatch.setenv(runtime.QUICK_ENV, "1")
    assert runtime.figures_dir() is None


def test_data_dir_default_and_override(monkeypatch, tmp_path):
    root = runtime.repo_root()
    assert runtime.data_dir() == (root / "data" if root else runtime.Path.home() / ".cache" / "gan_tutorial")
    monkeypatch.setenv(runtime.DATA_ENV, str(tmp_path))
    assert runtime.data_dir() == tmp_path


def test_describe_names_device_and_mode(monkeypatch):
    monkeypatch.setenv(runtime.QUICK_ENV, "1")
    line = runtime.describe(torch.device("cpu"))
    assert "torch " in line and "device cpu" in line and "quick mode" in line


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux's /proc reports the peak")
def test_peak_memory_is_in_gib_from_kib_on_linux():
    status = Path("/proc/self/status").read_text()
    peak_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    assert runtime.peak_memory_gib() == pytest.approx(peak_kib / 2**20, rel=0.05)
