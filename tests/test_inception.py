"""Inception features: the wrapper on a stand-in network (the real weights need a download), and a
clear error where the weights are missing and cannot be fetched."""

import pytest
import torch
from torch import nn

from gan_tutorial.metrics import inception


class StandIn(nn.Module):
    """Takes what Inception takes, (N, 3, 299, 299), and returns (N, 16) features."""

    def __init__(self):
        super().__init__()
        self.seen = None
        self.net = nn.Sequential(nn.Conv2d(3, 16, 5, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        self.seen = x
        return self.net(x)


def test_the_wrapper_prepares_mnist_images_as_inception_expects():
    net = StandIn()
    features = inception.InceptionFeatures(net, num_features=16)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    out = features(x)
    assert out.shape == (4, 16) and not out.requires_grad
    seen = net.seen
    assert seen.shape == (4, 3, 299, 299)
    mean, std = torch.tensor(inception.IMAGENET_MEAN), torch.tensor(inception.IMAGENET_STD)
    unit = seen * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)  # undo ImageNet's normalisation
    assert unit.min() >= -1e-5 and unit.max() <= 1 + 1e-5  # [-1, 1] became [0, 1]
    assert torch.allclose(unit[:, 0], unit[:, 1], atol=1e-6) and torch.allclose(
        unit[:, 0], unit[:, 2], atol=1e-6
    )
    features.train()
    assert not net.training  # a feature extractor stays in eval mode


def test_missing_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr("gan_tutorial.data._online", lambda url, timeout=3.0: False)
    with pytest.raises(inception.InceptionWeightsMissing, match="no network") as err:
        inception.inception_features()
    assert str(tmp_path / "checkpoints") in str(err.value) and "download.pytorch.org" in str(err.value)
    with pytest.raises(FileNotFoundError, match="download=False"):
        inception.inception_features(download=False)
