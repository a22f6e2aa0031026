"""Draw samples from a trained generator: ``python -m gan_tutorial.sample CHECKPOINT -n N -o FILE``.

``FILE.pt`` receives an (N, 1, 28, 28) float32 tensor in [-1, 1] (load it with
``torch.load``); ``FILE.png`` a grid of the N images, made by ``torchvision.utils``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from . import runtime
from .checkpoint import CheckpointError
from .trainer import load_generator

SUFFIXES = (".pt", ".png")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_tutorial.sample", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt written by python -m gan_tutorial.train")
    p.add_argument("-n", type=_positive_int, default=64, help="number of samples (default 64)")
    p.add_argument("-o", "--output", type=Path, required=True, help="a .pt (tensor) or .png (grid) file")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    return p


@torch.no_grad()
def sample(G: torch.nn.Module, n: int, seed: int = 0, device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` images G(z), z ~ N(0, I) drawn with ``seed``: (n, 1, 28, 28) on the CPU, in [-1, 1]."""
    z = torch.randn(n, G.latent_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([G(c.to(device)).cpu() for c in z.split(1000)])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output.suffix.lower() not in SUFFIXES:
        parser.error(f"-o must end in .pt (a tensor) or .png (a grid), got {args.output.name!r}")
    try:
        device = runtime.get_device(args.device)
        G = load_generator(args.checkpoint, device)
    except (CheckpointError, ValueError, RuntimeError) as err:
        parser.error(str(err))
    x_fake = sample(G, args.n, args.seed, device)  # (N, 1, 28, 28) in [-1, 1]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() == ".pt":
        torch.save(x_fake, args.output)
    else:
        from torchvision.utils import save_image

        save_image(
            x_fake, args.output, nrow=math.ceil(math.sqrt(args.n)), normalize=True, value_range=(-1, 1)
        )
    print(f"wrote {args.n} samples to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
