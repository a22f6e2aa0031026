"""The judge's command line (chapter 3): ``python -m gan_tutorial.metrics.judge --train``
regenerates the shipped weights; without ``--train`` it reports the judge's accuracy on images
it never saw and the real-data floor of each reference."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ...data import load_mnist
from .network import WEIGHTS_PATH, accuracy, load_judge
from .scores import reference
from .splits import JUDGE_TRAIN, SPLITS, real_images
from .training import train_judge


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gan_tutorial.metrics.judge",
        description="Train the MNIST judge, or report its test accuracy and the real-data floor.",
    )
    parser.add_argument("--train", action="store_true", help="train and write new weights")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="weights file to write")
    args = parser.parse_args(argv)

    if args.train:
        judge = train_judge(epochs=args.epochs, seed=args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # float16 halves the file; the judge's accuracy does not change
        torch.save({k: v.half() for k, v in judge.state_dict().items()}, args.out)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    judge = load_judge(path=args.out)
    x_held, y_held = real_images("train", JUDGE_TRAIN, 60_000)
    x_test, y_test = load_mnist(train=False, labels=True)
    print(f"accuracy on the 20,000 held-out training images {accuracy(judge, x_held, y_held):.4f}")
    print(f"accuracy on the 10,000 test images {accuracy(judge, x_test, y_test):.4f}")
    for split in SPLITS:
        ref = reference(judge, split)
        print(ref)
        if not math.isfinite(ref.floor):
            raise SystemExit("the floor is not finite: the weights are broken")


if __name__ == "__main__":
    main()
