"""Chapter 8's anomaly scores: shapes, clear errors, the izi_f score against a hand computation,
gradients reaching the encoder alone, the AUROC against torchmetrics, the kNN score by brute force."""

import pytest
import torch
from torchmetrics.functional.classification import binary_auroc

from gan_tutorial import anomaly as A
from gan_tutorial import models


@pytest.fixture
def digits():
    g = torch.Generator().manual_seed(0)
    return torch.rand(8, 1, 28, 28, generator=g) * 2 - 1


def test_encoder_and_features_shapes(digits):
    E = A.Encoder(latent_dim=10, ndf=8)
    assert E(digits).shape == (8, 10)
    _, D = models.dcgan_bn_g_deep_d(ndf=8)
    f = A.d_features(D)
    assert f(digits).shape == (8, 16 * 7 * 7)
    assert f[0] is D.net[0]  # D's own layers, not a copy
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        E(digits[:, :, :20])
    with pytest.raises(TypeError, match="DCGANDiscriminator"):
        A.d_features(torch.nn.Linear(2, 2))


def test_izif_score_by_hand():
    x, x_rec = torch.zeros(2, 1, 2, 2), torch.tensor([[1.0, 1, 1, 1], [2, 0, 0, 0]]).view(2, 1, 2, 2)
    f_x, f_rec = torch.zeros(2, 3), torch.tensor([[3.0, 0, 0], [0, 0, 0]])
    # pixels: (1 + 1 + 1 + 1) / 4 = 1 and 4 / 4 = 1; features: 9 / 3 = 3 and 0
    assert torch.allclose(A.izif_score(x, x_rec, f_x, f_rec, kappa=0.5), torch.tensor([2.5, 1.0]))
    with pytest.raises(ValueError, match="one shape"):
        A.izif_score(x, x_rec[:1], f_x, f_rec)


def test_encoder_training_moves_the_encoder_only(digits):
    G, D = models.dcgan_bn_g_deep_d(latent_dim=10, ngf=8, ndf=8)
    E = A.Encoder(latent_dim=10, ndf=8)
    g0, e0 = [p.clone() for p in G.parameters()], [p.clone() for p in E.parameters()]
    history = A.train_encoder(E, G, D, digits, steps=3, batch_size=4, log_every=1)
    assert len(history["loss"]) == 3
    assert all(torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(e0, E.parameters(), strict=True))
    scores = A.anomaly_scores(digits, G, E, D)
    f = A.d_features(D)
    with torch.no_grad():
        x_rec = G(E(digits))
        want = A.izif_score(digits, x_rec, f(digits), f(x_rec))
    assert scores.shape == (8,) and torch.allclose(scores, want)


def test_autoencoder_baseline(digits):
    ae = A.autoencoder(latent_dim=10, ngf=8, ndf=8)
    history = A.train_autoencoder(ae, digits, steps=2, batch_size=4, log_every=1)
    assert len(history["loss"]) == 2
    err = A.reconstruction_error(ae, digits)
    assert err.shape == (8,) and (err >= 0).all()
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        A.reconstruction_error(ae, digits * 2)


def test_knn_score_by_brute_force():
    g = torch.Generator().manual_seed(2)
    train, test = torch.randn(50, 5, generator=g), torch.randn(7, 5, generator=g)
    dists = ((test[:, None] - train[None]) ** 2).sum(-1).sqrt()
    want = dists.sort(1).values[:, :3].mean(1)
    assert torch.allclose(A.knn_score(train, test, k=3), want, atol=1e-5)
    with pytest.raises(ValueError, match="flatten"):
        A.knn_score(train, test.view(7, 5, 1))
    with pytest.raises(ValueError, match="k must be"):
        A.knn_score(train, test, k=51)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_torchmetrics(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.rand(300, generator=g) < 0.2
    scores = torch.randn(300, generator=g) + labels.float()
    scores[::7] = scores[::7].round()  # ties
    assert A.auroc(scores, labels) == pytest.approx(float(binary_auroc(scores, labels.long())), abs=1e-6)


def test_auroc_edges():
    assert A.auroc(torch.tensor([0.0, 1.0]), torch.tensor([0, 1])) == 1.0
    assert A.auroc(torch.tensor([1.0, 1.0]), torch.tensor([0, 1])) == 0.5
    with pytest.raises(ValueError, match="at least one anomaly"):
        A.auroc(torch.tensor([0.0, 1.0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="one score"):
        A.auroc(torch.zeros(3), torch.zeros(2))
