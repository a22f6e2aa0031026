"""Bugs that look like bad luck: a gallery of wrong lines, each run briefly so that its symptom shows.

A GAN that does not learn rarely crashes: it trains, the losses move, and the samples are bad, which
looks like an unlucky seed or a learning rate to tune. Each :class:`Bug` below is one line a learner
really writes, with ``what`` (the line and why it is wrong) and ``fix`` (the right line). Its
:meth:`Bug.run` trains a small GAN with the bug for a few hundred steps, in a training step of its
own written out in full with the wrong line marked, and returns a :class:`BugRun`: the
:class:`~gan_tutorial.updates.History` of the same monitors :func:`updates.train` records
(``loss_D``, ``loss_G``, ``d_real``, ``d_fake``, ``d_fake_g``, ``grad_D``, ``grad_G``) and whatever
else :func:`gan_tutorial.doctor.diagnose` needs to name the bug (the data, G, D, the codes, the
penalty function, the exception when the bug crashes instead of training).
:func:`correct` is the same set-up without a bug, for the healthy monitors beside each bug's.

The set-up is the 2-D ring of eight Gaussians (:func:`data.ring8`) with :func:`models.toy_mlp`
players, a second or two per bug on a CPU. The two bugs about images (``data_range`` and
``noise_4d_linear``) use MNIST test images with a small :class:`models.MLPGenerator` and
:class:`models.MLPDiscriminator`: the pixel range and the codes' shape are properties of the image
pipeline, and a 2-D stand-in would have to pretend to be one (a Tanh G covers a ring in [0, 1]
without trouble; what goes wrong with images in [0, 1] is that background pixels, the bulk of
every image, sit at Tanh's midpoint and show grey where the rest of the package expects -1).

Every run is on the CPU, on one thread (the networks are so small that more threads only contend),
seeded by its ``seed`` and with PyTorch's global random stream put back as it was afterwards.
A run stops at the first step whose monitors are not finite, with that step logged, as the
package's :class:`~gan_tutorial.updates.DivergenceGuard` stops its loops. Each monitor is measured
where the package's steps measure it: ``grad_D`` and ``grad_G`` are the norms of the gradients the
optimiser step is about to apply, read just before ``step()``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from . import data as data_module
from . import losses
from .doctor import Finding, diagnose
from .models import MLPDiscriminator, MLPGenerator, toy_mlp
from .updates import History, grad_norm

#: Real and fake samples per step.
BATCH = 128
#: Size of the codes z of the 2-D set-up.
TOY_LATENT = 2
#: Size of the codes z of the MNIST set-up (the MLPGenerator's default).
IMAGE_LATENT = 100
#: Images per step in the MNIST set-up.
IMAGE_BATCH = 64
#: Adam's settings for every run except the WGAN-GP ones (beta1 = 0.5, Radford et al. 2016).
LR, BETAS = 1e-3, (0.5, 0.999)
#: WGAN-GP's settings: Adam with beta1 = 0.5, beta2 = 0.9, two critic steps per G step and the critic's
#: learning rate five times G's. Gulrajani et al. 2017 use five critic steps at 1e-4 for both; in a
#: run of a few hundred steps that critic trails G (it scores the fakes above the reals most of the
#: time), and this one leads it, as a critic should.
WGAN_LR_D, WGAN_LR_G, WGAN_BETAS, N_CRITIC = 1e-3, 2e-4, (0.5, 0.9), 2
#: The weight lambda of the gradient penalty (Gulrajani et al. 2017).
GP_WEIGHT = 10.0

Stats = dict[str, torch.Tensor]
Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BugRun:
    """What a brief run with a bug (or without, :func:`correct`) leaves for the chapter and the doctor.

    ``history`` holds one entry per step (empty when the bug crashes at the first step).
    ``G`` and ``D`` are the players as the loop left them (their modes included), ``data`` a batch
    of the real data as the training step saw it, ``z`` a batch of codes as the step drew them,
    ``loss`` the name of the losses the step meant to compute (``"nonsaturating"`` or
    ``"wgan-gp"``), ``gradient_penalty`` the penalty function of a WGAN-GP run (``None`` otherwise),
    ``error`` the exception that stopped the run (``None`` if it trained), and ``details`` what a
    bug shows besides its monitors (documented with each bug).
    """

    name: str
    history: History
    G: nn.Module
    D: nn.Module
    data: torch.Tensor
    z: torch.Tensor
    loss: str = "nonsaturating"
    gradient_penalty: Penalty | None = None
    error: BaseException | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def diagnose(self) -> list[Finding]:
        """:func:`doctor.diagnose` of this run, given everything the run knows about itself."""
        return diagnose(
            self.history,
            loss=self.loss,
            G=self.G,
            D=self.D,
            data=self.data,
            gradient_penalty=self.gradient_penalty,
            z=self.z,
            error=self.error,
        )


@dataclass(frozen=True)
class Bug:
    """One bug of the gallery: the wrong line, the right one, and a brief run that shows it.

    ``what`` is the buggy line and why it is wrong, ``fix`` the correct line, ``steps`` the length
    of the run :meth:`run` makes by default, and ``images`` whether it needs MNIST on disk
    (:func:`data.ensure_mnist` finds or downloads it).
    """

    name: str
    title: str
    what: str
    fix: str
    steps: int
    images: bool
    train: Callable[[int, int], BugRun] = field(repr=False)

    def run(self, steps: int | None = None, seed: int = 0) -> BugRun:
        """Train with the bug for ``steps`` steps (default :attr:`steps`) from seed ``seed``."""
        steps = self.steps if steps is None else steps
        _check_run_args(steps, seed)
        with _isolated(seed):
            return self.train(steps, seed)


def _check_run_args(steps: object, seed: object) -> None:
    """``ValueError`` unless ``steps`` is a positive int and ``seed`` a non-negative one."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int (training steps of the brief run), got {steps!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


