"""The DCGAN of chapter 4: shapes by the convolution arithmetic, N(0, 0.02) init, trainer fit."""

import pytest
import torch
from torch import nn

from gan_tutorial import models
from gan_tutorial.config import TrainConfig
from gan_tutorial.trainer import Trainer


def conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def conv_t_out(n, k, s, p):
    return (n - 1) * s - 2 * p + k


@pytest.mark.parametrize("n,k,s,p", [(1, 7, 1, 0), (7, 4, 2, 1), (14, 4, 2, 1), (5, 3, 2, 1), (4, 5, 3, 2)])
def test_shape_formulas_match_pytorch(n, k, s, p):
    x = torch.zeros(1, 1, n, n)
    assert nn.ConvTranspose2d(1, 1, k, s, p)(x).shape[-1] == conv_t_out(n, k, s, p)
    if n + 2 * p >= k:
        assert nn.Conv2d(1, 1, k, s, p)(x).shape[-1] == conv_out(n, k, s, p)


def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    G, D = models.dcgan(latent_dim=16, ngf=8, ndf=8)
    z = torch.randn(5, 16)
    x_fake = G(z)
    assert x_fake.shape == (5, 1, 28, 28) and x_fake.abs().max() <= 1
    G.eval()
    assert torch.equal(G(z), G(z[:, :, None, None]))  # 2-D and 4-D codes are the same codes
    assert D(x_fake).shape == (5, 1)
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())  # logits out
    sides = []
    h = z[:, :, None, None]
    for m in G.net:
        h = m(h)
        if isinstance(m, nn.ConvTranspose2d):
            sides.append(h.shape[-1])
    assert sides == [7, 14, 28]


def test_parameter_counts_by_hand():
    G, D = models.dcgan(latent_dim=100, ngf=32, ndf=32)
    g = 100 * 128 * 49 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 1 * 16 + 1
    d = 1 * 32 * 16 + 32 + 32 * 64 * 16 + 2 * 64 + 64 * 49 + 1
    assert sum(p.numel() for p in G.parameters()) == g
    assert sum(p.numel() for p in D.parameters()) == d


def test_init_is_normal_002():
    torch.manual_seed(0)
    G, D = models.dcgan(ngf=64, ndf=64)
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
                assert abs(m.weight.std().item() - 0.02) < 0.001 and abs(m.weight.mean().item()) < 0.001
            if isinstance(m, nn.BatchNorm2d):
                assert abs(m.weight.mean().item() - 1) < 0.01 and m.bias.abs().max() == 0


def test_no_batch_norm_ablation():
    G, D = models.dcgan(batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in [*G.modules(), *D.modules()])
    assert all(m.bias is not None for m in G.modules() if isinstance(m, nn.ConvTranspose2d))
    assert G(torch.randn(2, 100)).shape == (2, 1, 28, 28)


def test_recipe_model_keeps_batch_norm_in_g_only():
    G, D = models.build("dcgan-bn-g", latent_dim=100, dropout=0.0)
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert D(G(torch.randn(3, 100))).shape == (3, 1)


def test_recipe_model_has_a_narrower_g_and_a_deeper_d():
    torch.manual_seed(0)
    G, D = models.build("dcgan-bn-g-deep-d", latent_dim=100, dropout=0.0)
    assert G.net[0].out_channels == 4 * 24  # ngf 24
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((4, 4), (2, 2), 32), ((4, 4), (2, 2), 64), ((3, 3), (1, 1), 64), ((7, 7), (1, 1), 1)
    ]  # fmt: skip
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert D(G(torch.randn(3, 100))).shape == (3, 1)
    # with no extra layer, the same module (and, from the same seed, the same weights) as before
    torch.manual_seed(0)
    plain = models.DCGANDiscriminator(32, batch_norm=False)
    torch.manual_seed(0)
    zero = models.DCGANDiscriminator(32, batch_norm=False, extra_layers=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(plain.state_dict().values(), zero.state_dict().values(), strict=True)
    )
    deep_bn = models.DCGANDiscriminator(32, extra_layers=2)  # with batch norm, each extra conv has its own
    assert sum(isinstance(m, nn.BatchNorm2d) for m in deep_bn.modules()) == 3


def test_errors_say_what_is_wrong():
    G, D = models.dcgan(latent_dim=10)
    with pytest.raises(ValueError, match=r"\(B, 10\) or \(B, 10, 1, 1\)"):
        G(torch.randn(2, 10, 2, 2))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        D(torch.randn(2, 784))
    with pytest.raises(ValueError, match="ngf"):
        models.DCGANGenerator(10, ngf=0)
    with pytest.raises(ValueError, match="dropout"):
        models.DCGANDiscriminator(dropout=1.5)
    with pytest.raises(ValueError, match="extra_layers"):
        models.DCGANDiscriminator(extra_layers=-1)


@pytest.mark.parametrize(
    "model, r1",
    [("dcgan", 0.0), ("dcgan-bn-g-deep-d", 1.0)],  # the guideline DCGAN; the recipe's (R1, joint D pass)
)
def test_trainer_runs_and_resumes_dcgan_exactly(tmp_path, model, r1):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: a second thread only adds waiting on a busy CPU
    try:
        _resume_exactly(tmp_path, model, r1)
    finally:
        torch.set_num_threads(threads)


def _resume_exactly(tmp_path, model, r1):
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cfg = TrainConfig(model=model, dropout=0.0, batch_size=16, log_every=2, latent_dim=8, r1=r1)
    straight = Trainer(cfg, x)
    straight.run(steps=4, progress=False)
    first = Trainer(cfg, x, out_dir=tmp_path)
    first.run(steps=2, progress=False)
    second = Trainer.resume(tmp_path / "checkpoint.pt", x)
    second.run(steps=2, progress=False)
    for a, b in zip(straight.G.state_dict().values(), second.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # batch-norm running statistics included


def test_bench_runs_the_dcgan(capsys):
    from gan_tutorial import cli
    from gan_tutorial.data import MNISTNotFoundError, ensure_mnist

    try:
        ensure_mnist(download=False)
    except MNISTNotFoundError:
        pytest.skip("MNIST is not in data/; the baseline reads it through torchvision")
    assert cli.main(["bench", "--model", "dcgan", "--steps", "2", "--batch-size", "8", "--seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "model dcgan" in out and "trainer (last row) / pytorch/examples loop" in out


def test_registry_is_read_only_and_variants_are_options():
    with pytest.raises(TypeError):
        models.MODELS["mine"] = models.dcgan  # chapters pass options instead of adding names
    G, D = models.build("dcgan", latent_dim=8, batch_norm=False)
    assert not models.has_batch_norm(G) and not models.has_batch_norm(D)
    with pytest.raises(ValueError, match="takes no option ngff; its options: ngf=32"):
        models.build("dcgan", ngff=48)
    assert models.resolve("dcgan-d-no-bn") == "dcgan-bn-g"  # version 0.1's names still load
    cfg = TrainConfig(model="dcgan-deep-d", model_args={"ngf": 16}, dropout=0.0)
    assert cfg.model == "dcgan-bn-g-deep-d"
    with pytest.raises(ValueError, match="takes no option"):
        TrainConfig(model="mlp", model_args={"ngf": 16})
