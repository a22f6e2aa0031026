"""The trainer: exact resume, divergence guard, history, budgets."""

import dataclasses
import math
import pickle

import pytest
import torch

from gan_tutorial import models
from gan_tutorial.average import recalibrate_batch_norm
from gan_tutorial.checkpoint import CheckpointError, load_checkpoint, load_generator, save_checkpoint
from gan_tutorial.config import RECIPES, TrainConfig
from gan_tutorial.data import BatchSampler
from gan_tutorial.trainer import Trainer
from gan_tutorial.updates import MONITORS, DivergenceError


@pytest.fixture
def x_small():
    # 96 fake "images" in [-1, 1]: the trainer only needs the shape and range
    return torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def small_config(**kw):
    return TrainConfig(**{"batch_size": 16, "log_every": 2, **kw})


def weights(t):
    return [p.detach().clone() for p in list(t.G.parameters()) + list(t.D.parameters())]


def test_models_shapes():
    G, D = models.mlp_gan()
    z = torch.randn(5, 100)
    x_fake = G(z)
    assert x_fake.shape == (5, 1, 28, 28) and x_fake.abs().max() <= 1
    assert D(x_fake).shape == (5, 1)
    with pytest.raises(ValueError, match="2-D codes"):
        G(torch.randn(5, 100, 1, 1))  # a common tutorial bug, caught with a clear message
    assert not isinstance(list(D.net)[-1], torch.nn.Sigmoid)  # logits out


def test_history_and_monitors(x_small):
    t = Trainer(small_config(), x_small)
    history = t.run(steps=5, progress=False)
    assert history.step == [2, 4, 5] and t.step == 5
    assert set(MONITORS) <= set(history.values)
    assert all(0 <= v <= 1 for k in ("d_real", "d_fake", "d_fake_g") for v in history[k])


def test_resume_is_exact(x_small, tmp_path):
    # 6 steps of batch 16 over 96 images: crosses an epoch boundary (6 batches per epoch)
    straight = Trainer(small_config(), x_small)
    straight.run(steps=9, progress=False)

    first = Trainer(small_config(), x_small, out_dir=tmp_path)
    first.run(steps=4, progress=False)  # writes checkpoint.pt at the end of the run
    torch.manual_seed(999)  # whatever happens between runs must not matter
    second = Trainer.resume(tmp_path / "checkpoint.pt", x_small)
    assert second.step == 4
    second.run(steps=5, progress=False)
    for a, b in zip(weights(straight), weights(second), strict=True):
        assert torch.equal(a, b)
    assert second.history.step == straight.history.step
    assert second.history["loss_D"] == pytest.approx(straight.history["loss_D"])


def test_periodic_checkpoints_and_seconds_budget(x_small, tmp_path):
    t = Trainer(small_config(checkpoint_every=2), x_small, out_dir=tmp_path)
    t.run(seconds=0.5, progress=False)
    assert t.step >= 1
    assert load_checkpoint(tmp_path / "checkpoint.pt", model="mlp")["step"] == t.step
    G = load_generator(tmp_path / "checkpoint.pt")
    assert torch.equal(G(t.fixed_z), t.generate())


def test_divergence_guard_names_step_and_keeps_checkpoint(x_small, tmp_path):
    t = Trainer(small_config(checkpoint_every=2), x_small, out_dir=tmp_path)
    t.run(steps=4, progress=False)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    with torch.no_grad():  # poison D: its logits, hence both losses, become NaN
        list(t.D.parameters())[-1].fill_(float("nan"))
    with pytest.raises(DivergenceError, match=r"at step 5.*checkpoint\.pt"):
        t.run(steps=10, progress=False)
    after = load_checkpoint(tmp_path / "checkpoint.pt")
    assert after["step"] == 4
    for key, value in saved["G"].items():
        assert torch.equal(value, after["G"][key])


def test_config_and_sampler_errors(x_small):
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="transformer")
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="wasserstein-div")
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(x_small, 1000, 0)
    with pytest.raises(ValueError, match="budget"):
        Trainer(small_config(), x_small).run()
    with pytest.raises(ValueError, match="r1"):
        TrainConfig(r1=-0.5)
    with pytest.raises(ValueError, match="dcgan-bn-g"):  # R1 needs a D without batch norm
        Trainer(small_config(model="dcgan", r1=1.0), x_small)
    with pytest.raises(ValueError, match="positive"):
        Trainer(small_config(), x_small).run(steps=0)


