"""Many small MLPs in one module: E independent :func:`~gan_tutorial.models.toy.toy_mlp` networks
stacked along a leading "member" dimension (chapter 2).

The toy networks are so small that on a CPU a training step costs mostly Python and
per-operation overhead, about the same for a batch of 256 as for E x 256. So instead of E
separate MLPs, :class:`MLPEnsemble` holds each layer's weights as one (E, in, out) tensor
and runs all members with one batched matrix product per layer::

    x_{i+1}[e] = act(b_i[e] + x_i[e] @ W_i[e])        # torch.baddbmm over the member dim e

Input and output carry the member dimension first, (E, B, in) -> (E, B, out), and member e
only ever sees its own slice ``[e]``, so the members never interact.

The package's :func:`~gan_tutorial.updates.d_step` and :func:`~gan_tutorial.updates.g_step`
train an ensemble unchanged. A loss is a batch mean, so over E x B outputs it is
(1/E) sum_e loss_e and member e's gradient is its own loss's gradient divided by E. Adam
divides every gradient by a running root mean square of it, so that constant factor cancels
(up to Adam's epsilon): training the ensemble with Adam is training E separate GANs.
(:mod:`gan_tutorial.sweep.toy` multiplies the losses by E instead, which makes each member's
gradient exactly its own loss's.) A D made of an ensemble must not run real and fake
batches in one concatenated pass (as the trainer's :class:`~gan_tutorial.iteration.Iteration`
does for a D without batch norm): the concatenation would run along the member dimension.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..runtime import isolated
from .toy import toy_mlp


def _linears(mlp: nn.Module, index: int) -> tuple[list[nn.Linear], list[nn.Module]]:
    """The linear layers and the activations of a toy_mlp, checked to alternate as toy_mlp builds them."""
    if not isinstance(mlp, nn.Sequential) or len(mlp) < 3 or len(mlp) % 2 == 0:
        raise ValueError(
            f"member {index} is not a toy_mlp (a Sequential of Linear, activation, ..., Linear), "
            f"got {type(mlp).__name__}; build members with gan_tutorial.models.toy_mlp"
        )
    layers = list(mlp)
    linears, acts = layers[0::2], layers[1::2]
    if not all(isinstance(layer, nn.Linear) and layer.bias is not None for layer in linears):
        raise ValueError(
            f"member {index}'s layers 0, 2, 4, ... must be nn.Linear with a bias, as toy_mlp builds them"
        )
    if any(isinstance(act, nn.Linear) or list(act.parameters()) for act in acts):
        raise ValueError(
            f"member {index}'s layers 1, 3, 5, ... must be activations without weights (nn.ReLU, ...)"
        )
    return linears, acts


class MLPEnsemble(nn.Module):
    """E toy MLPs of one architecture, each with its own weights: (E, B, in) -> (E, B, out).

    Built from a list of :func:`~gan_tutorial.models.toy.toy_mlp` Sequentials, whose weights
    are copied (the originals are left alone and not shared). Layer i keeps ``weights[i]`` of
    shape (E, in_i, out_i), the members' ``Linear.weight`` transposed, and ``biases[i]`` of shape
    (E, 1, out_i), broadcast over the batch. :meth:`member` gives member e back as a plain
    toy_mlp; :func:`ensemble` builds the members from seeds.
    """

    def __init__(self, mlps: Sequence[nn.Sequential]) -> None:
        super().__init__()
        mlps = list(mlps)
        if not mlps:
            raise ValueError("an ensemble needs at least one member: pass a non-empty list of toy_mlp nets")
        parts = [_linears(mlp, e) for e, mlp in enumerate(mlps)]
        shapes = [tuple(tuple(lin.weight.shape) for lin in linears) for linears, _ in parts]
        act_types = [tuple(type(a) for a in acts) for _, acts in parts]
        for e in range(1, len(mlps)):
            if shapes[e] != shapes[0] or act_types[e] != act_types[0]:
                raise ValueError(
                    f"member {e} differs from member 0 in its layers ({shapes[e]} against {shapes[0]}, "
                    "weights as (out, in)): every member must have the same architecture"
                )
        if len(set(act_types[0])) != 1:
            raise ValueError("the members must use one activation after every hidden layer, as toy_mlp does")
        with torch.no_grad():
            self.weights = nn.ParameterList(  # layer i: (E, in_i, out_i)
                nn.Parameter(torch.stack([linears[i].weight.detach().T for linears, _ in parts]))
                for i in range(len(shapes[0]))
            )
            self.biases = nn.ParameterList(  # layer i: (E, 1, out_i)
                nn.Parameter(torch.stack([linears[i].bias.detach()[None] for linears, _ in parts]))
                for i in range(len(shapes[0]))
            )
        self.act = copy.deepcopy(parts[0][1][0])  # the activation after every hidden layer

    @property
    def size(self) -> int:
        """E, the number of members."""
        return self.weights[0].shape[0]

    @property
    def in_dim(self) -> int:
        return self.weights[0].shape[1]

    @property
    def out_dim(self) -> int:
        return self.weights[-1].shape[2]

    def __len__(self) -> int:
        return self.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on its own batch: ``x`` (E, B, in) -> (E, B, out), ``out[e] = member_e(x[e])``."""
        if x.ndim != 3 or x.shape[0] != self.size or x.shape[2] != self.in_dim:
            hint = (
                f"; to give every member the same batch x (B, {self.in_dim}), "
                f"pass x.expand({self.size}, -1, -1)"
                if x.ndim == 2
                else ""
            )
            raise ValueError(
                f"an ensemble of {self.size} members takes inputs (E={self.size}, B, {self.in_dim}), "
                f"got {tuple(x.shape)}{hint}"
            )
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, W)  # (E, B, out_i) = b + x @ W, one product per member
            if i < last:
                x = self.act(x)
        return x

    def member(self, e: int) -> nn.Sequential:
        """Member ``e`` as a plain toy_mlp (a new module, the same layers as the nets the ensemble
        was built from, with a copy of member e's current weights, on the ensemble's device and
        dtype): ``member(e)(x[e])`` equals ``self(x)[e]``."""
        if not -self.size <= e < self.size:
            raise ValueError(f"member index {e} is out of range for an ensemble of {self.size} members")
        W0 = self.weights[0]
        layers: list[nn.Module] = []
        with torch.no_grad():
            for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                lin = nn.Linear(W.shape[1], W.shape[2], device=W0.device, dtype=W0.dtype)
                lin.weight.copy_(W[e].T)
                lin.bias.copy_(b[e, 0])
                layers.append(lin)
                if i < len(self.weights) - 1:
                    layers.append(copy.deepcopy(self.act))
        return nn.Sequential(*layers)


def ensemble(
    seeds: Sequence[int],
    in_dim: int,
    out_dim: int,
    hidden: int = 64,
    depth: int = 2,
    act: type[nn.Module] = nn.ReLU,
) -> MLPEnsemble:
    """An :class:`MLPEnsemble` whose member e is initialised exactly as
    ``torch.manual_seed(seeds[e]); toy_mlp(in_dim, out_dim, hidden, depth, act)`` would be.

    PyTorch's global CPU generator is put back as it was afterwards
    (:func:`~gan_tutorial.runtime.isolated`), so building an ensemble draws nothing from it.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("give at least one seed: an ensemble has one member per seed")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be integers, got {seeds!r}")
    mlps = []
    for seed in seeds:
        with isolated(seed=seed):
            mlps.append(toy_mlp(in_dim, out_dim, hidden, depth, act))
    return MLPEnsemble(mlps)