@contextlib.contextmanager
def _isolated(seed: int) -> Iterator[None]:
    """Seed PyTorch's CPU stream with ``seed`` inside (weights, dropout) and run on one thread;
    the global stream and the thread count are put back afterwards."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------
# Set-ups and the loop every run shares
# ---------------------------------------------------------------------------------------


@dataclass
class _Setup:
    """Players and samplers of one run: ``real()`` gives a batch of data, ``codes()`` a batch of z."""

    G: nn.Module
    D: nn.Module
    real: Callable[[], torch.Tensor]
    codes: Callable[[], torch.Tensor]


def _ring(seed: int, G: nn.Module | None = None, D: nn.Module | None = None) -> _Setup:
    """The 2-D set-up: batches of :func:`data.ring8`, codes N(0, I) in 2-D, toy MLPs for G and D
    unless given (built from the global stream, which :func:`_isolated` has seeded)."""
    ring = data_module.ring8()
    gen = torch.Generator().manual_seed(seed)
    G = toy_mlp(TOY_LATENT, 2) if G is None else G
    D = toy_mlp(2, 1) if D is None else D
    return _Setup(
        G, D, lambda: ring.sample(BATCH, gen), lambda: torch.randn(BATCH, TOY_LATENT, generator=gen)
    )


def _mnist_pixels() -> torch.Tensor:
    """The 10,000 MNIST test images as raw uint8 pixels, shape (N, 1, 28, 28)."""
    from torchvision.datasets import MNIST

    raw = data_module.ensure_mnist()
    return MNIST(str(raw.parent.parent), train=False, download=False).data.unsqueeze(1)


def _images(seed: int, x: torch.Tensor) -> _Setup:
    """The MNIST set-up on images ``x``: a small MLP G (Tanh output) and D, codes (B, 100)."""
    gen = torch.Generator().manual_seed(seed)
    G = MLPGenerator(IMAGE_LATENT, hidden=(128,))
    D = MLPDiscriminator(hidden=(128,), dropout=0.0)
    return _Setup(
        G,
        D,
        lambda: x[torch.randint(len(x), (IMAGE_BATCH,), generator=gen)],
        lambda: torch.randn(IMAGE_BATCH, IMAGE_LATENT, generator=gen),
    )


def _adam(module: nn.Module, lr: float = LR, betas: tuple[float, float] = BETAS) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas)


def _monitors(
    loss_D: torch.Tensor,
    loss_G: torch.Tensor,
    real_out: torch.Tensor,
    fake_out: torch.Tensor,
    fake_out_g: torch.Tensor,
    grad_D: torch.Tensor,
    grad_G: torch.Tensor,
    out: Literal["logits", "probabilities", "scores"] = "logits",
) -> Stats:
    """The monitors of :func:`updates.train`, detached. ``d_real``, ``d_fake`` (D step) and
    ``d_fake_g`` (G step) are D's mean output as a probability: the sigmoid of logits, a
    probability D already outputs, or a WGAN critic's raw score (``out="scores"``)."""

    def mean(t: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(t) if out == "logits" else t).mean().detach()

    return {
        "loss_D": loss_D.detach(),
        "loss_G": loss_G.detach(),
        "d_real": mean(real_out),
        "d_fake": mean(fake_out),
        "d_fake_g": mean(fake_out_g),
        "grad_D": grad_D,
        "grad_G": grad_G,
    }