@pytest.mark.parametrize("field", ["checkpoint_every", "checkpoint_seconds"])
def test_negative_checkpoint_intervals_are_refused(field):
    with pytest.raises(ValueError, match="checkpoint_every and checkpoint_seconds must be >= 0"):
        TrainConfig(**{field: -5})
    assert getattr(TrainConfig(**{field: 0}), field) == 0  # 0: off


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.zeros(8, 784), r"shape \(N, 1, 28, 28\), got \(8, 784\)"),
        (torch.zeros(0, 1, 28, 28), "shape"),
        (torch.zeros(8, 1, 28, 28, dtype=torch.uint8), "dtype torch.uint8"),
        (torch.rand(8, 1, 28, 28) * 255, r"\[-1, 1\].*load_mnist"),  # raw pixels
        (torch.full((8, 1, 28, 28), float("nan")), r"\[-1, 1\]"),
    ],
)
def test_training_images_are_checked(images, match):
    with pytest.raises(ValueError, match=match):
        Trainer(small_config(), images)


def test_one_checkpoint_per_save_and_none_from_warm_up(x_small, tmp_path, monkeypatch):
    t = Trainer(small_config(checkpoint_every=2), x_small, out_dir=tmp_path)
    saves = []
    monkeypatch.setattr(t, "save", lambda: saves.append(t.step))
    t.warm_up(2)
    assert saves == []  # warm-up steps write nothing; the run after them does
    t.run(steps=4, progress=False)
    assert saves == [4, 6]  # the last step is a multiple of checkpoint_every: written once


def test_checkpoint_from_another_version_is_a_clear_error(x_small, tmp_path):
    Trainer(small_config(), x_small, out_dir=tmp_path).run(steps=1, progress=False)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    state["config"]["momentum_of_the_future"] = 1.0
    save_checkpoint(state, tmp_path / "other.pt")
    for load in (lambda p: Trainer.resume(p, x_small), load_generator):
        with pytest.raises(CheckpointError, match="another version"):
            load(tmp_path / "other.pt")


def test_sampler_visits_every_image_once_per_epoch(x_small):
    s = BatchSampler(torch.arange(96.0).view(96, 1), 16, seed=0)
    seen = torch.cat([s() for _ in range(6)]).flatten()
    assert sorted(seen.tolist()) == list(range(96))


def test_monitors_after_resuming_mid_window_are_means(x_small, tmp_path):
    # With learning rates too small to move anything, every logged loss_D is the same
    # number; resuming between two logs must not change what the next log reports.
    config = small_config(lr_G=1e-12, lr_D=1e-12, dropout=0.0)
    first = Trainer(config, x_small, out_dir=tmp_path)
    first.run(steps=3, progress=False)  # logs at 2 and 3; the window of step 4 is half done
    second = Trainer.resume(tmp_path / "checkpoint.pt", x_small)
    second.run(steps=3, progress=False)
    assert second.history.step == [2, 3, 4, 6]
    assert second.history["loss_D"] == pytest.approx([first.history["loss_D"][0]] * 4, rel=0.05)


