"""``python -m gan_tutorial sample CHECKPOINT -n N -o FILE``: draw samples from a trained generator.

``FILE.pt`` receives an (N, 1, 28, 28) float32 tensor in [-1, 1] (load it with
``torch.load``); ``FILE.png`` a grid of the N images, made by ``torchvision.utils``. Samples
come from the run's moving average of G when it kept one (batch norms recalibrated). A
conditional run (``--recipe cgan``) draws digit K with ``--label K``, and without it digits
drawn uniformly at random::

    python -m gan_tutorial sample runs/.../checkpoint.pt -n 100 --label 7 -o sevens.pt
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from .. import latent
from ..checkpoint import CheckpointError, load_generator
from ..models import is_conditional
from .common import add_device_flags, device_of, positive

SUFFIXES = (".pt", ".png")


def digit(text: str) -> int:
    """An ``argparse`` type: a digit 0 to 9."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"--label must be a digit from 0 to 9, got {text!r}")
    return value


def add_parser(commands: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = commands.add_parser(
        name, help="draw samples from a checkpoint", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt written by `python -m gan_tutorial train`")
    p.add_argument("-n", type=positive(int), default=64, help="number of samples (default 64)")
    p.add_argument("-o", "--output", type=Path, required=True, help="a .pt (tensor) or .png (grid) file")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes")
    p.add_argument(
        "--label", type=digit, metavar="K", help="the digit 0-9 to draw (conditional checkpoints only)"
    )
    add_device_flags(p, threads=False)
    p.set_defaults(run=run, parser=p)
    return p


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.output.suffix.lower() not in SUFFIXES:
        parser.error(f"-o must end in .pt (a tensor) or .png (a grid), got {args.output.name!r}")
    device = device_of(args, parser)
    try:
        G = load_generator(args.checkpoint, device)
    except (CheckpointError, ValueError, RuntimeError) as err:
        parser.error(str(err))
    if args.label is not None and not is_conditional(G):
        parser.error(
            f"{args.checkpoint} holds an unconditional generator, which cannot be asked for a digit: "
            "drop --label, or sample a conditional run (python -m gan_tutorial train --recipe cgan)"
        )
    # (N, 1, 28, 28) in [-1, 1]; a conditional G draws --label, or uniform random digits
    x_fake = latent.generate(G, args.n, seed=args.seed, labels=args.label).cpu()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() == ".pt":
        torch.save(x_fake, args.output)
    else:
        from torchvision.utils import save_image

        save_image(
            x_fake, args.output, nrow=math.ceil(math.sqrt(args.n)), normalize=True, value_range=(-1, 1)
        )
    what = f" of digit {args.label}" if args.label is not None else ""
    print(f"wrote {args.n} samples{what} to {args.output}")
    return 0
