"""Chapter 7's package parts: conditional G and D, the trainer with labels, sampling a digit,
the obedience, per-digit distance and CAS measures. (The VAE's tests are in test_vae.py.)"""

import pytest
import torch

from gan_tutorial import cli, latent, models
from gan_tutorial.checkpoint import load_generator
from gan_tutorial.config import RECIPES, TrainConfig
from gan_tutorial.metrics import conditional as cond
from gan_tutorial.metrics.judge import fit_classifier
from gan_tutorial.trainer import Trainer


@pytest.fixture
def labelled():
    # 96 fake "images" in [-1, 1] with digits 0..9 in turn: the trainer needs shapes and ranges only
    gen = torch.Generator().manual_seed(0)
    return torch.rand(96, 1, 28, 28, generator=gen) * 2 - 1, torch.arange(96) % 10


def small(model="cgan-projection", **kw):
    return TrainConfig(**{**RECIPES["cgan"].__dict__, "model": model, "batch_size": 16, "log_every": 2, **kw})


def weights(t):
    return [p.detach().clone() for p in list(t.G.parameters()) + list(t.D.parameters())]


@pytest.mark.parametrize("name", ["cgan-concat", "cgan-projection"])
def test_conditional_pair_shapes_and_label_checks(name):
    G, D = models.build(name)
    assert models.is_conditional(G) and models.is_conditional(D)
    z, y = torch.randn(5, 100), torch.tensor([0, 3, 9, 1, 1])
    x = G(z, y)
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x, y).shape == (5, 1)
    for bad, match in [
        (torch.tensor([0, 1, 2, 3, 10]), "classes 0 to 9"),
        (torch.tensor([0, 1, 2, 3, -1]), "classes 0 to 9"),
        (torch.zeros(5), "integer tensor"),
        (torch.tensor([0, 1]), "one entry per image"),
    ]:
        with pytest.raises(ValueError, match=match):
            G(z, bad)
        with pytest.raises(ValueError, match=match):
            D(x, bad)


def test_projection_is_the_unconditional_logit_plus_an_inner_product():
    _, D = models.build("cgan-projection")
    torch.nn.init.normal_(D.embed.weight)
    x, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([2, 7, 7, 0])
    phi = D.features(x)  # (4, 64 * 49)
    assert phi.shape == (4, 64 * 49)
    psi = D.body(x)  # the unconditional D on its own
    expected = psi + (D.embed.weight[y] * phi).sum(1, keepdim=True)
    assert torch.allclose(D(x, y), expected, atol=1e-5)
    # with the projection's rows at 0 the label changes nothing
    torch.nn.init.zeros_(D.embed.weight)
    assert torch.allclose(D(x, y), D(x, torch.tensor([5, 5, 5, 5])))


def test_concat_d_sees_one_hot_planes():
    planes = models.label_planes(torch.tensor([3, 0]))
    assert planes.shape == (2, 10, 28, 28)
    assert planes[0, 3].eq(1).all() and planes[0].sum() == 28 * 28 and planes[1, 0].eq(1).all()
    _, D = models.build("cgan-concat")
    assert D.body.net[0].in_channels == 11


def test_trainer_needs_labels_for_a_conditional_model_and_refuses_them_otherwise(labelled):
    x, y = labelled
    with pytest.raises(ValueError, match="conditional and trains on images with their labels"):
        Trainer(small(), x)
    with pytest.raises(ValueError, match="unconditional and takes no labels"):
        Trainer(TrainConfig(batch_size=16), (x, y))
    with pytest.raises(ValueError, match="classes 0 to 9"):
        Trainer(small(), (x, y + 1))
    with pytest.raises(ValueError, match="one entry per image"):
        Trainer(small(), (x, y[:10]))


