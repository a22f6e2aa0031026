"""Training one run on several processes (``torchrun``, DistributedDataParallel), for a GAN.

``torchrun --standalone --nproc_per_node=N -m gan_tutorial train ...`` starts N copies of the
command; :func:`start` reads the variables torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``), joins the process group (gloo on the CPU, NCCL on CUDA with one GPU per
process) and returns a :class:`ProcessGroup`. Without torchrun it returns :class:`World`, one
process, whose every method does nothing: the trainer runs the same code either way.

What a GAN needs beyond the usual recipe, each point tested in ``tests/test_distributed.py``:

* **One global batch.** Every process draws the same batch of ``batch_size`` images and codes
  from the seed (the single-process run's), and keeps its own rows (:meth:`World.shard`):
  disjoint, reproducible, and unchanged by the number of processes.
* **Each optimiser all-reduces only its own gradients.** G and D are wrapped in DDP apart. D's
  update runs the wrapped D (its gradients are averaged across processes); G's update scores
  the fakes with D's plain module, so D's gradients there (not needed) start no all-reduce.
* **Batch norm.** DDP's default broadcasts rank 0's buffers at every forward pass, in place,
  which breaks a D called twice before one backward (real, then fake batch) on older torch
  ("modified by an inplace operation"). Here the wrappers broadcast nothing, and
  :meth:`World.sync_buffers` averages the running statistics after every iteration instead,
  so every process holds the same weights, statistics and moving average of G. Each
  process's batch norm normalises over its own rows (batch / N); :func:`sync_batch_norm`
  makes it the whole batch's on CUDA.
* **Agreement.** A budget in seconds, a signal or a due checkpoint seen by one process stops or
  saves every process at the same step (:meth:`World.agree`); a NaN found on any process
  stops them all at the same check, naming the step and the process (:meth:`World.merge_guard`).
* **One writer.** Only rank 0 writes checkpoints and shows progress; the checkpoint is the
  file a single process writes, plus each process's random stream (dropout, noise).
* **No hang.** Every collective has a timeout (:data:`DEFAULT_TIMEOUT`): a process that died
  makes the others fail with an error that says so, and torchrun stops the rest.
"""

from __future__ import annotations

import datetime
import inspect
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .models import batch_norm_layers

#: Seconds a collective waits for the other processes before it fails (the default of ``start``).
DEFAULT_TIMEOUT = 120.0

#: The variables torchrun sets in each process it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class PeerLost(RuntimeError):
    """A collective failed: another process of the run stopped, died or timed out."""


class World:
    """One process: ``rank`` 0 of ``size`` 1. Every method is the identity or does nothing."""

    rank, size, local_rank, backend = 0, 1, 0, None

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints and shows progress (rank 0)."""
        return self.rank == 0

    def describe(self) -> str:
        return "1 process"

    def shard(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """This process's rows of a global batch."""
        return x

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` as this process runs it forward (a DDP wrapper on several)."""
        return module

    def sync_buffers(self, *modules: nn.Module) -> None:
        """Average the modules' batch-norm running statistics across processes."""

    def agree(self, *values: int) -> tuple[int, ...]:
        """Each value's maximum over the processes (a flag set on any process is set on all)."""
        return values

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` averaged over the processes (a new tensor; ``x`` itself on one process)."""
        return x

    def gather_object(self, obj: object) -> list[object]:
        """Every process's ``obj``, in rank order."""
        return [obj]

    def merge_guard(self, guard) -> str:
        """Make every process's divergence guard hold the earliest bad step of any process; returns
        what each process saw at that step (" (process 0 of 2: grad_D; process 1 of 2: loss_D,
        grad_D)"), or "" on one process or when every step was finite."""
        return ""

    def lost(self, err: BaseException) -> PeerLost | None:
        """``err`` as a :class:`PeerLost` if it is a failed collective (another process died or
        hung: gloo's and NCCL's errors, recognised by their text), else ``None``. One process:
        always ``None``. On NCCL a collective that times out may instead be ended by NCCL's own
        watchdog, which stops the process."""
        return None

    def stream_seed(self, seed: int) -> int | None:
        """The seed of this process's own random stream (dropout, noise), or ``None``: rank 0 (and
        a single process) continues the stream the models' seed left."""
        return None

    def own_stream(self, rng: dict, key: str) -> torch.Tensor | None:
        """This process's random stream ``key`` ("torch", "cuda") from a checkpoint's ``rng``: its own
        when the checkpoint has one for its rank (rank 0's is the one a single process writes), else
        ``None`` (a run resumed on more processes than it was written by)."""
        streams = rng.get(f"{key}_ranks", [rng[key]])
        return streams[self.rank].cpu() if self.rank < len(streams) else None