def _loop(step: Callable[[], Stats], steps: int) -> History:
    """Call ``step`` ``steps`` times, logging every step; stop after the first non-finite one."""
    history = History()
    for i in range(1, steps + 1):
        history.append(i, step())
        if not all(math.isfinite(values[-1]) for values in history.values.values()):
            break
    return history


def _crossentropy_step(setup: _Setup, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer) -> Stats:
    """One correct step of the non-saturating GAN, written out as the bugs' steps are."""
    G, D = setup.G, setup.D
    x, z = setup.real(), setup.codes()
    opt_D.zero_grad()
    l_real, l_fake = D(x), D(G(z).detach())
    loss_D = F.binary_cross_entropy_with_logits(
        l_real, torch.ones_like(l_real)
    ) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
    loss_D.backward()
    grad_D = grad_norm(D)
    opt_D.step()

    opt_G.zero_grad()
    l_fake_g = D(G(setup.codes()))
    loss_G = F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g))
    loss_G.backward()
    grad_G = grad_norm(G)
    opt_G.step()
    return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)


def correct(steps: int = 300, seed: int = 0, images: bool = False) -> BugRun:
    """The healthy baseline: the bugs' set-up and step with no bug, for their monitors' comparison.

    ``images=False`` is the 2-D ring with toy MLPs (the set-up of every bug but two);
    ``images=True`` is the MNIST set-up, images in [-1, 1] (``pixels / 127.5 - 1``, as
    :func:`data.load_mnist` scales them): the healthy twin of ``data_range``.
    """
    _check_run_args(steps, seed)
    with _isolated(seed):
        if images:
            setup = _images(seed, _mnist_pixels().float() / 127.5 - 1)
        else:
            setup = _ring(seed)
        opt_G, opt_D = _adam(setup.G), _adam(setup.D)
        history = _loop(lambda: _crossentropy_step(setup, opt_G, opt_D), steps)
        return BugRun("correct", history, setup.G, setup.D, setup.real(), setup.codes())


# ---------------------------------------------------------------------------------------
# The bugs, one training step each
# ---------------------------------------------------------------------------------------


def _swapped_gradients(steps: int, seed: int) -> BugRun:
    """Each optimiser is built on the other player's parameters.

    The D step does not detach G(z), as many loops do not (harmless when G's gradients are
    cleared before G's own step): so ``opt_D`` moves G along the gradient of D's loss (the
    fakes flee towards what D calls fake) and ``opt_G`` moves D along G's (D learns to call the
    fakes real). Symptom: d_fake climbs to 1 with d_real beside it, loss_D rises far above
    log 4 and loss_G falls to 0, the two players' losses moving the wrong way.
    """
    setup = _ring(seed)
    G, D = setup.G, setup.D
    opt_G = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)  # the bug: G's optimiser on D
    opt_D = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)  # the bug: D's optimiser on G

    def step() -> Stats:
        x, z = setup.real(), setup.codes()
        opt_D.zero_grad()
        l_real, l_fake = D(x), D(G(z))
        loss_D = F.binary_cross_entropy_with_logits(
            l_real, torch.ones_like(l_real)
        ) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
        loss_D.backward()
        grad_D = grad_norm(D)
        opt_D.step()  # moves G, along the gradient of D's loss

        opt_G.zero_grad()
        l_fake_g = D(G(setup.codes()))
        loss_G = F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g))
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()  # moves D, along the gradient of G's loss
        return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)

    history = _loop(step, steps)
    return BugRun("swapped_gradients", history, G, D, setup.real(), setup.codes())


def _misplaced_log(steps: int, seed: int) -> BugRun:
    """D outputs a probability (a Sigmoid at its end) and the log closes one bracket too late.

    ``D(x) + log(1 - D(G(z)))`` is below 0 as soon as D(x) < -log(1 - D(G(z))); at the start,
    D = 1/2 everywhere, it is 1/2 + log(1/2) = -0.19, and its log is NaN at the first step.
    ``details["argument"]``: the smallest value the log was taken of at the first step.
    """
    G = toy_mlp(TOY_LATENT, 2)
    D = nn.Sequential(toy_mlp(2, 1), nn.Sigmoid())  # D(x) as a probability, as in the paper's notation
    setup = _ring(seed, G, D)
    opt_G, opt_D = _adam(G), _adam(D)
    seen: dict[str, float] = {}

    def step() -> Stats:
        x, z = setup.real(), setup.codes()
        opt_D.zero_grad()
        d_real, d_fake = D(x), D(G(z).detach())
        with torch.no_grad():
            seen.setdefault("argument", float((d_real + torch.log(1 - d_fake)).min()))
        loss_D = -torch.log(d_real + torch.log(1 - d_fake)).mean()  # the bug: log(D(x) + log(1 - D(G(z))))
        loss_D.backward()
        grad_D = grad_norm(D)
        opt_D.step()

        opt_G.zero_grad()
        d_fake_g = D(G(setup.codes()))
        loss_G = -torch.log(d_fake_g).mean()
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, d_real, d_fake, d_fake_g, grad_D, grad_G, out="probabilities")

    history = _loop(step, steps)
    return BugRun("misplaced_log", history, G, D, setup.real(), setup.codes(), details=dict(seen))