@pytest.mark.parametrize("name", ["cgan-concat", "cgan-projection"])
def test_conditional_resume_is_exact(labelled, tmp_path, name):
    straight = Trainer(small(name), labelled)
    straight.run(steps=9, progress=False)
    first = Trainer(small(name), labelled, out_dir=tmp_path)
    first.run(steps=4, progress=False)
    torch.manual_seed(999)
    second = Trainer.resume(tmp_path / "checkpoint.pt", labelled)
    second.run(steps=5, progress=False)
    for a, b in zip(weights(straight), weights(second), strict=True):
        assert torch.equal(a, b)
    # the saved average samples as the trainer does, digit by digit
    G = load_generator(tmp_path / "checkpoint.pt")
    assert models.is_conditional(G)
    sevens = latent.generate(G, 6, labels=7)
    assert sevens.shape == (6, 1, 28, 28)


def test_the_fakes_are_asked_for_the_real_batchs_digits(labelled, monkeypatch):
    t = Trainer(small("cgan-concat"), labelled)
    asked, batches = [], []
    forward = t.G.forward

    def spy(z, y):
        asked.append(y.clone())
        return forward(z, y)

    monkeypatch.setattr(t.G, "forward", spy)
    labelled_batch = t.sampler.labelled

    def spy_batch():
        x, y = labelled_batch()
        batches.append(y.clone())
        return x, y

    monkeypatch.setattr(t.sampler, "labelled", spy_batch)
    t.run(steps=2, progress=False)
    assert len(asked) == len(batches) == 2
    for a, b in zip(asked, batches, strict=True):
        assert torch.equal(a, b)


def test_generate_labels(labelled):
    t = Trainer(small(), labelled)
    assert torch.equal(t.fixed_labels, torch.arange(64) % 10)
    G = t.G
    assert torch.equal(latent.labels_for(G, 4, 3), torch.full((4,), 3))
    drawn = latent.labels_for(G, 5000, None, seed=1)
    assert torch.equal(drawn, latent.labels_for(G, 5000, None, seed=1))  # seeded
    assert torch.bincount(drawn, minlength=10).min() > 400  # uniform: about 500 of each
    with pytest.raises(ValueError, match="digit from 0 to 9"):
        latent.labels_for(G, 4, 10)
    # the same code asked for two digits gives two images
    z = latent.codes(1, 100).repeat(2, 1)
    x = latent.generate(G, z=z, labels=torch.tensor([1, 8]))
    assert not torch.equal(x[0], x[1])
    uncond, _ = models.build("dcgan-bn-g")
    with pytest.raises(ValueError, match="unconditional and cannot be asked for a digit"):
        latent.generate(uncond, 3, labels=2)


@pytest.fixture
def conditional_checkpoint(tmp_path):
    args = ["--recipe", "cgan", "--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress"]
    assert cli.main(["train", *args, "--out", str(tmp_path), "--device", "cpu"]) == 0
    return tmp_path / "checkpoint.pt"


def test_sample_a_digit_from_the_command_line(conditional_checkpoint, tmp_path, capsys):
    out = tmp_path / "sevens.pt"
    assert cli.main(["sample", str(conditional_checkpoint), "-n", "12", "--label", "7", "-o", str(out)]) == 0
    x = torch.load(out, weights_only=True)
    assert x.shape == (12, 1, 28, 28) and -1 <= x.min() and x.max() <= 1
    assert "12 samples of digit 7" in capsys.readouterr().out
    # without --label: uniform random digits; the same seed, the same images
    assert cli.main(["sample", str(conditional_checkpoint), "-n", "5", "-o", str(tmp_path / "a.pt")]) == 0
    for bad in ("10", "-1", "seven"):
        with pytest.raises(SystemExit):
            cli.main(["sample", str(conditional_checkpoint), "-n", "5", "--label", bad, "-o", str(out)])
        assert "--label must be a digit from 0 to 9" in capsys.readouterr().err


