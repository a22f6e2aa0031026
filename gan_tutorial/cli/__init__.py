"""The command line, one entry point: ``python -m gan_tutorial <command>`` or ``gan-tutorial <command>``.

Commands (each with ``--help``):

* ``train``  - train a GAN with the chapters' trainer (:mod:`gan_tutorial.cli.train`);
* ``sample`` - draw samples from a checkpoint, as a tensor or a grid (:mod:`gan_tutorial.cli.sample`);
* ``evaluate`` - every metric of chapter 5 for samples or a checkpoint (:mod:`gan_tutorial.cli.evaluate`);
* ``bench``  - the trainer against a pytorch/examples-style loop, one change at a time
  (:mod:`gan_tutorial.cli.bench`).

``common`` holds what the commands share: the device and thread flags, positive numbers.
"""

from __future__ import annotations

import argparse

from . import bench, evaluate, sample, train

COMMANDS = {"train": train, "sample": sample, "evaluate": evaluate, "bench": bench}
PROG = "python -m gan_tutorial"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="GANs from the minimax game to a DCGAN: the tutorial's command line."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(commands, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (``argparse`` exits with 2 on bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, args.parser)
