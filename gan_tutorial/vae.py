r"""A variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014) on MNIST, built from
the networks of chapter 4's GAN (the ``dcgan`` recipe's pair, which chapter 7 conditions), so
that the two can be compared at the same size and budget.

* the **encoder** q(z | x) = N(mu(x), diag sigma^2(x)) is the DCGAN discriminator's body
  (no batch norm, one 3 x 3 convolution deeper) whose last 7 x 7 convolution outputs
  ``2 latent_dim`` numbers instead of one logit: mu and log sigma^2;
* the **decoder** p(x | z) is chapter 4's generator with its Tanh removed: its output is one
  logit l per pixel of a Bernoulli on the pixel's intensity u = (x + 1) / 2 in [0, 1]. The
  decoder's mean image, in [-1, 1] as a GAN's samples, is 2 sigmoid(l) - 1 = tanh(l / 2);
* a code is drawn by the **reparameterisation** z = mu + sigma * eps, eps ~ N(0, I), so
  that the sample is a differentiable function of mu and sigma;
* training maximises the **evidence lower bound**, for each image

  .. math:: \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)]
            - \mathrm{KL}\big(q(z|x) \,\|\, N(0, I)\big),

  the first term a reconstruction (minus the binary cross-entropy summed over the 784
  pixels), the second in closed form for two Gaussians:
  :math:`\tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2)`.

The ELBO is a lower bound on log p(x) when p(x | z) is a normalised density. For grey (not
binary) pixels the Bernoulli "likelihood" is not one (Loaiza-Ganem & Cunningham 2019): the
ELBO here is the training objective in nats per image, not a likelihood bound comparable with
published figures for binarised MNIST. Adding each pixel's log-normaliser log C(lambda), which is
at least log 2, gives a true bound on the density of the continuous Bernoulli with the same
decoder (chapter 7 computes it). Chapter 7 checks every term against ``torch.distributions``.

Samples (:meth:`VAE.sample`), like reconstructions (:meth:`VAE.reconstruct`), are the decoder's
*mean* images, the usual way VAE samples are shown; a sample of p(x | z) itself is pixel noise.
:func:`fitted_gaussian_codes` draws codes from a Gaussian fitted to the encoder's codes, in
place of the prior (an ex-post density: Ghosh et al. 2020; Dai & Wipf 2019 fit a second VAE).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .average import recalibrate_batch_norm
from .data import check_images
from .latent import codes
from .models.dcgan import DCGANDiscriminator, DCGANGenerator
from .updates import History

#: What :func:`train_vae` records, in nats per image.
NAMES = ("elbo", "reconstruction", "kl")


class VAE(nn.Module):
    """Encoder and decoder as the module docstring says; ``latent_dim`` is the size of z."""

    def __init__(self, latent_dim: int = 100, ngf: int = 24, ndf: int = 32, extra_layers: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        body = DCGANDiscriminator(ndf, 0.0, batch_norm=False, extra_layers=extra_layers)
        # the D's layers up to its 7 x 7 features, then a 7 x 7 convolution to (mu, log sigma^2)
        self.encoder = nn.Sequential(*body.net[:-2], nn.Conv2d(2 * ndf, 2 * latent_dim, 7), nn.Flatten())
        self.decoder = DCGANGenerator(latent_dim, ngf, batch_norm=True)
        self.decoder.net[-1] = nn.Identity()  # logits, not Tanh

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 28, 28) in [-1, 1] -> mu and log sigma^2 of q(z | x), each (B, latent_dim)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"the encoder takes images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) codes -> (B, 1, 28, 28) logits of p(x | z)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass: ``(logits, mu, logvar)`` of x's reconstruction from one reparameterised code."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterise(mu, logvar)), mu, logvar

    @torch.no_grad()
    def images(
        self, z: torch.Tensor, decoder: nn.Module | None = None, batch_size: int = 1000
    ) -> torch.Tensor:
        """The decoder's mean images (N, 1, 28, 28) in [-1, 1] at codes ``z`` (N, latent_dim), in eval
        mode; ``decoder`` replaces the model's own (a copy with re-measured batch norms, say)."""
        decoder = self.decoder if decoder is None else decoder
        was_training = decoder.training
        decoder.eval()
        try:
            device = next(decoder.parameters()).device
            return torch.cat([mean_image(decoder(c.to(device))) for c in z.split(batch_size)])
        finally:
            decoder.train(was_training)

    def sample(self, n: int, seed: int = 0, recalibrate: bool = False) -> torch.Tensor:
        """``n`` images in [-1, 1]: the decoder's means at codes z ~ N(0, I) drawn with ``seed`` (the
        usual way VAE samples are shown; pixels drawn from the Bernoulli are noise). With
        ``recalibrate`` the decoder's batch norms are first measured again under prior codes of a
        seed of their own (:func:`~gan_tutorial.average.recalibrate_batch_norm`, what a GAN's
        average gets): in eval mode they otherwise normalise with statistics gathered in training,
        under the encoder's codes."""
        decoder = recalibrate_batch_norm(self.decoder) if recalibrate else None
        return self.images(codes(n, self.latent_dim, seed), decoder)

    @torch.no_grad()
    def encode_means(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """mu(x), (N, latent_dim) on the CPU: the centre of q(z | x) for each image of ``x``, in eval mode."""
        check_images(x)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            return torch.cat([self.encode(c.to(device))[0].cpu() for c in x.split(batch_size)])
        finally:
            self.train(was_training)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's mean images at the codes mu(x) of images ``x``: their reconstructions."""
        return self.images(self.encode_means(x))


def fitted_gaussian_codes(fitted_to: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` codes from the Gaussian N(m, S) fitted to codes ``fitted_to`` (M, d) (their mean and
    full covariance, plus 1e-6 I): m + L eps with S = L L^T and eps of :func:`~gan_tutorial.latent.codes`
    drawn with ``seed``. Sampling a VAE's decoder there instead of at the prior N(0, I) shows what
    the prior's mismatch with the codes the decoder was trained on costs."""
    if fitted_to.ndim != 2 or len(fitted_to) <= fitted_to.shape[1]:
        raise ValueError(
            f"fit to more codes than dimensions, (M, d) with M > d; got {tuple(fitted_to.shape)}"
        )
    c = fitted_to.double()
    m = c.mean(0)
    cov = torch.cov(c.T) + 1e-6 * torch.eye(c.shape[1], dtype=c.dtype)
    L = torch.linalg.cholesky(cov)
    return (m + codes(n, c.shape[1], seed).double() @ L.T).to(fitted_to.dtype)


def mean_image(logits: torch.Tensor) -> torch.Tensor:
    """The decoder's mean in [-1, 1]: 2 sigmoid(l) - 1 (= tanh(l / 2))."""
    return 2 * torch.sigmoid(logits) - 1


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2): a sample of
    N(mu, diag sigma^2) through which gradients reach mu and logvar."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per row, (B,): 1/2 sum_j (mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def reconstruction(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | z) per image, (B,): minus the binary cross-entropy of the pixel intensities
    u = (x + 1) / 2 under the decoder's logits, summed over the pixels (computed from logits)."""
    u = (x + 1) / 2
    return -F.binary_cross_entropy_with_logits(logits, u, reduction="none").flatten(1).sum(dim=1)


def elbo_terms(vae: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of the ELBO per image, ``(reconstruction, kl)``, each (B,), with one code per image."""
    logits, mu, logvar = vae(x)
    return reconstruction(logits, x), gaussian_kl(mu, logvar)


@torch.no_grad()
def elbo(vae: VAE, x: torch.Tensor, batch_size: int = 1000) -> float:
    """The mean ELBO of images ``x`` in nats per image, in eval mode (one code per image)."""
    check_images(x)
    was_training = vae.training
    vae.eval()
    try:
        device = next(vae.parameters()).device
        total = 0.0
        for chunk in x.split(batch_size):
            rec, kl = elbo_terms(vae, chunk.to(device))
            total += float((rec - kl).sum())
        return total / len(x)
    finally:
        vae.train(was_training)


@torch.no_grad()
def importance_bound(vae: VAE, x: torch.Tensor, k: int = 64, seed: int = 0) -> torch.Tensor:
    r"""The importance-weighted bound (Burda et al. 2016) per image, (B,):
    :math:`\log \frac1k \sum_i p(x|z_i) p(z_i) / q(z_i|x)`, z_i ~ q(z|x). It is >= the ELBO and
    tends to log p(x) as k grows; with k = 1 its expectation is the ELBO."""
    was_training = vae.training
    vae.eval()
    try:
        gen = torch.Generator(device=x.device).manual_seed(seed)
        mu, logvar = vae.encode(x)
        std = torch.exp(0.5 * logvar)
        q = torch.distributions.Normal(mu, std)
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        logw = []
        for _ in range(k):
            z = reparameterise(mu, logvar, gen)
            logw.append(reconstruction(vae.decode(z), x) + prior.log_prob(z).sum(1) - q.log_prob(z).sum(1))
        return torch.logsumexp(torch.stack(logw), dim=0) - math.log(k)
    finally:
        vae.train(was_training)


def train_vae(
    vae: VAE,
    x_train: torch.Tensor,
    steps: int | None = None,
    seconds: float | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 100,
    callback: Callable[[int], None] | None = None,
) -> History:
    """Train ``vae`` on images ``x_train`` (N, 1, 28, 28) in [-1, 1] by Adam on minus the mean ELBO,
    for ``steps`` steps or ``seconds`` of wall time (whichever ends first); returns a history of
    ``elbo``, ``reconstruction`` and ``kl`` (nats per image, means over each ``log_every`` steps).
    Batches and codes come from generators seeded with ``seed``; a NaN loss raises at once."""
    check_images(x_train, "training images")
    if steps is None and seconds is None:
        raise ValueError("give a budget: steps, seconds, or both")
    device = next(vae.parameters()).device
    x_train = x_train.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    history, sums, count = History(), torch.zeros(3), 0
    start, step, perm, pos = time.perf_counter(), 0, torch.randperm(len(x_train), generator=gen), 0
    vae.train()
    with torch.random.fork_rng(devices=[]):  # the codes' noise: a stream of its own
        torch.manual_seed(seed + 1)
        while (steps is None or step < steps) and (seconds is None or time.perf_counter() - start < seconds):
            if pos + batch_size > len(x_train):
                perm, pos = torch.randperm(len(x_train), generator=gen), 0
            xb = x_train[perm[pos : pos + batch_size].to(device)]
            pos += batch_size
            rec, kl = elbo_terms(vae, xb)
            loss = (kl - rec).mean()  # minus the mean ELBO
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the VAE's loss became {float(loss)} at step {step + 1}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            sums += torch.stack([-loss.detach(), rec.mean().detach(), kl.mean().detach()]).cpu()
            count += 1
            if step % log_every == 0:
                history.append(step, dict(zip(NAMES, (sums / count).tolist(), strict=True)))
                sums, count = torch.zeros(3), 0
                if callback is not None:
                    callback(step)
    if count:
        history.append(step, dict(zip(NAMES, (sums / count).tolist(), strict=True)))
    return history
