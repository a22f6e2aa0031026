"""``python -m gan_tutorial train``: train a GAN with the chapters' trainer, from a terminal.

Runs the same :class:`gan_tutorial.trainer.Trainer` as chapters 3 and 4. Every field of
:class:`~gan_tutorial.config.TrainConfig` is a flag (``lr_G`` is ``--lr-g``) that overrides
the recipe's value. The run writes ``OUT/checkpoint.pt`` at least once a minute and when it
ends or is stopped with Ctrl-C or SIGTERM, and says how to continue it; at the end it prints
the judge's numbers for 10,000 samples::

    python -m gan_tutorial train --recipe fast --seconds 300
    python -m gan_tutorial train --recipe wgan-gp --seconds 600
    python -m gan_tutorial train --recipe dcgan --loss hinge --spectral-norm --r1 0 --seconds 600
    python -m gan_tutorial train --recipe cgan --seconds 600
    python -m gan_tutorial train --resume runs/20261202-101500-fast/checkpoint.pt --seconds 60

Under ``torchrun`` the same command trains one run on several processes (gloo on the CPU, one GPU
each with NCCL; :mod:`gan_tutorial.distributed`), each on its share of every batch::

    torchrun --standalone --nproc_per_node=2 -m gan_tutorial train --recipe dcgan --seconds 300
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .. import distributed, models, runtime
from ..checkpoint import CheckpointError, load_checkpoint
from ..config import AUGMENTS, OPTIMIZERS, RECIPES, RESUMABLE_FIELDS, TrainConfig
from ..data import ensure_mnist, load_mnist
from ..interrupt import TrainingInterrupted
from ..losses import LOSSES
from ..metrics.conditional import balanced_labels, obedience
from ..metrics.judge import class_mix_distance, load_judge, reference, score
from ..trainer import Trainer
from ..updates import DivergenceError
from .common import add_device_flags, device_of, positive

#: Steps timed apart as the warm-up of ``--compile``.
WARM_UP_STEPS = 3

#: Config fields that are not flags of their own (``--model-arg`` sets ``model_args``).
NOT_FLAGS = ("model_args",)


def flag(field_name: str) -> str:
    """The command-line flag of a config field: ``lr_G`` -> ``--lr-g``."""
    return "--" + field_name.lower().replace("_", "-")


def _model_name(text: str) -> str:
    try:
        return models.resolve(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _model_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. ngf=48), got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a plain string


def config_flags() -> dict[str, str]:
    """Flag destination -> :class:`TrainConfig` field, for every field that is a flag."""
    return {f.name.lower(): f.name for f in dataclasses.fields(TrainConfig) if f.name not in NOT_FLAGS}


def add_parser(commands: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    p = commands.add_parser(name, help="train a GAN", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--recipe", choices=sorted(RECIPES), help="starting configuration (default: classic)")
    p.add_argument(
        "--data", choices=["mnist", "fake"], default="mnist", help="fake: random images (smoke test)"
    )
    p.add_argument("--steps", type=positive(int), help="budget in iterations")
    p.add_argument("--seconds", type=positive(float), help="budget in seconds of training (wall time)")
    p.add_argument("--out", type=Path, help="folder for checkpoint.pt (default: a new runs/<time>-<recipe>)")
    p.add_argument("--resume", type=Path, help="continue the run of this checkpoint, as it was configured")
    config = p.add_argument_group("the run's configuration (each overrides the recipe's value)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in NOT_FLAGS:
            continue
        kind: Any = type(f.default)
        meta = f" (default {f.default!r} in the classic recipe)"
        if kind is bool:  # --spectral-norm / --no-spectral-norm; unset: the recipe's value
            config.add_argument(
                flag(f.name), dest=f.name.lower(), action=argparse.BooleanOptionalAction, default=None,
                help=f.metadata["help"] + meta,
            )  # fmt: skip
            continue
        if f.name == "model":
            kind = _model_name
        choices = {"loss": sorted(LOSSES), "optimizer": list(OPTIMIZERS), "augment": list(AUGMENTS)}.get(
            f.name
        )
        config.add_argument(
            flag(f.name), dest=f.name.lower(), type=kind, choices=choices, help=f.metadata["help"] + meta
        )
    config.add_argument(
        "--model-arg", type=_model_arg, action="append", metavar="KEY=VALUE",
        help="an option of the model family, e.g. ngf=48 (repeatable; see gan_tutorial.models.options)",
    )  # fmt: skip
    add_device_flags(p)
    p.add_argument("--compile", action="store_true", help="torch.compile G and D (warm-up timed apart)")
    p.add_argument("--no-cuda-graphs", action="store_true", help="keep the GPU's iterations eager")
    p.add_argument(
        "--reference", choices=["val", "test"], default="val",
        help="the judge's real reference: val (held-out training images, for choosing) or test (to report)",
    )  # fmt: skip
    p.add_argument("--no-judge", action="store_true", help="skip the judge's numbers at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    several = p.add_argument_group("several processes (under torchrun)")
    several.add_argument(
        "--sync-batch-norm", action="store_true",
        help="batch norm over the whole batch, not each process's rows (CUDA only)",
    )  # fmt: skip
    several.add_argument(
        "--dist-timeout", type=positive(float), default=distributed.DEFAULT_TIMEOUT, metavar="SECONDS",
        help="how long a process waits for the others before it stops with an error "
        f"(default {distributed.DEFAULT_TIMEOUT:.0f})",
    )  # fmt: skip
    p.set_defaults(run=run, parser=p)
    return p


def _fresh_out(recipe: str) -> Path:
    """A new folder ``runs/<YYYYmmdd-HHMMSS>-<recipe>``, with a counter if that one exists, created
    here so that two runs started in the same second cannot both choose it."""
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{recipe}"
    base.parent.mkdir(parents=True, exist_ok=True)
    out, i = base, 1
    while True:
        try:
            out.mkdir()
            return out
        except FileExistsError:
            i += 1
            out = base.with_name(f"{base.name}-{i}")


def _refuse_to_overwrite(out: Path, parser: argparse.ArgumentParser, resumed: Path | None) -> None:
    existing = out / "checkpoint.pt"
    if existing.exists() and (resumed is None or existing.resolve() != resumed.resolve()):
        try:
            step = f" (step {load_checkpoint(existing)['step']})"
        except CheckpointError:
            step = ""
        parser.error(
            f"{out} already holds a run{step}: continue it with `--resume {existing}`, "
            "or choose another --out (without --out each run gets a new folder under runs/)"
        )


def _launcher(world: distributed.World) -> str:
    """How this run was started: ``python -m gan_tutorial``, or torchrun with its processes."""
    if world.size == 1:
        return "python -m gan_tutorial"
    if os.environ.get("LOCAL_WORLD_SIZE") == str(world.size):  # one machine
        return f"torchrun --standalone --nproc_per_node={world.size} -m gan_tutorial"
    return "torchrun <the same options on every machine> -m gan_tutorial"


def _continue_hint(
    path: Path | None, args: argparse.Namespace, done: int, elapsed: float, world: distributed.World
) -> str:
    """The command that finishes the budget: ``--steps`` and ``--seconds`` count from the resume."""
    if path is None:
        return ""
    budget = ""
    if args.steps:
        budget += f" --steps {max(args.steps - done, 1)}"
    if args.seconds:
        budget += f" --seconds {max(args.seconds - elapsed, 1):.0f}"
    return f"; continue with: {_launcher(world)} train --resume {path}{budget}"


def _labelled(args: argparse.Namespace, given: dict[str, Any], parser: argparse.ArgumentParser) -> bool:
    """Whether the run trains with the images' labels: a conditional model, or a subset (as many
    images of each digit); then MNIST is loaded with its labels."""
    if args.resume is not None:
        try:
            saved = load_checkpoint(args.resume)
        except CheckpointError as err:
            parser.error(str(err))
        name, subset = saved.get("model"), saved.get("config", {}).get("subset", 0)
    else:
        recipe = RECIPES[args.recipe or "classic"]
        name, subset = given.get("model", recipe.model), given.get("subset", recipe.subset)
    if subset:
        return True
    try:
        return models.is_conditional(models.build(name)[0])
    except (ValueError, TypeError):
        return False  # an unknown model is reported where the trainer is built


def _training_data(args: argparse.Namespace, labelled: bool, world: distributed.World) -> Any:
    """MNIST in [-1, 1] (with its labels for a conditional model or a subset), or ``--data fake``'s 512 random
    images, which check the plumbing, not the result. On several processes rank 0 alone fetches
    or unpacks the files, and the others wait for it."""
    if args.data == "mnist":
        if world.size > 1:
            failed = 0
            if world.main:
                try:
                    ensure_mnist()
                except Exception:
                    world.agree(1)  # the others stop too; this process says why
                    raise
            (failed,) = world.agree(failed)
            if failed:
                raise SystemExit(
                    f"process {world.rank}: process 0 could not read MNIST (its message says why)"
                )
        return load_mnist(train=True, labels=labelled)
    x_train = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return (x_train, torch.arange(512) % 10) if labelled else x_train


def _build(
    args: argparse.Namespace, parser: argparse.ArgumentParser, device: torch.device, world: distributed.World
) -> Trainer:
    """A new trainer from the recipe and the flags, or one resumed from ``--resume``."""
    given = {
        field: getattr(args, dest)
        for dest, field in config_flags().items()
        if getattr(args, dest) is not None
    }
    if args.model_arg:
        given["model_args"] = dict(args.model_arg)
    x_train = _training_data(args, _labelled(args, given, parser), world)
    graphs = not args.no_cuda_graphs
    try:
        if args.resume is not None:
            if args.recipe is not None:  # a recipe is a set of fields: each must match the checkpoint
                recipe = dataclasses.asdict(RECIPES[args.recipe])
                given = {**{k: v for k, v in recipe.items() if k not in RESUMABLE_FIELDS}, **given}
            if args.out is not None:
                _refuse_to_overwrite(args.out, parser, args.resume)
            return Trainer.resume(
                args.resume, x_train, device, args.out, args.compile, graphs, changes=given, world=world
            )
        recipe = args.recipe or "classic"
        config = dataclasses.replace(RECIPES[recipe], **given)
        if args.out is not None:
            _refuse_to_overwrite(args.out, parser, None)
        out = args.out or world.gather_object(_fresh_out(recipe) if world.main else None)[0]  # rank 0's
        return Trainer(config, x_train, device, out, args.compile, graphs, world=world)
    except (CheckpointError, ValueError) as err:
        parser.error(str(err))


def _train(trainer: Trainer, args: argparse.Namespace) -> int:
    """Train for the budget (after ``--compile``'s timed warm-up); the exit status, with what went
    wrong or how to continue on stderr (from rank 0 only, on several processes)."""
    main = trainer.world.main
    steps, first_step = args.steps, trainer.step
    start = time.perf_counter()
    try:
        if args.compile:  # the first steps trace and compile: time them apart from the budget
            n = min(WARM_UP_STEPS, steps or WARM_UP_STEPS)
            warm = trainer.warm_up(n)
            print(f"torch.compile warm-up: {warm:.1f} s for the first {n} steps", flush=True)
            steps = steps - n if steps is not None else None
        start = time.perf_counter()
        if steps != 0:
            trainer.run(steps=steps, seconds=args.seconds, progress=not args.no_progress)
        else:  # the warm-up used the whole budget, and it writes nothing: write now
            trainer.save()
    except DivergenceError as err:
        if main:
            print(f"error: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # a failed collective: every process says it (the one that died cannot)
        lost = trainer.world.lost(err)
        if lost is None:
            raise
        print(f"error: {lost}", file=sys.stderr, flush=True)
        return 1
    except TrainingInterrupted as stop:
        done, elapsed = stop.step - first_step, time.perf_counter() - start
        name, hint = (
            signal.Signals(stop.signal).name,
            _continue_hint(stop.checkpoint, args, done, elapsed, trainer.world),
        )
        saved = (
            f"wrote {stop.checkpoint}"
            if stop.checkpoint
            else "nothing written yet (the warm-up saves nothing)"
        )
        if main:
            print(f"stopped by {name} at step {stop.step}: {saved}{hint}", file=sys.stderr, flush=True)
        return 128 + stop.signal
    h, seconds = trainer.history, time.perf_counter() - start
    rate = (trainer.step - first_step) * trainer.config.batch_size / seconds
    print(
        f"step {trainer.step}: {seconds:.0f} s ({rate:,.0f} images/s), "
        f"{h['loss_D'][-1]:.3f} loss_D, {h['loss_G'][-1]:.3f} loss_G, "
        f"{h['d_real'][-1]:.2f} D(x), {h['d_fake'][-1]:.2f} D(G(z)); wrote {trainer.last_checkpoint}"
        f"{_continue_hint(trainer.last_checkpoint, args, 0, 0.0, trainer.world)}",  # the same budget again
        flush=True,
    ) if main else None
    return 0


def _judge(trainer: Trainer, device: torch.device, reference_split: str) -> None:
    """The judge's numbers for 10,000 samples (and, for a conditional G, how well it obeys)."""
    judge = load_judge(device)
    ref = reference(judge, reference_split)
    scores = score(trainer.generate(10_000), judge, ref)
    print(f"judge (10,000 samples): {scores}")
    print(f"  against the {ref}")
    mix = class_mix_distance(scores.hist, judge, ref)
    print(f"real digits in these samples' proportions: FD {mix:.2f} ({mix / ref.floor:.1f}x the floor)")
    if trainer.conditional:
        asked = balanced_labels(1000)
        verdict = obedience(judge, trainer.generate(labels=asked, n=len(asked)), asked)
        shares = " ".join(f"{k}:{share:.1%}" for k, share in enumerate(verdict.per_class.tolist()))
        print(f"asked for each digit 1,000 times, {verdict}\n  per digit {shares}")


def _resumed_note(trainer: Trainer) -> str | None:
    """What changes when a run continues on another number of processes than wrote it."""
    before, now = trainer.resumed_world_size, trainer.world.size
    if before is None or before == now:
        return None
    b = trainer.config.batch_size
    return (
        f"note: this run was written by {before} process(es) and continues on {now}: the same batches "
        f"and codes in the same order; each batch norm now sees {b // now} rows instead of {b // before}, "
        "the sums are added up in another order (float rounding), and each process's noise stream "
        f"(dropout, instance noise, the penalty's interpolation) continues on {_ranks(min(before, now))}, "
        + (
            f"and those of the other {before - now} end"
            if now < before
            else f"and the other {now - before} start new ones"
        )
    )


def _ranks(n: int) -> str:
    return "process 0" if n == 1 else f"processes 0 to {n - 1}"


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.steps is None and args.seconds is None:
        parser.error("give a budget: --steps N and/or --seconds S")
    try:
        world, device = distributed.start(device_of(args, parser), args.dist_timeout, args.sync_batch_norm)
    except ValueError as err:
        parser.error(str(err))
    try:
        trainer = _build(args, parser, device, world)
        several = f", {world.describe()}" if world.size > 1 else ""
        if world.main:
            print(f"{runtime.describe(device)}{several}; {trainer.config}", flush=True)
            print(f"{trainer.fast.describe()}; writing {trainer.out_dir / 'checkpoint.pt'}", flush=True)
            if (note := _resumed_note(trainer)) is not None:
                print(note, flush=True)
        status = _train(trainer, args)
    except BaseException:  # an error on this process alone: the others may never arrive at the end
        distributed.stop(world, together=False)
        raise
    distributed.stop(world)
    if status == 0 and world.main and not args.no_judge and args.data == "mnist":
        _judge(trainer, device, args.reference)
    return status
