"""Chapter 5's metrics: the Inception Score and the Frechet distance against torchmetrics (the judge
as the feature module), closed forms, every metric beside its floor, and the evaluate command."""

import json
import re

import pytest
import torch

from gan_tutorial import cli
from gan_tutorial.data import MNISTNotFoundError, load_mnist
from gan_tutorial.metrics import judge as J
from gan_tutorial.metrics.frechet import frechet_distance_of_features
from gan_tutorial.metrics.inception_score import inception_score

torchmetrics = pytest.importorskip("torchmetrics")


def test_inception_score_closed_forms():
    confident = torch.eye(10).repeat(50, 1)  # every class equally often, each sample certain
    assert inception_score(confident) == (pytest.approx(10.0), 0.0)
    one_class = torch.eye(10)[[3] * 500]
    assert inception_score(one_class)[0] == pytest.approx(1.0)
    unsure = torch.full((500, 10), 0.1)  # every sample uniform over the classes
    assert inception_score(unsure)[0] == pytest.approx(1.0)
    five = torch.eye(10)[torch.arange(500) % 5]  # five classes, certain: exp(log 5)
    assert inception_score(five)[0] == pytest.approx(5.0)
    mean, std = inception_score(torch.cat([confident, one_class]), splits=2)
    assert mean == pytest.approx(5.5) and std == pytest.approx(torch.tensor([10.0, 1.0]).std().item())
    with pytest.raises(ValueError, match="probabilities"):
        inception_score(torch.randn(10, 10))


def test_inception_score_entropy_form_and_uneven_splits():
    probs = torch.softmax(3 * torch.randn(600, 10, generator=torch.Generator().manual_seed(1)), 1).double()

    def entropy(p):
        return -torch.xlogy(p, p).sum(-1)

    # exp(H(y) - E_x H(y|x)), the docstring's second form, equals exp(E_x KL(p(y|x) || p(y)))
    assert inception_score(probs)[0] == pytest.approx(
        float(torch.exp(entropy(probs.mean(0)) - entropy(probs).mean()))
    )
    six = torch.eye(3)[[0, 1, 2, 0, 1, 2]].double()  # 6 samples in 4 groups of 2, 2, 1, 1: all scored
    mean, _ = inception_score(six, splits=4)
    assert mean == pytest.approx((2 + 2 + 1 + 1) / 4)


@pytest.fixture(scope="module")
def judge_and_images():
    try:
        x = load_mnist(train=False, download=False)
    except MNISTNotFoundError as err:
        pytest.skip(f"MNIST is not in data/ ({str(err).splitlines()[0]})")
    return J.load_judge(), x


def test_inception_score_equals_torchmetrics_with_the_judge(judge_and_images):
    from torchmetrics.image.inception import InceptionScore

    judge, x = judge_and_images
    x = x[:2000]
    _, probs = J.predict(judge, x)
    # normalize=False: with it, torchmetrics would turn floats into bytes (x * 255), even for a custom module
    metric = InceptionScore(feature=J.JudgeLogits(judge), splits=1, normalize=False)
    metric.update(x)
    theirs, _ = metric.compute()
    assert inception_score(probs)[0] == pytest.approx(float(theirs), rel=1e-4)
    # with 10 splits torchmetrics shuffles with the global generator first: do the same
    metric10 = InceptionScore(feature=J.JudgeLogits(judge), splits=10, normalize=False)
    metric10.update(x)
    torch.manual_seed(0)
    mean10, std10 = metric10.compute()
    torch.manual_seed(0)
    perm = torch.randperm(len(x))
    ours = inception_score(probs[perm], splits=10)
    assert ours == (pytest.approx(float(mean10), rel=1e-4), pytest.approx(float(std10), rel=1e-3))


def test_frechet_distance_equals_torchmetrics_with_the_judge(judge_and_images):
    from torchmetrics.image.fid import FrechetInceptionDistance

    judge, x = judge_and_images
    real, fake = x[:3000], (x[3000:6000] * 0.8).clamp(-1, 1)  # fainter digits
    metric = FrechetInceptionDistance(feature=J.JudgeFeatures(judge), normalize=False)
    metric.update(real, real=True)  # a custom module gets the images as they are: no uint8 cast
    metric.update(fake, real=False)
    ours = frechet_distance_of_features(J.predict(judge, real)[0], J.predict(judge, fake)[0])
    assert ours == pytest.approx(float(metric.compute()), rel=1e-4)


