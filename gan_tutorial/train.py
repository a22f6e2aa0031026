"""Train a GAN from the command line: ``python -m gan_tutorial.train --help``.

Runs the same :class:`gan_tutorial.trainer.Trainer` as chapter 3, writes
``OUT/checkpoint.pt`` (every ``--checkpoint-every`` steps and at the end), and prints the
judge's numbers for 10,000 samples when the run ends::

    python -m gan_tutorial.train --recipe fast --seconds 300 --out runs/fast
    python -m gan_tutorial.train --resume runs/fast/checkpoint.pt --seconds 60
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from . import models, runtime
from .checkpoint import CheckpointError
from .losses import LOSSES
from .trainer import RECIPES, Trainer
from .training import DivergenceError

#: Steps timed apart as the warm-up of ``--compile``.
WARM_UP_STEPS = 3

#: Flags that override a field of the recipe's :class:`TrainConfig` (flag -> field).
OVERRIDES = {
    "model": "model",
    "loss": "loss",
    "seed": "seed",
    "batch_size": "batch_size",
    "lr_g": "lr_G",
    "lr_d": "lr_D",
    "beta1": "beta1",
    "dropout": "dropout",
    "ema": "ema",
    "r1": "r1",
    "r1_every": "r1_every",
    "k": "k",
    "latent_dim": "latent_dim",
    "log_every": "log_every",
    "checkpoint_every": "checkpoint_every",
}


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_tutorial.train", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=sorted(RECIPES), default="classic", help="starting configuration")
    p.add_argument("--model", choices=sorted(models.MODELS))
    p.add_argument("--loss", choices=sorted(LOSSES))
    p.add_argument(
        "--data", choices=["mnist", "fake"], default="mnist", help="fake: random images (smoke test)"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=_positive(int), help="budget in iterations")
    p.add_argument("--seconds", type=_positive(float), help="budget in wall-clock seconds")
    p.add_argument(
        "--out",
        type=Path,
        help="folder for checkpoint.pt (default: runs/latest; with --resume, the checkpoint's folder)",
    )
    p.add_argument("--resume", type=Path, help="continue from this checkpoint (its config wins)")
    p.add_argument("--batch-size", type=_positive(int))
    p.add_argument("--lr-g", type=_positive(float))
    p.add_argument("--lr-d", type=_positive(float))
    p.add_argument("--beta1", type=float)
    p.add_argument("--dropout", type=float)
    p.add_argument("--ema", type=float, help="decay of a moving average of G's weights (0: none)")
    p.add_argument("--r1", type=float, help="weight of the R1 penalty on D's slope at real images (0: none)")
    p.add_argument("--r1-every", type=_positive(int), help="apply R1 every N steps, weighted N times")
    p.add_argument("--k", type=_positive(int), help="D steps per G step")
    p.add_argument("--latent-dim", type=_positive(int))
    p.add_argument("--log-every", type=_positive(int))
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=_positive(int), help="CPU threads (1 is fastest on a busy machine)")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile G and D (warm-up timed apart from --seconds)"
    )
    p.add_argument("--no-cuda-graphs", action="store_true", help="keep the GPU's iterations eager")
    p.add_argument("--no-judge", action="store_true", help="skip the judge's numbers at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps is None and args.seconds is None:
        parser.error("give a budget: --steps N and/or --seconds S")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = runtime.get_device(args.device)
    except (ValueError, RuntimeError) as err:
        parser.error(str(err))
    overrides = {
        field: getattr(args, flag) for flag, field in OVERRIDES.items() if getattr(args, flag) is not None
    }
    if args.data == "fake":  # 512 random images in [-1, 1]: checks the plumbing, not the result
        x_train = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    else:
        from .data import load_mnist

        x_train = load_mnist(train=True)
    try:
        if args.resume is not None:
            if overrides:
                parser.error(f"--resume continues a run as it was configured; drop {', '.join(overrides)}")
            trainer = Trainer.resume(  # out=None: the checkpoint's folder
                args.resume, x_train, device, args.out, args.compile, not args.no_cuda_graphs
            )
        else:
            config = dataclasses.replace(RECIPES[args.recipe], **overrides)
            out = args.out or Path("runs/latest")
            trainer = Trainer(config, x_train, device, out, args.compile, not args.no_cuda_graphs)
    except (CheckpointError, ValueError) as err:
        parser.error(str(err))
    print(f"{runtime.describe(device)}; {trainer.config}", flush=True)
    print(trainer.fast.describe(), flush=True)
    steps = args.steps
    try:
        if args.compile:  # the first steps trace and compile: time them apart from the budget
            n = min(WARM_UP_STEPS, steps or WARM_UP_STEPS)
            warm = trainer.warm_up(n)
            print(f"torch.compile warm-up: {warm:.1f} s for the first {n} steps", flush=True)
            steps = steps - n if steps is not None else None
        start = time.perf_counter()
        if steps != 0:
            trainer.run(steps=steps, seconds=args.seconds, progress=not args.no_progress)
    except DivergenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    h = trainer.history
    print(
        f"step {trainer.step}: {elapsed:.0f} s, "
        f"{h['loss_D'][-1]:.3f} loss_D, {h['loss_G'][-1]:.3f} loss_G, "
        f"{h['d_real'][-1]:.2f} D(x), {h['d_fake'][-1]:.2f} D(G(z)); wrote {trainer.last_checkpoint}"
    )
    if not args.no_judge and args.data == "mnist":
        from .metrics.judge import class_mix_distance, load_judge, reference, score

        judge = load_judge(device)
        ref = reference(judge)
        scores = score(trainer.generate(10_000), judge, ref)
        print(f"judge (10,000 samples): {scores}")
        mix = class_mix_distance(scores.hist, judge, ref)
        print(f"real digits in these samples' proportions: FD {mix:.2f} ({mix / ref.floor:.1f}x the floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
