"""A GAN trainer you can leave running: progress bar, history, checkpoints, divergence guard.

Chapter 3 builds it; the command line (``python -m gan_tutorial train``) runs the same
code. Each iteration is ``k`` calls of :func:`updates.d_step` and one of :func:`updates.g_step`
(Algorithm 1 of Goodfellow et al. 2014) on batches indexed straight from a device-resident
image tensor. The last D step's fake batch G(z) is made once, with its graph, and serves the
G step too (as pytorch/examples does), which saves a forward pass of G per iteration.
Monitors stay on the device as running sums and are read back only every ``log_every``
steps, so the loop does not wait on the device in between. On a GPU that takes bf16
(:mod:`gan_tutorial.accel`), each kind of iteration is captured once as a CUDA graph and
replayed, so one launch from Python replaces a few hundred. With ``ema`` > 0 the trainer
also keeps a moving average of G's weights (:class:`gan_tutorial.latent.EMA`), saved in
checkpoints and sampled by :meth:`Trainer.generate`.

**Surviving a kill.** With an ``out_dir``, :meth:`Trainer.run` writes ``checkpoint.pt``
atomically every ``checkpoint_seconds`` of wall time (60 by default) and/or every
``checkpoint_every`` steps, and at the end. The first Ctrl-C (SIGINT) or SIGTERM lets the
current iteration finish, writes a checkpoint and raises :class:`TrainingInterrupted`; a
second one interrupts at once. A killed process (SIGKILL, power loss) loses at most the
time since the last checkpoint. Before every write the :class:`updates.DivergenceGuard` is
read, so diverged weights never replace the last good checkpoint.

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
digits, the fakes of a step are asked for the same digits (:func:`updates.d_step`), and
:meth:`Trainer.generate` takes the digits to draw.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import accel, data, latent, models
from .checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from .config import POLICY, RECIPES, TrainConfig, check_changes  # noqa: F401  (re-exported: chapters import them here)
from .latent import EMA, recalibrate_batch_norm
from .losses import get_loss
from .updates import DivergenceGuard, History, d_step, g_step

#: An optimiser's implementation flags: how this device runs it, not part of a run's state.
ADAM_FLAGS = ("fused", "foreach", "capturable", "differentiable")

#: Monitors the trainer records, in the order the progress bar shows them.
MONITORS = ("loss_D", "loss_G", "d_real", "d_fake", "d_fake_g", "grad_D", "grad_G")


def check_images(x: torch.Tensor) -> None:
    """``ValueError`` unless ``x`` is training images (N, 1, 28, 28) in [-1, 1]: :func:`data.check_images`."""
    data.check_images(x, "training images")


def build_models(config: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(G, D)`` for ``config.model`` with ``config.model_args`` (:func:`models.build`), D
    spectrally normalised if ``config.spectral_norm`` (:func:`models.spectral_norm_`)."""
    G, D = models.build(config.model, config.latent_dim, config.dropout, **config.model_args)
    if config.spectral_norm:
        models.spectral_norm_(D)
    return G, D


