"""The checks of what a run was set up with: its data, its models, its codes, its error (chapter 6).

Each returns a :class:`~.findings.Finding` or ``None``:

* :func:`check_data_range` - data outside, or in half of, the range of G's output (``data_range``);
* :func:`check_batch_norm_with_penalty` - batch norm in a penalised D (``batch_norm_with_penalty``);
* :func:`check_train_mode` - models that trained in eval mode (``eval_mode``);
* :func:`check_codes` - codes of the wrong shape for a linear G (``code_shape``);
* :func:`check_error` - the run stopped with an exception (``run_failed``).

:func:`output_range` reads the range of G's last layer, which :func:`check_data_range` compares
the data with.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..losses import GANLoss
from ..models import batch_norm_layers, has_batch_norm
from .findings import Finding, describe

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
        raise TypeError(f"data must be a non-empty float tensor of real samples, got {describe(data)}")
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
        raise TypeError(f"z must be a tensor of codes as the training step drew them, got {describe(z)}")
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
