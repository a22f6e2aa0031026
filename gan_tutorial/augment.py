"""Differentiable augmentation for GANs with little data (chapter 8): DiffAugment and ADA.

With few real images D memorises them: its outputs on the training images and on held-out real
images drift apart, and G learns from a D that no longer generalises. Augmenting the images D
sees helps only if the SAME random transform family is applied to real and fake images, in D's
update and in G's: then D never sees a distribution that G could not produce, and G's gradient
flows back through the transform (which must therefore be differentiable). Augmenting the real
images alone "leaks": G learns to draw the augmented digits.

* :class:`Augment` - DiffAugment's transforms (Zhao et al. 2020, arXiv:2006.10738) for grey
  images in [-1, 1]: brightness (add U(-0.5, 0.5)), contrast (scale about the image's mean by
  U(0.5, 1.5)), translation (by up to 1/8 of the side, filled with 0), cutout (a square of half
  the side set to 0), each applied to each image with probability ``p`` (1 for DiffAugment). Its
  parameters are drawn once per call and can be applied again to another batch
  (:meth:`Augment.apply`): the same transform for a pair.
* :class:`AdaptiveP` - ADA's controller (Karras et al. 2020, arXiv:2006.06676): the overfitting
  signal r_t = E[sign D(x_real)] over the last ``interval`` steps steers ``p`` towards a target
  (0.6 in the paper), fast enough that p can go from 0 to 1 in ``images_to_one`` images
  (500,000 in the paper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: The transforms, in the order they are applied.
OPS = ("brightness", "contrast", "translation", "cutout")


@dataclass(frozen=True)
class Params:
    """One call's random draws, one row per image: what :meth:`Augment.apply` replays."""

    brightness: torch.Tensor  # (B,) added to every pixel (0: off)
    contrast: torch.Tensor  # (B,) factor about the image's mean (1: off)
    shift: torch.Tensor  # (B, 2) integer (dy, dx)
    cutout: torch.Tensor  # (B, 3) (on, centre y, centre x)


