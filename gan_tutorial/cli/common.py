"""What the commands share: positive numbers, and the device and thread flags."""

from __future__ import annotations

import argparse
import math

import torch

from .. import runtime


def positive(kind):
    """An ``argparse`` type: ``kind`` (int or float) that must be finite and > 0."""

    def parse(text: str):
        value = kind(text)
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
        return value

    return parse


def add_device_flags(p: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--device`` (and ``--threads``)."""
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    if threads:
        p.add_argument("--threads", type=positive(int), help="CPU threads (1 is fastest on a busy machine)")


def device_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> torch.device:
    """The device the flags ask for (``parser.error`` for an unknown or absent one), after setting
    the CPU thread count if ``--threads`` was given."""
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return runtime.get_device(args.device)
    except (ValueError, RuntimeError) as err:
        parser.error(str(err))