class BatchSampler:
    """Random batches of a tensor, reshuffled every epoch, with a state that can be saved.

    The state is the CPU generator's state at the start of the epoch plus the position in
    it; restoring it redraws the same permutation and continues from the same batch. ``y``
    (optional) holds a label per row of ``x``; :meth:`labelled` gives a batch with its labels.
    """

    def __init__(self, x: torch.Tensor, batch_size: int, seed: int, y: torch.Tensor | None = None) -> None:
        if not 0 < batch_size <= x.shape[0]:
            raise ValueError(f"batch_size must be between 1 and the {x.shape[0]} images, got {batch_size}")
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.epoch_state = self.generator.get_state()
        self.perm = torch.randperm(self.x.shape[0], generator=self.generator).to(self.x.device)
        self.pos = 0

    def indices(self) -> torch.Tensor:
        """The next batch's (B,) row indices into ``x``, on ``x``'s device."""
        if self.pos + self.batch_size > self.x.shape[0]:  # drop the incomplete last batch
            self._new_epoch()
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def __call__(self) -> torch.Tensor:
        return self.x[self.indices()]  # (B, 1, 28, 28)

    def labelled(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next batch and its labels (``None`` without labels): (B, 1, 28, 28) and (B,)."""
        idx = self.indices()
        return self.x[idx], None if self.y is None else self.y[idx]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_state": self.epoch_state, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["epoch_state"])
        self._new_epoch()
        self.pos = state["pos"]


class _Window:
    """The logging window: running sums of the monitors in fixed device tensors, updated in
    place (so a CUDA graph can update them too) and read back only when the trainer logs."""

    def __init__(self, device: torch.device) -> None:
        self.sums = {key: torch.zeros((), device=device) for key in MONITORS}
        self.count = 0  # iterations in the sums (counted on the host by the trainer's loop)

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key in MONITORS:
            self.sums[key].add_(stats[key])

    def means(self) -> dict[str, float]:
        """The monitors' means over the window, read back from the device in one transfer."""
        means = (torch.stack([self.sums[k] for k in MONITORS]) / self.count).tolist()
        return dict(zip(MONITORS, means, strict=True))

    def reset(self) -> None:
        for value in self.sums.values():
            value.zero_()
        self.count = 0


class _Budget:
    """A run's budget in steps and/or seconds. The clock stops while :meth:`paused`: the
    callbacks' time (grids, scores) is not charged to training."""

    def __init__(self, start_step: int, steps: int | None, seconds: float | None) -> None:
        self.end = start_step + steps if steps is not None else None
        self.seconds = seconds
        self.start, self.paused_for = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused_for

    def over(self, step: int) -> bool:
        return (self.end is not None and step >= self.end) or (
            self.seconds is not None and self.elapsed() >= self.seconds
        )

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused_for += time.perf_counter() - t0


class _StopSignals:
    """While active (in the main thread only), the first SIGINT or SIGTERM is recorded in
    ``caught`` instead of interrupting; the previous handlers come back at once, so a second
    signal interrupts (or terminates) as usual."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)

    def __init__(self) -> None:
        self.caught: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.caught = signum
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM after finishing its current iteration.

    ``signal`` is the signal's number, ``step`` the last finished step, ``checkpoint`` where
    the run was saved (``None`` without an ``out_dir`` or with ``save=False``).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        name = signal.Signals(signum).name
        saved = (
            f"wrote {checkpoint}; continue with Trainer.resume"
            if checkpoint
            else "nothing saved (the run has no out_dir, or ran with save=False)"
        )
        super().__init__(f"{name} at step {step}: {saved}")
        self.signal, self.step, self.checkpoint = signum, step, checkpoint

    def __reduce__(self):  # so that it crosses process boundaries
        return type(self), (self.signal, self.step, self.checkpoint)


class _IterationGraphs:
    """A trainer's iteration captured as CUDA graphs, one per kind of step, and replayed.

    Each kind of iteration (with and without lazy R1 and R2) first runs eagerly ``WARM_UP`` times on
    a side stream, so that the optimisers' state, library handles and workspaces come into
    being outside any graph. Right after the last of them the same iteration is captured
    (capture records the kernels without running them), and every later step replays it. The
    graph reads fixed buffers, which every step refills before it runs: batch indices copied
    from the sampler's permutation, codes drawn from the trainer's generator, and the step
    number for the divergence guard.
    What the iteration reads as Python numbers (learning rates, penalties' weights) is fixed at
    capture: a changed learning rate needs a new trainer (or a resume from a checkpoint).
    """

    WARM_UP = 2  # eager runs of each kind of iteration before its capture

    def __init__(self, trainer: Trainer) -> None:
        cfg, device = trainer.config, trainer.device
        self.trainer = trainer
        self.idx = torch.zeros(cfg.k, cfg.batch_size, dtype=torch.long, device=device)
        self.z = torch.zeros(cfg.k, cfg.batch_size, cfg.latent_dim, device=device)
        self.step_number = torch.zeros((), dtype=torch.long, device=device)
        self.stream = torch.cuda.Stream(device)
        self.graphs: dict[float, torch.cuda.CUDAGraph] = {}
        self.eager_runs: dict[float, int] = {}

    def _body(self, lazy: float) -> None:
        t = self.trainer
        x_real = [t.sampler.x[self.idx[i]] for i in range(t.config.k)]
        y = None if t.sampler.y is None else [t.sampler.y[self.idx[i]] for i in range(t.config.k)]
        stats = t._iteration(x_real, list(self.z.unbind(0)), lazy, y)
        t._window.add(stats)
        t.guard.update(stats, self.step_number)

    def step(self, lazy: float, step: int) -> None:
        """Run one iteration: refill the buffers, then replay (or warm up and capture)."""
        t = self.trainer
        for i in range(t.config.k):
            self.idx[i].copy_(t.sampler.indices())
            self.z[i].normal_(generator=t.z_generator)
        self.step_number.fill_(step)
        graph = self.graphs.get(lazy)
        if graph is not None:
            graph.replay()
        else:
            main = torch.cuda.current_stream(t.device)
            self.stream.wait_stream(main)
            with torch.cuda.stream(self.stream):
                self._body(lazy)
            main.wait_stream(self.stream)
            self.eager_runs[lazy] = self.eager_runs.get(lazy, 0) + 1
            if self.eager_runs[lazy] >= self.WARM_UP:  # capture now; replay from the next step on
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self._body(lazy)
                self.graphs[lazy] = graph


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
    parts one at a time).
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
    ) -> None:
        if isinstance(x_train, (tuple, list)):
            if len(x_train) != 2 or labels is not None:
                raise ValueError("give the training images x, or one pair (x, y) of images and labels")
            x_train, labels = x_train
        check_images(x_train)
        self.config, self.device = config, torch.device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        # fast path (accel.choose): fp32 on the CPU; bf16 or fp16 + GradScaler, channels-last on a GPU
        self.fast = (
            fast if fast is not None else accel.choose(self.device, compile=compile, cuda_graphs=cuda_graphs)
        )
        a, b = self.fast.device, self.device  # "cuda" and "cuda:0" agree; "cuda:0" and "cuda:1" do not
        if a.type != b.type or (a.index is not None and b.index is not None and a.index != b.index):
            raise ValueError(f"the fast path is for {a}, the trainer for {b}")
        with torch.random.fork_rng(devices=[]):  # the global CPU generator is left as it was
            torch.manual_seed(config.seed)
            G, D = build_models(config)  # initial weights from the seed
            self._rng_state = torch.get_rng_state()  # dropout continues this stream (see _own_rng)
        self.conditional = models.is_conditional(G)
        if self.conditional and labels is None:
            raise ValueError(
                f"model {config.model!r} is conditional and trains on images with their labels: give "
                "Trainer(config, (x, y)), e.g. data.load_mnist(labels=True)"
            )
        if not self.conditional and labels is not None:
            raise ValueError(
                f"model {config.model!r} is unconditional and takes no labels: pass the images alone, "
                "or choose a conditional model (cgan-concat, cgan-projection)"
            )
        if labels is not None:
            models.check_labels(labels, len(x_train), G.num_classes, "training labels")
        self.G, self.D = self.fast.place(G), self.fast.place(D)
        penalties = {"r1": config.r1, "r2": config.r2, "gp": config.penalty}
        used = [f"{name}={value}" for name, value in penalties.items() if value]
        if used and models.has_batch_norm(self.D):
            raise ValueError(
                f"{', '.join(used)} needs a D without batch norm (each score's gradient with respect to "
                f"its own image), and model {config.model!r} has one: use model 'dcgan-bn-g' (batch norm "
                "in G only), or no gradient penalty"
            )
        # the average of G's weights that generate() samples from, if the config keeps one
        self.ema = EMA(self.G, config.ema, config.ema_warmup) if config.ema > 0 else None
        self._ema_sampler: tuple[int, torch.nn.Module] | None = None  # (step, recalibrated copy)
        self.G, self.D = self.fast.compiled(self.G), self.fast.compiled(self.D)  # if compile=True
        self.scaler_G, self.scaler_D = self.fast.scaler(), self.fast.scaler()  # None unless fp16
        # one D pass over real and fake rows together, unless batch norm would mix their statistics
        self.joint_d_pass = not models.has_batch_norm(self.D)
        self.opt_G = self._optimizer(self.G, config.lr_G)
        self.opt_D = self._optimizer(self.D, config.lr_D)
        self.loss = get_loss(config.loss)
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
        self._window = _Window(self.device)
        self._last_save = time.monotonic()
        # a warm-up's decay changes every step, which a captured graph cannot: those runs stay eager
        self._graphs = _IterationGraphs(self) if self.fast.cuda_graph and not config.ema_warmup else None

    def _optimizer(self, module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        """The config's optimiser for ``module``: the fast path's Adam (fused where this torch has
        the kernel: one pass over all the weights), or RMSprop (WGAN with weight clipping)."""
        cfg = self.config
        if cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=lr, capturable=self.fast.cuda_graph)
        return self.fast.adam_optimizer(module.parameters(), lr, (cfg.beta1, cfg.beta2))

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
        again under the averaged weights (:func:`latent.recalibrate_batch_norm`, once per
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
        budget = _Budget(self.step, steps, seconds)
        self._window.reset()  # a resumed or continued run starts a fresh logging window
        self._last_save = time.monotonic()
        self.G.train()
        self.D.train()
        # progress=False turns the bar off; otherwise tqdm decides (TQDM_DISABLE=1 turns it off too)
        bar = tqdm(
            total=steps, initial=0, desc="train", unit="step", **({} if progress else {"disable": True})
        )
        try:
            with _StopSignals() as signals:
                while True:
                    with self._own_rng():  # a stretch of steps up to the next event
                        while True:
                            self._step()
                            bar.update(1)
                            end = budget.over(self.step)
                            log = end or self.step % self.config.log_every == 0
                            due = writing and not end and self._checkpoint_due()
                            if log or due or signals.caught:
                                break
                    if log:
                        self._log(bar, callback, budget)
                    if end or signals.caught:
                        break
                    if due:
                        self.save()
                self._log(bar, None, budget)  # what is left of the window (after an interruption)
                if writing:  # still under the signal guard: a signal now waits for this write
                    self.save()
        finally:
            bar.close()
        if signals.caught:
            raise TrainingInterrupted(signals.caught, self.step, self.last_checkpoint if writing else None)
        return self.history

    def _step(self) -> None:
        """One iteration, with its statistics added to the window and shown to the guard."""
        self.step += 1
        lazy = self._lazy_factor()
        if self._graphs is not None:  # replay the captured iteration (eager until captured)
            self._graphs.step(lazy, self.step)
        else:
            k = self.config.k
            batches = [self.sampler.labelled() for _ in range(k)]
            x_real, y = [b[0] for b in batches], [b[1] for b in batches]
            stats = self._iteration(
                x_real, [self.sample_z() for _ in range(k)], lazy, y if self.conditional else None
            )
            self._window.add(stats)
            self.guard.update(stats, self.step)
        self._window.count += 1

    def _log(self, bar: tqdm, callback: Callable[[Trainer], None] | None, budget: _Budget) -> None:
        """Read the window back (after the guard's check), append it to the history, show it on the
        progress bar and run the callback outside the budget's clock."""
        self.guard.check(self.step, self.last_checkpoint)
        if not self._window.count:
            return
        self.history.append(self.step, self._window.means())
        self._window.reset()
        bar.set_postfix({k: f"{self.history[k][-1]:.3g}" for k in MONITORS[:5]}, refresh=False)
        if callback is not None:
            with budget.paused():
                callback(self)

    def _checkpoint_due(self) -> bool:
        cfg = self.config
        by_steps = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
        by_time = cfg.checkpoint_seconds and time.monotonic() - self._last_save >= cfg.checkpoint_seconds
        return bool(by_steps or by_time)

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """The trainer's CPU random stream (dropout) in PyTorch's CPU generator while it trains;
        the global stream is put back after, untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            try:
                yield
            finally:
                self._rng_state = torch.get_rng_state()

    def _iteration(
        self,
        x_real: list[torch.Tensor],
        z: list[torch.Tensor],
        lazy: float,
        y: list[torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """One iteration on given batches: ``k`` D steps (``x_real[i]``, ``z[i]``, labels ``y[i]`` for
        a conditional model), one G step, the moving average; returns the last steps' statistics
        (tensors, nothing read back). ``lazy`` multiplies R1's and R2's weights (:meth:`_lazy_factor`)."""
        cfg = self.config
        k = cfg.k
        y = y if y is not None else [None] * k
        for i in range(k):
            x_fake = None
            if i == k - 1:  # the last D step's fakes, graph kept, serve the G step too
                with self.fast.autocast():
                    x_fake = self.G(z[i]) if y[i] is None else self.G(z[i], y[i])
            stats = d_step(
                self.G, self.D, self.opt_D, x_real[i], z[i], self.loss, self.fast, self.scaler_D, x_fake,
                joint=self.joint_d_pass, r1=cfg.r1 * lazy, r2=cfg.r2 * lazy, gp=cfg.penalty,
                clip=cfg.clip, smoothing=cfg.label_smoothing, noise=cfg.instance_noise, y=y[i],
            )  # fmt: skip
        stats.update(
            g_step(
                self.G,
                self.D,
                self.opt_G,
                None,
                self.loss,
                self.fast,
                self.scaler_G,
                x_fake,
                x_real=x_real[-1],
                joint=self.joint_d_pass,
                noise=cfg.instance_noise,
                y=y[-1],
            )  # fmt: skip
        )
        if self.ema is not None:
            self.ema.update(self.G, self.step)
        return stats

    def _lazy_factor(self) -> float:
        """The factor on R1's and R2's weights for this step's D update: ``r1_every`` on every
        ``r1_every``-th step, 0 on the others ("lazy regularisation", Karras et al. 2020). For
        plain SGD that is the same pull on average; Adam divides each step by a running scale of
        the gradients, so with Adam it is only close to it (chapter 4)."""
        cfg = self.config
        return float(cfg.r1_every) if (cfg.r1 or cfg.r2) and self.step % cfg.r1_every == 0 else 0.0

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: models, optimisers, step, history, RNGs."""
        rng: dict[str, Any] = {"torch": self._rng_state, "z": self.z_generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": self.config.model,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
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
        self.sampler.load_state_dict(state["sampler"])
        self._rng_state = state["rng"]["torch"].cpu()
        z_state = state["rng"]["z"].cpu()
        if z_state.numel() == self.z_generator.get_state().numel():
            self.z_generator.set_state(z_state)
        else:  # written on another kind of device, whose generator differs: new codes from here on
            self.z_generator.manual_seed(self.config.seed + 1 + int(state["step"]))
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.step = state["step"]
        self.history = History(list(state["history"]["step"]), dict(state["history"]["values"]))
        self.guard.reset()  # a checkpoint is a good state
        if self._graphs is not None:  # the optimisers hold new state tensors: capture again
            self._graphs = _IterationGraphs(self)

    def _scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {
            n: sc for n, sc in (("scaler_G", self.scaler_G), ("scaler_D", self.scaler_D)) if sc is not None
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default ``out_dir/checkpoint.pt``); return its path.

        The divergence guard is read first: weights that went NaN or infinite are never
        written (:class:`updates.DivergenceError` instead)."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("no path given and the trainer has no out_dir")
            path = self.out_dir / "checkpoint.pt"
        self.guard.check(self.step, self.last_checkpoint)
        self.last_checkpoint = save_checkpoint(self.state_dict(), path)
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
    ) -> Trainer:
        """A trainer restored from the checkpoint at ``path``, ready to :meth:`run` on (``x_train``
        and ``labels`` as for a new :class:`Trainer`).

        ``changes`` may set the :data:`POLICY` fields (how often to log and checkpoint); any
        other field must equal the checkpoint's, else a ``ValueError`` names both values.
        """
        state = load_checkpoint(path)
        config = config_of(state, path)
        config = dataclasses.replace(config, **check_changes(config, changes or {}))
        out_dir = out_dir if out_dir is not None else Path(path).parent
        trainer = cls(config, x_train, device, out_dir, compile, cuda_graphs, labels=labels)
        trainer.load_state_dict(state)
        trainer.last_checkpoint = Path(path)
        return trainer


def config_of(state: dict[str, Any], path: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in a checkpoint, or a :class:`CheckpointError` that
    says why it cannot be rebuilt (an unknown model, fields from another version)."""
    try:
        models.resolve(state.get("model"))
    except (ValueError, TypeError):
        raise CheckpointError(f"{path} holds an unknown model {state.get('model')!r}") from None
    try:
        return TrainConfig(**state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path} holds a run this version of gan_tutorial cannot rebuild ({err}); "
            "was it written by another version?"
        ) from err


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", average: bool = True
) -> torch.nn.Module:
    """The generator of a checkpoint, in eval mode, with its ``latent_dim`` attribute.

    With ``average`` (the default) it holds the moving average of G's weights when the run
    kept one (``ema`` > 0), batch norms recalibrated, as :meth:`Trainer.generate` samples;
    else the last weights.
    """
    state = load_checkpoint(path, model=None)
    config = config_of(state, path)
    G, _ = build_models(config)
    G = G.to(device)
    if "G" not in state:
        raise CheckpointError(f"{path} holds no generator weights; was it written by Trainer.save?")
    if average and "G_ema" in state:
        load_module_state(G, state["G_ema"], "generator")
        return recalibrate_batch_norm(G)  # as Trainer.generate samples it
    load_module_state(G, state["G"], "generator")
    return G.eval()
