"""Data for the chapters: MNIST as one tensor in [-1, 1], and toy distributions with exact densities.

MNIST comes through ``torchvision.datasets.MNIST``; this module adds what a tutorial
needs around it: one device-resident tensor scaled to the range of a Tanh generator, a
random-batch iterator that indexes that tensor directly (no ``DataLoader`` in the hot
loop), and errors that say what is missing and how to fix it when there is no network.
"""

from __future__ import annotations

import gzip
import math
import shutil
import socket
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .runtime import data_dir

#: The four files ``torchvision.datasets.MNIST`` reads from ``<root>/MNIST/raw/``.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# IDX magic numbers: 0x0801 = uint8 vector (labels), 0x0803 = uint8 3-D array (images).
_IDX_MAGIC = {"images": 2051, "labels": 2049}


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is not on disk and cannot be downloaded."""


class MNISTCorruptError(ValueError):
    """An MNIST file on disk is truncated or not an IDX file."""


def mnist_raw_dir(root: str | Path | None = None) -> Path:
    """``<root>/MNIST/raw``: where the four MNIST files go (``root`` defaults to :func:`data_dir`)."""
    return Path(root if root is not None else data_dir()) / "MNIST" / "raw"


def _decompress_gz(raw: Path) -> None:
    """Unpack ``X.gz`` to ``X`` for any file that is only present compressed."""
    for name in MNIST_FILES:
        target, packed = raw / name, raw / f"{name}.gz"
        if not target.exists() and packed.exists():
            tmp = target.with_suffix(".part")
            try:
                with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError, zlib.error) as err:  # zlib.error: damaged data
                tmp.unlink(missing_ok=True)
                raise MNISTCorruptError(
                    f"{packed} is not a readable gzip file ({err}); delete it and copy or download it again"
                ) from err
            tmp.replace(target)


def check_idx_file(path: Path) -> tuple[int, ...]:
    """Validate an MNIST IDX file's header against its size; return its shape.

    IDX layout: a 4-byte big-endian magic number (2049 labels, 2051 images), one 4-byte
    big-endian size per dimension, then the uint8 payload. A file whose length does not
    match its header is truncated or corrupt.
    """
    kind = "labels" if "labels" in path.name else "images"
    ndim = 1 if kind == "labels" else 3
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4 * (ndim + 1))
    fix = "delete it and copy or download MNIST again"
    if len(header) < 4 * (ndim + 1):
        raise MNISTCorruptError(f"{path} is only {size} bytes, too short for an IDX header; {fix}")
    magic = int.from_bytes(header[:4], "big")
    if magic != _IDX_MAGIC[kind]:
        raise MNISTCorruptError(
            f"{path} does not start with the IDX magic number {_IDX_MAGIC[kind]} of MNIST "
            f"{kind} (found {magic}); is it still gzip-compressed or another file? {fix}"
        )
    shape = tuple(int.from_bytes(header[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim))
    expected = 4 * (ndim + 1) + math.prod(shape)
    if size != expected:
        raise MNISTCorruptError(
            f"{path} has {size} bytes but its header promises {expected} (shape {shape}): "
            f"the file is truncated or corrupt; {fix}"
        )
    return shape


def _online(url: str, timeout: float = 3.0) -> bool:
    """Can we open a TCP connection to the host of ``url`` within ``timeout`` seconds?"""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _missing_message(raw: Path, missing: list[str], why: str) -> str:
    listing = "\n".join(f"  {name}" for name in MNIST_FILES)
    return (
        f"MNIST is not in {raw} ({why}). Missing: {', '.join(missing)}.\n"
        f"Put these four files there, uncompressed or as .gz:\n{listing}\n"
        f"or set $GAN_TUTORIAL_DATA to a folder that has them under MNIST/raw/, "
        "or run once with a network connection to download them."
    )


def ensure_mnist(root: str | Path | None = None, download: bool = True) -> Path:
    """Make sure the four MNIST files are in ``<root>/MNIST/raw``; return that folder.

    Unpacks ``.gz`` copies, validates every file's header against its size, and
    downloads through torchvision only when files are missing, ``download`` is true and
    the mirror answers within seconds (so an offline machine gets an error, not a hang).
    """
    from torchvision.datasets import MNIST

    raw = mnist_raw_dir(root)
    if raw.is_dir():
        _decompress_gz(raw)
    missing = [name for name in MNIST_FILES if not (raw / name).is_file()]
    if missing:
        if not download:
            raise MNISTNotFoundError(_missing_message(raw, missing, "download=False"))
        if not _online(MNIST.mirrors[0]):
            raise MNISTNotFoundError(_missing_message(raw, missing, "no network to download it"))
        MNIST(str(raw.parent.parent), train=True, download=True)
        MNIST(str(raw.parent.parent), train=False, download=True)
    for name in MNIST_FILES:
        check_idx_file(raw / name)
    return raw


def load_mnist(
    train: bool = True,
    device: str | torch.device = "cpu",
    root: str | Path | None = None,
    download: bool = True,
    labels: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """MNIST as one float32 tensor of shape (N, 1, 28, 28) in [-1, 1] on ``device``.

    Pixels p in {0, ..., 255} map to x = p / 127.5 - 1, so 0 -> -1 and 255 -> 1: the
    range of a Tanh generator. ``train=True`` gives the 60,000 training images, ``False``
    the 10,000 test images. With ``labels=True`` returns ``(images, labels)``, labels an
    int64 tensor of shape (N,).
    """
    from torchvision.datasets import MNIST

    raw = ensure_mnist(root, download=download)
    dataset = MNIST(str(raw.parent.parent), train=train, download=False)
    x = dataset.data.to(device=device).unsqueeze(1).float().div_(127.5).sub_(1.0)  # (N, 1, 28, 28)
    if labels:
        return x, dataset.targets.to(device=device)
    return x


def balanced_subset(labels: torch.Tensor, n: int, seed: int, classes: int = 10) -> torch.Tensor:
    """Sorted indices of ``n`` images, ``n // classes`` of each class (the remainder spread over
    classes the seed picks), chosen by ``seed``: a little-data run's training set (chapter 8).

    Refuses fewer images than classes (a class would be missing), more than there are, and a class
    with too few images for its share."""
    labels = torch.as_tensor(labels)
    if not classes <= n <= len(labels):
        raise ValueError(
            f"a class-balanced subset needs between {classes} (one image per class) and the "
            f"{len(labels)} images there are, got {n}"
        )
    gen = torch.Generator().manual_seed(seed)
    share = torch.full((classes,), n // classes)
    share[torch.randperm(classes, generator=gen)[: n % classes]] += 1
    chosen = []
    for c in range(classes):
        rows = (labels == c).nonzero().flatten()
        if len(rows) < share[c]:
            raise ValueError(f"class {c} has {len(rows)} images, fewer than its share {int(share[c])}")
        chosen.append(rows[torch.randperm(len(rows), generator=gen)[: share[c]]])
    return torch.cat(chosen).sort().values


def check_images(x: object, what: str = "images") -> None:
    """Raise ``ValueError`` unless ``x`` is a float tensor of MNIST images (N, 1, 28, 28) in [-1, 1],
    N >= 1, the shape and range of :func:`load_mnist` and of a Tanh generator; ``what`` names them
    in the message ("training images", "samples", ...)."""
    how = (
        "images come from gan_tutorial.data.load_mnist (p / 127.5 - 1) or from a generator with a Tanh output"
    )
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28) or not len(x):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        if isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == 784:
            how = "a flat (N, 784) batch (an MLP generator's output) becomes images by x.view(-1, 1, 28, 28)"
        raise ValueError(f"{what} must have shape (N, 1, 28, 28), got {shape}; {how}")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be floats in [-1, 1], got dtype {x.dtype}; {how}")
    lo, hi = x.aminmax()
    if not (-1 <= lo and hi <= 1):  # also false for NaN
        raise ValueError(
            f"{what} must lie in [-1, 1] (the range of G's Tanh), "
            f"got [{float(lo):.7g}, {float(hi):.7g}]; {how}"
        )


def random_batches(
    x: torch.Tensor, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Endless batches of ``x`` (indexed along dim 0), reshuffled every epoch.

    The permutation is drawn on the CPU (so one seeded CPU generator makes runs
    repeatable on any device) and moved once per epoch; each batch is then a slice of
    an index tensor that already lives on ``x.device``: no host synchronisation.
    Incomplete last batches are dropped.
    """
    n = x.shape[0]
    if not 0 < batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and the {n} samples, got {batch_size}")
    while True:
        perm = torch.randperm(n, generator=generator).to(x.device, non_blocking=True)
        for start in range(0, n - batch_size + 1, batch_size):
            yield x[perm[start : start + batch_size]]


