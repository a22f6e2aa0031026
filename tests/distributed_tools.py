"""Running a function on two CPU processes (gloo) from a test, and what the tests run there.

:func:`launch` starts ``size`` processes with ``torch.multiprocessing`` (spawn), each joining the
process group through :func:`gan_tutorial.distributed.start` as under torchrun, runs
``fn(world, *args)`` in each and returns every process's result. The functions below are the
per-process halves of ``tests/test_distributed.py``; each returns plain tensors and numbers.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gan_tutorial import distributed, iteration
from gan_tutorial.accel import FastPath
from gan_tutorial.config import RECIPES, TrainConfig, build_models
from gan_tutorial.iteration import Iteration, build_optimizers
from gan_tutorial.models import has_batch_norm
from gan_tutorial.trainer import Trainer
from gan_tutorial.updates import DivergenceError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn, size: int, port: int, out: str, args: tuple) -> None:
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank)}
    os.environ.update(env, WORLD_SIZE=str(size), LOCAL_RANK=str(rank))
    # the rendezvous store is the launcher's, as under torchrun: no process hosts it and then leaves
    os.environ.update(TORCHELASTIC_USE_AGENT_STORE="True", TORCHELASTIC_RESTART_COUNT="0")
    torch.set_num_threads(1)
    world, _ = distributed.start(torch.device("cpu"), timeout=60)
    try:
        result = fn(world, *args)
    finally:
        distributed.stop(world)
    torch.save(result, Path(out) / f"{rank}.pt")


def launch(fn, *args, size: int = 2) -> list:
    """``fn(world, *args)`` on ``size`` processes; their results in rank order."""
    port = free_port()
    store = dist.TCPStore("127.0.0.1", port, size + 1, is_master=True, wait_for_workers=False)
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(_entry, (fn, size, port, out, args), nprocs=size, start_method="spawn")
        del store
        return [torch.load(Path(out) / f"{rank}.pt", weights_only=False) for rank in range(size)]


# -- one iteration, several processes against one -------------------------------------------------

#: The cases of the one-iteration equivalence: a config each (the recipe's model, loss and
#: penalties), R1 and R2 on every step.
CASES = {
    "plain": dataclasses.replace(RECIPES["classic"], model="mlp", dropout=0.0),
    # batch norm in G and in D, whose real and fake batches are two passes before one backward
    "batch norm": dataclasses.replace(RECIPES["classic"], model="dcgan", dropout=0.0),
    "r1": RECIPES["dcgan"],
    "r2": dataclasses.replace(RECIPES["dcgan"], r1=0.0, r2=0.5),
    "gp": RECIPES["wgan-gp"],
    "conditional": RECIPES["cgan"],
}
BATCH = 8


class Halves(torch.nn.Module):
    """A network applied to each process's rows apart, as batch norm sees them on ``parts`` processes."""

    def __init__(self, net: torch.nn.Module, parts: int) -> None:
        super().__init__()
        self.net, self.parts = net, parts

    def forward(self, x, y=None):
        xs = x.chunk(self.parts)
        ys = y.chunk(self.parts) if y is not None else [None] * self.parts
        return torch.cat([self.net(a) if b is None else self.net(a, b) for a, b in zip(xs, ys, strict=True)])


def batch(config: TrainConfig) -> tuple[list, list, list | None]:
    """The whole batch of one iteration: k batches of images, codes and (conditional) labels."""
    gen = torch.Generator().manual_seed(5)
    k = config.k
    x = [torch.rand(BATCH, 1, 28, 28, generator=gen) * 2 - 1 for _ in range(k)]
    z = [torch.randn(BATCH, config.latent_dim, generator=gen) for _ in range(k)]
    y = (
        [torch.randint(10, (BATCH,), generator=gen) for _ in range(k)]
        if config.model.startswith("cgan")
        else None
    )
    return x, z, y


def _interpolates(world: distributed.World):
    """WGAN-GP's interpolation with the whole batch's weights, each process taking its rows'."""

    def interpolates(x_real, x_fake, generator=None):
        eps = torch.rand(BATCH, 1, 1, 1, generator=torch.Generator().manual_seed(9))
        eps = world.shard(eps)
        return eps * x_real.detach() + (1 - eps) * x_fake.detach(), eps

    return interpolates


def one_iteration(world: distributed.World, name: str, parts: int) -> dict:
    """One iteration of case ``name`` on this process's rows; G's and D's gradients and weights after.
    On one process, ``parts`` splits G's batch norm as ``parts`` processes would."""
    config = CASES[name]
    torch.manual_seed(0)
    G, D = build_models(config)
    if world.size == 1 and parts > 1:  # batch norm over each process's rows; else the whole batch
        G, D = (Halves(net, parts) if has_batch_norm(net) else net for net in (G, D))
    opt_G, opt_D = build_optimizers(G, D, config, FastPath(torch.device("cpu")))
    it = Iteration(G, D, opt_G, opt_D, config, world=world)
    x, z, y = batch(config)
    shard = world.shard
    with mock.patch.object(iteration, "interpolates", _interpolates(world)):
        stats = it([shard(a) for a in x], [shard(a) for a in z], None if y is None else [shard(a) for a in y])
    G, D = (net.net if isinstance(net, Halves) else net for net in (G, D))
    return {
        "grad_G": {n: p.grad.clone() for n, p in G.named_parameters()},
        "grad_D": {n: p.grad.clone() for n, p in D.named_parameters()},
        "G": {n: t.clone() for n, t in G.state_dict().items()},
        "D": {n: t.clone() for n, t in D.state_dict().items()},
        "stats": {k: float(v) for k, v in stats.items()},
    }


def all_cases(world: distributed.World) -> dict:
    return {name: one_iteration(world, name, world.size) for name in CASES}


# -- the trainer on several processes -------------------------------------------------------------


def fake_images(n: int = 256) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def trainer_steps(world: distributed.World, config: TrainConfig, steps: int) -> dict:
    """``steps`` iterations one at a time; after each, the average of G and every buffer."""
    trainer = Trainer(config, fake_images(), world=world)
    after = []
    for _ in range(steps):
        trainer.run(steps=1, progress=False)
        after.append(
            {
                "ema": {n: t.clone() for n, t in trainer.ema.state_dict().items()} if trainer.ema else {},
                "buffers": {n: t.clone() for n, t in trainer.G.named_buffers()},
            }
        )
    return {
        "after": after,
        "G": {n: t.clone() for n, t in trainer.G.state_dict().items()},
        "history": dict(trainer.history.values),
    }


def diverge_on_one(world: distributed.World, out: str) -> dict:
    """Process 1's images turn NaN after step 2; every process should stop at the same check, alike."""
    config = dataclasses.replace(RECIPES["classic"], model="mlp", batch_size=16, log_every=4)
    trainer = Trainer(config, fake_images(), out_dir=out, world=world)
    trainer.run(steps=2, progress=False)  # writes a good checkpoint
    if world.rank == 1:
        trainer.sampler.x.fill_(float("nan"))  # from step 3, process 1's images are NaN
    try:
        trainer.run(steps=40, progress=False)
    except DivergenceError as err:
        return {"step": err.step, "checked_at": err.checked_at, "message": str(err), "at": trainer.step}
    return {"step": None}
