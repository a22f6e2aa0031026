r"""Symptoms of GAN bugs read off a training run: :func:`diagnose` and the checks it is made of.

A bug in a GAN's training step rarely crashes; it leaves marks in the monitors that
:func:`updates.train` and the trainer record (``loss_D``, ``loss_G``, ``d_real``, ``d_fake``,
``grad_D``, ``grad_G``), in the data, and in the models. Each check below looks for one such
mark and returns a :class:`Finding` (what was seen, the bugs that produce it, the fix) or
``None``; :func:`diagnose` runs every check its inputs allow and :func:`report` prints the lot.
Every check can be called alone. The gallery of :mod:`gan_tutorial.bugs` is what they were
calibrated on: each of its bugs is named by one, and its healthy run by none.

The checks, by the codes of their findings:

* ``non_finite`` (:func:`check_finite`): a NaN or infinite loss, output of D or gradient norm;
* ``negative_loss`` (:func:`check_loss_sign`): a cross-entropy or least-squares loss below 0;
* ``no_gradient_G``, ``no_gradient_D`` (:func:`check_no_gradient`): a player's gradient exactly 0;
* ``d_rates_fakes_real`` (:func:`check_d_rates_fakes_real`): D calls the fakes real;
* ``d_wins`` (:func:`check_d_wins`): D wins outright while G's loss climbs;
* ``data_range`` (:func:`check_data_range`): data outside, or in half of, the range of G's output;
* ``batch_norm_with_penalty`` (:func:`check_batch_norm_with_penalty`): batch norm in a penalised D;
* ``eval_mode`` (:func:`check_train_mode`): models that trained in eval mode;
* ``code_shape`` (:func:`check_codes`): codes of the wrong shape for a linear G;
* ``gp_interpolates``, ``gp_formula``, ``gp_no_graph`` (:func:`check_gradient_penalty`): a gradient
  penalty taken off the segments between the pairs, with the wrong formula, or with no gradient
  to D's weights;
* ``run_failed`` (:func:`check_error`): the run stopped with an exception;
* ``too_few_steps`` (:func:`diagnose`): a history too short for the checks of trends.

Thresholds are deliberately coarse (a healthy run's monitors wander): D "calls the fakes real"
when its mean d_fake over the last third of the run is at least 0.9, D "wins" when d_real is at
least 0.95 and d_fake at most 0.05 there. A check that needs a monitor the history lacks is
skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .losses import GANLoss, d_loss_bce, d_loss_lsgan, get_loss
from .models import batch_norm_layers, has_batch_norm
from .updates import History

#: Logged steps the checks of trends (:func:`check_d_rates_fakes_real`, :func:`check_d_wins`) need.
MIN_STEPS = 5
#: The monitors :func:`check_finite` watches (those the history has).
WATCHED = ("loss_D", "loss_G", "d_real", "d_fake", "d_fake_g", "grad_D", "grad_G")
#: The weight lambda of the WGAN-GP penalty that :func:`check_gradient_penalty` expects by default.
GP_WEIGHT = 10.0

Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Finding:
    """One symptom: ``code`` (a short id), ``evidence`` (the numbers that show it), ``cause``
    (the bugs that produce it) and ``fix`` (what to change)."""

    code: str
    evidence: str
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.evidence}\n  likely cause: {self.cause}\n  fix: {self.fix}"


def report(findings: Sequence[Finding]) -> str:
    """The findings as text, one paragraph each; ``"no problem found"`` when there are none."""
    if not findings:
        return "no problem found"
    head = "1 problem found:" if len(findings) == 1 else f"{len(findings)} problems found:"
    return "\n\n".join([head, *map(str, findings)])


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


def loss_kind(loss: str | GANLoss | None) -> str:
    """What kind of game ``loss`` is: ``"cross_entropy"`` (``minimax``, ``nonsaturating``),
    ``"least_squares"`` (``lsgan``), ``"wasserstein"`` (any name with ``wgan`` in it) or
    ``"other"`` (a :class:`GANLoss` of one's own). ``None`` is :func:`updates.train`'s default,
    ``"nonsaturating"``. An unknown name is a ``ValueError``."""
    if loss is None:
        return "cross_entropy"
    if isinstance(loss, str) and "wgan" in loss.lower():
        return "wasserstein"
    try:
        game = get_loss(loss)
    except ValueError as err:
        raise ValueError(f"{err}, or a WGAN's ('wgan', 'wgan-gp'): the loss the run trained with") from None
    if game.d is d_loss_bce:
        return "cross_entropy"
    if game.d is d_loss_lsgan:
        return "least_squares"
    return "other"


def _check_history(history: object) -> History:
    """``history`` if it is a well-formed :class:`History`; a clear error otherwise."""
    if not isinstance(history, History):
        raise TypeError(
            f"history must be a gan_tutorial.updates.History (what updates.train returns, or a "
            f"Trainer's .history), got {type(history).__name__}"
        )
    n = len(history.step)
    uneven = {key: len(values) for key, values in history.values.items() if len(values) != n}
    if uneven:
        raise ValueError(
            f"the history has {n} logged steps but these monitors have other lengths: {uneven}; "
            "append every step's statistics with History.append"
        )
    if n and not any(key in history.values for key in WATCHED):
        raise ValueError(
            f"the history has none of the monitors the checks read ({', '.join(WATCHED)}); it has "
            f"{', '.join(history.values) or 'none'}. Record them as updates.train does"
        )
    return history


def _series(history: History, key: str) -> list[float] | None:
    values = history.values.get(key)
    return values if values else None


def _window(values: list[float]) -> list[float]:
    """The last third of ``values`` (at least one value): where a run has settled."""
    return values[-max(1, len(values) // 3) :]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _steps(history: History, i: int, j: int) -> str:
    """The logged steps from index ``i`` to index ``j - 1``, as text."""
    first, last = history.step[i], history.step[j - 1]
    return f"step {first}" if first == last else f"steps {first}-{last}"


# ---------------------------------------------------------------------------------------
# Checks of the monitors
# ---------------------------------------------------------------------------------------


def check_finite(history: History) -> Finding | None:
    """A NaN or infinite value in any of the monitors of :data:`WATCHED`, with the first step it
    appeared at and D's outputs (d_real, d_fake) at that step and the one logged before it."""
    history = _check_history(history)
    watched = [key for key in WATCHED if _series(history, key)]
    i = next(
        (i for i in range(len(history.step)) if not all(math.isfinite(history[k][i]) for k in watched)), None
    )
    if i is None:
        return None
    bad = [f"{key} = {history[key][i]}" for key in watched if not math.isfinite(history[key][i])]
    scores = [key for key in ("d_real", "d_fake") if key in watched]

    def at(j: int) -> str:
        return ", ".join(f"{key} = {history[key][j]:.4g}" for key in scores)

    context = f"; at that step {at(i)}" if scores else ""
    if scores and i > 0:
        context += f", at the logged step before it ({history.step[i - 1]}) {at(i - 1)}"
    first = "the first logged step" if i == 0 else f"the first non-finite one of {i + 1} logged steps"
    return Finding(
        "non_finite",
        f"{', '.join(bad)} at step {history.step[i]}, {first}{context}.",
        "a log of a number <= 0 in a loss: a log around a sum, log(D(x) + log(1 - D(G(z)))), whose "
        "argument goes negative; log(sigmoid(l)) or log(1 - sigmoid(l)) written out on D's logits, "
        "which are log 0 once D is confident (|l| > 17 in float32); or a learning rate so high "
        "that the weights overflow.",
        "compute the losses on logits with softplus (gan_tutorial.losses, or "
        "F.binary_cross_entropy_with_logits), check the brackets of every log, and lower the "
        "learning rates if it persists.",
    )


def check_loss_sign(history: History, loss: str | GANLoss | None = None) -> Finding | None:
    """A loss below 0 where it cannot be: D's cross-entropy (and the non-saturating G's) is a sum
    of -log of probabilities, and a least-squares loss a sum of squares, both >= 0 whatever D does.
    Below 0 they are not what they claim to be: most often labels outside [0, 1]."""
    history = _check_history(history)
    kind = loss_kind(loss)
    # D's loss is a cross-entropy in both cross-entropy games, G's only in the non-saturating one
    if kind == "cross_entropy":
        keys = ["loss_D"] + (["loss_G"] if get_loss(loss or "nonsaturating").name == "nonsaturating" else [])
    elif kind == "least_squares":
        keys = ["loss_D", "loss_G"]
    else:
        return None
    for key in keys:
        values = _series(history, key)
        if values is None:
            continue
        negative = [i for i, v in enumerate(values) if v < -1e-6]
        if not negative:
            continue
        low = min(values)
        name = "cross-entropy" if kind == "cross_entropy" else "least-squares loss"
        return Finding(
            "negative_loss",
            f"{key} went below 0 at step {history.step[negative[0]]} and was negative at {len(negative)} of "
            f"{len(values)} logged steps, down to {low:.4g} (last {values[-1]:.4g}); a {name} is >= 0 for "
            "any D.",
            "labels outside [0, 1] in a binary cross-entropy, e.g. -1 for the fakes "
            "(F.binary_cross_entropy_with_logits(l_fake, -torch.ones_like(l_fake))), which is unbounded "
            "below (softplus(l) + l -> -inf as D pushes the logits down); or a loss that is not the one "
            "named (a WGAN loss, which may be negative, reported as a cross-entropy: then pass loss='wgan').",
            "labels 1 for real and 0 for fake with the cross-entropy (-1 and +1 belong to hinge and "
            "least-squares losses), or the losses of gan_tutorial.losses.",
        )
    return None


def check_no_gradient(history: History, player: str) -> Finding | None:
    """``grad_G`` (``player="G"``) or ``grad_D`` (``"D"``) exactly 0 at half of the logged steps
    or more: the optimiser's step had no gradient to apply, so that player never moved. (A step
    skipped now and then by fp16 loss scaling also logs 0, but not at half the steps.)"""
    if player not in ("G", "D"):
        raise ValueError(f"player must be 'G' or 'D', got {player!r}")
    history = _check_history(history)
    values = _series(history, f"grad_{player}")
    if values is None:
        return None
    zeros = sum(1 for v in values if v == 0)
    if zeros * 2 < len(values):
        return None
    if player == "G":
        cause = (
            "the G step cuts G's loss from G: D(G(z).detach()) (a detach copied from the D step), G(z) made "
            "under torch.no_grad(), or G's parameters frozen (requires_grad False); or opt_G.zero_grad() "
            "between loss_G.backward() and opt_G.step()."
        )
        fix = (
            "in the G step: opt_G.zero_grad(); loss_G = loss(D(G(z))) with no detach; loss_G.backward(); "
            "opt_G.step(). Detach the fakes in the D step only."
        )
    else:
        cause = (
            "opt_D.zero_grad() between loss_D.backward() and opt_D.step(), which erases the gradient before "
            "the step; or D's loss computed under torch.no_grad() or from detached outputs of D."
        )
        fix = "opt_D.zero_grad(); loss_D.backward(); opt_D.step(), in that order."
    return Finding(
        f"no_gradient_{player}",
        f"grad_{player} was exactly 0 at {zeros} of {len(values)} logged steps "
        f"({_steps(history, 0, len(values))}): {player}'s optimiser stepped with no gradient, and {player} "
        "did not move.",
        cause,
        fix,
    )


def check_d_rates_fakes_real(history: History, loss: str | GANLoss | None = None) -> Finding | None:
    """D calls the fakes real (cross-entropy games, where d_fake is a probability): over the last
    third of the run its mean d_fake is at least 0.9, or it rates the fakes above the reals
    (d_fake > d_real) at three quarters of the logged steps after the first tenth. A D trained
    against the fakes does neither for long. Skipped for raw scores (LSGAN, WGAN): a critic in a
    brief run often trails G for a while, and scores have no scale to set a threshold on."""
    history = _check_history(history)
    real, fake = _series(history, "d_real"), _series(history, "d_fake")
    if loss_kind(loss) != "cross_entropy" or real is None or fake is None or len(fake) < MIN_STEPS:
        return None
    start = len(fake) // 10
    above = sum(1 for r, f in zip(real[start:], fake[start:], strict=True) if f > r)
    late_real, late_fake = _mean(_window(real)), _mean(_window(fake))
    preferred = above >= 0.75 * (len(fake) - start)
    if late_fake < 0.9 and not preferred:
        return None
    w = len(fake) - len(_window(fake))
    evidence = (
        f"over {_steps(history, w, len(fake))} the mean d_fake was {late_fake:.3f}"
        f"{' (D calls the fakes real)' if late_fake >= 0.9 else ''} and the mean d_real {late_real:.3f}"
    )
    if preferred:
        evidence += (
            f"; d_fake > d_real at {above} of the {len(fake) - start} logged steps after the first tenth"
        )
    loss_D = _series(history, "loss_D")
    if loss_D is not None:
        evidence += (
            f"; loss_D went from {loss_D[0]:.3g} to {_mean(_window(loss_D)):.3g} (log 4 = 1.39 at a tie)"
        )
    return Finding(
        "d_rates_fakes_real",
        evidence + ".",
        "D is not trained against the fakes: the optimisers swapped (opt_D built on G.parameters() and "
        "opt_G on D.parameters(), so each player follows the other's gradient), D's step applying no "
        "gradient (see no_gradient_D), or the labels swapped (fakes labelled 1 in D's loss).",
        "build each optimiser on its own player's parameters (opt_D = Adam(D.parameters()), opt_G = "
        "Adam(G.parameters())), and label the reals 1 and the fakes 0 in D's loss.",
    )


def check_d_wins(history: History, loss: str | GANLoss | None = None) -> Finding | None:
    """D wins outright (cross-entropy games): over the last third of the run mean d_real >= 0.95
    and mean d_fake <= 0.05, while G's loss has climbed above where it started. G then gets
    little gradient (the minimax loss saturates) or a gradient that no longer helps."""
    history = _check_history(history)
    if loss_kind(loss) != "cross_entropy":
        return None
    real, fake, loss_G = (_series(history, key) for key in ("d_real", "d_fake", "loss_G"))
    if real is None or fake is None or loss_G is None or len(fake) < MIN_STEPS:
        return None
    late_real, late_fake = _mean(_window(real)), _mean(_window(fake))
    early_G, late_G = _mean(loss_G[: len(_window(loss_G))]), _mean(_window(loss_G))
    if not (late_real >= 0.95 and late_fake <= 0.05 and late_G > early_G):
        return None
    w = len(fake) - len(_window(fake))
    return Finding(
        "d_wins",
        f"over {_steps(history, w, len(fake))} the mean d_real was {late_real:.3f} and the mean d_fake "
        f"{late_fake:.3f}: D separates real from fake almost perfectly, and loss_G rose from {early_G:.3g} "
        f"(first third) to {late_G:.3g}.",
        "G is not keeping up: G receiving no gradient (see no_gradient_G), G's learning rate far below "
        "D's, too many D steps per G step, the minimax G loss (it saturates once D rejects the fakes), or "
        "G unable to reach the data (see data_range).",
        "fix any no_gradient_G first; otherwise use the non-saturating G loss, equal learning rates and "
        "k = 1, or weaken D (dropout, fewer units).",
    )


# ---------------------------------------------------------------------------------------
# Checks of the data, the models and the codes
# ---------------------------------------------------------------------------------------

_OUTPUT_RANGES: dict[type[nn.Module], tuple[float, float, str]] = {
    nn.Tanh: (-1.0, 1.0, "Tanh"),
    nn.Hardtanh: (-1.0, 1.0, "Hardtanh"),
    nn.Sigmoid: (0.0, 1.0, "Sigmoid"),
}


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The modules of ``module`` that hold no others, in ``modules()`` order."""
    return [m for m in module.modules() if next(m.children(), None) is None]


def output_range(G: nn.Module) -> tuple[float, float, str] | None:
    """``(low, high, name)`` of G's last layer if it is a squashing one (Tanh, Hardtanh, Sigmoid),
    read from the last leaf module that is not a reshape; ``None`` otherwise (a linear output)."""
    for m in reversed(_leaves(G)):
        if isinstance(m, (nn.Flatten, nn.Unflatten, nn.Identity)):
            continue
        for kind, found in _OUTPUT_RANGES.items():
            if type(m) is kind:
                return found
        return None
    return None


def check_data_range(data: torch.Tensor, G: nn.Module) -> Finding | None:
    """The real data against the range of G's last layer (:func:`output_range`): a value G cannot
    produce (outside (-1, 1) for a Tanh), or data entirely in [0, 1] for a Tanh G, which then uses
    half of its range (images from ``ToTensor`` without ``Normalize``). Nothing to say about a G
    with a linear output, or with a squashing function in ``forward`` rather than as a module."""
    if not isinstance(data, torch.Tensor) or not data.is_floating_point() or not data.numel():
        raise TypeError(f"data must be a non-empty float tensor of real samples, got {_describe(data)}")
    found = output_range(G)
    if found is None:
        return None
    low, high, name = found
    data = data.detach()
    if not torch.isfinite(data).all():
        return Finding(
            "data_range",
            f"the real data holds {int((~torch.isfinite(data)).sum())} NaN or infinite values.",
            "a division by zero or a log in the preprocessing, or a corrupt file.",
            "check the preprocessing on one batch: torch.isfinite(x).all().",
        )
    lo, hi = float(data.min()), float(data.max())
    outside = float(((data < low) | (data > high)).double().mean())
    what = (
        f"the real data lies in [{lo:.4g}, {hi:.4g}] and G ends in {name}, whose outputs lie in "
        f"({low:g}, {high:g})"
    )
    if outside > 0:
        return Finding(
            "data_range",
            f"{what}: {100 * outside:.3g}% of the data's values are out of G's reach.",
            "data not scaled to G's output range: raw pixels (0-255), data in [-1, 1] for a Sigmoid G, "
            "or toy data wider than (-1, 1) for a Tanh G.",
            f"scale the data into ({low:g}, {high:g}) (images: pixels / 127.5 - 1 for Tanh, as "
            "data.load_mnist does), or drop the squashing layer for unbounded data.",
        )
    if name != "Sigmoid" and lo >= 0:
        return Finding(
            "data_range",
            f"{what}: the data never goes below 0, so G's outputs in (-1, 0) are never needed, and an "
            "image's background sits at Tanh's midpoint 0 instead of -1.",
            "images in [0, 1], as ToTensor() makes them, without Normalize((0.5,), (0.5,)) after it "
            "(x = pixels / 255 instead of pixels / 127.5 - 1).",
            "x = pixels / 127.5 - 1 (ToTensor() then Normalize((0.5,), (0.5,))), as data.load_mnist does; "
            "and show samples with (x + 1) / 2.",
        )
    return None


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def check_batch_norm_with_penalty(
    D: nn.Module, loss: str | GANLoss | None = None, gradient_penalty: object = None
) -> Finding | None:
    """Batch norm in a D whose loss has a gradient penalty, which needs each output's gradient
    with respect to its own sample. The penalty is assumed when ``gradient_penalty`` is true (or a
    penalty function) or, when it is ``None``, when the loss's name contains ``wgan``; pass
    ``gradient_penalty=False`` for a WGAN without one (weight clipping), which may keep batch norm."""
    if gradient_penalty is None:
        penalised = isinstance(loss, str) and "wgan" in loss.lower()
    else:
        penalised = bool(gradient_penalty)
    if not penalised or not has_batch_norm(D):
        return None
    layers = batch_norm_layers(D)
    names = ", ".join(sorted({type(m).__name__ for m in layers}))
    return Finding(
        "batch_norm_with_penalty",
        f"D holds {len(layers)} batch norm layer{'s' if len(layers) > 1 else ''} ({names}) and its loss "
        "has a gradient penalty.",
        "batch norm in a critic with a gradient penalty: each output depends on the whole batch, so the "
        "gradient of the summed outputs with respect to one sample mixes in the others, and the penalty "
        "does not constrain D's per-sample slope (Gulrajani et al. 2017, section 4).",
        "take the batch norm out of D: use nn.LayerNorm or no normalisation (batch norm in G is fine).",
    )


def check_train_mode(G: nn.Module | None = None, D: nn.Module | None = None) -> Finding | None:
    """Models with dropout or batch norm that trained in eval mode: a dropout layer in eval mode,
    or a batch norm layer in eval mode that has never counted a batch (``num_batches_tracked``
    0: it never ran in train mode). A batch norm layer that did count batches and is in eval mode
    now is taken to have been switched for sampling after training, and passes. Pass the models
    as training left them."""
    seen = []
    for name, model in (("G", G), ("D", D)):
        if model is None:
            continue
        dropout = [
            m
            for m in model.modules()
            if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 and not m.training
        ]
        frozen = [
            m
            for m in batch_norm_layers(model)
            if not m.training and m.track_running_stats and int(m.num_batches_tracked) == 0
        ]
        if dropout:
            seen.append(f"{name} has {len(dropout)} dropout layer(s) in eval mode (dropout off)")
        if frozen:
            seen.append(
                f"{name} has {len(frozen)} batch norm layer(s) in eval mode that never counted a batch "
                "(num_batches_tracked = 0: running statistics still at mean 0, variance 1)"
            )
    if not seen:
        return None
    return Finding(
        "eval_mode",
        "; ".join(seen) + ".",
        "G.eval() or D.eval() (for a preview of samples or an evaluation) left on during training: batch "
        "norm then normalises with running statistics it never updates, and dropout is off.",
        "call G.train() and D.train() before training, and eval() only around sampling; if the models were "
        "switched to eval only after training, this finding does not apply.",
    )


def check_codes(z: torch.Tensor, G: nn.Module) -> Finding | None:
    """Codes ``z`` of the wrong shape for a G whose first layer is ``nn.Linear``: it reads the last
    dimension of its input, so z must be (B, in_features). A (B, 100, 1, 1) batch (a convolutional
    G's codes) fails with an error about matrices, and a (B, 1, 100) one passes and carries its
    extra dimension into G's output. Nothing to say about a G that starts otherwise."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"z must be a tensor of codes as the training step drew them, got {_describe(z)}")
    first = next((m for m in _leaves(G) if not isinstance(m, nn.Identity)), None)
    if not isinstance(first, nn.Linear):
        return None
    n = first.in_features
    if z.ndim == 2 and z.shape[1] == n:
        return None
    if z.ndim > 2 and z.shape[-1] != n and math.prod(z.shape[1:]) == n:
        effect = (
            f"the codes' last dimension has size {z.shape[-1]}, so that layer fails with 'mat1 and mat2 "
            f"shapes cannot be multiplied ({z.shape[0] * math.prod(z.shape[1:-1])}x{z.shape[-1]} and "
            f"{n}x{first.out_features})' unless G checks its input"
        )
        fix = f"z = torch.randn(B, {n}) for a linear G, or z.flatten(1) before its first layer"
    elif z.ndim > 2 and z.shape[-1] == n:
        effect = "G runs, and its output carries the codes' extra dimensions"
        fix = f"z = torch.randn(B, {n}): codes are (batch, latent_dim) for a linear G"
    else:
        effect = "it does not match G's first layer at all"
        fix = f"draw z with shape (B, {n}), G's latent size"
    return Finding(
        "code_shape",
        f"the codes have shape {tuple(z.shape)} and G's first layer is Linear(in_features={n}): {effect}.",
        "codes shaped for a convolutional generator, torch.randn(B, latent_dim, 1, 1), fed to a linear "
        "(MLP) one; or a latent size that differs from the one G was built with.",
        fix + ".",
    )


def check_error(error: BaseException) -> Finding:
    """The exception that stopped a run, with what a few common messages mean."""
    if not isinstance(error, BaseException):
        raise TypeError(f"error must be the exception the run raised, got {type(error).__name__}")
    text = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
    text = text if len(text) <= 300 else text[:297] + "..."
    if "mat1 and mat2 shapes cannot be multiplied" in text:
        cause = (
            "a linear layer got an input whose last dimension is not its in_features: codes or a batch of "
            "the wrong shape, e.g. 4-D codes (B, latent_dim, 1, 1) for a linear G (see code_shape)."
        )
        fix = (
            "print the shapes into the layer named in the traceback; flatten or redraw them as (B, features)."
        )
    elif isinstance(error, FloatingPointError):
        cause = "training produced a NaN or infinite loss or gradient norm (see non_finite)."
        fix = "compute the losses on logits, check every log's argument, lower the learning rates."
    else:
        cause = "the message names the problem; the other findings may say why it arose."
        fix = "read the traceback from its last line up to the first line of your own code."
    return Finding("run_failed", f"the run stopped with {type(error).__name__}: {text}", cause, fix)


# ---------------------------------------------------------------------------------------
# The gradient penalty, probed
# ---------------------------------------------------------------------------------------


class _ProbeCritic(nn.Module):
    """A critic with a known gradient that records its inputs: D(x) = w . x + 1/2 v . x^2 for each
    flattened sample x, so grad_x D = w + v * x differs from sample to sample, and the penalty
    depends on D's weights w and v through that gradient (so it can train them)."""

    def __init__(self, numel: int, generator: torch.Generator) -> None:
        super().__init__()
        self.w = nn.Parameter(1.5 * torch.randn(numel, generator=generator) / math.sqrt(numel))
        self.v = nn.Parameter(0.5 * torch.rand(numel, generator=generator))
        self.inputs: list[torch.Tensor] = []

    def score(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        flat, w, v = x.flatten(1).to(dtype), self.w.to(dtype), self.v.to(dtype)
        return (flat @ w + 0.5 * (flat * flat) @ v)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.score(x)


@dataclass
class _Probe:
    """One call of a penalty function on a probe critic, and what it gave back."""

    critic: _ProbeCritic
    x_real: torch.Tensor
    x_fake: torch.Tensor
    out: object


def _probe(fn: Penalty, shape: tuple[int, ...], batch: int, seed: int) -> _Probe:
    """Call ``fn`` once on a fresh probe critic and probe batches drawn from ``seed``; PyTorch's
    global stream (which ``fn`` draws its weights from) is seeded inside and put back after."""
    gen = torch.Generator().manual_seed(seed)
    critic = _ProbeCritic(math.prod(shape), gen)
    x_real = torch.randn(batch, *shape, generator=gen)
    # fakes at a distance between 0.5 and 1.5 from their reals along every coordinate, so that
    # each coordinate's interpolation weight can be read back exactly
    offset = (0.5 + torch.rand(batch, *shape, generator=gen)) * torch.where(
        torch.rand(batch, *shape, generator=gen) < 0.5, -1.0, 1.0
    )
    x_fake = x_real + offset
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            out = fn(critic, x_real.clone(), x_fake.clone())
        except Exception as err:
            raise ValueError(
                f"the penalty function raised {type(err).__name__}: {err}, on a probe batch of shape "
                f"{(batch, *shape)}; if it is written for samples of another shape, pass sample_shape="
            ) from err
    return _Probe(critic, x_real, x_fake, out)


def _expected(probe: _Probe, lam: float) -> dict[str, float] | None:
    """The right penalty (``"expected"``) and common wrong ones at the interpolates ``fn`` used,
    or ``None`` if it used none."""
    x_hat = next((x for x in probe.critic.inputs if not _is_endpoint(x, probe.x_real, probe.x_fake)), None)
    if x_hat is None:
        return None
    x_hat = x_hat.to(torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(probe.critic.score(x_hat, torch.float64).sum(), x_hat)
    return _penalty_variants(grad, lam)


def _penalty_variants(grad: torch.Tensor, lam: float) -> dict[str, float]:
    """The right penalty (``"expected"``) and common wrong ones, for per-sample gradients ``grad``."""
    flat = grad.flatten(1).norm(dim=1)
    variants = {
        "expected": lam * ((flat - 1) ** 2).mean(),
        "the sum over the batch instead of the mean": lam * ((flat - 1) ** 2).sum(),
        "the squared norm ||grad||^2 in place of the norm": lam * ((flat**2 - 1) ** 2).mean(),
        "||grad||^2 with no -1 (an R1-style penalty)": lam * (flat**2).mean(),
        "|(||grad|| - 1)| not squared": lam * (flat - 1).abs().mean(),
        "the one-sided max(0, ||grad|| - 1)^2": lam * ((flat - 1).clamp(min=0) ** 2).mean(),
    }
    for dim in range(1, grad.ndim):
        variants[f"the norm over dimension {dim} only"] = lam * ((grad.norm(dim=dim) - 1) ** 2).mean()
    if grad.ndim > 2:
        variants["the norm over the last dimension only"] = lam * ((grad.norm(dim=-1) - 1) ** 2).mean()
    return {k: float(v) for k, v in variants.items()}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-7)


def check_gradient_penalty(
    fn: Penalty, *, lam: float = GP_WEIGHT, sample_shape: Sequence[int] = (2, 3, 3), batch: int = 8
) -> Finding | None:
    r"""Probe a gradient penalty ``fn(D, x_real, x_fake) -> scalar`` against WGAN-GP's definition.

    ``fn`` is called with a probe critic that records its inputs, a real batch and a fake batch of
    ``batch`` samples of shape ``sample_shape`` (default (2, 3, 3), an image with two
    channels: small, and with enough dimensions to tell a norm over the whole sample from one over
    a single dimension; pass the shape of one of your samples if ``fn`` only handles that). The
    definition (Gulrajani et al. 2017):

        x_hat = eps x_real + (1 - eps) x_fake,  eps ~ U[0, 1], one per sample;
        penalty = lam * mean over the batch of (||grad_x D(x_hat)||_2 - 1)^2,

    the norm taken over the whole flattened sample, and the gradient with ``create_graph=True``
    so that the penalty trains D. Returns a :class:`Finding` for the first departure found, in
    this order: the interpolates (``gp_interpolates``: off the segments, one weight per pixel,
    one weight for the whole batch), the value (``gp_formula``, naming the variant it matches when
    it is a common one: a norm over one dimension, a sum, another lambda, ...), the graph
    (``gp_no_graph``); ``None`` when it matches. A value off by a constant factor is probed once
    more, on another critic, to tell a different lambda from chance. PyTorch's global random
    stream is left untouched.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function fn(D, x_real, x_fake) -> penalty, got {type(fn).__name__}")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam (the penalty's weight) must be a positive number, got {lam!r}")
    shape = tuple(int(s) for s in sample_shape)
    if not shape or min(shape) < 1 or batch < 2:
        raise ValueError(
            f"sample_shape must be non-empty positive sizes and batch >= 2, got {shape}, {batch}"
        )
    probe = _probe(fn, shape, batch, seed=0)
    out = probe.out
    if not isinstance(out, torch.Tensor) or out.numel() != 1 or not out.is_floating_point():
        return Finding(
            "gp_formula",
            f"the penalty function returned {_describe(out)}, not one number.",
            "the penalty left per sample (no mean over the batch), or a Python number instead of a tensor.",
            "return lam * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean(), a 0-d tensor.",
        )
    finding = _check_interpolates(probe.critic.inputs, probe.x_real, probe.x_fake)
    if finding is not None:
        return finding
    variants = _expected(probe, float(lam))
    assert variants is not None  # _check_interpolates found the interpolates
    expected, got = variants.pop("expected"), out.item()
    if not _close(got, expected):
        match = next((name for name, value in variants.items() if _close(got, value)), None)
        if match is None and expected > 0 and got > 0:
            # the same ratio on a second probe (other critic, other batches): a constant factor
            second = _probe(fn, shape, batch, seed=1)
            again = _expected(second, float(lam))
            if isinstance(second.out, torch.Tensor) and again and again["expected"] > 0:
                ratio = got / expected
                if _close(second.out.item() / again["expected"], ratio):
                    match = (
                        f"a weight lambda = {lam * ratio:.4g} instead of {lam:g} (pass lam= if it is meant)"
                    )
        matched = f", which is what {match} gives" if match else ""
        return Finding(
            "gp_formula",
            f"on the probe the penalty should be {lam:g} * mean((||grad||_2 - 1)^2) = {expected:.6g} (norm "
            f"over all {math.prod(shape)} values of each sample), and the function returned "
            f"{got:.6g}{matched}.",
            "a norm over one dimension only (grad.norm(2, dim=1) on images leaves one norm per pixel), the "
            "squared norm, a sum instead of the mean, a missing square or -1, or another weight.",
            f"penalty = {lam:g} * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean(), with grad the gradient of "
            "D(x_hat).sum() with respect to x_hat.",
        )
    weights = list(probe.critic.parameters())
    grads = (
        torch.autograd.grad(out, weights, allow_unused=True) if out.requires_grad else [None] * len(weights)
    )
    if all(g is None or not torch.any(g != 0) for g in grads):
        return Finding(
            "gp_no_graph",
            "the penalty has the right value but no gradient with respect to D's weights "
            f"(requires_grad={out.requires_grad}): adding it to D's loss changes nothing.",
            "torch.autograd.grad(..., create_graph=False) (the default) or a detach() of the gradient.",
            "torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True).",
        )
    return None


def _is_endpoint(x: torch.Tensor, x_real: torch.Tensor, x_fake: torch.Tensor) -> bool:
    return x.shape == x_real.shape and (
        torch.allclose(x, x_real, atol=1e-6) or torch.allclose(x, x_fake.to(x.dtype), atol=1e-6)
    )


def _check_interpolates(
    inputs: list[torch.Tensor], x_real: torch.Tensor, x_fake: torch.Tensor
) -> Finding | None:
    """Whether the first input D saw off the real and fake batches is one interpolate per pair,
    with one weight in [0, 1] per sample, and not the same weight for all of them."""
    fix = (
        "eps = torch.rand(B, *[1] * (x_real.ndim - 1)) (one weight per sample, broadcast over its "
        "coordinates); x_hat = eps * x_real + (1 - eps) * x_fake."
    )
    between = [x for x in inputs if not _is_endpoint(x, x_real, x_fake)]
    if not between:
        return Finding(
            "gp_interpolates",
            f"the penalty function called D {len(inputs)} time(s), only on the real and fake batches "
            "themselves: the gradient was not taken between them.",
            "the penalty taken at the real (or fake) samples instead of at interpolates between the pairs.",
            fix,
        )
    x_hat = between[0]
    if x_hat.shape != x_real.shape:
        return Finding(
            "gp_interpolates",
            f"D was called on a batch of shape {tuple(x_hat.shape)} where interpolates of the pairs would "
            f"have shape {tuple(x_real.shape)}.",
            "an interpolation weight whose shape broadcasts against the batch into a larger tensor, "
            "e.g. eps of shape (B,) against samples of shape (B, d) with B = d.",
            fix,
        )
    t = ((x_hat.double() - x_fake.double()) / (x_real.double() - x_fake.double())).flatten(1)  # (B, numel)
    spread = (t.max(dim=1).values - t.min(dim=1).values).max()
    if spread > 1e-4:
        i = int((t.max(dim=1).values - t.min(dim=1).values).argmax())
        return Finding(
            "gp_interpolates",
            f"within one sample the interpolation weights ranged from {float(t[i].min()):.3f} to "
            f"{float(t[i].max()):.3f} (sample {i}): one weight per coordinate, so x_hat lies in the box "
            "spanned by the pair, off the segment between x_real and x_fake.",
            "eps drawn with the shape of x (torch.rand_like(x_real)), one weight per pixel or coordinate.",
            fix,
        )
    eps = t[:, 0]
    if float(eps.min()) < -1e-5 or float(eps.max()) > 1 + 1e-5:
        return Finding(
            "gp_interpolates",
            f"the interpolation weights ranged from {float(eps.min()):.3f} to {float(eps.max()):.3f}: points "
            "beyond the ends of the segments, not between them.",
            "eps drawn from a normal distribution (torch.randn) instead of U[0, 1] (torch.rand).",
            fix,
        )
    if float(eps.max() - eps.min()) < 1e-6:
        return Finding(
            "gp_interpolates",
            f"every pair was interpolated with the same weight {float(eps[0]):.3f}: one weight for the "
            "whole batch.",
            "eps drawn once per batch (torch.rand(1)) instead of once per sample.",
            fix,
        )
    return None


# ---------------------------------------------------------------------------------------
# All together
# ---------------------------------------------------------------------------------------


def diagnose(
    history: History,
    *,
    loss: str | GANLoss | None = None,
    G: nn.Module | None = None,
    D: nn.Module | None = None,
    data: torch.Tensor | None = None,
    gradient_penalty: bool | Penalty | None = None,
    z: torch.Tensor | None = None,
    error: BaseException | None = None,
) -> list[Finding]:
    """Every finding the inputs allow, checks of the monitors first.

    ``history`` is a run's :class:`~gan_tutorial.updates.History` (``updates.train``'s result or
    ``Trainer.history``); ``loss`` the losses it trained with, as ``updates.train`` takes them
    (default ``"nonsaturating"``, ``train``'s; name a WGAN ``"wgan"`` or ``"wgan-gp"``, or its
    negative critic loss reads as a cross-entropy below 0). The rest is optional and enables more
    checks: ``G`` and ``D`` as training left them, ``data`` a batch of the real data as the step
    saw it, ``gradient_penalty`` whether D's loss has one (``True``), or the penalty function
    itself (also probed with :func:`check_gradient_penalty` on samples of ``data``'s shape),
    ``z`` a batch of codes as the step drew them, ``error`` the exception that stopped the run.

    A history shorter than :data:`MIN_STEPS` logged steps (an empty one included) skips the checks
    of trends and adds a ``too_few_steps`` finding, unless a non-finite value or ``error`` explains
    why the run was short. A history that is not one, or whose monitors disagree in length or are
    all unknown, is a ``TypeError`` or ``ValueError``.
    """
    history = _check_history(history)
    loss_kind(loss)  # an unknown loss fails here, before any check
    findings: list[Finding | None] = [
        check_finite(history),
        check_loss_sign(history, loss),
        check_no_gradient(history, "G"),
        check_no_gradient(history, "D"),
    ]
    if len(history.step) >= MIN_STEPS:
        findings += [check_d_rates_fakes_real(history, loss), check_d_wins(history, loss)]
    if G is not None and data is not None:
        findings.append(check_data_range(data, G))
    if G is not None and z is not None:
        findings.append(check_codes(z, G))
    if D is not None:
        findings.append(check_batch_norm_with_penalty(D, loss, gradient_penalty))
    findings.append(check_train_mode(G, D))
    if callable(gradient_penalty):
        shape = tuple(data.shape[1:]) if isinstance(data, torch.Tensor) and data.ndim > 1 else (2, 3, 3)
        findings.append(check_gradient_penalty(gradient_penalty, sample_shape=shape))
    if error is not None:
        findings.append(check_error(error))
    found = [f for f in findings if f is not None]
    if len(history.step) < MIN_STEPS and error is None and not any(f.code == "non_finite" for f in found):
        found.append(
            Finding(
                "too_few_steps",
                f"the history has {len(history.step)} logged step(s); the checks of trends "
                f"(d_rates_fakes_real, d_wins) need at least {MIN_STEPS} and were skipped.",
                "a run stopped early, or a log interval (log_every) as long as the run.",
                "train longer or log more often, then diagnose again.",
            )
        )
    return found


def diagnose_trainer(trainer: Any) -> list[Finding]:
    """:func:`diagnose` for a :class:`~gan_tutorial.trainer.Trainer` after (some of) a run: its
    history, its config's loss and penalty, its G and D, and a batch of its training images."""
    cfg = trainer.config
    return diagnose(
        trainer.history,
        loss=cfg.loss,
        G=trainer.G,
        D=trainer.D,
        data=trainer.sampler.x[: cfg.batch_size],
        gradient_penalty=bool(cfg.penalty),
    )
