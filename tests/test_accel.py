"""The fast path: its choice by device capability, its parts, and the trainer taking it. The updates
it runs are tested in test_iteration.py."""

import pytest
import torch

from gan_tutorial import accel, models


@pytest.mark.parametrize(
    "capability,dtype,scaler,channels_last",
    [((9, 0), torch.bfloat16, False, True), ((8, 0), torch.bfloat16, False, True),
     ((7, 5), torch.float16, True, True), ((6, 1), torch.float16, True, False)],
)  # fmt: skip
def test_cuda_choice_by_capability(capability, dtype, scaler, channels_last):
    fast = accel.choose("cuda", capability=capability)
    assert (fast.amp_dtype, fast.grad_scaler, fast.channels_last, fast.adam) == (
        dtype, scaler, channels_last, "fused",
    )  # fmt: skip
    line = fast.describe()
    assert ("GradScaler" in line) == scaler and fast.precision in line and "fused Adam" in line
    # bf16 GPUs replay each iteration as a CUDA graph; the GradScaler path stays eager
    assert fast.cuda_graph == (not scaler) and ("CUDA graphs" in line) == (not scaler)
    assert not accel.choose("cuda", compile=True, capability=capability).cuda_graph  # torch.compile instead
    assert not accel.choose("cuda", cuda_graphs=False, capability=capability).cuda_graph  # eager on request
    assert accel.choose("cuda", cuda_graphs=False, capability=capability).describe().endswith(", eager")


def test_cpu_and_mps_stay_fp32():
    cpu = accel.choose("cpu")
    assert (cpu.amp_dtype, cpu.grad_scaler, cpu.channels_last, cpu.adam) == (None, False, True, "fused")
    assert (
        accel.choose("cpu").describe()
        == "fast path: cpu, fp32, no loss scaling, channels-last, fused Adam, eager"
    )
    mps = accel.choose("mps")
    assert mps.amp_dtype is None and mps.adam == "foreach"
    assert "torch.compile" in accel.choose("cpu", compile=True).describe()
    assert cpu.scaler() is None


def test_a_fast_path_takes_a_device_name():
    fast = accel.FastPath("cpu", torch.bfloat16)
    assert fast.device == torch.device("cpu")
    with fast.autocast():
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16


def test_invalid_fast_paths():
    with pytest.raises(ValueError, match="scaler"):
        accel.FastPath(torch.device("cpu"), torch.bfloat16, grad_scaler=True)
    with pytest.raises(ValueError, match="adam"):
        accel.FastPath(torch.device("cpu"), adam="lion")
    with pytest.raises(ValueError, match="no fast path"):
        accel.choose("meta")
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        accel.FastPath(torch.device("cpu"), cuda_graph=True)
    with pytest.raises(ValueError, match="CUDA graphs need"):
        accel.FastPath(torch.device("cuda"), torch.float16, grad_scaler=True, cuda_graph=True)


def test_adam_implementations_agree():
    torch.manual_seed(0)
    w = torch.randn(50, requires_grad=True)
    results = {}
    for impl in accel.ADAM_IMPLS:
        p = torch.nn.Parameter(w.detach().clone())
        opt = accel.FastPath(torch.device("cpu"), adam=impl).adam_optimizer([p], 1e-2, (0.5, 0.999))
        for _ in range(3):
            opt.zero_grad()
            (p**2).sum().backward()
            opt.step()
        results[impl] = p.detach()
    torch.testing.assert_close(results["fused"], results["default"])
    torch.testing.assert_close(results["foreach"], results["default"])


def test_channels_last_keeps_values_and_warm_up_times():
    torch.manual_seed(0)
    G, _ = models.dcgan(latent_dim=8, ngf=4, ndf=4)
    fast = accel.FastPath(torch.device("cpu"), channels_last=True)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(fast.images(x), x) and fast.images(x).is_contiguous(memory_format=torch.channels_last)
    G.eval()
    z = torch.randn(4, 8)
    ref = G(z)
    assert torch.allclose(fast.place(G)(z), ref, atol=1e-6)
    assert accel.warm_up(lambda: G(z), n=2) > 0
    with pytest.raises(ValueError, match="at least 1"):
        accel.warm_up(lambda: None, n=0)


def test_trainer_takes_the_fast_path(monkeypatch):
    from gan_tutorial.config import TrainConfig
    from gan_tutorial.trainer import Trainer

    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cfg = TrainConfig(model="dcgan", dropout=0.0, batch_size=8, log_every=1, latent_dim=8)
    t = Trainer(cfg, x)
    assert t.fast.precision == "fp32" and t.iteration.scaler_D is None  # the CPU stays in float32
    # a bf16, channels-last path (what an Ampere GPU gets), run on the CPU: the wiring works
    bf16 = accel.FastPath(torch.device("cpu"), torch.bfloat16, channels_last=True)
    monkeypatch.setattr(
        accel, "choose", lambda device, compile=False, cuda_graphs=True, capability=None: bf16
    )
    t = Trainer(cfg, x)
    assert t.fast is bf16
    history = t.run(steps=2, progress=False)
    assert all(torch.isfinite(torch.tensor(history[k])).all() for k in ("loss_D", "loss_G"))
