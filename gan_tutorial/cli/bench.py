"""``python -m gan_tutorial bench``: the trainer against the pytorch/examples loop, one change at a time.

Prints the real images per second of each loop of :mod:`gan_tutorial.bench`'s ladder (each row
adds one change to the row above) with its ratio to the row above and to the first row; then
trains the first loop and the trainer again from scratch for ``--seconds`` each and prints the
judge's numbers for 10,000 samples of each.

With ``--processes N`` it compares instead one process with N CPU threads against N processes
of one thread each (``torchrun``, :mod:`gan_tutorial.distributed`), on the same run of a recipe
(``train --recipe R --steps S``), in alternating rounds, and prints the images per second of each
and their ratio::

    python -m gan_tutorial bench --processes 2 --recipe dcgan --steps 300
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile

import torch

from .. import bench, runtime
from ..config import RECIPES, TrainConfig
from ..data import load_mnist
from ..metrics.judge import load_judge, reference, score
from ..trainer import Trainer
from .common import add_device_flags, device_of, positive


def add_parser(commands: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = commands.add_parser(
        name, help="benchmark the trainer against a pytorch/examples loop",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )  # fmt: skip
    p.add_argument("--model", choices=["mlp", "dcgan"], default="mlp", help="G and D for every loop")
    p.add_argument("--steps", type=positive(int), default=300, help="timed steps for each loop")
    p.add_argument("--batch-size", type=positive(int), default=64)
    p.add_argument("--seconds", type=float, default=60.0, help="equal wall time for the judge (0: skip)")
    add_device_flags(p)
    p.add_argument(
        "--compile",
        action="store_true",
        help="add a row: the trainer with torch.compile (its compilation timed apart)",
    )
    p.add_argument("--no-cuda-graphs", action="store_true", help="no CUDA-graph row, and an eager trainer")
    several = p.add_argument_group("one process against several (torchrun), on the CPU")
    several.add_argument(
        "--processes", type=positive(int), help="compare 1 process x N threads with N processes x 1 thread"
    )
    several.add_argument("--recipe", choices=sorted(RECIPES), default="dcgan", help="the run both train")
    several.add_argument("--data", choices=["mnist", "fake"], default="mnist", help="fake: random images")
    several.add_argument("--rounds", type=positive(int), default=2, help="alternating rounds (default 2)")
    p.set_defaults(run=run, parser=p)
    return p


def _images_per_second(command: list[str]) -> float:
    """Run one training command; the images per second its last line reports (time in training only:
    the processes' start and the data's loading are not counted)."""
    done = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"\(([\d,]+) images/s\)", done.stdout)
    if done.returncode or not found:
        raise RuntimeError(f"{' '.join(command[:8])} ... failed:\n{done.stdout[-800:]}{done.stderr[-1500:]}")
    return float(found.group(1).replace(",", ""))


def _processes(args: argparse.Namespace) -> int:
    """1 process x N threads against N processes x 1 thread, alternating, one fresh command each."""
    n = args.processes
    if RECIPES[args.recipe].batch_size % n:
        raise SystemExit(
            f"recipe {args.recipe}'s batch of {RECIPES[args.recipe].batch_size} does not split over {n}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        train = ["train", "--recipe", args.recipe, "--data", args.data, "--steps", str(args.steps)]
        train += ["--no-judge", "--no-progress", "--device", "cpu"]
        one = [sys.executable, "-m", "gan_tutorial", *train, "--threads", str(n)]
        several = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
        several += ["-m", "gan_tutorial", *train, "--threads", "1"]
        names = {f"1 process x {n} threads": one, f"{n} processes x 1 thread": several}
        print(
            f"recipe {args.recipe} (batch {RECIPES[args.recipe].batch_size}), {args.steps} steps per run, ",
            end="",
        )
        print(f"{args.rounds} alternating rounds, on the CPU")
        speeds: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.rounds):
            for i, (name, command) in enumerate(names.items()):
                speeds[name].append(_images_per_second([*command, "--out", f"{tmp}/round{r}-run{i}"]))
    for name, values in speeds.items():
        rounds = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:<22} {statistics.mean(values):>8,.0f} images/s  (rounds: {rounds})")
    a, b = (statistics.mean(v) for v in speeds.values())
    print(f"{n} processes / 1 process: {b / a:.2f}x")
    return 0


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.processes is not None:
        return _processes(args)
    if args.seconds < 0:
        parser.error("--seconds must be non-negative")
    device = device_of(args, parser)
    # the DCGAN takes no dropout in D (the guidelines' D has batch norm instead)
    no_dropout = {"dropout": 0.0} if args.model == "dcgan" else {}
    config = TrainConfig(model=args.model, batch_size=args.batch_size, **no_dropout)
    x_train = load_mnist(train=True)
    print(f"{runtime.describe(device)}; {torch.get_num_threads()} CPU threads; batch {args.batch_size}")
    print(f"model {args.model}, {args.steps} timed steps per loop, in 3 rounds")
    graphs = not args.no_cuda_graphs
    warm_ups: dict[str, float] = {}
    rows = bench.ladder(config, x_train, device, compile=args.compile, cuda_graphs=graphs, warm_ups=warm_ups)
    speeds = bench.images_per_second(rows, args.steps)
    width = max(map(len, speeds))
    print(f"{'loop':<{width}}  {'images/s':>9}  {'vs above':>8}  {'vs first':>8}")
    names = list(speeds)
    for i, name in enumerate(names):
        above = speeds[name] / speeds[names[i - 1]] if i else 1.0
        print(
            f"{name:<{width}}  {speeds[name]:>9.0f}  {above:>7.2f}x  {speeds[name] / speeds[names[0]]:>7.2f}x"
        )
    print(f"trainer (last row) / pytorch/examples loop: {speeds[names[-1]] / speeds[names[0]]:.2f}x")
    for name, seconds in warm_ups.items():
        print(f"{name}: its first 3 steps (compilation) took {seconds:.1f} s, not counted above")

    if args.seconds > 0:
        judge = load_judge(device)
        ref = reference(judge, "val")
        baseline = bench.Baseline(config, device)
        images = baseline.run(seconds=args.seconds)
        s = score(baseline.generate(10_000), judge, ref)
        print(f"pytorch/examples loop after {args.seconds:.0f} s ({images // args.batch_size} steps): {s}")
        trainer = Trainer(config, x_train, device, compile=args.compile, cuda_graphs=graphs)
        if args.compile:  # compilation is not charged to the trainer's time
            trainer.warm_up()
        trainer.run(seconds=args.seconds, progress=False)
        s_t = score(trainer.generate(10_000), judge, ref)
        print(f"trainer after {args.seconds:.0f} s ({trainer.step} steps): {s_t}")
    return 0
