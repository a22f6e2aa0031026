"""The benchmark: this project's trainer against the loop pytorch/examples writes, one change at a time.

``python -m gan_tutorial bench`` trains the same G and D (``--model mlp``, chapter 3, or
``--model dcgan``, chapter 4), with the same batch size and optimiser settings, in one
process, as a ladder of loops in which each row adds one change to the row above:

1. **the pytorch/examples loop**, as ``dcgan/main.py`` there runs it: a torchvision
   ``DataLoader`` (``ToTensor`` and ``Normalize((0.5,), (0.5,))``, shuffled, 2 worker
   processes), ``cudnn.benchmark = True`` on a GPU, a ``Sigmoid`` at the end of D with
   ``BCELoss`` and label tensors, one generator forward reused for the D and G updates, and
   ``.item()`` on every monitor at every step (it prints them; here they are stored);
2. the same loop with its batches indexed from one device-resident tensor (no ``DataLoader``);
3. the same with the monitors kept on the device, read back every ``log_every`` steps;
4. the trainer (:class:`gan_tutorial.trainer.Trainer`) on its plainest path (float32,
   contiguous layout, for-loop Adam, eager): losses from logits, no gradient for D's weights
   in the G step, one pass of D over the real and fake rows when D has no batch norm;
5. and 6. the trainer with the channels-last layout, then with fused Adam;
7. (on a GPU) with mixed precision (bf16, or fp16 with a ``GradScaler``);
8. with ``compile=True`` (``--compile``), the row above compiled with ``torch.compile`` (its
   compilation timed apart, not in the images per second);
9. (on a bf16 GPU) the row above 8 with its iterations replayed as CUDA graphs.

The loops take turns in rounds, so that a machine whose load changes slows them alike. Then
the first and the last loop train again from scratch for the same wall-clock time, and the
judge scores each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn

from . import accel, latent, runtime
from .config import TrainConfig, build_models
from .data import BatchSampler, ensure_mnist
from .trainer import Trainer


class Baseline:
    """The pytorch/examples-style loop (one object, so the timing excludes set-up).

    ``data="dataloader"`` reads batches through torchvision's ``DataLoader`` with ``workers``
    processes, as pytorch/examples does; ``"tensor"`` indexes them from one tensor on the device.
    ``item=True`` reads every monitor back with ``.item()`` at every step; ``False`` keeps them
    as device tensors, read back every ``config.log_every`` steps.
    """

    def __init__(
        self,
        config: TrainConfig,
        device: torch.device,
        data: str = "dataloader",
        item: bool = True,
        workers: int = 2,
        x_train: torch.Tensor | None = None,
    ) -> None:
        from torch.utils.data import DataLoader  # torchvision's data pipeline: loaded only for this loop
        from torchvision import datasets, transforms

        if data not in ("dataloader", "tensor"):
            raise ValueError(f"data must be 'dataloader' or 'tensor', got {data!r}")
        self.config, self.device, self.item = config, device, item
        if data == "dataloader":
            raw = ensure_mnist()
            tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
            dataset = datasets.MNIST(str(raw.parent.parent), train=True, download=False, transform=tf)
            loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, num_workers=workers)
            self.next_batch = self._from_loader(loader)
        else:
            if x_train is None:
                raise ValueError("data='tensor' needs x_train")
            self.next_batch = BatchSampler(x_train.to(device), config.batch_size, config.seed)
        with runtime.isolated(seed=config.seed):
            G, D = build_models(config)
        self.G, self.D = G.to(device), nn.Sequential(D, nn.Sigmoid()).to(device)  # probabilities out
        betas = (config.beta1, config.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr_G, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr_D, betas=betas)
        self.criterion = nn.BCELoss()
        self.log: list[tuple] = []
        self.steps = 0

    @staticmethod
    def _from_loader(loader) -> Callable[[], torch.Tensor]:
        batches = iter(loader)

        def next_batch() -> torch.Tensor:
            nonlocal batches
            try:
                x, _ = next(batches)
            except StopIteration:  # a new epoch: pytorch/examples loops over the loader again
                batches = iter(loader)
                x, _ = next(batches)
            return x

        return next_batch

    def step(self) -> int:
        """One iteration, as pytorch/examples writes it; returns the number of real images used."""
        x_real = self.next_batch().to(self.device)
        b = x_real.size(0)
        label = torch.full((b, 1), 1.0, device=self.device)
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.D.zero_grad()
        output = self.D(x_real)
        err_real = self.criterion(output, label)
        err_real.backward()
        d_x = output.mean()
        z = torch.randn(b, self.config.latent_dim, device=self.device)
        fake = self.G(z)
        label.fill_(0.0)
        output = self.D(fake.detach())
        err_fake = self.criterion(output, label)
        err_fake.backward()
        d_g_z1 = output.mean()
        err_D = err_real + err_fake
        self.opt_D.step()
        # (2) Update G: maximize log(D(G(z)))
        self.G.zero_grad()
        label.fill_(1.0)
        output = self.D(fake)
        err_G = self.criterion(output, label)
        err_G.backward()
        d_g_z2 = output.mean()
        self.opt_G.step()
        values = (err_D, err_G, d_x, d_g_z1, d_g_z2)
        self.steps += 1
        if self.item:  # pytorch/examples prints these every step: five waits on the device
            self.log.append(tuple(v.item() for v in values))
        else:
            self.log.append(tuple(v.detach() for v in values))
            if self.steps % self.config.log_every == 0:
                self.log = [tuple(float(v) for v in row) for row in self.log]
        return b

    def run(self, steps: int | None = None, seconds: float | None = None) -> int:
        """Train ``steps`` iterations or ``seconds`` of wall time; returns the images used."""
        images, done = 0, 0
        deadline = time.perf_counter() + seconds if seconds is not None else None
        with cudnn_benchmark(self.device):
            while (steps is None or done < steps) and (deadline is None or time.perf_counter() < deadline):
                images += self.step()
                done += 1
        return images

    def generate(self, n: int, seed: int = 0) -> torch.Tensor:
        return latent.generate(self.G, n, seed=seed)


@contextlib.contextmanager
def cudnn_benchmark(device: torch.device):
    """``torch.backends.cudnn.benchmark = True`` on a GPU, as pytorch/examples sets it, for this
    loop only (the others keep PyTorch's default)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def trainer_loop(trainer: Trainer) -> Callable[[int], int]:
    """``run(n)`` for a trainer: n iterations, returns the images used."""

    def run(n: int) -> int:
        trainer.run(steps=n, progress=False)
        return n * trainer.config.batch_size

    return run


def ladder(
    config: TrainConfig,
    x_train: torch.Tensor,
    device: torch.device,
    compile: bool = False,
    cuda_graphs: bool = True,
    warm_ups: dict[str, float] | None = None,
) -> dict[str, Callable[[int], int]]:
    """The benchmark's rows (see the module docstring): name -> ``run(n)``, each adding one change.
    ``warm_ups``, if given, receives the seconds each compiled row's first 3 steps took."""
    rows: dict[str, Callable[[int], int]] = {
        "pytorch/examples loop": Baseline(config, device).run,
        "+ batches from one device tensor": Baseline(config, device, "tensor", x_train=x_train).run,
        "+ monitors read every log_every steps": Baseline(
            config, device, "tensor", False, x_train=x_train
        ).run,
    }
    plain = accel.FastPath(device)  # fp32, contiguous, for-loop Adam, eager
    paths = {"trainer (logits, no D grads in G step, one D pass)": plain}
    paths["+ channels-last"] = path = dataclasses.replace(plain, channels_last=True)
    if accel.fused_adam_available(device):
        paths["+ fused Adam"] = path = dataclasses.replace(path, adam="fused")
    chosen = accel.choose(device, cuda_graphs=cuda_graphs)
    if chosen.amp_dtype is not None:
        amp = dataclasses.replace(path, amp_dtype=chosen.amp_dtype, grad_scaler=chosen.grad_scaler)
        paths[f"+ {chosen.precision} autocast" + (" and GradScaler" if chosen.grad_scaler else "")] = path = (
            amp
        )
    if compile:  # the last eager row compiled; compiled code and CUDA graphs exclude each other
        paths["+ torch.compile"] = dataclasses.replace(path, compile=True)
    if chosen.cuda_graph:
        paths["+ CUDA graphs"] = dataclasses.replace(path, cuda_graph=True)
    for name, fast in paths.items():
        trainer = Trainer(config, x_train, device, fast=fast)
        if fast.compile:  # compilation happens in the first steps: not in the images/s
            seconds = trainer.warm_up(3)
            if warm_ups is not None:
                warm_ups[name] = seconds
        rows[name] = trainer_loop(trainer)
    return rows


def images_per_second(runs: dict[str, Callable[[int], int]], steps: int, rounds: int = 3) -> dict[str, float]:
    """Throughput of each ``runs[name](n)`` (which returns the images it used), in real images
    per second, after a warm-up of 3 steps each. The loops take turns, ``steps / rounds`` steps
    at a time, so that a machine whose load changes during the benchmark slows all alike."""
    elapsed, images = dict.fromkeys(runs, 0.0), dict.fromkeys(runs, 0)
    for run in runs.values():
        run(3)  # warm-up: first-call allocations, worker start-up
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            images[name] += run(per_round)
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.synchronize()
            elapsed[name] += time.perf_counter() - start
    return {name: images[name] / elapsed[name] for name in runs}
