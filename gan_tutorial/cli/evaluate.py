"""``python -m gan_tutorial evaluate SAMPLES``: every metric of chapter 5 for a set of samples.

``SAMPLES`` is a ``.pt`` file holding an (N, 1, 28, 28) float tensor in [-1, 1] (as
``python -m gan_tutorial sample ... -o FILE.pt`` writes), or a checkpoint written by
``python -m gan_tutorial train``, sampled as ``sample`` does (``-n`` samples, from its
moving average of G when it kept one). Prints the Inception Score (the judge as the
classifier), the Frechet distance of the judge's features to the MNIST test set, precision
and recall (k = 3), density and coverage (k = 5), each beside what real images score at the
same sample size; ``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .. import latent
from ..checkpoint import FORMAT, CheckpointError, load_generator
from ..metrics.evaluation import evaluate
from ..metrics.judge import load_judge
from .common import add_device_flags, device_of, positive


def add_parser(commands: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = commands.add_parser(
        name,
        help="score samples or a checkpoint with every metric",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
    )
    p.add_argument("samples", type=Path, help="a .pt tensor of samples, or a checkpoint.pt")
    p.add_argument(
        "-n", type=positive(int), default=10_000, help="samples to draw from a checkpoint (default 10,000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the codes drawn from a checkpoint")
    p.add_argument("--reference", choices=["test", "val"], default="test", help="the real reference set")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_flags(p, threads=False)
    p.set_defaults(run=run, parser=p)
    return p


def load_samples(path: Path, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """The samples in ``path``: a tensor file, or a checkpoint's generator sampled ``n`` times."""
    if not path.is_file():
        raise ValueError(f"no file at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged or foreign file; torch's advice to unpickle it is not passed on
        raise ValueError(
            f"{path} is not readable as a tensor of samples or a checkpoint (damaged?)"
        ) from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return latent.generate(load_generator(path, device), n, seed=seed)
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a tensor of samples or a checkpoint")
    return obj


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    device = device_of(args, parser)
    try:
        x = load_samples(args.samples, args.n, args.seed, device)
        result = evaluate(x.to(device), load_judge(device), args.reference)
    except (CheckpointError, ValueError, RuntimeError) as err:
        parser.error(str(err))
    print(result.to_json() if args.json else result)
    return 0