class BatchSampler:
    """Random batches of a tensor, reshuffled every epoch, with a state that can be saved: what
    :func:`random_batches` does, for the trainer, whose checkpoints continue mid-epoch.

    The state is the CPU generator's state at the start of the epoch plus the position in
    it; restoring it redraws the same permutation and continues from the same batch. ``y``
    (optional) holds a label per row of ``x``; :meth:`labelled` gives a batch with its labels.
    """

    def __init__(self, x: torch.Tensor, batch_size: int, seed: int, y: torch.Tensor | None = None) -> None:
        if not 0 < batch_size <= x.shape[0]:
            raise ValueError(f"batch_size must be between 1 and the {x.shape[0]} images, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.epoch_state = self.generator.get_state()
        self.perm = torch.randperm(self.x.shape[0], generator=self.generator).to(self.x.device)
        self.pos = 0

    def indices(self) -> torch.Tensor:
        """The next batch's (B,) row indices into ``x``, on ``x``'s device."""
        if self.pos + self.batch_size > self.x.shape[0]:  # drop the incomplete last batch
            self._new_epoch()
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def __call__(self) -> torch.Tensor:
        return self.x[self.indices()]  # (B, 1, 28, 28)

    def labelled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next batch and its labels (``None`` without labels): (B, 1, 28, 28) and (B,)."""
        idx = self.indices()
        return self.x[idx], None if self.y is None else self.y[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_state": self.epoch_state, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["epoch_state"])
        self._new_epoch()
        self.pos = state["pos"]


# ---------------------------------------------------------------------------------------
# Toy distributions
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianMixture:
    """A mixture of isotropic Gaussians in ``dim`` dimensions with known density.

    p(x) = sum_k w_k N(x; mu_k, sigma_k^2 I). ``means`` is (K, dim), ``stds`` and
    ``weights`` are (K,); weights sum to 1. Samples come out as (n, dim) float32.
    """

    means: torch.Tensor
    stds: torch.Tensor
    weights: torch.Tensor

    def __post_init__(self) -> None:
        if self.means.ndim != 2:
            raise ValueError(f"means must be (K, dim), got shape {tuple(self.means.shape)}")
        k = self.means.shape[0]
        if self.stds.shape != (k,) or self.weights.shape != (k,):
            raise ValueError(f"stds and weights must have shape ({k},) to match {k} means")
        if (self.stds <= 0).any() or (self.weights < 0).any():
            raise ValueError("stds must be positive and weights non-negative")
        if abs(float(self.weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, they sum to {float(self.weights.sum())}")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples, shape (n, dim): pick a component by weight, then add its noise."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return (self.means[k] + self.stds[k, None] * noise).float()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) for x of shape (n, dim), computed stably with ``logsumexp``."""
        x = x.to(self.means.dtype)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)  # (n, K)
        var = self.stds**2
        log_norm = -0.5 * self.dim * torch.log(2 * math.pi * var)  # (K,)
        return torch.logsumexp(torch.log(self.weights) + log_norm - 0.5 * sq / var, dim=1)

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """p(x) for x of shape (n, dim)."""
        return self.log_prob(x).exp()


