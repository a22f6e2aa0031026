"""Chapter 7's VAE (gan_tutorial.vae): the ELBO's terms against torch.distributions, the
reparameterisation's moments and gradients, the importance-weighted bound against the exact
log p(x) of a model small enough to integrate, and the sampling helpers."""

import math

import pytest
import torch
from torch import nn

from gan_tutorial import latent, vae


def test_vae_kl_and_reconstruction_equal_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 100), torch.randn(6, 100)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(6, 100), torch.ones(6, 100))
    assert torch.allclose(
        vae.gaussian_kl(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1), atol=1e-4
    )
    # a Monte-Carlo estimate of the same KL, E_q[log q - log p], agrees within its error
    z = q.sample((20_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (20000, 6)
    err = 4 * mc.std(0) / math.sqrt(20_000)
    assert ((mc.mean(0) - vae.gaussian_kl(mu, logvar)).abs() < err).all()
    logits, x = torch.randn(6, 1, 28, 28), torch.rand(6, 1, 28, 28) * 2 - 1
    bern = torch.distributions.Bernoulli(logits=logits, validate_args=False)
    assert torch.allclose(
        vae.reconstruction(logits, x), bern.log_prob((x + 1) / 2).flatten(1).sum(1), atol=1e-3
    )


def test_continuous_bernoulli_normaliser_is_at_least_log_2_per_pixel():
    # the correction that turns the grey-pixel objective into a bound on a normalised density
    logits, x = 4 * torch.randn(6, 1, 28, 28), torch.rand(6, 1, 28, 28) * 2 - 1
    cb = torch.distributions.ContinuousBernoulli(logits=logits).log_prob((x + 1) / 2).flatten(1).sum(1)
    gap = cb - vae.reconstruction(logits, x)  # sum over the pixels of log C(lambda)
    assert (gap >= 784 * math.log(2) - 1e-3).all()


def test_reparameterisation_has_the_right_moments_and_gradients():
    mu = torch.tensor([[1.5, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = vae.reparameterise(mu.expand(50_000, 2), logvar.expand(50_000, 2), torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.tensor([1.5, -2.0]), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0]), atol=0.03)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.tensor([[50_000.0, 50_000.0]]))  # dz/dmu = 1 for every sample
    # dz/dlogvar = sigma * eps / 2, eps = (z - mu) / sigma: summed, (z - mu).sum() / 2
    expected = 0.5 * (z.detach() - torch.tensor([1.5, -2.0])).sum(0, keepdim=True)
    assert torch.allclose(logvar.grad, expected, rtol=1e-3, atol=1e-2)


class _Tiny(nn.Module):
    """A VAE with one latent number and four binary pixels, whose log p(x) is an integral in one
    dimension: p(x | z) = prod_i Bernoulli(u_i; sigmoid(a_i z + b_i)), z ~ N(0, 1), and a fixed,
    deliberately imperfect q(z | x) = N(0.3 * sum(x), 0.9^2)."""

    def __init__(self):
        super().__init__()
        self.a = torch.tensor([2.0, -1.5, 0.5, 3.0], dtype=torch.float64)
        self.b = torch.tensor([0.3, -0.2, 1.0, -0.5], dtype=torch.float64)

    def encode(self, x):
        mu = 0.3 * x.sum(1, keepdim=True)
        return mu, torch.full_like(mu, 2 * math.log(0.9))

    def decode(self, z):
        return z * self.a + self.b  # (B, 4) logits


def _exact_log_px(model, x):
    z = torch.linspace(-12, 12, 40_001, dtype=torch.float64)  # the quadrature grid
    logits = z[:, None, None] * model.a + model.b  # (Z, 1, 4)
    u = (x + 1) / 2  # (B, 4) in {0, 1}
    log_lik = -nn.functional.binary_cross_entropy_with_logits(
        logits.expand(-1, len(x), -1), u.expand(len(z), -1, -1), reduction="none"
    ).sum(-1)  # (Z, B)
    log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(log_lik + log_prior[:, None], dim=0) + math.log(float(z[1] - z[0]))


def test_importance_bound_approaches_the_exact_log_likelihood():
    model = _Tiny()
    x = torch.tensor([[1, -1, 1, 1], [-1, -1, -1, 1], [1, 1, -1, -1.0]], dtype=torch.float64)
    exact = _exact_log_px(model, x)
    # k = 1: the ELBO, on average below log p(x) by KL(q || p(z | x)) > 0
    elbo = torch.stack([vae.importance_bound(model, x, k=1, seed=s) for s in range(4000)]).mean(0)
    assert (elbo < exact - 0.01).all()
    tight = vae.importance_bound(model, x, k=20_000, seed=0)
    assert torch.allclose(tight, exact, atol=0.03)  # the estimate's own spread at k = 20,000: about 0.015
    middle = torch.stack([vae.importance_bound(model, x, k=8, seed=s) for s in range(500)]).mean(0)
    assert (elbo < middle).all() and (middle < exact + 0.005).all()  # the bound tightens with k


def test_vae_shapes_bounds_and_training():
    torch.manual_seed(0)
    model = vae.VAE()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    logits, mu, logvar = model(x)
    assert logits.shape == x.shape and mu.shape == logvar.shape == (8, 100)
    # the decoder is chapter 4's G without its Tanh; the samples lie in [-1, 1]
    assert not isinstance(model.decoder.net[-1], torch.nn.Tanh)
    samples = model.sample(5, seed=3)
    assert samples.shape == (5, 1, 28, 28) and samples.abs().max() <= 1
    assert torch.equal(samples, model.sample(5, seed=3))
    # the importance-weighted bound is at least the ELBO (on average over codes)
    history = vae.train_vae(model, x, steps=30, batch_size=8, lr=1e-3, log_every=10)
    assert history.step == [10, 20, 30] and history["elbo"][-1] > history["elbo"][0]
    bound = vae.elbo(model, x)
    assert float(vae.importance_bound(model, x, k=32).mean()) >= bound - 1.0
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        vae.train_vae(model, (x + 1) / 2 * 255, steps=1)


def test_sampling_helpers_are_seeded_and_leave_the_model_as_it_was():
    torch.manual_seed(0)
    model = vae.VAE()
    # a few steps, so that the batch norms' running statistics move
    vae.train_vae(model, torch.rand(16, 1, 28, 28) * 2 - 1, steps=3, batch_size=8)
    model.train()
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    mu = model.encode_means(x)
    assert model.training  # eval inside, back to train after
    model.eval()
    assert torch.equal(mu, model.encode(x)[0].detach())
    model.train()
    # reconstructions are the decoder's means at mu(x)
    assert torch.allclose(model.reconstruct(x), model.images(mu), atol=1e-6)
    assert model.training and model.decoder.training
    # the same codes as latent.codes; re-measured batch norms change the images, not the model
    z = latent.codes(5, 100, seed=3)
    assert torch.equal(model.sample(5, seed=3), model.images(z))
    state = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    recal = model.sample(5, seed=3, recalibrate=True)
    assert recal.shape == (5, 1, 28, 28) and recal.abs().max() <= 1
    assert not torch.allclose(recal, model.sample(5, seed=3))
    assert torch.equal(recal, model.sample(5, seed=3, recalibrate=True))
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(v, state[k])


def test_fitted_gaussian_codes_match_the_codes_moments():
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(3, 3, generator=gen)
    fitted_to = torch.randn(4000, 3, generator=gen) @ mix + torch.tensor([1.0, -2.0, 0.5])
    drawn = vae.fitted_gaussian_codes(fitted_to, 50_000, seed=1)
    assert drawn.shape == (50_000, 3) and drawn.dtype == fitted_to.dtype
    assert torch.allclose(drawn.mean(0), fitted_to.mean(0), atol=0.05)
    assert torch.allclose(torch.cov(drawn.T), torch.cov(fitted_to.T), atol=0.08)
    assert torch.equal(drawn, vae.fitted_gaussian_codes(fitted_to, 50_000, seed=1))
    # codes of a prior: a standard normal comes back
    standard = vae.fitted_gaussian_codes(latent.codes(20_000, 4, seed=5), 20_000, seed=2)
    assert torch.allclose(torch.cov(standard.T), torch.eye(4), atol=0.05)
    with pytest.raises(ValueError, match="more codes than dimensions"):
        vae.fitted_gaussian_codes(torch.randn(3, 5), 10)
