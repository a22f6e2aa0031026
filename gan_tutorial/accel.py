"""The GPU fast path, chosen from what the device supports and reported in one line (chapter 4).

:func:`choose` looks at the device and returns a :class:`FastPath`:

==============================  ============  ==============  =============  ==========
device                          precision     loss scaling    memory layout  Adam
==============================  ============  ==============  =============  ==========
CUDA, compute capability >= 8   bf16 autocast none            channels-last  fused
CUDA, capability 7.x (T4, V100) fp16 autocast ``GradScaler``  channels-last  fused
CUDA, older                     fp16 autocast ``GradScaler``  contiguous     fused
Apple MPS                       fp32          none            contiguous     foreach
CPU                             fp32          none            contiguous     fused
==============================  ============  ==============  =============  ==========

Reasons: bf16 keeps float32's exponent range, so gradients cannot underflow and need no
scaling; fp16 has 5 exponent bits, so small gradients round to 0 unless the loss is scaled
up before ``backward`` and the gradients scaled back down before the step (the
``GradScaler``). Tensor cores (capability 7.0 and later) read convolutions fastest in the
channels-last (NHWC) layout. A fused Adam updates every parameter in one kernel, and takes
the scaler's inf check on the device, so no step waits on the host. The CPU stays in
float32 (fused Adam, as chapter 3's trainer): deterministic, and resumable exactly.

``torch.compile`` is an option (``compile=True``); its first calls compile, so
:func:`warm_up` times them apart from the steady-state steps.

:func:`d_step` and :func:`g_step` are :func:`gan_tutorial.training.d_step` and
:func:`~gan_tutorial.training.g_step` with the fast path applied (autocast, loss scaling,
channels-last inputs); on the fp32 path they compute exactly the same thing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .losses import GANLoss, get_loss
from .training import _prob, grad_norm

ADAM_IMPLS = ("default", "foreach", "fused")


def cuda_capability(device: torch.device) -> tuple[int, int]:
    """``(major, minor)`` compute capability of a CUDA device (8.0 = A100, 7.5 = T4)."""
    return torch.cuda.get_device_capability(device)


@dataclass(frozen=True)
class FastPath:
    """What the fast path does on one device. Build it with :func:`choose`."""

    device: torch.device
    amp_dtype: torch.dtype | None = None  # autocast dtype; None: plain float32
    grad_scaler: bool = False  # fp16 only: scale the loss against gradient underflow
    channels_last: bool = False  # NHWC memory layout for models and image batches
    adam: str = "default"  # one of ADAM_IMPLS
    compile: bool = False  # wrap G and D in torch.compile

    def __post_init__(self) -> None:
        if self.adam not in ADAM_IMPLS:
            raise ValueError(f"adam must be one of {', '.join(ADAM_IMPLS)}, got {self.adam!r}")
        if self.amp_dtype not in (None, torch.float16, torch.bfloat16):
            raise ValueError(f"amp_dtype must be None, torch.float16 or torch.bfloat16, got {self.amp_dtype}")
        if self.grad_scaler and self.amp_dtype != torch.float16:
            raise ValueError("a gradient scaler is only needed (and only allowed here) with float16 autocast")

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.amp_dtype]

    def describe(self) -> str:
        """One line: device, precision, scaling, layout, Adam, compile."""
        parts = [
            f"{self.device}",
            f"{self.precision}" + (" autocast" if self.amp_dtype else ""),
            "GradScaler" if self.grad_scaler else "no loss scaling",
            "channels-last" if self.channels_last else "contiguous",
            f"{self.adam} Adam",
            "torch.compile" if self.compile else "eager",
        ]
        return "fast path: " + ", ".join(parts)

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` for the chosen dtype, or a no-op context on the fp32 path."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A new ``GradScaler`` on the fp16 path (one per optimiser), else ``None``."""
        return torch.amp.GradScaler(self.device.type) if self.grad_scaler else None

    def adam_optimizer(
        self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]
    ) -> torch.optim.Adam:
        """``torch.optim.Adam`` with the chosen implementation (same maths in every one)."""
        kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}, "default": {}}[self.adam]
        params = list(params)
        try:
            return torch.optim.Adam(params, lr=lr, betas=betas, **kwargs)
        except (RuntimeError, TypeError, ValueError):  # an older torch without this kernel
            return torch.optim.Adam(params, lr=lr, betas=betas)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move ``module`` to the device (channels-last if chosen); compile it if chosen."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.compile:
            module = torch.compile(module)
        return module

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch (B, C, H, W) in the chosen memory layout (same shape, same values)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x