class ProcessGroup(World):
    """Process ``rank`` of ``size``, in the process group :func:`start` joined."""

    def __init__(
        self, rank: int, size: int, local_rank: int, backend: str, device: torch.device, sync_bn: bool = False
    ) -> None:
        self.rank, self.size, self.local_rank, self.backend = rank, size, local_rank, backend
        self.device = device  # where the models live; collectives run there (gloo: the CPU)
        self.sync_bn = sync_bn
        self.broken = False  # a collective failed: another process died or hung
        # the host's decisions (stop, save) travel over gloo on the CPU: on NCCL they would wait for
        # the GPU at every step
        self.host_group = dist.new_group(backend="gloo") if backend == "nccl" else None

    def describe(self) -> str:
        return f"{self.size} processes, {self.backend}" + (", SyncBatchNorm" if self.sync_bn else "")

    def shard(self, x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        if len(x) % self.size:
            raise ValueError(f"a batch of {len(x)} rows does not split evenly over {self.size} processes")
        n = len(x) // self.size
        return x[self.rank * n : (self.rank + 1) * n]

    def wrap(self, module: nn.Module) -> nn.Module:
        # broadcast_buffers=False: no in-place copy of rank 0's statistics at each forward pass
        # (see the module docstring); sync_buffers averages them after each iteration instead
        ids = [self.device] if self.device.type == "cuda" else None
        if self.sync_bn:  # the module's batch norms, swapped in place (same weights and buffers)
            module = sync_batch_norm(module, self.device)
        # newer torch renames the flag; the old name warns there
        params = inspect.signature(DistributedDataParallel).parameters
        flag = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
        # a one-channel convolution's weight (C = 1) has the same memory order in both layouts, and
        # channels-last images give its gradient the other strides: DDP warns of a copy that costs nothing
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        return DistributedDataParallel(module, device_ids=ids, **{flag: False})

    def sync_buffers(self, *modules: nn.Module) -> None:
        # running means and variances only: other buffers (spectral norm's vectors) are alike already
        layers = [bn for m in modules for bn in batch_norm_layers(m) if bn.track_running_stats]
        buffers = [b for bn in layers for b in (bn.running_mean, bn.running_var)]
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1) for b in buffers])  # one all-reduce for all of them
        self._all_reduce(flat, dist.ReduceOp.SUM)
        flat /= self.size
        for b, part in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
            b.copy_(part.view_as(b))

    def agree(self, *values: int) -> tuple[int, ...]:
        t = torch.tensor([int(v) for v in values], dtype=torch.long)  # on the CPU: no wait for the GPU
        self._guarded(dist.all_reduce, t, op=dist.ReduceOp.MAX, group=self.host_group)
        return tuple(t.tolist())

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().clone()
        self._all_reduce(x, dist.ReduceOp.SUM)
        return x / self.size

    def gather_object(self, obj: object) -> list[object]:
        out: list[object] = [None] * self.size
        self._guarded(dist.all_gather_object, out, obj, group=self.host_group)
        return out

    def merge_guard(self, guard) -> str:
        seen = self.gather_object((int(guard.first_bad), int(guard.what)))
        bad = [(step, rank, what) for rank, (step, what) in enumerate(seen) if step]
        if not bad:
            return ""
        first = min(step for step, _, _ in bad)
        at_first = [(rank, what) for step, rank, what in bad if step == first]
        bits = 0
        for _, what in at_first:
            bits |= what
        guard.first_bad.fill_(first)
        guard.what.fill_(bits)
        names = [
            "process {} of {}: {}".format(
                rank, self.size, ", ".join(k for i, k in enumerate(guard.GUARDED) if what >> i & 1)
            )
            for rank, what in at_first
        ]
        return " (" + "; ".join(names) + ")"

    def stream_seed(self, seed: int) -> int | None:
        return None if self.rank == 0 else seed * 1_000_003 + self.rank

    def lost(self, err: BaseException) -> PeerLost | None:
        if isinstance(err, PeerLost):
            self.broken = True
            return err
        text = str(err)
        # gloo's and NCCL's errors from a collective (DDP's all-reduce in backward included)
        if isinstance(err, dist.DistBackendError) or any(w in text for w in ("gloo", "NCCL", "Connection")):
            self.broken = True
            return PeerLost(
                f"process {self.rank} of {self.size}: another process of this run stopped or did not "
                f"answer in time ({type(err).__name__}: {text.splitlines()[0][:200]}). The last "
                "checkpoint rank 0 wrote is intact; continue with --resume"
            )
        return None

    def _all_reduce(self, t: torch.Tensor, op: dist.ReduceOp) -> None:
        self._guarded(dist.all_reduce, t, op=op)

    def _guarded(self, collective, *args, **kwargs) -> None:
        try:
            collective(*args, **kwargs)
        except RuntimeError as err:  # DistBackendError is one
            lost = self.lost(err)
            if lost is None:
                raise
            raise lost from err