def _data_range(steps: int, seed: int) -> BugRun:
    """MNIST pixels scaled to [0, 1] (``ToTensor``'s range, without the ``Normalize`` after it)
    for a generator that ends in Tanh, whose range is (-1, 1).

    It trains: [0, 1] lies inside (-1, 1), and :func:`data.check_images` accepts the batch. But
    the background, most of every image, is at 0, Tanh's midpoint, where the rest of the package
    (and every plot of samples) expects -1: the samples show grey on grey, and half of G's output
    range goes unused. ``details``: ``data_min``, ``data_max`` of the real batch and
    ``fake_min``, ``fake_max`` of G's samples at the end.
    """
    x = _mnist_pixels().float() / 255  # the bug: pixels / 255 (range [0, 1]) for a Tanh generator
    setup = _images(seed, x)
    opt_G, opt_D = _adam(setup.G), _adam(setup.D)
    history = _loop(lambda: _crossentropy_step(setup, opt_G, opt_D), steps)
    batch, z = setup.real(), setup.codes()
    with torch.no_grad():
        fake = setup.G(z)
    details = {
        "data_min": float(batch.min()),
        "data_max": float(batch.max()),
        "fake_min": float(fake.min()),
        "fake_max": float(fake.max()),
    }
    return BugRun("data_range", history, setup.G, setup.D, batch, z, details=details)


def _log_sigmoid_underflow(steps: int, seed: int) -> BugRun:
    """The cross-entropies written as logs of sigmoids of D's logits, with D's learning rate 100
    times the others' so that D turns confident within the brief run.

    In float32 ``1 - torch.sigmoid(l)`` is exactly 0 once l > 17 (sigmoid(l) rounds to 1), and
    ``torch.sigmoid(l)`` is 0 once l < -88: their logs are -inf, the losses inf, the gradients NaN.
    The fast D makes steep logits, and the first fake that lands on its real side with a logit
    above 17 ends the run. ``details`` at the step that broke: ``max_fake_logit`` and
    ``min_fake_logit`` (D's logits on the fakes), ``naive`` (the D loss as written) and
    ``softplus`` (the same loss on the same logits through softplus, finite).
    """
    setup = _ring(seed)
    G, D = setup.G, setup.D
    opt_G, opt_D = _adam(G), _adam(D, lr=100 * LR)  # a D fast enough to be confident within the run
    seen: dict[str, float] = {}

    def step() -> Stats:
        x, z = setup.real(), setup.codes()
        opt_D.zero_grad()
        l_real, l_fake = D(x), D(G(z).detach())
        # the bug: log(sigmoid(l)) and log(1 - sigmoid(l)) instead of -softplus(-l) and -softplus(l)
        loss_D = -(torch.log(torch.sigmoid(l_real)).mean() + torch.log(1 - torch.sigmoid(l_fake)).mean())
        if not torch.isfinite(loss_D):
            with torch.no_grad():
                seen.update(
                    max_fake_logit=l_fake.max().item(),
                    min_fake_logit=l_fake.min().item(),
                    naive=loss_D.item(),
                    softplus=(F.softplus(-l_real).mean() + F.softplus(l_fake).mean()).item(),
                )
        loss_D.backward()
        grad_D = grad_norm(D)
        opt_D.step()

        opt_G.zero_grad()
        l_fake_g = D(G(setup.codes()))
        loss_G = -torch.log(torch.sigmoid(l_fake_g)).mean()  # the same bug in G's loss
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)

    history = _loop(step, steps)
    return BugRun("log_sigmoid_underflow", history, G, D, setup.real(), setup.codes(), details=dict(seen))


