"""The fast path: selection by device capability (queries monkeypatched), and the steps it runs."""

import copy
import math

import pytest
import torch

from gan_tutorial import accel, models, updates


@pytest.mark.parametrize(
    "capability,dtype,scaler,channels_last",
    [((9, 0), torch.bfloat16, False, True), ((8, 0), torch.bfloat16, False, True),
     ((7, 5), torch.float16, True, True), ((6, 1), torch.float16, True, False)],
)  # fmt: skip
def test_cuda_choice_by_capability(monkeypatch, capability, dtype, scaler, channels_last):
    monkeypatch.setattr(accel, "cuda_capability", lambda device: capability)
    fast = accel.choose("cuda")
    assert (fast.amp_dtype, fast.grad_scaler, fast.channels_last, fast.adam) == (
        dtype, scaler, channels_last, "fused",
    )  # fmt: skip
    line = fast.describe()
    assert ("GradScaler" in line) == scaler and fast.precision in line and "fused Adam" in line
    # bf16 GPUs replay each iteration as a CUDA graph; the GradScaler path stays eager
    assert fast.cuda_graph == (not scaler) and ("CUDA graphs" in line) == (not scaler)
    assert not accel.choose("cuda", compile=True).cuda_graph  # torch.compile instead
    assert not accel.choose("cuda", cuda_graphs=False).cuda_graph  # eager on request
    assert accel.describe("cuda", cuda_graphs=False).endswith(", eager")


def test_cpu_and_mps_stay_fp32():
    cpu = accel.choose("cpu")
    assert (cpu.amp_dtype, cpu.grad_scaler, cpu.channels_last, cpu.adam) == (None, False, True, "fused")
    assert accel.describe("cpu") == "fast path: cpu, fp32, no loss scaling, channels-last, fused Adam, eager"
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


def _pair(seed=0):
    torch.manual_seed(seed)
    return models.dcgan(latent_dim=8, ngf=4, ndf=4)


def test_fp32_path_equals_training_steps():
    G, D = _pair()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    fast = accel.choose("cpu")
    opts = [fast.adam_optimizer(m.parameters(), 2e-4, (0.5, 0.999)) for m in (G, D)]
    opts2 = [fast.adam_optimizer(m.parameters(), 2e-4, (0.5, 0.999)) for m in (G2, D2)]
    g = torch.Generator().manual_seed(1)
    x_real, z_d, z_g = torch.rand(8, 1, 28, 28, generator=g) * 2 - 1, torch.randn(8, 8), torch.randn(8, 8)
    a = accel.d_step(G, D, opts[1], x_real, z_d, "nonsaturating", fast)
    a.update(accel.g_step(G, D, opts[0], z_g, "nonsaturating", fast))
    b = updates.d_step(G2, D2, opts2[1], x_real, z_d, "nonsaturating")
    b.update(updates.g_step(G2, D2, opts2[0], z_g, "nonsaturating"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for p, q in zip([*G.parameters(), *D.parameters()], [*G2.parameters(), *D2.parameters()], strict=True):
        assert torch.equal(p, q)
    assert all(p.requires_grad for p in D.parameters())  # g_step restored D's flags


def test_bf16_autocast_step_on_cpu_is_close_and_float32():
    G, D = _pair()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    fast = accel.FastPath(torch.device("cpu"), torch.bfloat16, channels_last=True)
    G, D = fast.prepare(G), fast.prepare(D)
    opt = torch.optim.Adam(D.parameters(), lr=2e-4)
    x_real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    a = accel.d_step(G, D, opt, x_real, z, "nonsaturating", fast)
    b = updates.d_step(G2, D2, torch.optim.Adam(D2.parameters(), lr=2e-4), x_real, z, "nonsaturating")
    assert a["loss_D"].dtype == torch.float32  # losses computed in float32 from the logits
    torch.testing.assert_close(a["loss_D"], b["loss_D"], atol=0.02, rtol=0.02)


def test_grad_scaler_path_unscales_gradients(monkeypatch):
    # fp16 autocast is patchy on CPUs, so run the scaler's arithmetic in fp32: the reported
    # gradient norm must be the unscaled one, and the weights must match a plain step
    G, D = _pair()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    fast = accel.FastPath(torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x_real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    opt, opt2 = torch.optim.Adam(D.parameters(), lr=2e-4), torch.optim.Adam(D2.parameters(), lr=2e-4)
    a = accel.d_step(G, D, opt, x_real, z, "nonsaturating", fast, scaler)
    b = updates.d_step(G2, D2, opt2, x_real, z, "nonsaturating")
    torch.testing.assert_close(a["grad_D"], b["grad_D"])
    for p, q in zip(D.parameters(), D2.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_step_the_scaler_skips_reports_a_norm_of_0():
    G, D = _pair()
    before = [p.detach().clone() for p in D.parameters()]
    fast = accel.FastPath(torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)  # loss * S overflows float32's gradients
    opt = torch.optim.Adam(D.parameters(), lr=2e-4)
    x_real, z = torch.rand(8, 1, 28, 28) * 2 - 1, torch.randn(8, 8)
    stats = accel.d_step(G, D, opt, x_real, z, "nonsaturating", fast, scaler)
    assert float(stats["grad_D"]) == 0.0 and math.isfinite(float(stats["loss_D"]))
    assert all(torch.equal(p, q) for p, q in zip(D.parameters(), before, strict=True))  # skipped
    assert scaler.get_scale() == 2.0**126  # and the scale halved


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
    G, _ = _pair()
    fast = accel.FastPath(torch.device("cpu"), channels_last=True)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(fast.images(x), x) and fast.images(x).is_contiguous(memory_format=torch.channels_last)
    G.eval()
    z = torch.randn(4, 8)
    ref = G(z)
    assert torch.allclose(fast.prepare(G)(z), ref, atol=1e-6)
    assert accel.warm_up(lambda: G(z), n=2) > 0
    with pytest.raises(ValueError, match="at least 1"):
        accel.warm_up(lambda: None, n=0)


def test_trainer_takes_the_fast_path(monkeypatch):
    from gan_tutorial.trainer import TrainConfig, Trainer

    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cfg = TrainConfig(model="dcgan", dropout=0.0, batch_size=8, log_every=1, latent_dim=8)
    t = Trainer(cfg, x)
    assert t.fast.precision == "fp32" and t.scaler_D is None  # the CPU stays in float32
    # a bf16, channels-last path (what an Ampere GPU gets), run on the CPU: the wiring works
    bf16 = accel.FastPath(torch.device("cpu"), torch.bfloat16, channels_last=True)
    monkeypatch.setattr(accel, "choose", lambda device, compile=False, cuda_graphs=True: bf16)
    t = Trainer(cfg, x)
    assert t.fast is bf16
    history = t.run(steps=2, progress=False)
    assert all(torch.isfinite(torch.tensor(history[k])).all() for k in ("loss_D", "loss_G"))
