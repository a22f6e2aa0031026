"""What defines a run: :class:`TrainConfig` for the MNIST trainer, its named :data:`RECIPES`
(chapters 3-7) and which fields a resumed run may change (:data:`RESUMABLE_FIELDS`,
:func:`check_changes`); :class:`ToyConfig` for a GAN on a 2-D mixture (chapters 2 and 6: the
explorer, the toy sweeps and the bug gallery).

The trainer (:mod:`gan_tutorial.trainer`) takes a config; the command line makes a flag of every
field; a checkpoint stores it, so a run can be rebuilt and continued.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from . import models
from .losses import get_loss

#: The optimisers a run may use (both players use the same kind; betas are Adam's only).
OPTIMIZERS = ("adam", "rmsprop")
#: The augmentations of the images D sees (chapter 8, :mod:`gan_tutorial.augment`).
AUGMENTS = ("none", "diffaugment", "ada")


@dataclass
class TrainConfig:
    """Everything that defines a run. Defaults are the classic recipe of introductory GAN articles.

    ``lr_G``/``lr_D`` and ``betas`` feed Adam; beta1 = 0.5 instead of 0.9 because the
    default momentum oscillates in GAN games (Radford et al. 2016). The last three fields
    (:data:`RESUMABLE_FIELDS`) say how a run is watched and saved, not what it computes: a resumed
    run may change them. Each field's ``help`` is also its command-line flag's.
    """

    model: str = field(default="mlp", metadata={"help": "G and D, a key of models.MODELS"})
    model_args: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "options of the model family (models.options)"}
    )
    loss: str = field(
        default="nonsaturating",
        metadata={"help": "minimax, nonsaturating, lsgan, wgan, wgan-gp, hinge or rpgan (losses.LOSSES)"},
    )
    latent_dim: int = field(default=100, metadata={"help": "size of the codes z"})
    batch_size: int = field(default=64, metadata={"help": "images per D and G step"})
    lr_G: float = field(default=2e-4, metadata={"help": "Adam's learning rate for G"})
    lr_D: float = field(default=2e-4, metadata={"help": "Adam's learning rate for D"})
    beta1: float = field(default=0.5, metadata={"help": "Adam's beta1 (0.5: Radford et al. 2016)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam's beta2"})
    dropout: float = field(default=0.3, metadata={"help": "dropout in D after each hidden layer"})
    ema: float = field(default=0.0, metadata={"help": "decay of a moving average of G's weights (0: none)"})
    ema_warmup: bool = field(
        default=False, metadata={"help": "the average's decay starts low: min(ema, (1 + t) / (10 + t))"}
    )
    r1: float = field(default=0.0, metadata={"help": "weight gamma of the R1 penalty on D at real images"})
    r1_every: int = field(default=4, metadata={"help": "apply R1 every N steps, weighted N times (lazy)"})
    r2: float = field(default=0.0, metadata={"help": "weight gamma of the R2 penalty on D at the fakes"})
    gp: float = field(
        default=0.0,
        metadata={"help": "WGAN-GP's gradient-penalty weight lambda (0: the loss's own, 10 for wgan-gp)"},
    )
    clip: float = field(
        default=0.0, metadata={"help": "clip D's weights to [-clip, clip] after each step (WGAN)"}
    )
    spectral_norm: bool = field(
        default=False, metadata={"help": "spectral normalisation of D's layers (Miyato et al. 2018)"}
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "one-sided label smoothing: real targets 1 - s (cross-entropy losses)"}
    )
    instance_noise: float = field(
        default=0.0, metadata={"help": "std of Gaussian noise on every image D sees, constant over the run"}
    )
    augment: str = field(
        default="none",
        metadata={"help": "augment every image D sees: none, diffaugment (always) or ada (p steered by r_t)"},
    )
    ada_target: float = field(default=0.6, metadata={"help": "ADA's target for r_t = E[sign D(x_real)]"})
    ada_images: int = field(
        default=20_000,
        metadata={
            "help": "images over which ADA's p can go from 0 to 1 (the paper's 500,000 suits far longer runs)"
        },
    )
    subset: int = field(
        default=0,
        metadata={"help": "train on a class-balanced subset of N images chosen by the seed (0: all)"},
    )
    optimizer: str = field(default="adam", metadata={"help": "adam or rmsprop (WGAN's), for both players"})
    k: int = field(default=1, metadata={"help": "D steps per G step"})
    seed: int = field(default=0, metadata={"help": "seed of the weights, batches, codes and dropout"})
    log_every: int = field(default=100, metadata={"help": "steps between host read-backs of the monitors"})
    checkpoint_every: int = field(
        default=0, metadata={"help": "also checkpoint every N steps (0: by time only)"}
    )
    checkpoint_seconds: float = field(
        default=60.0, metadata={"help": "checkpoint at least this often, in seconds of wall time (0: never)"}
    )

    def __post_init__(self) -> None:
        self.model = models.resolve(self.model)  # a name of version 0.1 maps to today's
        if not isinstance(self.model_args, dict):
            raise ValueError(f"model_args must be a dict of the model's options, got {self.model_args!r}")
        models.check_options(self.model, self.model_args)
        get_loss(self.loss)  # raises for an unknown loss
        numbers = ("lr_G", "lr_D", "beta1", "beta2", "dropout", "ema", "r1", "r2", "gp", "clip")
        for name in (*numbers, "label_smoothing", "instance_noise", "checkpoint_seconds"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        for name in ("latent_dim", "batch_size", "k", "log_every", "r1_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr_G <= 0 or self.lr_D <= 0:
            raise ValueError(f"learning rates must be positive, got lr_G={self.lr_G}, lr_D={self.lr_D}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema (a decay) must be in [0, 1), 0 to keep no average; got {self.ema}")
        for name in ("r1", "r2", "gp", "clip", "instance_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, 0 for none; got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), 0 for none; got {self.label_smoothing}")
        if self.label_smoothing and not get_loss(self.loss).cross_entropy:
            raise ValueError(
                f"label_smoothing needs a cross-entropy loss (minimax or nonsaturating), not {self.loss!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        for name in ("spectral_norm", "ema_warmup"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ValueError(f"Adam's betas must be in [0, 1), got beta1={self.beta1}, beta2={self.beta2}")

        if self.augment not in AUGMENTS:
            raise ValueError(f"unknown augment {self.augment!r}; choose one of {', '.join(AUGMENTS)}")
        if not 0 < self.ada_target < 1 or self.ada_images < 1:
            raise ValueError(
                f"ada_target must be in (0, 1) and ada_images >= 1, "
                f"got {self.ada_target} and {self.ada_images}"
            )
        if self.subset != 0 and self.subset < 10:
            raise ValueError(
                f"subset must be 0 (all images) or at least 10 (one per digit), got {self.subset}"
            )
        if self.checkpoint_every < 0 or self.checkpoint_seconds < 0:
            raise ValueError(
                "checkpoint_every and checkpoint_seconds must be >= 0 (0: off), got "
                f"{self.checkpoint_every} and {self.checkpoint_seconds}"
            )

    @property
    def penalty(self) -> float:
        """The gradient penalty's weight this run uses: ``gp``, or the loss's own (10 for wgan-gp)."""
        return self.gp or get_loss(self.loss).gp


def build_models(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """``(G, D)`` for ``config.model`` with ``config.model_args`` (:func:`models.build`), D
    spectrally normalised if ``config.spectral_norm`` (:func:`models.spectral_norm_`)."""
    G, D = models.build(config.model, config.latent_dim, config.dropout, **config.model_args)
    if config.spectral_norm:
        models.spectral_norm_(D)
    return G, D


#: Fields of :class:`TrainConfig` that a resumed run may change: how it is watched and saved.
RESUMABLE_FIELDS = ("log_every", "checkpoint_every", "checkpoint_seconds")


#: Named starting points. ``classic`` is the recipe of introductory articles (batch 64, Adam 2e-4,
#: dropout 0.3). ``fast`` is chapter 3's recipe for better samples in the same wall time: batch
#: norm in G's hidden layers, Adam 1e-3 for both players, and samples from a moving average
#: of G's weights (decay 0.998). ``dcgan`` is chapter 4's: the DCGAN with batch norm in G only,
#: G narrower (ngf 24) and D one 3 x 3 convolution deeper (``dcgan-bn-g-deep-d``), the R1 penalty
#: on D (weight 0.5, lazily every 4 steps), batch 32, Adam 2e-3, and an average. Chapter 6 adds
#: ``wgan`` and ``wgan-gp`` (the papers' settings) and ``r3gan`` (chapter 4's with R3GAN's loss);
#: chapter 7 ``cgan``, asked for a digit.
_DCGAN = TrainConfig(
    model="dcgan-bn-g-deep-d", dropout=0.0, batch_size=32, lr_G=2e-3, lr_D=2e-3, ema=0.999, r1=0.5
)
# chapter 6: Arjovsky et al. 2017's WGAN (RMSProp 5e-5, weights clipped to 0.01, 5 critic steps per G
# step), sampled from an average with a warm-up (its iterations are few on a CPU: a plain average would
# keep the initial G)
_WGAN = TrainConfig(
    model="dcgan-bn-g", loss="wgan", dropout=0.0, optimizer="rmsprop", lr_G=5e-5, lr_D=5e-5, clip=0.01, k=5,
    ema=0.999, ema_warmup=True,
)  # fmt: skip
RECIPES: dict[str, TrainConfig] = {
    "classic": TrainConfig(),
    "fast": TrainConfig(model="mlp-bn", lr_G=1e-3, lr_D=1e-3, ema=0.998),
    "dcgan": _DCGAN,
    "wgan": _WGAN,
    # Gulrajani et al. 2017's WGAN-GP: the same critic steps and average, the penalty instead of
    # clipping (lambda 10 through the loss; no batch norm in the critic), Adam 1e-4, betas (0.5, 0.9)
    "wgan-gp": dataclasses.replace(
        _WGAN, loss="wgan-gp", optimizer="adam", lr_G=1e-4, lr_D=1e-4, beta2=0.9, clip=0.0
    ),
    # chapter 6's tuned recipe: chapter 4's networks and budget with R3GAN's objective (Huang et al.
    # 2024): the relativistic pairing loss with R1 and R2 (each 0.5, lazily every 4 steps) and
    # Adam's beta1 = 0, beta2 = 0.99 as in their paper
    "r3gan": dataclasses.replace(_DCGAN, loss="rpgan", beta1=0.0, beta2=0.99, r2=0.5),
    # chapter 7's conditional GAN: chapter 4's recipe with the label given to D by projection
    # (Miyato & Koyama 2018), the better of the two conditionings at equal time in chapter 7
    "cgan": dataclasses.replace(_DCGAN, model="cgan-projection"),
    # for a GPU with CUDA graphs, where a step costs about the same from batch 32 to 128
    # (chapter 4, section 8): larger batches, and a longer average for ~10x more steps; the
    # pair is the one measured there, G at ngf 32 and D without the extra convolution
    "dcgan-gpu": dataclasses.replace(_DCGAN, model="dcgan-bn-g", batch_size=128, ema=0.9999),
}


@dataclass(frozen=True)
class ToyConfig:
    """One GAN on a 2-D mixture (chapters 2 and 6): networks, optimiser, budget and stabilisers.

    G and D are :func:`~gan_tutorial.models.toy.toy_mlp` nets of ``depth`` hidden layers of
    width ``hidden``, trained with Adam (``lr_G``, ``lr_D``, ``beta1``, ``beta2``) for ``steps``
    iterations of ``k`` D steps and one G step on batches of ``batch_size``. The options:

    * ``decay_to`` - both learning rates fall linearly to this fraction of their start over
      the run (1.0: constant; chapter 2's recipe uses 0.01);
    * ``label_smoothing`` s - one-sided: D's target for real samples is 1 - s instead of 1,
      fakes keep 0 (Salimans et al. 2016); cross-entropy losses only;
    * ``instance_noise`` - the standard deviation of Gaussian noise added to everything D
      sees, real and fake, falling linearly to 0 over the first half of the run
      (Sonderby et al. 2016);
    * ``r1`` - the weight gamma of the R1 penalty on D at real samples (Mescheder et al. 2018).
    """

    loss: str = "nonsaturating"
    hidden: int = 64
    depth: int = 3
    latent_dim: int = 2
    batch_size: int = 256
    lr_G: float = 1e-3
    lr_D: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    k: int = 1
    steps: int = 2000
    decay_to: float = 1.0
    label_smoothing: float = 0.0
    instance_noise: float = 0.0
    r1: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss", get_loss(self.loss).name)  # "ns" -> "nonsaturating"
        for name in ("hidden", "depth", "latent_dim", "batch_size", "k", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr_G", "lr_D", "beta1", "beta2", "decay_to", "label_smoothing", "instance_noise", "r1"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.lr_G <= 0 or self.lr_D <= 0:
            raise ValueError(f"learning rates must be positive, got lr_G={self.lr_G}, lr_D={self.lr_D}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"Adam's betas must be in [0, 1), got beta1={self.beta1}, beta2={self.beta2}")
        if not 0 < self.decay_to <= 1:
            raise ValueError(
                f"decay_to (the final fraction of the learning rates) must be in (0, 1], got {self.decay_to}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(
                "label_smoothing s (real target 1 - s) must be in [0, 1), 0 for none; "
                f"got {self.label_smoothing}"
            )
        loss = get_loss(self.loss)
        if self.label_smoothing and not loss.cross_entropy:
            raise ValueError(
                f"label smoothing changes the cross-entropy targets, and loss {self.loss!r} has none: "
                "use loss 'nonsaturating' or 'minimax', or label_smoothing=0"
            )
        if loss.gp:
            raise ValueError(
                f"loss {self.loss!r} comes with a gradient penalty, which the toy runs do not add: "
                "choose another loss (the toy runs offer the R1 penalty, r1)"
            )
        if self.instance_noise < 0 or self.r1 < 0:
            raise ValueError(
                f"instance_noise and r1 must be >= 0 (0: off), got {self.instance_noise} and {self.r1}"
            )


def check_changes(config: TrainConfig, changes: dict[str, Any]) -> dict[str, Any]:
    """The ``changes`` a resumed run of ``config`` may make: the :data:`RESUMABLE_FIELDS` fields, and any
    other field only at the value it already has; a ``ValueError`` names every conflict."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ValueError(
            f"TrainConfig has no field {', '.join(unknown)}; its fields: {', '.join(sorted(fields))}"
        )
    conflicts = [
        f"{name}={value!r} (the checkpoint has {getattr(config, name)!r})"
        for name, value in changes.items()
        if name not in RESUMABLE_FIELDS and value != getattr(config, name)
    ]
    if conflicts:
        raise ValueError(
            "a resumed run continues as it was configured, and these settings differ from its "
            f"checkpoint: {'; '.join(conflicts)}. Drop them to continue the run, or start a new run"
        )
    return {name: value for name, value in changes.items() if name in RESUMABLE_FIELDS}