def _noise_4d_linear(steps: int, seed: int) -> BugRun:
    """Codes shaped (B, 100, 1, 1), a convolutional generator's input, fed to a linear generator.

    The package's :class:`models.MLPGenerator` refuses them with a ``ValueError`` that names the
    shapes (``error``). A plain ``nn.Linear`` stack reads the last dimension, of size 1, and fails
    at its first layer with "mat1 and mat2 shapes cannot be multiplied (6400x1 and 100x128)",
    which names matrices, not codes (``details["plain_error"]``, the plain stack as
    ``details["plain_G"]``). Either way the run stops at its first step, before any logging.
    """
    setup = _images(seed, _mnist_pixels().float() / 127.5 - 1)
    G, D = setup.G, setup.D
    plain_G = nn.Sequential(
        nn.Linear(IMAGE_LATENT, 128),
        nn.LeakyReLU(0.2),
        nn.Linear(128, 784),
        nn.Tanh(),
        nn.Unflatten(1, (1, 28, 28)),
    )

    def codes() -> torch.Tensor:
        return setup.codes().view(IMAGE_BATCH, IMAGE_LATENT, 1, 1)  # the bug: torch.randn(B, 100, 1, 1)

    def step(G: nn.Module, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer) -> Stats:
        x, z = setup.real(), codes()
        opt_D.zero_grad()
        l_real, l_fake = D(x), D(G(z).detach())
        loss_D = F.binary_cross_entropy_with_logits(
            l_real, torch.ones_like(l_real)
        ) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
        loss_D.backward()
        grad_D = grad_norm(D)
        opt_D.step()

        opt_G.zero_grad()
        l_fake_g = D(G(codes()))
        loss_G = F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g))
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)

    errors: list[BaseException | None] = []
    histories: list[History] = []
    for generator in (G, plain_G):
        opt_G, opt_D = _adam(generator), _adam(D)
        try:
            histories.append(_loop(functools.partial(step, generator, opt_G, opt_D), steps))
            errors.append(None)
        except (ValueError, RuntimeError) as err:
            histories.append(History())
            errors.append(err)
    details = {"plain_error": errors[1], "plain_G": plain_G}
    return BugRun(
        "noise_4d_linear", histories[0], G, D, setup.real(), codes(), error=errors[0], details=details
    )


def _pm1_labels_bce(steps: int, seed: int) -> BugRun:
    """Labels -1 for fakes (hinge or LSGAN habits) in a binary cross-entropy.

    BCE with logits l and target y is softplus(l) - y l; for y = -1 that is softplus(l) + l,
    which goes to -inf as l does: D can lower its loss forever by pushing the fakes' logits
    down, so loss_D falls below 0 (impossible with labels in {0, 1}) and keeps falling.
    """
    setup = _ring(seed)
    G, D = setup.G, setup.D
    opt_G, opt_D = _adam(G), _adam(D)

    def step() -> Stats:
        x, z = setup.real(), setup.codes()
        opt_D.zero_grad()
        l_real, l_fake = D(x), D(G(z).detach())
        loss_D = F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real)) + (
            F.binary_cross_entropy_with_logits(l_fake, -torch.ones_like(l_fake))  # the bug: label -1
        )
        loss_D.backward()
        grad_D = grad_norm(D)
        opt_D.step()

        opt_G.zero_grad()
        l_fake_g = D(G(setup.codes()))
        loss_G = F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g))
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)

    history = _loop(step, steps)
    return BugRun("pm1_labels_bce", history, G, D, setup.real(), setup.codes())


def gradient_penalty(
    D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, lam: float = GP_WEIGHT
) -> torch.Tensor:
    r"""WGAN-GP's penalty (Gulrajani et al. 2017): lam * E[(||grad_x D(x_hat)||_2 - 1)^2].

    One weight eps ~ U[0, 1] per sample, x_hat = eps x_real + (1 - eps) x_fake on the segment
    between each real and fake pair; the norm is over the whole flattened sample (all channels
    and pixels of an image), and the mean over the batch. The gradient is taken with
    ``create_graph=True``, so the penalty trains D's weights. D must treat each sample on its own
    (no batch norm): then the gradient of the summed outputs is each output's own gradient.
    """
    x_hat, _ = losses.interpolates(x_real, x_fake)  # one weight per sample: (B, 1, ..., 1)
    x_hat.requires_grad_(True)
    return losses.gradient_penalty(D(x_hat), x_hat, lam)


