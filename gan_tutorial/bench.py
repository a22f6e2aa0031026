"""Benchmark: this project's trainer against a faithful pytorch/examples-style loop.

``python -m gan_tutorial.bench`` trains the same G and D (``--model mlp``, chapter 3, or
``--model dcgan``, chapter 4), with the same batch size, optimiser settings and number of
steps, in one process, two ways:

* **baseline**, written the way ``pytorch/examples`` writes its GAN loops: a
  ``torchvision`` ``DataLoader`` with ``ToTensor`` and ``Normalize((0.5,), (0.5,))``, a
  ``Sigmoid`` at the end of D with ``BCELoss`` and label tensors, one generator forward
  reused for the D and G updates, and ``.item()`` on every monitor at every step;
* **trainer**: :class:`gan_tutorial.trainer.Trainer` (batches indexed from one
  device-resident tensor, losses from logits, monitors read back every ``log_every``).

It prints images per second for each and their ratio, then trains both again from
scratch for the same wall-clock time and prints the judge's numbers for each.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from . import models, runtime
from .trainer import TrainConfig, Trainer


class Baseline:
    """The pytorch/examples-style loop (one object so the timing excludes set-up)."""

    def __init__(self, config: TrainConfig, device: torch.device, root: str | None = None) -> None:
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        from .data import ensure_mnist

        raw = ensure_mnist(root)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        dataset = datasets.MNIST(str(raw.parent.parent), train=True, download=False, transform=tf)
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True)
        self.batches = iter(self.loader)
        torch.manual_seed(config.seed)
        G, D = models.MODELS[config.model](latent_dim=config.latent_dim, dropout=config.dropout)
        self.G, self.D = G.to(device), nn.Sequential(D, nn.Sigmoid()).to(device)  # probabilities out
        betas = (config.beta1, config.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr_G, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr_D, betas=betas)
        self.criterion = nn.BCELoss()
        self.config, self.device = config, device
        self.log: list[tuple[float, ...]] = []

    def next_batch(self) -> torch.Tensor:
        try:
            x, _ = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            x, _ = next(self.batches)
        return x

    def step(self) -> None:
        x_real = self.next_batch().to(self.device)
        b = x_real.size(0)
        label = torch.full((b, 1), 1.0, device=self.device)
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.D.zero_grad()
        output = self.D(x_real)
        err_real = self.criterion(output, label)
        err_real.backward()
        d_x = output.mean().item()
        z = torch.randn(b, self.config.latent_dim, device=self.device)
        fake = self.G(z)
        label.fill_(0.0)
        output = self.D(fake.detach())
        err_fake = self.criterion(output, label)
        err_fake.backward()
        d_g_z1 = output.mean().item()
        err_D = err_real + err_fake
        self.opt_D.step()
        # (2) Update G: maximize log(D(G(z)))
        self.G.zero_grad()
        label.fill_(1.0)
        output = self.D(fake)
        err_G = self.criterion(output, label)
        err_G.backward()
        d_g_z2 = output.mean().item()
        self.opt_G.step()
        self.log.append((err_D.item(), err_G.item(), d_x, d_g_z1, d_g_z2))

    def run(self, steps: int | None = None, seconds: float | None = None) -> int:
        done, deadline = 0, time.perf_counter() + seconds if seconds is not None else None
        while (steps is None or done < steps) and (deadline is None or time.perf_counter() < deadline):
            self.step()
            done += 1
        return done

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=torch.Generator().manual_seed(seed))
        self.G.eval()
        return torch.cat([self.G(c.to(self.device)) for c in z.split(1000)])


def images_per_second(runs: dict, steps: int, batch_size: int, rounds: int = 3) -> dict[str, float]:
    """Throughput of each ``runs[name](n)``, in real images per second, after a warm-up.

    The loops take turns, ``steps / rounds`` steps at a time, so that a machine whose load
    changes during the benchmark slows both alike.
    """
    elapsed = dict.fromkeys(runs, 0.0)
    for run in runs.values():
        run(3)  # warm-up: first-call allocations
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(per_round)
            elapsed[name] += time.perf_counter() - start
    return {name: per_round * rounds * batch_size / t for name, t in elapsed.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(prog="python -m gan_tutorial.bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(models.MODELS), default="mlp", help="G and D for both loops")
    p.add_argument("--steps", type=int, default=300, help="timed steps for each loop")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=60.0, help="equal wall time for the judge (0: skip)")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, help="CPU threads for both loops")
    p.add_argument("--compile", action="store_true", help="torch.compile the trainer's G and D")
    p.add_argument("--no-cuda-graphs", action="store_true", help="keep the trainer's GPU iterations eager")
    p.add_argument("--data", choices=["mnist"], default="mnist")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.seconds < 0:
        p.error("--steps and --batch-size must be positive and --seconds non-negative")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = runtime.get_device(args.device)
    # the DCGANs take no dropout in D (the guidelines' D has batch norm instead)
    no_dropout = {"dropout": 0.0} if args.model.startswith("dcgan") else {}
    config = TrainConfig(model=args.model, batch_size=args.batch_size, **no_dropout)
    from .data import load_mnist

    x_train = load_mnist(train=True)
    print(f"{runtime.describe(device)}; {torch.get_num_threads()} CPU threads; batch {args.batch_size}")
    print(f"model {args.model}")

    baseline = Baseline(config, device)
    graphs = not args.no_cuda_graphs
    trainer = Trainer(config, x_train, device, compile=args.compile, cuda_graphs=graphs)
    if args.compile:  # compilation happens in the first steps: time it apart
        warm = trainer.warm_up(3)
        print(f"torch.compile warm-up of the trainer: {warm:.1f} s for 3 steps (not in the images/s)")
    print(trainer.fast.describe())
    runs = {"baseline": baseline.run, "trainer": lambda n: trainer.run(steps=n, progress=False)}
    results = images_per_second(runs, args.steps, args.batch_size)
    results["ratio"] = results["trainer"] / results["baseline"]
    print(f"{'loop':<10}{'images/s':>10}")
    for name in ("baseline", "trainer"):
        print(f"{name:<10}{results[name]:>10.0f}")
    print(f"trainer / baseline: {results['ratio']:.2f}x")

    if args.seconds > 0:
        from .metrics.judge import load_judge, score

        judge = load_judge(device)
        for name, make in (("baseline", lambda: Baseline(config, device)), ("trainer", None)):
            if make is not None:
                loop = make()
                steps = loop.run(seconds=args.seconds)
                x_fake = loop.generate(10_000)
            else:
                loop = Trainer(config, x_train, device, compile=args.compile, cuda_graphs=graphs)
                loop.run(seconds=args.seconds, progress=False)
                steps, x_fake = loop.step, loop.generate(10_000)
            s = score(x_fake, judge)
            results[f"{name}_steps"], results[f"{name}_fd_ratio"] = steps, s.ratio
            print(f"{name} after {args.seconds:.0f} s ({steps} steps): {s}")
    return results


if __name__ == "__main__":
    main()
