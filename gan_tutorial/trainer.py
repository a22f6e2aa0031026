"""A GAN trainer you can leave running: progress bar, history, checkpoints, divergence guard.

Chapter 3 describes it and trains with it; the command line (``python -m gan_tutorial train``)
runs the same code. A run is built one way, in :meth:`Trainer.__init__`: the config
(:class:`~gan_tutorial.config.TrainConfig`) -> the models, from the seed -> their placement and
precision (:mod:`gan_tutorial.accel`) -> the optimisers -> the iteration
(:class:`gan_tutorial.iteration.Iteration`: ``k`` D updates and one G update, Algorithm 1 of
Goodfellow et al. 2014, with the fast path and the stabilisers) -> the loop (:meth:`Trainer.run`).
Batches are indexed straight from a device-resident image tensor. Monitors stay on the device
as running sums and are read back only every ``log_every`` steps, so the loop does not wait on
the device in between. On a GPU that takes bf16, each kind of iteration is captured once as a
CUDA graph and replayed (:class:`~gan_tutorial.iteration.CapturedIteration`), so one launch from
Python replaces a few hundred. With ``ema`` > 0 the trainer also keeps a moving average of G's
weights (:class:`gan_tutorial.average.EMA`), saved in checkpoints and sampled by
:meth:`Trainer.generate`.

**Surviving a kill.** With an ``out_dir``, :meth:`Trainer.run` writes ``checkpoint.pt``
atomically every ``checkpoint_seconds`` of wall time (60 by default) and/or every
``checkpoint_every`` steps, and at the end. The first Ctrl-C (SIGINT) or SIGTERM lets the
current iteration finish, writes a checkpoint and raises
:class:`~gan_tutorial.interrupt.TrainingInterrupted`; a second one interrupts at once. A killed
process (SIGKILL, power loss) loses at most the time since the last checkpoint. Before every
write the :class:`~gan_tutorial.updates.DivergenceGuard` is read, so diverged weights never
replace the last good checkpoint.

**Resuming is exact.** A checkpoint holds G, D, both optimisers, the step, the history and
every random state the loop draws from (the batch order, the latent codes and dropout), so
on the CPU a run interrupted and resumed ends with the same weights as one that ran
straight through. The trainer draws dropout from a random state of its own, swapped into
PyTorch's CPU generator while it trains and swapped out for callbacks, so it neither
reseeds nor consumes the global generator. A checkpoint resumed on another kind of device
(written on the CPU, resumed on a GPU) continues from the same weights, optimisers and
batch order, with new latent codes: the two devices' random generators differ. On a GPU,
dropout draws from the device's own global generator (GPU runs are not bit-reproducible).

**Labels (chapter 7).** A conditional model (``cgan-concat``, ``cgan-projection``) trains on
images with their labels, ``Trainer(config, (x, y))``: each batch of images comes with its
digits, the fakes of a step are asked for the same digits, and :meth:`Trainer.generate` takes
the digits to draw.

**Little data (chapter 8).** With ``subset`` the run trains on a class-balanced subset of the
images chosen by its seed (give the labels to choose it), saved in the checkpoint; with
``augment`` every image D sees is augmented (:mod:`gan_tutorial.augment`).

**Several processes.** With a ``world`` from :func:`gan_tutorial.distributed.start` (under
``torchrun``), each process trains on its share of every batch and the processes agree on
when to log, save and stop; only rank 0 writes the checkpoint and shows progress. The
checkpoint is the file one process writes, plus every process's random stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import accel, latent, models, runtime
from .average import EMA, recalibrate_batch_norm
from .checkpoint import CheckpointError, config_of, load_checkpoint, load_module_state, save_checkpoint
from .config import TrainConfig, build_models, check_changes
from .data import BatchSampler, balanced_subset, check_images
from .distributed import World
from .interrupt import StopSignals, TrainingInterrupted
from .iteration import CapturedIteration, Iteration, build_optimizers
from .loop import Budget, Window, lazy_factor
from .updates import MONITORS, DivergenceGuard, History

#: An optimiser's implementation flags: how this device runs it, not part of a run's state.
ADAM_FLAGS = ("fused", "foreach", "capturable", "differentiable")


class Trainer:
    """Trains ``G`` and ``D`` of ``config`` on images ``x_train`` (N, 1, 28, 28) in [-1, 1].

    A conditional model needs the images' labels: ``x_train`` as a pair ``(x, y)`` (what
    ``data.load_mnist(labels=True)`` returns) or ``labels=y``, y (N,) digits 0..9.

    ``out_dir`` (optional) receives ``checkpoint.pt`` (see the module docstring for when).
    After :meth:`run`, ``history`` holds the monitors, each averaged over the ``log_every``
    steps before it was logged. ``compile=True`` compiles G and D with ``torch.compile`` (the
    first steps then take longer: time them apart with :meth:`warm_up`). ``cuda_graphs=False``
    keeps the iterations eager on a GPU that would replay them as CUDA graphs. ``fast`` gives
    the fast path explicitly instead of :func:`accel.choose`'s choice (the benchmark adds its
    parts one at a time). ``world`` (:mod:`gan_tutorial.distributed`) trains one run on several
    processes, each taking ``batch_size / world.size`` rows of every batch.
    """

    def __init__(
        self,
        config: TrainConfig,
        x_train: torch.Tensor,
        device: str | torch.device = "cpu",
        out_dir: str | Path | None = None,
        compile: bool = False,
        cuda_graphs: bool = True,
        fast: accel.FastPath | None = None,
        labels: torch.Tensor | None = None,
        world: World | None = None,
    ) -> None:
        self.world = world = world if world is not None else World()
        if config.batch_size % world.size:
            raise ValueError(
                f"a batch of {config.batch_size} does not split over {world.size}: choose a multiple"
            )
        if compile and world.size > 1:
            raise ValueError(f"compile=True (--compile) is not supported on {world.describe()}: drop it")
        self.resumed_world_size: int | None = None  # set by resume(): the processes that wrote it
        if isinstance(x_train, (tuple, list)):
            if len(x_train) != 2 or labels is not None:
                raise ValueError("give the training images x, or one pair (x, y) of images and labels")
            x_train, labels = x_train
        check_images(x_train, "training images")
        self.config, self.device = config, torch.device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        # 1. the models, their initial weights from the seed (the global CPU generator left as it was)
        with runtime.isolated(seed=config.seed):
            G, D = build_models(config)
            self._rng_state = torch.get_rng_state()  # dropout continues this stream (see _own_rng)
        if (stream := world.stream_seed(config.seed)) is not None:  # each process's own noise
            self._rng_state = torch.Generator().manual_seed(stream).get_state()
            if torch.device(device).type == "cuda":
                torch.cuda.manual_seed(stream)
        self.conditional = models.is_conditional(G)
        self.subset: torch.Tensor | None = None  # the images' indices, with config.subset (chapter 8)
        if config.subset:
            x_train, labels = self._subset(x_train, labels)
        models.check_training_labels(config.model, getattr(G, "num_classes", None), labels, len(x_train))
        # 2. placement and precision (accel.choose): fp32 on the CPU; bf16 or fp16 + GradScaler on a GPU
        self.fast = (
            fast
            if fast is not None  # CUDA graphs replay one process's iteration only
            else accel.choose(self.device, compile=compile, cuda_graphs=cuda_graphs and world.size == 1)
        )
        a, b = self.fast.device, self.device  # "cuda" and "cuda:0" agree; "cuda:0" and "cuda:1" do not
        if a.type != b.type or (a.index is not None and b.index is not None and a.index != b.index):
            raise ValueError(f"the fast path is for {a}, the trainer for {b}")
        G, D = self.fast.place(G), self.fast.place(D)
        # the average of G's weights that generate() samples from, if the config keeps one
        self.ema = EMA(G, config.ema, config.ema_warmup) if config.ema > 0 else None
        self._ema_sampler: tuple[int, torch.nn.Module] | None = None  # (step, recalibrated copy)
        self.G, self.D = self.fast.compiled(G), self.fast.compiled(D)  # if compile=True
        # 3. the optimisers
        self.opt_G, self.opt_D = build_optimizers(self.G, self.D, config, self.fast)
        # 4. the iteration: k D updates, one G update, the average
        self.iteration = Iteration(self.G, self.D, self.opt_G, self.opt_D, config, self.fast, self.ema, world)
        # 5. the loop's state: batches, codes, monitors
        y_train = labels.to(self.device) if labels is not None else None
        self.sampler = BatchSampler(x_train.to(self.device), config.batch_size, config.seed, y_train)
        self.z_generator = torch.Generator(self.device).manual_seed(config.seed + 1)
        # 64 codes fixed for the whole run: the grid a reader watches improve (digits 0..9 in turn)
        self.fixed_z = latent.codes(64, config.latent_dim, seed=1234)
        self.fixed_labels = torch.arange(64) % G.num_classes if self.conditional else None
        self.step = 0
        self.history = History()
        self.last_checkpoint: Path | None = None
        self.guard = DivergenceGuard(self.device)
        self._window = Window(self.device)
        self._last_save = time.monotonic()
        self._graphs = self._captured()

    def _subset(
        self, x: torch.Tensor, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The config's class-balanced subset of ``x`` (:func:`data.balanced_subset`, by the seed), and
        its labels if the model is conditional."""
        if labels is None:
            raise ValueError(
                f"subset={self.config.subset} takes as many images of each digit: give the labels too, "
                "Trainer(config, (x, y)), e.g. data.load_mnist(labels=True)"
            )
        models.check_labels(labels, len(x), models.NUM_CLASSES, "training labels")
        self.subset = balanced_subset(labels, self.config.subset, self.config.seed)
        return x[self.subset], labels[self.subset] if self.conditional else None

    def _captured(self) -> CapturedIteration | None:
        """The iteration as CUDA graphs where the fast path replays them; ``None`` keeps it eager (a
        warm-up's decay changes every step, which a captured graph cannot: those runs stay eager)."""
        cfg = self.config  # an augmentation draws on the host at every step: those runs stay eager too
        if not self.fast.cuda_graph or cfg.ema_warmup or cfg.augment != "none" or self.world.size > 1:
            return None
        return CapturedIteration(self.iteration, self.sampler, self.z_generator, self._record)

    def _record(self, stats: dict[str, torch.Tensor], step: int | torch.Tensor) -> None:
        """An iteration's statistics into the logging window and before the divergence guard."""
        self._window.add(stats)
        self.guard.update(stats, step)

    def sample_z(self, n: int | None = None) -> torch.Tensor:
        """(n, latent_dim) standard normal codes from the trainer's own generator."""
        n = n or self.config.batch_size
        return torch.randn(n, self.config.latent_dim, generator=self.z_generator, device=self.device)

    def generate(
        self,
        n: int | None = None,
        z: torch.Tensor | None = None,
        seed: int = 0,
        average: bool = True,
        labels: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """G(z) in eval mode, (n, 1, 28, 28), on the trainer's device (:func:`latent.generate`).

        ``z`` defaults to the 64 fixed codes, or with ``n`` to n codes drawn with ``seed``
        from a generator of their own (evaluating never disturbs the training RNGs). A
        conditional G draws the digits ``labels`` (one int, or one per code); without them,
        the fixed codes get digits 0..9 in turn and drawn codes uniform random digits. With
        ``average`` (the default) the samples come from the moving average of G's weights
        when the config keeps one (``ema`` > 0), with its batch norms' statistics measured
        again under the averaged weights (:func:`average.recalibrate_batch_norm`, once per
        step); ``average=False`` uses the live G.
        """
        G = self.average_generator() if average and self.ema is not None else self.G
        if z is None and n is None:
            z = self.fixed_z
            labels = self.fixed_labels if labels is None else labels
        return latent.generate(G, n, z=z, seed=seed, labels=labels)

    def average_generator(self) -> torch.nn.Module:
        """The moving average of G's weights, ready to sample (eval mode, batch-norm statistics
        recalibrated for the current step); raises if the config keeps no average."""
        if self.ema is None:
            raise ValueError("this run keeps no average of G's weights: set ema > 0 in its config")
        if self._ema_sampler is None or self._ema_sampler[0] != self.step:
            self._ema_sampler = (self.step, recalibrate_batch_norm(self.ema.module, device=self.device))
        return self._ema_sampler[1]

    def warm_up(self, steps: int = 3) -> float:
        """Train ``steps`` iterations and return the seconds they took: with ``compile=True``
        the first steps trace and compile, and this times them apart from a budget. No
        checkpoint is written (the next :meth:`run` writes one)."""
        return accel.warm_up(lambda: self.run(steps=1, progress=False, save=False), steps, self.device)

    # -- the loop -----------------------------------------------------------------------

    def run(
        self,
        steps: int | None = None,
        seconds: float | None = None,
        callback: Callable[[Trainer], None] | None = None,
        progress: bool = True,
        save: bool = True,
    ) -> History:
        """Train for ``steps`` more iterations or ``seconds`` of training time, whichever ends first.

        ``callback(trainer)`` runs after every logged step; its time is not counted in
        ``seconds``. With an ``out_dir`` (and unless ``save=False``) checkpoints are written
        as the module docstring says. Raises :class:`updates.DivergenceError` naming the first
        bad step and the last good checkpoint if a loss or a gradient norm turns NaN or
        infinite (the diverged weights are never written), and :class:`TrainingInterrupted`
        after a SIGINT or SIGTERM, once the checkpoint is written.
        """
        if steps is None and seconds is None:
            raise ValueError("give a budget: steps, seconds, or both")
        if (steps is not None and steps < 1) or (seconds is not None and not 0 < seconds < math.inf):
            raise ValueError(f"budgets must be positive, got steps={steps}, seconds={seconds}")
        writing = save and self.out_dir is not None
        budget = Budget(self.step, steps, seconds)
        self._window.reset()  # a resumed or continued run starts a fresh logging window
        self._last_save = time.monotonic()
        self.G.train()
        self.D.train()
        # progress=False turns the bar off; otherwise tqdm decides (TQDM_DISABLE=1 turns it off too)
        shown = progress and self.world.main
        bar = tqdm(total=steps, initial=0, desc="train", unit="step", **({} if shown else {"disable": True}))
        # on several processes, torchrun passes a Ctrl-C on to processes that had it already: the
        # repeats are not a second, hard stop (torchrun kills a process that does not end in time)
        alone = self.world.size == 1
        stop = 0  # the signal the run stops on: on several processes, only one they all agreed on
        try:
            with StopSignals(once=alone) as signals:
                while True:
                    with self._own_rng():  # a stretch of steps up to the next event
                        while True:
                            self._step()
                            bar.update(1)
                            # every process ends, saves and stops at the same step; a signal that
                            # arrives during a collective stays pending for the next agreement
                            end, due, stop = self.world.agree(
                                budget.over(self.step),
                                writing and self._checkpoint_due(),
                                signals.caught or 0,
                            )
                            log = end or self.step % self.config.log_every == 0
                            due = due and not end
                            if log or due or stop:
                                break
                    if log:
                        self._log(bar, callback, budget)
                        stop = stop or (alone and signals.caught) or 0  # one process: during a callback
                    if end or stop:
                        break
                    if due:
                        self.save()
                self._log(bar, None, budget)  # what is left of the window (after an interruption)
                if writing:  # still under the signal guard: a signal now waits for this write
                    self.save()
                stop = stop or (alone and signals.caught) or 0
        finally:
            bar.close()
        if stop:
            raise TrainingInterrupted(stop, self.step, self.last_checkpoint if writing else None)
        return self.history

    def _step(self) -> None:
        """One iteration, with its statistics added to the window and shown to the guard."""
        self.step += 1
        lazy = lazy_factor(self.config, self.step)
        if self._graphs is not None:  # replay the captured iteration (eager until captured)
            self._graphs.step(lazy, self.step)
        else:
            k, shard = self.config.k, self.world.shard  # the whole batch, then this process's rows
            batches = [self.sampler.labelled() for _ in range(k)]
            x_real, y = [shard(b[0]) for b in batches], [shard(b[1]) for b in batches]
            z = [shard(self.sample_z()) for _ in range(k)]
            stats = self.iteration(x_real, z, y if self.conditional else None, lazy, self.step)
            self._record(stats, self.step)
        self._window.count += 1

    def _log(self, bar: tqdm, callback: Callable[[Trainer], None] | None, budget: Budget) -> None:
        """Read the window back (after the guard's check), append it to the history, show it on the
        progress bar and run the callback outside the budget's clock."""
        self._check_guard()
        if not self._window.count:
            return
        self.history.append(self.step, self._window.means(self.world))
        self._window.reset()
        bar.set_postfix({k: f"{self.history[k][-1]:.3g}" for k in MONITORS[:5]}, refresh=False)
        if callback is not None:
            with budget.paused():
                callback(self)

    def _check_guard(self) -> None:
        """The divergence guard's check, with every process's record merged first."""
        where = self.world.merge_guard(self.guard)
        self.guard.check(self.step, self.last_checkpoint, where)

    def _checkpoint_due(self) -> bool:
        cfg = self.config
        by_steps = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
        by_time = cfg.checkpoint_seconds and time.monotonic() - self._last_save >= cfg.checkpoint_seconds
        return bool(by_steps or by_time)

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """The trainer's CPU random stream (dropout) in PyTorch's CPU generator while it trains;
        the global stream is put back after, untouched."""
        with runtime.isolated():
            torch.set_rng_state(self._rng_state)
            try:
                yield
            finally:
                self._rng_state = torch.get_rng_state()

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: models, optimisers, step, history, RNGs."""
        rng: dict[str, Any] = {"torch": self._rng_state, "z": self.z_generator.get_state()}
        if self.world.size > 1:  # each process's own stream; "torch" is rank 0's
            rng["torch_ranks"] = self.world.gather_object(self._rng_state)
            rng["torch"] = rng["torch_ranks"][0]
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
            if self.world.size > 1:
                rng["cuda_ranks"] = self.world.gather_object(rng["cuda"])
        return {
            "model": self.config.model,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "world_size": self.world.size,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            **({"G_ema": self.ema.state_dict()} if self.ema is not None else {}),
            # fp16 only: the loss scale and its growth tracker, so a resumed run scales alike
            **{name: sc.state_dict() for name, sc in self._scalers().items()},
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "history": {"step": list(self.history.step), "values": dict(self.history.values)},
            **({"subset": self.subset} if self.subset is not None else {}),
            **({"ada": self.iteration.ada.state_dict()} if self.iteration.ada is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_module_state(self.G, state["G"], "generator")
        load_module_state(self.D, state["D"], "discriminator")
        if self.ema is not None:
            if "G_ema" not in state:
                raise CheckpointError("the config keeps an average of G (ema > 0); the checkpoint has none")
            load_module_state(self.ema.module, state["G_ema"], "average generator")
        self._ema_sampler = None  # a recalibrated copy of the old average is stale now
        for name, scaler in self._scalers().items():
            if name in state:  # a checkpoint from another device has none: the scaler starts afresh
                scaler.load_state_dict(state[name])
        for opt, key in ((self.opt_G, "opt_G"), (self.opt_D, "opt_D")):
            # a checkpoint carries its optimiser's implementation flags (fused, capturable, ...),
            # which are the other device's when it was written on another: keep this trainer's
            # before loading, since load_state_dict places each step counter by those flags
            saved = state[key]
            if len(saved["param_groups"]) != len(opt.param_groups):
                raise CheckpointError(f"the checkpoint's {key} has another number of parameter groups")
            groups = [
                {**g, **{k: v for k, v in own.items() if k in ADAM_FLAGS}}
                for g, own in zip(saved["param_groups"], opt.param_groups, strict=True)
            ]
            opt.load_state_dict({**saved, "param_groups": groups})
        if self.subset is not None and not torch.equal(state.get("subset", torch.tensor([])), self.subset):
            raise CheckpointError(
                "the checkpoint was trained on another subset of images than this data gives for its "
                f"subset={self.config.subset} and seed={self.config.seed}: resume it on the data it "
                "was written with"
            )
        if self.iteration.ada is not None:
            self.iteration.ada.load_state_dict(state["ada"], self.device)
        self.sampler.load_state_dict(state["sampler"])
        new = (self.world.stream_seed(self.config.seed) or 0) + state["step"]  # for a process without one
        own = self.world.own_stream(state["rng"], "torch")
        self._rng_state = own if own is not None else torch.Generator().manual_seed(new).get_state()
        z_state = state["rng"]["z"].cpu()
        if z_state.numel() == self.z_generator.get_state().numel():
            self.z_generator.set_state(z_state)
        else:  # written on another kind of device, whose generator differs: new codes from here on
            self.z_generator.manual_seed(self.config.seed + 1 + int(state["step"]))
        if "cuda" in state["rng"] and self.device.type == "cuda":
            own = self.world.own_stream(state["rng"], "cuda")
            if own is not None:
                torch.cuda.set_rng_state(own, self.device)
            else:
                torch.cuda.manual_seed(new)
        self.step = state["step"]
        self.history = History(list(state["history"]["step"]), dict(state["history"]["values"]))
        self.guard.reset()  # a checkpoint is a good state
        if self._graphs is not None:  # the optimisers hold new state tensors: capture again
            self._graphs = self._captured()

    def _scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {
            n: sc
            for n, sc in (("scaler_G", self.iteration.scaler_G), ("scaler_D", self.iteration.scaler_D))
            if sc is not None
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default ``out_dir/checkpoint.pt``); return its path.

        The divergence guard is read first: weights that went NaN or infinite are never
        written (:class:`updates.DivergenceError` instead)."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("no path given and the trainer has no out_dir")
            path = self.out_dir / "checkpoint.pt"
        self._check_guard()
        state = self.state_dict()  # on several processes, every one takes part: it gathers their streams
        self.last_checkpoint = save_checkpoint(state, path) if self.world.main else Path(path)
        self._last_save = time.monotonic()
        return self.last_checkpoint

    @classmethod
    def resume(
        cls,
        path: str | Path,
        x_train: torch.Tensor,
        device: str | torch.device = "cpu",
        out_dir: str | Path | None = None,
        compile: bool = False,
        cuda_graphs: bool = True,
        changes: dict[str, Any] | None = None,
        labels: torch.Tensor | None = None,
        world: World | None = None,
    ) -> Trainer:
        """A trainer restored from the checkpoint at ``path``, ready to :meth:`run` on (``x_train``
        and ``labels`` as for a new :class:`Trainer`).

        ``changes`` may set the :data:`~gan_tutorial.config.RESUMABLE_FIELDS` (how often to log and
        checkpoint); any other field must equal the checkpoint's, else a ``ValueError`` names both. A
        run written by another number of processes continues with the same batches and codes
        (:attr:`resumed_world_size` says how many wrote it).
        """
        state = load_checkpoint(path)
        config = config_of(state, path)
        config = dataclasses.replace(config, **check_changes(config, changes or {}))
        out_dir = out_dir if out_dir is not None else Path(path).parent
        trainer = cls(config, x_train, device, out_dir, compile, cuda_graphs, labels=labels, world=world)
        trainer.load_state_dict(state)
        trainer.resumed_world_size = int(state.get("world_size", 1))
        trainer.last_checkpoint = Path(path)
        return trainer