def test_label_on_an_unconditional_checkpoint_is_a_clear_error(tmp_path, capsys):
    args = ["--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress", "--device", "cpu"]
    assert cli.main(["train", *args, "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["sample", str(tmp_path / "checkpoint.pt"), "--label", "3", "-o", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert "unconditional generator, which cannot be asked for a digit" in err and "--recipe cgan" in err
    assert not (tmp_path / "x.pt").exists()


class _Fixed(torch.nn.Module):
    """A stand-in judge whose verdict is the first pixel's value read as a digit."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def features(self, x):
        return x.flatten(1)[:, :64]

    def head(self, h):
        digit = ((h[:, 0] + 1) * 4.5).round().long()
        return torch.nn.functional.one_hot(digit, 10).float() * 20


def test_obedience_counts_rows_by_the_digit_asked_for(monkeypatch):
    asked = cond.balanced_labels(10)  # 100 samples, 10 of each
    assert torch.equal(torch.bincount(asked), torch.full((10,), 10))
    seen = asked.clone()
    seen[asked == 3] = 8  # every 3 comes out an 8
    seen[:2] = 5  # a 0 and a 1 come out 5s
    x = torch.full((100, 1, 28, 28), -1.0)
    x[:, 0, 0, 0] = seen.float() / 4.5 - 1
    result = cond.obedience(_Fixed(), x, asked)
    assert result.confusion[3, 8] == 10 and result.confusion[3, 3] == 0
    assert result.per_class[3] == 0 and result.per_class[0] == pytest.approx(0.9)
    assert result.accuracy == pytest.approx((10 - 0.1 - 0.1 - 1) / 10)
    assert result.worst == (3, 0.0)
    with pytest.raises(ValueError, match="one entry per image"):
        cond.obedience(_Fixed(), x, asked[:50])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        cond.obedience(_Fixed(), (x + 1) * 127.5, asked)


def test_classifier_learns_separable_digits_and_refuses_other_ranges():
    # two "digits": a bright left half or a bright right half; a classifier must learn them
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(2, (256,), generator=gen)
    x = torch.full((256, 1, 28, 28), -1.0)
    for i, k in enumerate(y.tolist()):
        x[i, 0, 4:24, (2 if k == 0 else 16) : (12 if k == 0 else 26)] = 1.0
    clf = fit_classifier(x, y, steps=60, batch_size=32, seed=0, shifts=0)
    assert cond.test_accuracy(clf, x, y) == 1.0
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        fit_classifier((x + 1) * 127.5, y, steps=1)  # pixels 0..255: the preprocessing trap
    with pytest.raises(ValueError, match="integer tensor"):
        fit_classifier(x, y.float(), steps=1)


def test_per_class_fd_is_near_its_floor_for_real_digits_and_far_for_wrong_ones():
    from gan_tutorial.metrics.frechet import feature_stats, frechet_distance
    from gan_tutorial.metrics.judge import load_judge, predict, real_images

    judge = load_judge("cpu")
    x, y = real_images("train", 40_000, 42_000)  # real digits the judge never saw, "asked for" their labels
    right = cond.per_class_fd(judge, x, y, split="val")
    assert right.fd.shape == right.floor.shape == right.ratio.shape == (10,)
    assert (right.floor > 0).all() and (right.ratio < 3).all()
    # digit 0 by hand: its samples' features against the reference's zeros
    x_ref, y_ref = real_images("train", 50_000, 60_000)
    ref = predict(judge, x_ref[y_ref == 0])[0]
    mine = predict(judge, x[y == 0])[0]
    assert right.fd[0] == pytest.approx(frechet_distance(*feature_stats(mine), *feature_stats(ref)), rel=1e-4)
    # every image asked to be the next digit: each digit's samples are another digit's images
    wrong = cond.per_class_fd(judge, x, (y + 1) % 10, split="val")
    assert (wrong.ratio > 10 * right.ratio).all()
    with pytest.raises(ValueError, match="at least 2 of each"):
        cond.per_class_fd(judge, x[:15], y[:15])
