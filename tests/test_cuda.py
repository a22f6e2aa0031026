"""The GPU fast path on a real GPU: CUDA graphs against eager steps, the guard, resume, fp16.

Skipped where no CUDA device is present (the CPU tests cover the same code's eager path).
"""

import pytest
import torch

from gan_tutorial import accel
from gan_tutorial.config import TrainConfig
from gan_tutorial.trainer import Trainer
from gan_tutorial.updates import DivergenceError

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def x_gpu():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(512, 1, 28, 28, generator=g) * 2 - 1).cuda()


def recipe(**kw):
    # the chapter 4 recipe's kind of iteration, small: no batch norm in D, lazy R1, EMA of G
    base = dict(model="dcgan-bn-g", dropout=0.0, batch_size=32, lr_G=2e-3, lr_D=2e-3, ema=0.99, r1=0.5)
    return TrainConfig(**{**base, "r1_every": 2, "log_every": 4, **kw})


def weights(t):
    return torch.cat([p.detach().float().flatten() for p in [*t.G.parameters(), *t.D.parameters()]])


def test_graphs_are_chosen_on_bf16_gpus():
    fast = accel.choose("cuda")
    if torch.cuda.get_device_capability()[0] >= 8:
        assert fast.cuda_graph and "CUDA graphs" in fast.describe()
    assert not accel.choose("cuda", compile=True).cuda_graph


@pytest.mark.parametrize("k", [1, 2])
def test_graph_replays_follow_eager_steps(x_gpu, k):
    if not accel.choose("cuda").cuda_graph:
        pytest.skip("this GPU takes the eager path")
    steps = 12
    graphed = Trainer(recipe(k=k), x_gpu, "cuda")
    ema_before = torch.cat([p.flatten() for p in graphed.ema.module.parameters()])
    graphed.run(steps=steps, progress=False)
    assert sorted(graphed._graphs.graphs) == [0.0, 1.0]  # both kinds of iteration were captured
    eager = Trainer(recipe(k=k), x_gpu, "cuda", cuda_graphs=False)
    assert eager._graphs is None
    eager.run(steps=steps, progress=False)
    a, b = weights(graphed), weights(eager)
    assert torch.isfinite(a).all()
    # the same kernels on the same inputs: equal up to the order of floating-point sums
    assert (a - b).norm() / b.norm() < 1e-3
    assert graphed.history.step == eager.history.step == [4, 8, 12]
    for key in ("loss_D", "loss_G", "d_real"):
        torch.testing.assert_close(graphed.history[key], eager.history[key], rtol=2e-2, atol=2e-2)
    # the moving average moved with the graphed steps too, as far as with the eager ones
    ema_g, ema_e = (torch.cat([p.flatten() for p in t.ema.module.parameters()]) for t in (graphed, eager))
    assert not torch.equal(ema_g, ema_before)
    assert (ema_g - ema_e).norm() / ema_e.norm() < 1e-3


def test_guard_names_the_first_bad_step_under_graphs(x_gpu):
    t = Trainer(recipe(), x_gpu, "cuda")
    t.run(steps=8, progress=False)  # both graphs captured by now
    with torch.no_grad():
        next(t.D.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError, match="at step 9"):
        t.run(steps=8, progress=False)


def test_resume_captures_again(x_gpu, tmp_path):
    t = Trainer(recipe(), x_gpu, "cuda", tmp_path)
    t.run(steps=6, progress=False)
    r = Trainer.resume(tmp_path / "checkpoint.pt", x_gpu, "cuda")
    r.run(steps=6, progress=False)
    assert r.step == 12 and torch.isfinite(weights(r)).all()
    t.run(steps=6, progress=False)
    # different kernels' rounding aside, the resumed run continues the same run
    assert (weights(r) - weights(t)).norm() / weights(t).norm() < 5e-2


def test_a_cpu_checkpoint_resumes_with_graphs(x_gpu, tmp_path):
    cpu = Trainer(recipe(), x_gpu.cpu(), "cpu", tmp_path)
    cpu.run(steps=3, progress=False)
    r = Trainer.resume(tmp_path / "checkpoint.pt", x_gpu, "cuda")
    assert all(g["capturable"] for g in r.opt_D.param_groups) == r.fast.cuda_graph
    r.run(steps=8, progress=False)  # warm-up, capture and replays on the CPU run's optimiser state
    assert r.step == 11 and torch.isfinite(weights(r)).all()


def test_fp16_path_with_grad_scaler_trains(x_gpu, monkeypatch):
    monkeypatch.setattr(accel, "cuda_capability", lambda device: (7, 5))  # a T4's choice, on this GPU
    t = Trainer(recipe(), x_gpu, "cuda")
    assert t.fast.grad_scaler and not t.fast.cuda_graph and t.iteration.scaler_D is not None
    t.run(steps=8, progress=False)
    assert torch.isfinite(weights(t)).all()
    assert all(torch.isfinite(torch.tensor(t.history["loss_D"] + t.history["loss_G"])))