def _penalty_per_coordinate(
    D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, lam: float = GP_WEIGHT
) -> torch.Tensor:
    """:func:`gradient_penalty` with the bug of ``per_pixel_gp_weight``: one weight per coordinate."""
    eps = torch.rand_like(x_real)  # the bug: shape of x, one weight per pixel, not one per sample
    x_hat = (eps * x_real + (1 - eps) * x_fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return lam * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _wgan_gp(name: str, seed: int, steps: int, D: nn.Module, penalty: Penalty) -> BugRun:
    """A WGAN-GP run on the ring: ``N_CRITIC`` critic steps on E[D(fake)] - E[D(real)] + penalty,
    then one G step on -E[D(G(z))]. ``d_real`` and ``d_fake`` are the critic's mean raw scores;
    ``details["wasserstein_estimate"]`` is their difference d_real - d_fake over the last third."""
    setup = _ring(seed, D=D)
    G = setup.G
    opt_G, opt_D = _adam(G, WGAN_LR_G, WGAN_BETAS), _adam(D, WGAN_LR_D, WGAN_BETAS)

    def step() -> Stats:
        for _ in range(N_CRITIC):
            x, z = setup.real(), setup.codes()
            opt_D.zero_grad()
            x_fake = G(z).detach()
            s_real, s_fake = D(x), D(x_fake)
            loss_D = s_fake.mean() - s_real.mean() + penalty(D, x, x_fake)
            loss_D.backward()
            grad_D = grad_norm(D)
            opt_D.step()

        opt_G.zero_grad()
        s_fake_g = D(G(setup.codes()))
        loss_G = -s_fake_g.mean()
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, s_real, s_fake, s_fake_g, grad_D, grad_G, out="scores")

    history = _loop(step, steps)
    late = slice(-max(1, len(history.step) // 3), None)
    gap = [r - f for r, f in zip(history["d_real"][late], history["d_fake"][late], strict=True)]
    details = {"wasserstein_estimate": sum(gap) / len(gap)}
    return BugRun(name, history, G, D, setup.real(), setup.codes(), "wgan-gp", penalty, details=details)


def _bn_in_wgan_gp_critic(steps: int, seed: int) -> BugRun:
    """A WGAN-GP critic with batch norm: the penalty's per-sample gradients mix across the batch.

    The penalty constrains ||grad_x D(x)|| at each interpolate, a property of D as a function of
    one sample. Batch norm makes each output a function of the whole batch (every sample moves
    the mean and variance the others are normalised by), so the gradient of the summed outputs
    with respect to one sample is no longer that sample's gradient, and the penalty constrains
    something else. It trains, and the losses look fine; the structure of D gives it away. One
    sign in the monitors: a batch is normalised by its own statistics, so the critic's mean scores
    on a real batch and on a fake one come out nearly equal, and its estimate of the Wasserstein
    distance, ``details["wasserstein_estimate"]`` (d_real - d_fake), stays near 0.
    """
    critic = nn.Sequential(
        nn.Linear(2, 64),
        nn.BatchNorm1d(64),  # the bug: batch norm in a critic with a gradient penalty
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, 1),
    )
    return _wgan_gp("bn_in_wgan_gp_critic", seed, steps, critic, gradient_penalty)


def _per_pixel_gp_weight(steps: int, seed: int) -> BugRun:
    """The interpolation weight drawn per coordinate (``torch.rand_like(x)``) instead of per sample.

    With one weight per coordinate x_hat = eps * x_real + (1 - eps) * x_fake lies in the box
    spanned by the pair, not on the segment between them, so the penalty holds D's slope to 1
    at points that are not on the straight lines the optimal critic's gradient follows
    (Gulrajani et al. 2017, Proposition 1). It trains; a probe of the penalty function finds it.
    """
    return _wgan_gp("per_pixel_gp_weight", seed, steps, toy_mlp(2, 1), _penalty_per_coordinate)


def _detached_fake_in_g_step(steps: int, seed: int) -> BugRun:
    """``G(z).detach()`` copied from the D step into the G step: G's loss has no path back to G.

    ``loss_G.backward()`` still runs (D's weights require gradients), G's parameters get none,
    and ``opt_G.step()`` skips them: grad_G is exactly 0, G never moves, and D, facing a fixed
    G, wins outright (d_real -> 1, d_fake -> 0, loss_G climbing).
    """
    setup = _ring(seed)
    G, D = setup.G, setup.D
    opt_G, opt_D = _adam(G), _adam(D)

    def step() -> Stats:
        x, z = setup.real(), setup.codes()
        opt_D.zero_grad()
        l_real, l_fake = D(x), D(G(z).detach())
        loss_D = F.binary_cross_entropy_with_logits(
            l_real, torch.ones_like(l_real)
        ) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
        loss_D.backward()
        grad_D = grad_norm(D)
        opt_D.step()

        opt_G.zero_grad()
        l_fake_g = D(G(setup.codes()).detach())  # the bug: detach() in the G step
        loss_G = F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g))
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)

    history = _loop(step, steps)
    return BugRun("detached_fake_in_g_step", history, G, D, setup.real(), setup.codes())