def test_moving_average_of_g_is_kept_saved_resumed_and_sampled(x_small, tmp_path):
    with pytest.raises(ValueError, match="ema"):
        small_config(ema=1.0)
    straight = Trainer(small_config(ema=0.9), x_small)
    straight.run(steps=7, progress=False)
    first = Trainer(small_config(ema=0.9), x_small, out_dir=tmp_path)
    first.run(steps=3, progress=False)
    second = Trainer.resume(tmp_path / "checkpoint.pt", x_small)
    second.run(steps=4, progress=False)
    for a, b in zip(straight.ema.module.parameters(), second.ema.module.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(second.generate(), second.generate(average=False))  # the average is not G
    second.save()
    assert torch.equal(load_generator(tmp_path / "checkpoint.pt")(second.fixed_z), second.generate())
    live = load_generator(tmp_path / "checkpoint.pt", average=False)
    assert torch.equal(live(second.fixed_z), second.generate(average=False))


def test_mlp_with_batch_norm_in_g():
    G, D = models.MODELS["mlp-bn"](latent_dim=100, dropout=0.3)
    norms = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [256, 512, 1024]
    assert all(m.bias is None for m in G.net if isinstance(m, torch.nn.Linear) and m.out_features != 784)
    x = G(torch.randn(8, 100))
    assert x.shape == (8, 1, 28, 28) and x.abs().max() <= 1 and D(x).shape == (8, 1)
    plain, _ = models.mlp_gan()
    assert sum(p.numel() for p in G.parameters()) == sum(p.numel() for p in plain.parameters()) + 1792


def test_average_of_a_batch_norm_generator_is_sampled_with_recalibrated_statistics(x_small, tmp_path):
    cfg = TrainConfig(model="dcgan", dropout=0.0, batch_size=8, log_every=1, latent_dim=8, ema=0.9)
    t = Trainer(cfg, x_small, out_dir=tmp_path)
    t.run(steps=3, progress=False)
    G = recalibrate_batch_norm(t.ema.module)
    assert torch.equal(t.generate(), G(t.fixed_z))
    assert t.average_generator() is t.average_generator()  # measured once per step
    loaded = load_generator(tmp_path / "checkpoint.pt")  # contiguous layout: equal to float rounding
    torch.testing.assert_close(loaded(t.fixed_z), t.generate())
    with pytest.raises(ValueError, match="keeps no average"):
        Trainer(small_config(), x_small).average_generator()


def test_gradient_scalers_are_saved_and_restored(x_small, tmp_path):
    t = Trainer(small_config(), x_small, out_dir=tmp_path)
    t.iteration.scaler_G = torch.amp.GradScaler("cpu", init_scale=1024.0)  # what the fp16 path would hold
    t.iteration.scaler_D = torch.amp.GradScaler("cpu", init_scale=2048.0)
    t.save()
    state = load_checkpoint(tmp_path / "checkpoint.pt", model="mlp")
    assert state["scaler_G"]["scale"] == 1024.0 and state["scaler_D"]["scale"] == 2048.0
    u = Trainer(small_config(), x_small)
    u.iteration.scaler_G, u.iteration.scaler_D = torch.amp.GradScaler("cpu"), torch.amp.GradScaler("cpu")
    u.load_state_dict(state)
    assert (u.iteration.scaler_G.get_scale(), u.iteration.scaler_D.get_scale()) == (1024.0, 2048.0)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_trains_on_the_cpu(name, x_small):
    # each recipe builds (its model exists, R1 only where D has no batch norm) and takes steps
    config = dataclasses.replace(RECIPES[name], batch_size=16, log_every=2)
    conditional = models.is_conditional(models.build(config.model)[0])  # cgan: the images with labels
    t = Trainer(config, (x_small, torch.arange(len(x_small)) % 10) if conditional else x_small)
    t.run(steps=4, progress=False)
    assert t.history.step == [2, 4] and all(math.isfinite(v) for v in t.history["loss_D"])


def test_resume_keeps_this_devices_optimiser_flags(x_small):
    # a checkpoint written on a GPU carries capturable=True (CUDA graphs); on the CPU it must not
    t = Trainer(small_config(), x_small)
    t.run(steps=2, progress=False)
    state = t.state_dict()
    for key in ("opt_G", "opt_D"):
        state[key]["param_groups"][0]["capturable"] = True
    r = Trainer(small_config(), x_small)
    r.load_state_dict(state)
    assert not any(g["capturable"] for opt in (r.opt_G, r.opt_D) for g in opt.param_groups)
    assert r.opt_G.state_dict()["state"].keys() == t.opt_G.state_dict()["state"].keys()
    r.run(steps=2, progress=False)


def test_resume_from_another_devices_generator(x_small):
    # a GPU's code generator state is 16 bytes, the CPU's 5,056: new codes, same everything else
    t = Trainer(small_config(), x_small)
    t.run(steps=2, progress=False)
    state = t.state_dict()
    state["rng"]["z"] = torch.zeros(16, dtype=torch.uint8)
    r = Trainer(small_config(), x_small)
    r.load_state_dict(state)
    assert r.step == 2 and all(torch.equal(a, b) for a, b in zip(weights(r), weights(t), strict=True))
    r.run(steps=2, progress=False)
    assert r.step == 4


# -- surviving a kill --------------------------------------------------------------------


def test_sigint_finishes_the_step_writes_a_checkpoint_and_resumes_exactly(x_small, tmp_path):
    import os
    import signal

    from gan_tutorial.interrupt import TrainingInterrupted

    straight = Trainer(small_config(), x_small)
    straight.run(steps=9, progress=False)

    def ctrl_c_at_step_4(t):
        if t.step == 4:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C (or Jupyter's interrupt) sends

    first = Trainer(small_config(), x_small, out_dir=tmp_path)
    with pytest.raises(TrainingInterrupted, match=r"SIGINT at step 4: wrote .*checkpoint\.pt") as stop:
        first.run(steps=100, callback=ctrl_c_at_step_4, progress=False)
    assert stop.value.step == 4 and load_checkpoint(stop.value.checkpoint)["step"] == 4
    assert isinstance(stop.value, KeyboardInterrupt)  # code that catches Ctrl-C still does
    copy = pickle.loads(pickle.dumps(stop.value))  # it crosses process boundaries intact
    assert (copy.signal, copy.step, copy.checkpoint, str(copy)) == (
        stop.value.signal, stop.value.step, stop.value.checkpoint, str(stop.value)
    )  # fmt: skip
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    second = Trainer.resume(stop.value.checkpoint, x_small)
    second.run(steps=5, progress=False)
    for a, b in zip(weights(straight), weights(second), strict=True):
        assert torch.equal(a, b)


class _Clock:
    """A clock that moves ``tick`` seconds at every reading (and ``sleep`` moves it on): the
    trainer's timing logic tested without depending on how loaded the machine is."""

    def __init__(self, tick):
        self.now, self.tick = 1000.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_checkpoints_are_written_by_wall_time(x_small, tmp_path, monkeypatch):
    from gan_tutorial import trainer as trainer_module

    monkeypatch.setattr(trainer_module.time, "monotonic", _Clock(0.02))  # 0.02 s a reading
    t = Trainer(small_config(checkpoint_seconds=0.05), x_small, out_dir=tmp_path)
    saved = []
    real_save = t.save
    monkeypatch.setattr(t, "save", lambda: saved.append(t.step) or real_save())
    t.run(steps=12, progress=False)
    assert len(saved) >= 3 and saved[-1] == t.step  # several by time, and the last one
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == t.step
    assert TrainConfig().checkpoint_seconds == 60.0  # the default: a killed run loses at most a minute


def test_the_trainer_leaves_the_global_random_generator_alone(x_small):
    state = torch.get_rng_state()
    t = Trainer(small_config(), x_small)  # dropout 0.3 in D: the run draws random masks
    t.run(steps=3, progress=False)
    t.generate(8)
    assert torch.equal(state, torch.get_rng_state())
    torch.randn(100)  # whatever happens outside does not change the run
    u = Trainer(small_config(), x_small)
    u.run(steps=3, progress=False)
    for a, b in zip(weights(t), weights(u), strict=True):
        assert torch.equal(a, b)


def test_callback_time_is_not_charged_to_the_seconds_budget(x_small, monkeypatch):
    from gan_tutorial import trainer as trainer_module

    clock = _Clock(0.001)  # each reading of the clock: 1 ms of training
    monkeypatch.setattr(trainer_module.time, "perf_counter", clock)
    t = Trainer(small_config(log_every=1), x_small)
    start = clock()
    t.run(seconds=0.03, callback=lambda _: clock.sleep(1.0), progress=False)
    wall = clock() - start
    assert t.step > 1 and wall >= 1.0 * t.step  # every logged step slept a second ...
    assert wall - 1.0 * t.step < 0.03 + 0.02  # ... and the budget counted only the training


def test_resume_refuses_conflicting_settings_and_takes_new_policy(x_small, tmp_path):
    Trainer(small_config(), x_small, out_dir=tmp_path).run(steps=2, progress=False)
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(ValueError, match=r"lr_G=0\.5 \(the checkpoint has 0\.0002\)"):
        Trainer.resume(path, x_small, changes={"lr_G": 0.5})
    same = Trainer.resume(path, x_small, changes={"lr_G": 2e-4, "log_every": 7, "checkpoint_seconds": 5.0})
    assert same.config.log_every == 7 and same.config.checkpoint_seconds == 5.0


def test_a_stale_average_is_not_sampled_after_loading(x_small):
    cfg = TrainConfig(model="dcgan", dropout=0.0, batch_size=8, log_every=1, latent_dim=8, ema=0.9)
    t = Trainer(cfg, x_small)
    t.run(steps=2, progress=False)
    state = t.state_dict()
    t.run(steps=1, progress=False)
    t.generate()  # caches the recalibrated average of step 3
    t.load_state_dict(state)  # back to step 2 ...
    t.step = 3  # ... even where the step number matches the cache's
    assert torch.equal(
        t.generate(), latent_module().generate(recalibrate_batch_norm(t.ema.module), z=t.fixed_z)
    )


def latent_module():
    from gan_tutorial import latent

    return latent


def test_the_fast_path_reports_the_adam_that_runs(x_small):
    t = Trainer(small_config(), x_small)
    fused = t.opt_G.defaults.get("fused") is True
    assert ("fused Adam" in t.fast.describe()) == fused
