"""Where and how the chapters run: device, seeding, quick mode and the data folder.

Every environment variable the project reads is read here, and only when a function
is called, never at import:

==========================  ===================================================
``GAN_TUTORIAL_DEVICE``     device name used when none is passed (``cpu``, ...)
``GAN_TUTORIAL_QUICK``      ``1`` shrinks every training budget (the test mode)
``GAN_TUTORIAL_DATA``       folder that holds ``MNIST/raw/`` (see :func:`data_dir`)
==========================  ===================================================
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import torch

DEVICE_ENV = "GAN_TUTORIAL_DEVICE"
QUICK_ENV = "GAN_TUTORIAL_QUICK"
DATA_ENV = "GAN_TUTORIAL_DATA"

#: Names :func:`get_device` accepts (``cuda:N`` picks the N-th GPU).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

T = TypeVar("T")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device(name: str | torch.device | None = None) -> torch.device:
    """Pick the device a chapter runs on.

    Order of precedence: the ``name`` argument, then ``$GAN_TUTORIAL_DEVICE``, then
    ``"auto"``, which takes CUDA if present, else Apple's MPS, else the CPU.

    Raises ``ValueError`` for a name that is not one of :data:`DEVICE_CHOICES`, and
    ``RuntimeError`` when the named device exists in PyTorch but not on this machine.
    """
    source = "argument"
    if name is None:
        name, source = os.environ.get(DEVICE_ENV, "") or "auto", f"${DEVICE_ENV}"
    if isinstance(name, torch.device):
        name = str(name)
    key = name.strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")

    kind, _, index = key.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(
            f"unknown device {name!r} (from the {source}); choose one of {', '.join(DEVICE_CHOICES)}"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} (from the {source}) was asked for, but PyTorch sees no CUDA GPU "
                "here; use 'auto' or 'cpu', or install a CUDA build of torch"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {name!r} (from the {source}) does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s), numbered from 0"
            )
    if kind == "mps" and not _mps_available():
        raise RuntimeError(
            f"device {name!r} (from the {source}) was asked for, but Apple's MPS is not "
            "available here; use 'auto' or 'cpu'"
        )
    return torch.device(key)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's (if installed) and PyTorch's generators.

    On the CPU, two runs that call this with the same seed and then do the same work give
    bit-identical results. GPU kernels may still differ run to run. Returns a fresh
    ``torch.Generator`` seeded with ``seed``, for code that prefers an explicit one.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy ships with matplotlib
        pass
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def isolated(seed: int | None = None, threads: int | None = None) -> Iterator[None]:
    """Run a block with PyTorch's global CPU random state and thread count left as they were.

    Inside, the CPU generator is seeded with ``seed`` (if given) and PyTorch uses ``threads``
    intra-op threads (if given: one is fastest for the tiny networks of chapters 1, 2 and 6,
    whose products are too small to share). Afterwards both are put back, so a helper that draws
    weights or dropout neither reseeds nor consumes the caller's stream.
    """
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def quick_mode() -> bool:
    """True when ``$GAN_TUTORIAL_QUICK`` is set to a true value (``1``, ``true``, ...).

    Quick mode shrinks training budgets so every notebook runs in seconds under
    ``pytest --nbval``; the code path is the same as in full mode.
    """
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"${QUICK_ENV}={value!r} is not understood; set it to 1 (quick) or 0 (full)")


def budget(full: T, quick: T) -> T:
    """The chapter's budget for this mode: ``quick`` in quick mode, else ``full``.

    >>> budget(full=5000, quick=200)  # doctest: +SKIP
    5000
    """
    return quick if quick_mode() else full


def repo_root() -> Path | None:
    """The repository checkout the package runs from, or ``None`` if installed elsewhere."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def data_dir() -> Path:
    """The folder datasets live in (``MNIST/raw/`` inside it).

    ``$GAN_TUTORIAL_DATA`` if set; otherwise ``data/`` at the repository root when the
    package runs from a checkout, else ``~/.cache/gan_tutorial``.
    """
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    root = repo_root()
    if root is not None:
        return root / "data"
    return Path.home() / ".cache" / "gan_tutorial"


def figures_dir() -> Path | None:
    """``figures/`` of the checkout, where a full run saves its figures.

    ``None`` in quick mode (tests never rewrite tracked files) or outside a checkout.
    """
    root = repo_root()
    if quick_mode() or root is None:
        return None
    path = root / "figures"
    path.mkdir(exist_ok=True)
    return path


def describe(device: torch.device) -> str:
    """One line for a notebook's setup cell: versions of what the chapters use, device and mode."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torchvision

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    from . import __version__

    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    mode = "quick" if quick_mode() else "full"
    return (
        f"gan_tutorial {__version__}, python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, ipywidgets {installed('ipywidgets')}; device {name}; "
        f"{mode} mode"
    )


def peak_memory_gib() -> float | None:
    """Peak resident memory of this process so far, in GiB (``None`` where the platform does not
    say: the ``resource`` module is Unix-only). On Linux ``ru_maxrss`` is in KiB, on macOS in bytes."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def chapter_report(start: float, device: torch.device) -> str:
    """The line a chapter ends on: its wall time since ``start`` (a ``time.perf_counter()``), the
    mode and device, and the peak memory of the kernel (and of the GPU, on one)."""
    import time

    mode = "quick" if quick_mode() else "full"
    line = f"chapter ran in {time.perf_counter() - start:.0f} s ({mode} mode, {device})"
    peak = peak_memory_gib()
    if peak is not None:
        line += f"; peak memory of this kernel {peak:.2f} GiB"
    if device.type == "cuda":
        line += f", of the GPU {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    return line