def _zero_grad_misplaced(steps: int, seed: int) -> BugRun:
    """``opt_D.zero_grad()`` between ``loss_D.backward()`` and ``opt_D.step()``.

    ``zero_grad`` sets the gradients to None (PyTorch >= 2.0), so the step that follows has
    nothing to apply: grad_D is exactly 0 and D never moves, while G learns to please the frozen,
    random D (d_fake climbs towards 1). Of the two ways to misplace the call this is the one
    shown; never calling it instead sums the gradients of every step so far, which Adam's
    normalisation partly hides (its symptom, a grad_D growing step after step, is a trend).
    """
    setup = _ring(seed)
    G, D = setup.G, setup.D
    opt_G, opt_D = _adam(G), _adam(D)

    def step() -> Stats:
        x, z = setup.real(), setup.codes()
        l_real, l_fake = D(x), D(G(z).detach())
        loss_D = F.binary_cross_entropy_with_logits(
            l_real, torch.ones_like(l_real)
        ) + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake))
        loss_D.backward()
        opt_D.zero_grad()  # the bug: after backward(), so the step below has no gradient
        grad_D = grad_norm(D)
        opt_D.step()

        opt_G.zero_grad()
        l_fake_g = D(G(setup.codes()))
        loss_G = F.binary_cross_entropy_with_logits(l_fake_g, torch.ones_like(l_fake_g))
        loss_G.backward()
        grad_G = grad_norm(G)
        opt_G.step()
        return _monitors(loss_D, loss_G, l_real, l_fake, l_fake_g, grad_D, grad_G)

    history = _loop(step, steps)
    return BugRun("zero_grad_misplaced", history, G, D, setup.real(), setup.codes())


def _eval_mode_left_on(steps: int, seed: int) -> BugRun:
    """``G.eval()`` and ``D.eval()`` for a look at the samples before training, never undone.

    G has batch norm and D dropout. In eval mode batch norm normalises with its running
    statistics, which it then never updates (they stay at mean 0, variance 1: no normalisation
    at all), and dropout is off, so D trains without the regulariser it was built with. Nothing
    shows in the losses; the models' modes do. ``details["num_batches_tracked"]``: how many
    batches G's first batch norm layer counted (0).
    """
    G = nn.Sequential(
        nn.Linear(TOY_LATENT, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.BatchNorm1d(64),
        nn.ReLU(),
        nn.Linear(64, 2),
    )
    D = nn.Sequential(
        nn.Linear(2, 64),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(64, 64),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.3),
        nn.Linear(64, 1),
    )
    setup = _ring(seed, G, D)
    opt_G, opt_D = _adam(G), _adam(D)
    G.eval()  # the bug: eval mode for a preview of the samples, and no G.train() / D.train() after it
    D.eval()
    with torch.no_grad():
        details: dict[str, Any] = {"preview": G(setup.codes())}
    history = _loop(lambda: _crossentropy_step(setup, opt_G, opt_D), steps)
    details["num_batches_tracked"] = int(G[1].num_batches_tracked)
    return BugRun("eval_mode_left_on", history, G, D, setup.real(), setup.codes(), details=details)


def _bug(
    name: str,
    title: str,
    what: str,
    fix: str,
    train: Callable[[int, int], BugRun],
    steps: int = 300,
    images: bool = False,
) -> Bug:
    return Bug(name, title, what, fix, steps, images, train)