def gaussian_mixture_1d(
    means: tuple[float, ...] = (-2.0, 2.0),
    stds: tuple[float, ...] = (0.5, 0.5),
    weights: tuple[float, ...] | None = None,
) -> GaussianMixture:
    """A 1-D mixture (equal weights unless given); samples are (n, 1)."""
    k = len(means)
    w = torch.full((k,), 1.0 / k) if weights is None else torch.tensor(weights, dtype=torch.float64)
    return GaussianMixture(
        torch.tensor(means, dtype=torch.float64)[:, None], torch.tensor(stds, dtype=torch.float64), w.double()
    )


def ring8(radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """Eight Gaussians evenly spaced on a circle: mu_i = r (cos 2 pi i / 8, sin 2 pi i / 8).

    Defaults follow the 2D-ring of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al.
    2018): radius 1, standard deviation 0.01.
    """
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(
        means, torch.full((8,), std, dtype=torch.float64), torch.full((8,), 1 / 8, dtype=torch.float64)
    )


def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """25 Gaussians on a 5 x 5 grid: mu_ij = (-2 s + s i, -2 s + s j), i, j in 0..4.

    Defaults follow the 2D-grid of VEEGAN and PacGAN: means at (-4 + 2i, -4 + 2j),
    standard deviation 0.05.
    """
    ticks = (torch.arange(5, dtype=torch.float64) - 2) * spacing
    means = torch.cartesian_prod(ticks, ticks)
    return GaussianMixture(
        means, torch.full((25,), std, dtype=torch.float64), torch.full((25,), 1 / 25, dtype=torch.float64)
    )