def test_every_metric_beside_its_floor(judge_and_images):
    from gan_tutorial.metrics.evaluation import METRICS, Evaluator

    judge, x = judge_and_images
    ev = Evaluator(judge, "test", draws=2)
    pool = J.floor_pool_images("test")  # real images the judge never saw, not in the reference
    real = ev(pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(7))[:1000]])
    noise = ev(torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    for key in METRICS:
        mean, std = real.floors[key]
        assert abs(real.values[key] - mean) < 5 * std + 0.02, key  # real data scores at its floor
    assert noise.values["fd"] > 100 * real.floors["fd"][0] and noise.values["recall"] < 0.05
    assert noise.values["coverage"] < 0.05 and noise.values["inception_score"] < 2
    d = noise.to_dict()
    assert set(METRICS) <= set(d) and set(d["floors"]) == set(METRICS) and d["n"] == 1000


def test_the_real_side_is_cached_between_processes(tmp_path, judge_and_images, monkeypatch):
    from gan_tutorial.metrics import evaluation as E

    judge, x = judge_and_images
    fake = (x[-800:] * 0.7).clamp(-1, 1)
    first = E.Evaluator(judge, "test", draws=2, cache_dir=tmp_path)
    scored = first(fake)  # computes the floor at N = 800 and stores it beside the reference
    assert first.cache_file.is_file() and first.cache_file.parent == tmp_path

    def recomputed(*args, **kwargs):
        raise AssertionError("the real side was recomputed")

    with monkeypatch.context() as m:  # a second evaluator reads everything from the file
        m.setattr(E, "reference_features", recomputed)
        m.setattr(E, "floor_pool", recomputed)
        again = E.Evaluator(judge, "test", draws=2, cache_dir=tmp_path)
        assert again(fake) == scored  # the same numbers, to the last bit
    other = E.Evaluator(judge, "test", draws=3, cache_dir=tmp_path)  # other settings, another file
    assert other.cache_file != first.cache_file

    first.cache_file.write_bytes(b"half a file")  # damaged: ignored with a warning, then rewritten
    with pytest.warns(UserWarning, match="ignoring .*damaged"):
        repaired = E.Evaluator(judge, "test", draws=2, cache_dir=tmp_path)
    assert repaired(fake) == scored
    assert torch.load(first.cache_file, weights_only=True)["features"].shape == (10_000, 64)

    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a cache folder that cannot be created: a warning, the same numbers
    with pytest.warns(UserWarning, match="cannot write"):
        unwritable = E.Evaluator(judge, "test", draws=2, cache_dir=blocked / "cache")
    assert unwritable(fake) == scored
    off = E.Evaluator(judge, "test", draws=2, cache=False)
    assert off.cache_file is None and off(fake) == scored
    with pytest.raises(ValueError, match="at least 4 samples"):
        off(fake[:3])
    with pytest.raises(ValueError, match="draws .* at least 1"):
        E.Evaluator(judge, "test", draws=0, cache=False)


@pytest.fixture
def samples_file(tmp_path, judge_and_images):
    _, x = judge_and_images
    path = tmp_path / "samples.pt"
    torch.save(x[:600].clone(), path)
    return path


def test_evaluate_command_prints_json(samples_file, capsys):
    assert cli.main(["evaluate", str(samples_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("fd", "inception_score", "precision", "recall", "density", "coverage", "floors"):
        assert key in out
    assert out["n"] == 600 and out["reference"] == "test" and out["inception_score"] > 9


def test_evaluate_command_samples_a_checkpoint(tmp_path, capsys, judge_and_images):
    assert cli.main(["train", "--data", "fake", "--steps", "2", "--batch-size", "16", "--no-progress",
                     "--no-judge", "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli.main(["evaluate", str(tmp_path / "run" / "checkpoint.pt"), "-n", "500"]) == 0
    out = capsys.readouterr().out
    assert "500 samples against the test reference" in out and "precision" in out
    assert "FD (judge features)" in out and "fid" not in out.lower()  # not Inception's FID


@pytest.mark.parametrize(
    "content, message",
    [
        (torch.zeros(10, 784), r"shape \(N, 1, 28, 28\)"),
        (torch.zeros(10, 1, 28, 28, dtype=torch.uint8), "floats in"),
        (torch.rand(10, 1, 28, 28) * 255, r"\[-1, 1\]"),
        (torch.zeros(0, 1, 28, 28), "shape"),
        ({"not": "samples"}, "holds a dict"),
    ],
)
def test_evaluate_command_bad_input(tmp_path, capsys, content, message, judge_and_images):
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(path)])
    assert re.search(message, capsys.readouterr().err), message


def test_evaluate_command_unreadable_or_missing(tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    for path, message in ((tmp_path / "junk.pt", "not readable"), (tmp_path / "none.pt", "no file at")):
        with pytest.raises(SystemExit):
            cli.main(["evaluate", str(path)])
        assert message in capsys.readouterr().err