def under_torchrun() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return all(k in os.environ for k in TORCHRUN_ENV) and int(os.environ["WORLD_SIZE"]) > 1


def start(
    device: torch.device, timeout: float = DEFAULT_TIMEOUT, sync_bn: bool = False
) -> tuple[World, torch.device]:
    """Join torchrun's process group if this process is one of several; ``(world, device)``.

    ``device`` is the kind asked for (:func:`gan_tutorial.runtime.get_device`): on CUDA each
    process takes the GPU of its local rank (one per process: NCCL cannot share one), with
    NCCL; on the CPU, gloo. ``sync_bn`` turns every batch norm into a ``SyncBatchNorm`` (CUDA
    only). Without torchrun: ``(World(), device)``, nothing joined.
    """
    if timeout <= 0:
        raise ValueError(f"the collectives' timeout must be positive seconds, got {timeout}")
    if sync_bn and device.type != "cuda":
        sync_batch_norm(nn.Module(), device)  # raises: says why
    if not under_torchrun():
        if sync_bn:
            raise ValueError("--sync-batch-norm is for several processes: start the run with torchrun")
        return World(), device
    rank, size, local = (int(os.environ[k]) for k in TORCHRUN_ENV)
    if device.type == "cuda":
        if device.index is not None:
            raise ValueError(
                "under torchrun each process takes the GPU of its local rank; ask for --device cuda, "
                f"not {device}"
            )
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"process {rank} has local rank {local}, but this machine has {torch.cuda.device_count()} "
                "GPU(s): start at most one process per GPU (--nproc_per_node)"
            )
        device, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(device)
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(
            f"training on several processes runs on CUDA (NCCL) or the CPU (gloo), not {device.type}"
        )
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    return ProcessGroup(rank, size, local, backend, device, sync_bn), device


def stop(world: World, together: bool = True) -> None:
    """Leave the process group at the end of a run. ``together`` (an end every process reached):
    once every process has arrived (torch 2.4's gloo can hang in ``destroy_process_group`` when
    another process has already left). Otherwise (an error on this process, or a collective that
    failed), at once: the others may never arrive, and the process's exit cleans up."""
    if not isinstance(world, ProcessGroup) or not dist.is_initialized() or world.broken or not together:
        return
    world._guarded(dist.barrier)
    dist.destroy_process_group()


def sync_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every batch norm a ``SyncBatchNorm``: statistics over the whole global batch
    instead of each process's rows. CUDA only: PyTorch's SyncBatchNorm has no CPU kernel."""
    if device.type != "cuda":
        raise ValueError(
            "SyncBatchNorm runs on CUDA only (PyTorch has no CPU version of it); on the CPU each "
            "process's batch norm normalises over its own rows: drop --sync-batch-norm"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)