#: The gallery, by name, in the order a chapter shows it. Read-only.
BUGS: Mapping[str, Bug] = MappingProxyType(
    {
        bug.name: bug
        for bug in (
            _bug(
                "swapped_gradients",
                "The optimisers swapped",
                "opt_G = Adam(D.parameters()) and opt_D = Adam(G.parameters()): each optimiser steps the "
                "other player's weights, so D follows G's gradient (towards calling the fakes real) and G "
                "follows D's (towards looking fake).",
                "opt_D = Adam(D.parameters(), lr, betas); opt_G = Adam(G.parameters(), lr, betas)",
                _swapped_gradients,
                steps=200,
            ),
            _bug(
                "misplaced_log",
                "A log around the sum",
                "loss_D = -log(D(x) + log(1 - D(G(z)))): the first log closes one bracket too late, and "
                "its argument D(x) + log(1 - D(G(z))) is negative (1/2 + log 1/2 at the start): a NaN loss.",
                "loss_D = -(log(D(x)) + log(1 - D(G(z)))).mean(), or on logits: "
                "F.softplus(-l_real).mean() + F.softplus(l_fake).mean()",
                _misplaced_log,
                steps=50,
            ),
            _bug(
                "data_range",
                "Images in [0, 1] for a Tanh generator",
                "x = pixels / 255 (ToTensor without Normalize) puts the images in [0, 1] while G's Tanh "
                "outputs (-1, 1): the background sits at Tanh's midpoint instead of -1, half of G's "
                "range is never used, and samples are read and shown in the wrong range.",
                "x = pixels / 127.5 - 1 (ToTensor() then Normalize((0.5,), (0.5,))), as data.load_mnist does",
                _data_range,
                steps=200,
                images=True,
            ),
            _bug(
                "log_sigmoid_underflow",
                "log(sigmoid(l)) on a confident D",
                "loss_D = -(log(sigmoid(l_real)) + log(1 - sigmoid(l_fake))): in float32 1 - sigmoid(l) is "
                "0 once l > 17 and sigmoid(l) is 0 once l < -88, so a confident D makes a log of 0: "
                "inf losses and NaN gradients.",
                "loss_D = F.softplus(-l_real).mean() + F.softplus(l_fake).mean() (= "
                "F.binary_cross_entropy_with_logits with labels 1 and 0); "
                "loss_G = F.softplus(-l_fake_g).mean()",
                _log_sigmoid_underflow,
                steps=300,
            ),
            _bug(
                "noise_4d_linear",
                "Convolutional codes into a linear generator",
                "z = torch.randn(B, 100, 1, 1) (a DCGAN's codes) for a linear G: nn.Linear reads the last "
                "dimension, here of size 1, not the 100 of the codes.",
                "z = torch.randn(B, 100) for a linear G (or z.flatten(1) before its first layer)",
                _noise_4d_linear,
                steps=10,
                images=True,
            ),
            _bug(
                "pm1_labels_bce",
                "Labels -1 and +1 in a cross-entropy",
                "F.binary_cross_entropy_with_logits(l_fake, -torch.ones_like(l_fake)): BCE is only bounded "
                "below for labels in [0, 1]; with -1 it is softplus(l) + l, and D lowers its loss without "
                "end by pushing the fakes' logits down.",
                "F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake)) (labels 1 and 0; -1 "
                "and +1 belong to hinge and least-squares losses)",
                _pm1_labels_bce,
                steps=200,
            ),
            _bug(
                "bn_in_wgan_gp_critic",
                "Batch norm in a WGAN-GP critic",
                "nn.BatchNorm1d in the critic of a gradient-penalty WGAN: each output then depends on the "
                "whole batch, so the gradient the penalty constrains is not the per-sample gradient of D.",
                "no batch norm in the critic: nn.LayerNorm or no normalisation (Gulrajani et al. 2017)",
                _bn_in_wgan_gp_critic,
                steps=200,
            ),
            _bug(
                "per_pixel_gp_weight",
                "One interpolation weight per pixel",
                "eps = torch.rand_like(x_real): one weight per coordinate puts x_hat anywhere in the box "
                "spanned by the pair, off the segment between x_real and x_fake where the penalty belongs.",
                "eps = torch.rand(B, 1, ..., 1) (one weight per sample, broadcast over its coordinates)",
                _per_pixel_gp_weight,
                steps=200,
            ),
            _bug(
                "detached_fake_in_g_step",
                "detach() in the G step",
                "loss_G = bce(D(G(z).detach()), 1): the detach copied from the D step cuts G's loss from G, "
                "so G gets no gradient (grad_G = 0) and never moves.",
                "loss_G = bce(D(G(z)), 1): detach the fakes in the D step only",
                _detached_fake_in_g_step,
                steps=200,
            ),
            _bug(
                "zero_grad_misplaced",
                "zero_grad() between backward() and step()",
                "loss_D.backward(); opt_D.zero_grad(); opt_D.step(): the gradient is erased before the step "
                "that should apply it, so D never moves (grad_D = 0).",
                "opt_D.zero_grad(); loss_D.backward(); opt_D.step()",
                _zero_grad_misplaced,
                steps=200,
            ),
            _bug(
                "eval_mode_left_on",
                "eval() left on",
                "G.eval(); D.eval() for a preview, never undone: G's batch norm trains on frozen running "
                "statistics (never updated) and D trains without its dropout.",
                "G.train(); D.train() before training (and eval() only around sampling)",
                _eval_mode_left_on,
                steps=200,
            ),
        )
    }
)