def choose(device: str | torch.device, compile: bool = False) -> FastPath:
    """The fast path for ``device`` (see the table in this module's docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        major, _ = cuda_capability(device)
        if major >= 8:  # Ampere and later: bf16 tensor cores
            return FastPath(device, torch.bfloat16, False, True, "fused", compile)
        return FastPath(device, torch.float16, True, major >= 7, "fused", compile)
    if device.type == "mps":
        return FastPath(device, None, False, False, "foreach", compile)
    if device.type == "cpu":
        return FastPath(device, None, False, False, "fused", compile)
    raise ValueError(f"no fast path for device type {device.type!r}; use cpu, cuda or mps")


def describe(device: str | torch.device, compile: bool = False) -> str:
    """``choose(device, compile).describe()``: the one line a run prints."""
    return choose(device, compile).describe()


def _backward_step(
    loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> torch.Tensor:
    """backward, gradient norm (unscaled), optimiser step; returns the norm. No host sync
    on the bf16/fp32 paths; on the fp16 path a fused Adam takes the inf check on the device."""
    if scaler is None:
        loss.backward()
        grad = grad_norm(module)
        opt.step()
        return grad
    scaler.scale(loss).backward()  # loss * S: small gradients survive fp16
    scaler.unscale_(opt)  # gradients / S, in place, inf check recorded on the device
    grad = grad_norm(module)
    scaler.step(opt)  # skipped if a gradient was inf or NaN
    scaler.update()  # S halves after an overflow, grows after a run of clean steps
    return grad


def d_step(
    G: nn.Module,
    D: nn.Module,
    opt_D: torch.optim.Optimizer,
    x_real: torch.Tensor,
    z: torch.Tensor,
    loss: str | GANLoss,
    fast: FastPath,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`gan_tutorial.training.d_step` on the fast path (same returned statistics).

    The losses are computed in float32 from the logits, whatever the autocast dtype.
    """
    loss = get_loss(loss)
    with torch.no_grad(), fast.autocast():
        x_fake = G(z)  # no graph through G: this step only moves D
    opt_D.zero_grad(set_to_none=True)
    with fast.autocast():
        real_logits, fake_logits = D(fast.images(x_real)), D(fast.images(x_fake))
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    loss_D = loss.d(real_logits, fake_logits)
    grad = _backward_step(loss_D, D, opt_D, scaler)
    return {
        "loss_D": loss_D.detach(),
        "d_real": _prob(real_logits, loss),
        "d_fake": _prob(fake_logits, loss),
        "grad_D": grad,
    }


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_G: torch.optim.Optimizer,
    z: torch.Tensor,
    loss: str | GANLoss,
    fast: FastPath,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`gan_tutorial.training.g_step` on the fast path; D gets no gradient."""
    loss = get_loss(loss)
    opt_G.zero_grad(set_to_none=True)
    flags = [p.requires_grad for p in D.parameters()]
    D.requires_grad_(False)  # gradients flow through D to G, D's own are not needed
    try:
        with fast.autocast():
            fake_logits = D(fast.images(G(z)))
        fake_logits = fake_logits.float()
        loss_G = loss.g(fake_logits)
        grad = _backward_step(loss_G, G, opt_G, scaler)
    finally:
        for p, flag in zip(D.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return {"loss_G": loss_G.detach(), "d_fake_g": _prob(fake_logits, loss), "grad_G": grad}


def warm_up(step: Callable[[], object], n: int = 3, device: str | torch.device = "cpu") -> float:
    """Run ``step()`` ``n`` times and return the seconds they took (compilation included).

    With ``torch.compile`` the first calls trace and compile; timing them here keeps that
    one-off cost out of the images-per-second that follow.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    device = torch.device(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start
