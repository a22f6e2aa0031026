"""Little data in the trainer and on the command line (chapter 8): a class-balanced subset chosen by
the seed and kept on resume, DiffAugment and ADA in D's and G's updates."""

import pytest
import torch

from gan_tutorial import cli
from gan_tutorial.checkpoint import CheckpointError, load_checkpoint
from gan_tutorial.config import TrainConfig
from gan_tutorial.trainer import Trainer


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 28, 28, generator=gen) * 2 - 1
    return x, torch.arange(200) % 10


def small(**kw):
    return TrainConfig(**{"batch_size": 16, "log_every": 2, "dropout": 0.0, **kw})


def weights(t):
    return [p.detach().clone() for p in [*t.G.parameters(), *t.D.parameters()]]


def test_subset_is_balanced_seeded_and_checked_on_resume(data, tmp_path):
    x, y = data
    t = Trainer(small(subset=30, seed=3), (x, y), out_dir=tmp_path)
    assert len(t.sampler.x) == 30 and torch.bincount(y[t.subset], minlength=10).tolist() == [3] * 10
    assert torch.equal(t.sampler.x, x[t.subset])
    assert not torch.equal(t.subset, Trainer(small(subset=30, seed=4), (x, y)).subset)  # the seed chooses
    t.run(steps=2, progress=False)
    assert torch.equal(load_checkpoint(tmp_path / "checkpoint.pt")["subset"], t.subset)
    assert torch.equal(Trainer.resume(tmp_path / "checkpoint.pt", (x, y)).sampler.x, t.sampler.x)
    shuffled = torch.roll(y, 1)  # the same images under other labels choose another subset
    with pytest.raises(CheckpointError, match="another subset"):
        Trainer.resume(tmp_path / "checkpoint.pt", (x, shuffled))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x, y: Trainer(small(subset=30), x), "give the labels too"),
        (lambda x, y: Trainer(small(subset=300), (x, y)), "between 10 .* and the 200 images"),
        (lambda x, y: small(subset=5), "at least 10"),
        (lambda x, y: small(augment="flip"), "unknown augment 'flip'"),
        (lambda x, y: small(augment="ada", ada_target=1.0), "ada_target must be in"),
        (lambda x, y: Trainer(small(), (x, y)), "unconditional and takes no labels"),
    ],
)
def test_little_data_refusals(data, make, message):
    with pytest.raises(ValueError, match=message):
        make(*data)


def test_augmentation_reaches_every_image_d_sees(data):
    """DiffAugment: real and fake images in D's update and the fakes in G's, each a fresh draw,
    and G's gradient flows back through the transforms."""
    x, _ = data
    t = Trainer(small(augment="diffaugment"), x)
    seen = []
    augment = t.iteration.augment
    original = augment.apply

    def spy(images, params):
        seen.append((images.requires_grad, params.brightness.clone()))
        return original(images, params)

    augment.apply = spy
    t.run(steps=1, progress=False)
    assert len(seen) == 3  # D: real, fake; G: fake
    assert seen[2][0]  # G's fakes carry their graph through the augmentation
    assert not torch.equal(seen[1][1], seen[2][1])  # fresh draws each time
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in t.G.parameters())
    assert "r_t" in t.history.values and "p" not in t.history.values


def test_leak_when_fakes_are_not_augmented(data):
    x, _ = data
    t = Trainer(small(augment="diffaugment"), x)
    t.iteration.augment_fake = None  # the real images alone: what chapter 8 shows goes wrong
    calls = []
    t.iteration.augment.apply = lambda images, params: calls.append(1) or images
    t.run(steps=1, progress=False)
    assert len(calls) == 1


def test_ada_moves_p_logs_it_and_resumes_exactly(data, tmp_path):
    x, _ = data
    cfg = small(augment="ada", ada_images=200)  # 4 steps of 16 images move p by 0.32
    straight = Trainer(cfg, x)
    straight.run(steps=10, progress=False)
    assert straight.history["p"] and straight.history["r_t"]
    assert straight.iteration.ada.p in (0.0, pytest.approx(0.32), pytest.approx(0.64))
    assert straight.iteration.ada.r_t is not None
    first = Trainer(cfg, x, out_dir=tmp_path)
    first.run(steps=6, progress=False)  # between two updates of p (every 4 steps)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["ada"]
    assert saved["steps"] == 2 and saved["count"] == 32
    second = Trainer.resume(tmp_path / "checkpoint.pt", x)
    second.run(steps=4, progress=False)
    assert second.iteration.ada.p == straight.iteration.ada.p
    for a, b in zip(weights(straight), weights(second), strict=True):
        assert torch.equal(a, b)


def test_command_line_subset_and_augment(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--data", "fake", "--recipe", "dcgan", "--subset", "40", "--augment", "diffaugment"]
    assert cli.main(["train", *args, "--steps", "2", "--no-judge", "--out", str(out), "--device", "cpu"]) == 0
    saved = load_checkpoint(out / "checkpoint.pt")
    assert saved["config"]["subset"] == 40 and saved["config"]["augment"] == "diffaugment"
    assert len(saved["subset"]) == 40
    more = ["train", "--data", "fake", "--resume", str(out / "checkpoint.pt"), "--steps", "1", "--no-judge"]
    assert cli.main(more) == 0
    with pytest.raises(SystemExit):
        cli.main([*more, "--augment", "none"])
    assert "augment='none' (the checkpoint has 'diffaugment')" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", "fake", "--subset", "5", "--steps", "1", "--out", str(tmp_path / "x")])
    assert "at least 10" in capsys.readouterr().err
