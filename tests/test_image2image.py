"""The image-to-image networks and step of chapter 8: shapes, clear errors, the patch D's receptive
field, the G loss against a hand computation, gradients, and the measures on images with known values."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_tutorial import image2image as I
from gan_tutorial import models


@pytest.fixture
def digits():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 28, 28, generator=g) * 2 - 1


def test_shapes_and_skip_connections(digits):
    G, D = models.pix2pix(ngf=8, ndf=8)
    out = G(I.mask_lower(digits))
    assert out.shape == (6, 1, 28, 28) and out.abs().max() <= 1
    assert D(I.mask_lower(digits), out).shape == (6, 1, 7, 7)
    assert "pix2pix" not in models.MODELS  # not a z -> image model


def test_clear_errors(digits):
    G, D = models.pix2pix(ngf=8, ndf=8)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        G(digits[:, :, :27])
    with pytest.raises(ValueError, match="one condition per image"):
        D(digits, digits[:3])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        I.mask_lower(digits * 3)
    with pytest.raises(ValueError, match="shape"):
        I.sharpness(digits.view(6, 784))
    with pytest.raises(ValueError, match="dropout"):
        models.UNetGenerator(dropout=1.0)
    with pytest.raises(ValueError, match="one label per digit"):
        I.measure(None, digits, torch.zeros(5, dtype=torch.long), torch.zeros(10, 64))


def test_mask_and_paste(digits):
    x_cond = I.mask_lower(digits)
    assert torch.equal(x_cond[:, :, :14], digits[:, :, :14]) and (x_cond[:, :, 14:] == -1).all()
    assert torch.equal(I.paste(x_cond, digits), digits)  # the upper half from the input, the lower from G
    before = digits.clone()
    I.mask_lower(digits)
    assert torch.equal(digits, before)  # a copy, not in place


def test_patch_d_sees_18_pixel_patches(digits):
    _, D = models.pix2pix(ndf=8)
    x = digits.clone().requires_grad_(True)
    D(I.mask_lower(digits), x)[0, 0, 3, 3].backward()  # the centre patch
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert len(rows) == len(cols) == 18  # 1 + 3 + 3 x 2 + 2 x 4


def test_generator_loss_by_hand_and_gradients(digits):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 1, 7, 7, generator=g, requires_grad=True)
    x_fake = digits.tanh().requires_grad_(True)
    got = I.generator_loss(logits, x_fake, digits, lam=100.0)
    want = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) + 100 * F.l1_loss(
        x_fake, digits
    )
    assert torch.allclose(got, want, atol=1e-5)
    got.backward()
    assert torch.allclose(x_fake.grad, 100 * torch.sign(x_fake - digits) / digits.numel())
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_step_trains_both_players_and_l1_alone(digits):
    torch.manual_seed(0)
    G, D = models.pix2pix(ngf=8, ndf=8)
    g0, d0 = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    history = I.train_pix2pix(G, D, digits, steps=3, batch_size=4, log_every=1)
    assert set(history.values) == {"d_loss", "g_loss", "l1"} and history.step == [1, 2, 3]
    assert all(not torch.equal(a, b) for a, b in zip(g0, G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters(), strict=True))
    G2, _ = models.pix2pix(ngf=8, ndf=8)
    history = I.train_pix2pix(G2, None, digits, steps=2, batch_size=4, log_every=1)
    assert history["g_loss"] == history["l1"]


def test_training_is_seeded_and_leaves_the_global_stream(digits):
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        G, D = models.pix2pix(ngf=8, ndf=8)
        state = torch.get_rng_state()
        I.train_pix2pix(G, D, digits, steps=2, batch_size=4, seed=5)
        assert torch.equal(torch.get_rng_state(), state)
        outs.append(G.eval()(I.mask_lower(digits)))
    assert torch.equal(outs[0], outs[1])


def test_measures_on_known_images():
    blank = -torch.ones(2, 1, 28, 28)
    assert torch.equal(I.sharpness(blank), torch.zeros(2))
    assert torch.equal(I.saturation(blank), torch.ones(2))
    assert torch.equal(I.saturation(torch.zeros(2, 1, 28, 28)), torch.zeros(2))
    stripes = blank.clone()
    stripes[:, :, :, ::2] = 1  # every other column ink: |dx| = 2 everywhere, dy = 0 in the lower half
    assert torch.allclose(I.sharpness(stripes), torch.full((2,), 2.0))


def test_diversity_and_nearest_spread(digits):
    G = models.UNetGenerator(ngf=8, dropout=0.0)
    assert torch.equal(I.diversity(G, I.mask_lower(digits), k=3), torch.zeros(6))  # no noise, no spread
    G = models.UNetGenerator(ngf=8, dropout=0.5).eval()
    spread = I.diversity(G, I.mask_lower(digits), k=4)
    assert (spread > 0).all() and not G.training  # dropout on while sampling, the mode restored
    pool = torch.cat([digits, digits])  # each upper half twice, with the same lower half
    assert torch.allclose(I.nearest_spread(digits, pool, k=2), torch.zeros(6))
    with pytest.raises(ValueError, match="k must be"):
        I.nearest_spread(digits, pool, k=1)


def _lower_half_ink(batch_norm: bool) -> tuple[float, float]:
    """150 steps of L1 on 2,048 digits: the share of hidden pixels drawn as ink (> 0) where the real
    digit has ink, and where it has none. ``batch_norm=False`` swaps the U-Net's batch norm for
    identities."""
    from gan_tutorial.data import MNISTNotFoundError, load_mnist

    try:
        x_train, x_test = load_mnist(train=True, download=False), load_mnist(train=False, download=False)
    except MNISTNotFoundError:
        pytest.skip("MNIST is not in data/")
    torch.manual_seed(0)
    G = models.UNetGenerator()
    if not batch_norm:
        for block in (G.down2, G.up3, G.up2):
            block[1] = nn.Identity()
        assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    I.train_pix2pix(G, None, x_train[:2048], steps=150, batch_size=32, seed=0)
    with torch.no_grad():
        lower = I.complete(G.train(), I.mask_lower(x_test[:256]))[:, :, I.MASK_ROW :]
    ink = x_test[:256, :, I.MASK_ROW :] > 0
    return (lower[ink] > 0).float().mean().item(), (lower[~ink] > 0).float().mean().item()


def test_l1_learns_strokes_instead_of_saturating_at_the_background():
    """With the U-Net's batch norm, L1 draws strokes where the real digit has them, and few elsewhere."""
    on_ink, off_ink = _lower_half_ink(batch_norm=True)
    assert on_ink > 0.05 and off_ink < 0.05


def test_without_batch_norm_l1_paints_the_hidden_half_blank():
    """The chapter's claim: without batch norm the decoder's activations grow, L1 drives the Tanh to -1
    on every hidden pixel, and there its gradient vanishes, so no stroke is ever drawn."""
    on_ink, off_ink = _lower_half_ink(batch_norm=False)
    assert on_ink < 0.005 and off_ink < 0.005
