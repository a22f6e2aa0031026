"""The GPU fast path, chosen from what the device supports and reported in one line (chapter 4).

:func:`choose` looks at the device and returns a :class:`FastPath`:

==============================  ============  ==============  =============  ==========  ===========
device                          precision     loss scaling    memory layout  Adam        launches
==============================  ============  ==============  =============  ==========  ===========
CUDA, compute capability >= 8   bf16 autocast none            channels-last  fused       CUDA graphs
CUDA, capability 7.x (T4, V100) fp16 autocast ``GradScaler``  channels-last  fused       eager
CUDA, older                     fp16 autocast ``GradScaler``  contiguous     fused       eager
Apple MPS                       fp32          none            contiguous     foreach     eager
CPU                             fp32          none            channels-last  fused       eager
==============================  ============  ==============  =============  ==========  ===========

Reasons: bf16 keeps float32's exponent range, so gradients cannot underflow and need no
scaling; fp16 has 5 exponent bits, so small gradients round to 0 unless the loss is scaled
up before ``backward`` and the gradients scaled back down before the step (the
``GradScaler``). Tensor cores (capability 7.0 and later) read convolutions fastest in the
channels-last (NHWC) layout, and so do the CPU's oneDNN convolution kernels (about 1.3x
faster for chapter 4's DCGAN on one core, measured; a no-op for the MLP, whose weights are
matrices). A fused Adam updates every parameter in one kernel, and takes the scaler's inf
check on the device, so no step waits on the host. The CPU stays in float32 (fused Adam,
as chapter 3's trainer): deterministic, and resumable exactly.

**CUDA graphs.** One iteration of chapter 4's small networks launches a few hundred GPU
kernels of a few microseconds each. Launched one at a time from Python, they leave the GPU
waiting on the CPU: on an H100 the eager loop makes about 130 iterations per second at any
batch size from 32 to 512 (measured). A CUDA graph records an iteration's launches once and
replays them with one call. The trainer captures one graph per R1 weight (lazy R1 alternates
two kinds of iteration) after a few eager warm-up iterations, and feeds it through fixed
buffers: each step copies its batch indices and draws its codes into them, then replays.
Capture needs optimisers whose step counter lives on the device (``capturable=True``) and
autocast without its weight-cast cache; the ``GradScaler`` path (fp16) stays eager, because
the scaler decides on the host whether to skip a step.

``torch.compile`` is an option (``compile=True``); its first calls compile, so
:func:`warm_up` times them apart from the steady-state steps.

:class:`gan_tutorial.iteration.Iteration` applies the fast path (autocast, loss scaling,
channels-last inputs) around chapter 1's updates; on the fp32 path it computes exactly what
:func:`gan_tutorial.updates.d_step` and :func:`~gan_tutorial.updates.g_step` compute.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

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
    cuda_graph: bool = False  # capture each training iteration as a CUDA graph and replay it

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", torch.device(self.device))  # "cuda:0" or a device alike
        if self.adam not in ADAM_IMPLS:
            raise ValueError(f"adam must be one of {', '.join(ADAM_IMPLS)}, got {self.adam!r}")
        if self.amp_dtype not in (None, torch.float16, torch.bfloat16):
            raise ValueError(f"amp_dtype must be None, torch.float16 or torch.bfloat16, got {self.amp_dtype}")
        if self.grad_scaler and self.amp_dtype != torch.float16:
            raise ValueError("a gradient scaler is only needed (and only allowed here) with float16 autocast")
        if self.cuda_graph and (self.device.type != "cuda" or self.grad_scaler or self.compile):
            raise ValueError(
                "CUDA graphs need a CUDA device, no gradient scaler and no torch.compile "
                f"(got device {self.device}, grad_scaler={self.grad_scaler}, compile={self.compile})"
            )

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
            "torch.compile" if self.compile else "CUDA graphs" if self.cuda_graph else "eager",
        ]
        return "fast path: " + ", ".join(parts)

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` for the chosen dtype, or a no-op context on the fp32 path.

        With CUDA graphs the weight-cast cache is off: a graph must not keep casts made
        during its capture (each weight is cast once per pass here anyway)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        cache = not self.cuda_graph
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, cache_enabled=cache)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A new ``GradScaler`` on the fp16 path (one per optimiser), else ``None``."""
        return torch.amp.GradScaler(self.device.type) if self.grad_scaler else None

    def adam_optimizer(
        self, params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]
    ) -> torch.optim.Adam:
        """``torch.optim.Adam`` with the chosen implementation (same maths in every one);
        with CUDA graphs its step counters live on the device (``capturable=True``).

        :func:`choose` picks ``"fused"`` only where this torch has the kernel for the device
        (:func:`fused_adam_available`), so what :meth:`describe` prints is what runs."""
        kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}, "default": {"foreach": False}}
        kwargs = kwargs[self.adam]
        if self.cuda_graph:
            kwargs = {**kwargs, "capturable": True}
        return torch.optim.Adam(params, lr=lr, betas=betas, **kwargs)

    def place(self, module: nn.Module) -> nn.Module:
        """Move ``module`` to the device, in the chosen memory layout."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def compiled(self, module: nn.Module) -> nn.Module:
        """``module`` compiled in place if chosen (``nn.Module.compile``: its ``state_dict`` keys
        stay those of the plain module, so checkpoints and averages load either way), else as it is."""
        if self.compile:
            module.compile()
        return module

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch (B, C, H, W) in the chosen memory layout (same shape, same values)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x


def fused_adam_available(device: str | torch.device) -> bool:
    """Whether this torch has a fused Adam kernel for ``device`` (CUDA since 2.0, the CPU since
    2.4, MPS later): tried on a one-element parameter, since the answer depends on the build."""
    device = torch.device(device)
    try:
        torch.optim.Adam([nn.Parameter(torch.zeros(1, device=device))], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def choose(
    device: str | torch.device,
    compile: bool = False,
    cuda_graphs: bool = True,
    capability: tuple[int, int] | None = None,
) -> FastPath:
    """The fast path for ``device`` (see the table in this module's docstring);
    ``cuda_graphs=False`` keeps a bf16 GPU's iterations eager (to compare, or to debug).
    Where this torch has no fused Adam for the device, the multi-tensor ("foreach") one is
    chosen instead, and :meth:`FastPath.describe` says so. ``capability`` stands in for a CUDA
    device's compute capability (to see what another GPU would get; default: the device's own)."""
    device = torch.device(device)
    # CUDA has had a fused Adam since torch 2.0; the CPU's came in 2.4, so it is tried
    adam = "fused" if device.type == "cuda" or fused_adam_available(device) else "foreach"
    if device.type == "cuda":
        major, _ = capability if capability is not None else cuda_capability(device)
        if major >= 8:  # Ampere and later: bf16 tensor cores; graphs unless compiled
            graphs = cuda_graphs and not compile
            return FastPath(device, torch.bfloat16, False, True, adam, compile, cuda_graph=graphs)
        return FastPath(device, torch.float16, True, major >= 7, adam, compile)
    if device.type == "mps":
        return FastPath(device, None, False, False, "foreach", compile)
    if device.type == "cpu":
        return FastPath(device, None, False, True, adam, compile)
    raise ValueError(f"no fast path for device type {device.type!r}; use cpu, cuda or mps")


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