class Augment:
    """DiffAugment's transforms on (B, 1, H, W) images, each applied with probability ``p``.

    ``ops`` chooses among :data:`OPS` (all by default, DiffAugment's "color,translation,cutout"
    for grey images). ``p`` may change between calls (ADA sets it). Draws come from ``generator``
    if given (a CPU ``torch.Generator``), else from PyTorch's global generator.
    """

    def __init__(self, ops: tuple[str, ...] = OPS, p: float = 1.0, translation: float = 1 / 8) -> None:
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; choose among {list(OPS)}")
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.ops, self.p, self.translation = tuple(ops), p, translation

    def draw(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        """Random parameters for a batch shaped like ``x``."""
        if x.ndim != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        b, _, h, w = x.shape

        def u(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator)

        def on(op: str) -> torch.Tensor:
            return (u(b) < self.p) & torch.tensor(op in self.ops)

        sy, sx = max(int(h * self.translation), 0), max(int(w * self.translation), 0)
        shift = torch.stack([(u(b) * (2 * sy + 1)).floor() - sy, (u(b) * (2 * sx + 1)).floor() - sx], 1)
        centre = torch.stack([(u(b) * h).floor(), (u(b) * w).floor()], 1)
        return Params(
            brightness=torch.where(on("brightness"), u(b) - 0.5, torch.zeros(b)),
            contrast=torch.where(on("contrast"), u(b) + 0.5, torch.ones(b)),
            shift=torch.where(on("translation")[:, None], shift, torch.zeros(b, 2)).long(),
            cutout=torch.cat([on("cutout")[:, None].float(), centre], 1).long(),
        )

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` augmented with fresh draws (differentiable in ``x``)."""
        return self.apply(x, self.draw(x, generator))

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """``x`` transformed by ``params`` (drawn for a batch of the same size)."""
        if len(params.brightness) != len(x):
            raise ValueError(f"parameters for {len(params.brightness)} images, got {len(x)}")
        dev = x.device
        x = x + params.brightness.to(dev, x.dtype).view(-1, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = x + (x - mean) * (params.contrast.to(dev, x.dtype).view(-1, 1, 1, 1) - 1)  # exact where off
        x = _translate(x, params.shift.to(dev))
        return x * _cutout_mask(x, params.cutout.to(dev))


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each image moved by its (dy, dx) pixels, the uncovered border filled with 0."""
    b, _, h, w = x.shape
    pad = int(shift.abs().max()) if len(shift) else 0
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad))  # zeros
    rows = torch.arange(h, device=x.device)[None, :] + pad - shift[:, 0:1]  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] + pad - shift[:, 1:2]  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def _cutout_mask(x: torch.Tensor, cutout: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W): 0 inside each image's square of half the side (where on), 1 elsewhere."""
    _, _, h, w = x.shape
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    cy, cx = cutout[:, 1, None, None], cutout[:, 2, None, None]
    hh, hw = h // 4, w // 4  # a square of side 2 * (side // 4): half the side (of an even side)
    inside = (ys - cy >= -hh) & (ys - cy < hh) & (xs - cx >= -hw) & (xs - cx < hw)
    inside = inside & cutout[:, 0, None, None].bool()
    return (~inside).to(x.dtype)[:, None]


class AdaptiveP:
    """ADA's controller of the augmentation probability ``p``.

    :meth:`observe` takes D's outputs (logits) on the real training images of a step; every
    ``interval`` steps :meth:`update` computes r_t = E[sign D(x_real)] over them and moves ``p`` by
    sign(r_t - target) * (images seen since the last update) / ``images_to_one`` (not at all when r_t
    equals the target, as in the paper's code), clamped to [0, 1].
    r_t near 1 means D is confidently positive on its training images: overfitting. The sums stay
    on D's device between updates (no wait for the device at every step).
    """

    def __init__(
        self, target: float = 0.6, interval: int = 4, images_to_one: int = 500_000, p: float = 0.0
    ) -> None:
        if not 0 < target < 1 or interval < 1 or images_to_one < 1 or not 0 <= p <= 1:
            raise ValueError("need 0 < target < 1, interval >= 1, images_to_one >= 1 and 0 <= p <= 1")
        self.target, self.interval, self.images_to_one, self.p = target, interval, images_to_one, p
        self._sums: torch.Tensor | None = None  # (sum of signs, count) since the last update
        self._steps = 0
        self.r_t: float | None = None

    def observe(self, real_logits: torch.Tensor) -> None:
        logits = real_logits.detach().float()
        sums = torch.stack(
            [torch.sign(logits).sum(), torch.tensor(float(logits.numel()), device=logits.device)]
        )
        self._sums = sums if self._sums is None else self._sums + sums
        self._steps += 1

    def update(self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> bool:
        """Adjust ``p`` if ``interval`` steps have been observed; returns whether it did. ``reduce``
        sums the (signs, count) pair over processes when several train one run."""
        if self._steps < self.interval or self._sums is None:
            return False
        sums = reduce(self._sums) if reduce is not None else self._sums
        signs, count = sums.tolist()
        self.r_t = signs / count
        step = count / self.images_to_one
        direction = (self.r_t > self.target) - (self.r_t < self.target)  # sign(r_t - target), 0 at it
        self.p = min(max(self.p + direction * step, 0.0), 1.0)
        self._sums, self._steps = None, 0
        return True

    def state_dict(self) -> dict[str, object]:
        sums = [0.0, 0.0] if self._sums is None else self._sums.tolist()
        return {"p": self.p, "signs": sums[0], "count": sums[1], "steps": self._steps, "r_t": self.r_t}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.p, self.r_t, self._steps = float(state["p"]), state["r_t"], int(state["steps"])
        self._sums = torch.tensor([float(state["signs"]), float(state["count"])], device=device)
        if not self._steps:
            self._sums = None
