"""A GAN trainer you can leave running: progress bar, history, checkpoints, divergence guard.

Chapter 3 builds it; the command line (``python -m gan_tutorial.train``) runs the same
code. Each iteration is ``k`` calls of :func:`training.d_step` and one of
:func:`training.g_step` (Algorithm 1 of Goodfellow et al. 2014) on batches indexed
straight from a device-resident image tensor. The last D step's fake batch G(z) is made
once, with its graph, and serves the G step too (as pytorch/examples does), which saves a
forward pass of G per iteration. Monitors stay on the device as running sums and are read
back only every ``log_every`` steps, so the loop does not wait on the device in between.
On a GPU that takes bf16 (:mod:`gan_tutorial.accel`), each kind of iteration is captured
once as a CUDA graph and replayed, so one launch from Python replaces a few hundred.
With ``ema`` > 0 the trainer also keeps a moving average of G's weights
(:class:`gan_tutorial.latent.EMA`), saved in checkpoints and sampled by :meth:`Trainer.generate`.

Resuming is exact: a checkpoint holds G, D, both optimisers, the step, the history and
every random state the loop draws from (the batch order, the latent codes and dropout),
so on the CPU a run interrupted and resumed ends with the same weights as one that ran
straight through. A checkpoint resumed on another kind of device (written on the CPU, resumed
on a GPU) continues from the same weights, optimisers and batch order, with new latent codes:
the two devices' random generators differ.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import accel, models
from .checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from .latent import EMA, recalibrate_batch_norm
from .losses import get_loss
from .training import DivergenceError, History, d_step, g_step, has_batch_norm

#: An optimiser's implementation flags: how this device runs it, not part of a run's state.
ADAM_FLAGS = ("fused", "foreach", "capturable", "differentiable")

#: Monitors the trainer records, in the order the progress bar shows them.
MONITORS = ("loss_D", "loss_G", "d_real", "d_fake", "d_fake_g", "grad_D", "grad_G")


@dataclass
class TrainConfig:
    """Everything that defines a run. Defaults are the classic recipe of introductory GAN articles.

    ``lr_G``/``lr_D`` and ``betas`` feed Adam; beta1 = 0.5 instead of 0.9 because the
    default momentum oscillates in GAN games (Radford et al. 2016).
    """

    model: str = "mlp"
    loss: str = "nonsaturating"
    latent_dim: int = 100
    batch_size: int = 64
    lr_G: float = 2e-4
    lr_D: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    dropout: float = 0.3  # in D, after each hidden layer
    ema: float = 0.0  # decay of an exponential moving average of G's weights (0: none)
    r1: float = 0.0  # weight gamma of the R1 penalty on D's slope at real images (0: none)
    r1_every: int = 4  # R1 on every r1_every-th step only, weighted r1 * r1_every (lazy)
    k: int = 1  # D steps per G step
    seed: int = 0
    log_every: int = 100  # steps between host read-backs of the monitors
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end of a run)

    def __post_init__(self) -> None:
        if self.model not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; known models: {', '.join(models.MODELS)}")
        get_loss(self.loss)  # raises for an unknown loss
        for name in ("latent_dim", "batch_size", "k", "log_every", "r1_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr_G <= 0 or self.lr_D <= 0:
            raise ValueError(f"learning rates must be positive, got lr_G={self.lr_G}, lr_D={self.lr_D}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema (a decay) must be in [0, 1), 0 to keep no average; got {self.ema}")
        if self.r1 < 0:
            raise ValueError(f"r1 (the R1 penalty's weight) must be >= 0, 0 for none; got {self.r1}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")


#: Named starting points. ``classic`` is the recipe of introductory articles (batch 64, Adam 2e-4,
#: dropout 0.3). ``fast`` is chapter 3's recipe for better samples in the same wall time: batch
#: norm in G's hidden layers, Adam 1e-3 for both players, and samples from a moving average
#: of G's weights (decay 0.998). ``dcgan`` is chapter 4's: the DCGAN with batch norm in G only,
#: G narrower (ngf 24) and D one 3 x 3 convolution deeper (``dcgan-deep-d``), the R1 penalty on D
#: (weight 0.5, lazily every 4 steps), batch 32, Adam 2e-3, and an average.
RECIPES: dict[str, TrainConfig] = {
    "classic": TrainConfig(),
    "fast": TrainConfig(model="mlp-bn", lr_G=1e-3, lr_D=1e-3, ema=0.998),
    "dcgan": TrainConfig(
        model="dcgan-deep-d", dropout=0.0, batch_size=32, lr_G=2e-3, lr_D=2e-3, ema=0.999, r1=0.5
    ),
    # for a GPU with CUDA graphs, where a step costs about the same from batch 32 to 128
    # (chapter 4, section 8): larger batches, and a longer average for ~10x more steps; the
    # pair is the one measured there, G at ngf 32 and D without the extra convolution
    "dcgan-gpu": TrainConfig(
        model="dcgan-d-no-bn", dropout=0.0, batch_size=128, lr_G=2e-3, lr_D=2e-3, ema=0.9999, r1=0.5
    ),
}


def check_images(x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is a float tensor of images (N, 1, 28, 28) in [-1, 1],
    the shape and range of :func:`gan_tutorial.data.load_mnist` and of G's Tanh."""
    how = "load the images with gan_tutorial.data.load_mnist, which scales them as p / 127.5 - 1"
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28) or not len(x):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"training images must have shape (N, 1, 28, 28), got {shape}; {how}")
    if not x.is_floating_point():
        raise ValueError(f"training images must be floats in [-1, 1], got dtype {x.dtype}; {how}")
    lo, hi = x.aminmax()
    if not (-1 <= lo and hi <= 1):  # also false for NaN
        raise ValueError(
            f"training images must lie in [-1, 1] (the range of G's Tanh), got [{float(lo):.3g}, "
            f"{float(hi):.3g}]; {how}"
        )


def build_models(config: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(G, D)`` for ``config.model`` (a key of :data:`models.MODELS`)."""
    return models.MODELS[config.model](latent_dim=config.latent_dim, dropout=config.dropout)


class BatchSampler:
    """Random batches of a tensor, reshuffled every epoch, with a state that can be saved.

    The state is the CPU generator's state at the start of the epoch plus the position in
    it; restoring it redraws the same permutation and continues from the same batch.
    """

    def __init__(self, x: torch.Tensor, batch_size: int, seed: int) -> None:
        if not 0 < batch_size <= x.shape[0]:
            raise ValueError(f"batch_size must be between 1 and the {x.shape[0]} images, got {batch_size}")
        self.x, self.batch_size = x, batch_size
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

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_state": self.epoch_state, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["epoch_state"])
        self._new_epoch()
        self.pos = state["pos"]


class _Monitors:
    """Running sums of the monitors and the first non-finite step, in fixed device tensors.

    They are updated in place, so a CUDA graph can update them too, and read back only when
    the trainer logs (:meth:`means`) or checks for divergence (``first_bad``).
    """

    def __init__(self, device: torch.device) -> None:
        self.sums = {key: torch.zeros((), device=device) for key in MONITORS}
        self.first_bad = torch.zeros((), dtype=torch.long, device=device)  # 0: all finite so far
        self.count = 0  # iterations in the sums (counted on the host by the trainer's loop)

    def accumulate(self, stats: dict[str, torch.Tensor], step: int | torch.Tensor) -> None:
        """Add one iteration's statistics and remember ``step`` if its losses are not finite."""
        bad = ~(torch.isfinite(stats["loss_D"]) & torch.isfinite(stats["loss_G"]))
        self.first_bad.copy_(torch.where(bad & (self.first_bad == 0), step, self.first_bad))
        for key in MONITORS:
            self.sums[key].add_(stats[key])

    def means(self) -> dict[str, torch.Tensor]:
        return {key: self.sums[key] / self.count for key in MONITORS}

    def reset(self) -> None:
        for value in (*self.sums.values(), self.first_bad):
            value.zero_()
        self.count = 0


class _IterationGraphs:
    """A trainer's iteration captured as CUDA graphs, one per R1 weight, and replayed.

    Each kind of iteration (with and without lazy R1) first runs eagerly ``WARM_UP`` times on
    a side stream, so that the optimisers' state, library handles and workspaces come into
    being outside any graph. Right after the last of them the same iteration is captured
    (capture records the kernels without running them), and every later step replays it. The
    graph reads fixed buffers, which every step refills before it runs: batch indices copied
    from the sampler's permutation, codes drawn from the trainer's generator, and the step
    number for the divergence guard.
    What the iteration reads as Python numbers (learning rates, the R1 weight) is fixed at
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

    def _body(self, r1: float) -> None:
        t = self.trainer
        x_real = [t.sampler.x[self.idx[i]] for i in range(t.config.k)]
        stats = t._iteration(x_real, list(self.z.unbind(0)), r1)
        t._monitors.accumulate(stats, self.step_number)

    def step(self, r1: float, step: int) -> None:
        """Run one iteration: refill the buffers, then replay (or warm up and capture)."""
        t = self.trainer
        for i in range(t.config.k):
            self.idx[i].copy_(t.sampler.indices())
            self.z[i].normal_(generator=t.z_generator)
        self.step_number.fill_(step)
        graph = self.graphs.get(r1)
        if graph is not None:
            graph.replay()
        else:
            main = torch.cuda.current_stream(t.device)
            self.stream.wait_stream(main)
            with torch.cuda.stream(self.stream):
                self._body(r1)
            main.wait_stream(self.stream)
            self.eager_runs[r1] = self.eager_runs.get(r1, 0) + 1
            if self.eager_runs[r1] >= self.WARM_UP:  # capture now; replay from the next step on
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=self.stream):
                    self._body(r1)
                self.graphs[r1] = graph


class Trainer:
    """Trains ``G`` and ``D`` of ``config`` on images ``x_train`` (N, 1, 28, 28) in [-1, 1].

    ``out_dir`` (optional) receives ``checkpoint.pt``. After :meth:`run`, ``history``
    holds the monitors, each averaged over the ``log_every`` steps before it was logged.
    ``compile=True`` compiles G and D with ``torch.compile`` (the first steps then take
    longer: time them apart with :func:`gan_tutorial.accel.warm_up`). ``cuda_graphs=False``
    keeps the iterations eager on a GPU that would replay them as CUDA graphs.
    """

    def __init__(
        self,
        config: TrainConfig,
        x_train: torch.Tensor,
        device: str | torch.device = "cpu",
        out_dir: str | Path | None = None,
        compile: bool = False,
        cuda_graphs: bool = True,
    ) -> None:
        check_images(x_train)
        self.config, self.device = config, torch.device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        torch.manual_seed(config.seed)  # initial weights and dropout
        # fast path (accel.choose): fp32 on the CPU; bf16 or fp16 + GradScaler, channels-last on a GPU
        self.fast = accel.choose(self.device, compile=compile, cuda_graphs=cuda_graphs)
        self.G, self.D = (self.fast.place(m) for m in build_models(config))
        if config.r1 and has_batch_norm(self.D):
            raise ValueError(
                f"r1={config.r1} needs a D without batch norm, and model {config.model!r} has one: "
                "use model 'dcgan-d-no-bn' (or r1=0)"
            )
        # the average of G's weights that generate() samples from, if the config keeps one
        self.ema = EMA(self.G, config.ema) if config.ema > 0 else None
        self._ema_sampler: tuple[int, torch.nn.Module] | None = None  # (step, recalibrated copy)
        self.G, self.D = self.fast.compiled(self.G), self.fast.compiled(self.D)  # if compile=True
        self.scaler_G, self.scaler_D = self.fast.scaler(), self.fast.scaler()  # None unless fp16
        # one D pass over real and fake rows together, unless batch norm would mix their statistics
        self.joint_d_pass = not has_batch_norm(self.D)
        betas = (config.beta1, config.beta2)
        # the fast path's Adam: fused on the CPU and CUDA (one pass over all the weights)
        self.opt_G = self.fast.adam_optimizer(self.G.parameters(), config.lr_G, betas)
        self.opt_D = self.fast.adam_optimizer(self.D.parameters(), config.lr_D, betas)
        self.loss = get_loss(config.loss)
        self.sampler = BatchSampler(x_train.to(self.device), config.batch_size, config.seed)
        self.z_generator = torch.Generator(self.device).manual_seed(config.seed + 1)
        # 64 codes fixed for the whole run: the grid a reader watches improve
        self.fixed_z = torch.randn(64, config.latent_dim, generator=torch.Generator().manual_seed(1234))
        self.step = 0
        self.history = History()
        self.last_checkpoint: Path | None = None
        self._monitors = _Monitors(self.device)
        self._graphs = _IterationGraphs(self) if self.fast.cuda_graph else None

    def sample_z(self, n: int | None = None) -> torch.Tensor:
        """(n, latent_dim) standard normal codes from the trainer's own generator."""
        n = n or self.config.batch_size
        return torch.randn(n, self.config.latent_dim, generator=self.z_generator, device=self.device)

    @torch.no_grad()
    def generate(
        self, n: int | None = None, z: torch.Tensor | None = None, seed: int = 0, average: bool = True
    ) -> torch.Tensor:
        """G(z) in eval mode, (n, 1, 28, 28).

        ``z`` defaults to the 64 fixed codes, or with ``n`` to n codes drawn with ``seed``
        from a generator of their own (evaluating never disturbs the training RNGs). With
        ``average`` (the default) the samples come from the moving average of G's weights
        when the config keeps one (``ema`` > 0), with its batch norms' statistics measured
        again under the averaged weights (:func:`latent.recalibrate_batch_norm`, once per
        step); ``average=False`` uses the live G.
        """
        if z is None:
            gen = torch.Generator().manual_seed(seed)
            z = self.fixed_z if n is None else torch.randn(n, self.config.latent_dim, generator=gen)
        G = self.average_generator() if average and self.ema is not None else self.G
        was_training = G.training
        G.eval()
        try:
            return torch.cat([G(c.to(self.device)) for c in z.split(1000)])
        finally:
            G.train(was_training)

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

    def run(
        self,
        steps: int | None = None,
        seconds: float | None = None,
        callback: Callable[[Trainer], None] | None = None,
        progress: bool = True,
        save: bool = True,
    ) -> History:
        """Train for ``steps`` more iterations or ``seconds`` of wall time, whichever ends first.

        ``callback(trainer)`` runs after every logged step. With an ``out_dir`` (and unless
        ``save=False``) a checkpoint is written every ``checkpoint_every`` steps and when the
        budget ends.
        Raises :class:`DivergenceError` naming the step and the last good checkpoint if a loss
        turns NaN or infinite; the diverged weights are never written over that checkpoint.
        """
        if steps is None and seconds is None:
            raise ValueError("give a budget: steps, seconds, or both")
        if (steps is not None and steps < 1) or (seconds is not None and seconds <= 0):
            raise ValueError(f"budgets must be positive, got steps={steps}, seconds={seconds}")
        cfg = self.config
        end = self.step + steps if steps is not None else None
        deadline = time.perf_counter() + seconds if seconds is not None else None
        monitors = self._monitors
        monitors.reset()  # a resumed or continued run starts a fresh logging window
        bar = tqdm(total=steps, initial=0, disable=not progress, desc="train", unit="step")
        self.G.train()
        self.D.train()
        try:
            while (end is None or self.step < end) and (deadline is None or time.perf_counter() < deadline):
                self.step += 1
                r1 = self._r1_weight()
                if self._graphs is not None:  # replay the captured iteration (eager until captured)
                    self._graphs.step(r1, self.step)
                else:
                    x_real = [self.sampler() for _ in range(cfg.k)]
                    stats = self._iteration(x_real, [self.sample_z() for _ in range(cfg.k)], r1)
                    monitors.accumulate(stats, self.step)
                monitors.count += 1
                last = (end is not None and self.step == end) or (
                    deadline is not None and time.perf_counter() >= deadline
                )
                if self.step % cfg.log_every == 0 or last:
                    self._check(monitors.first_bad)
                    self.history.append(self.step, monitors.means())
                    monitors.reset()
                    bar.set_postfix({k: f"{self.history[k][-1]:.3g}" for k in MONITORS[:5]}, refresh=False)
                    if callback is not None:
                        callback(self)
                periodic = cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
                if save and self.out_dir and periodic and not last:  # the last step's is written below
                    self._check(monitors.first_bad)
                    self.save()
                bar.update(1)
            self._check(monitors.first_bad)
            if monitors.count:  # budget ended between logs: record what is left
                self.history.append(self.step, monitors.means())
                monitors.reset()
            if save and self.out_dir is not None:
                self.save()
        finally:
            bar.close()
        return self.history

    def _iteration(
        self, x_real: list[torch.Tensor], z: list[torch.Tensor], r1: float
    ) -> dict[str, torch.Tensor]:
        """One iteration on given batches: ``k`` D steps (``x_real[i]``, ``z[i]``), one G step,
        the moving average; returns the last steps' statistics (tensors, nothing read back)."""
        k = self.config.k
        for i in range(k):
            x_fake = None
            if i == k - 1:  # the last D step's fakes, graph kept, serve the G step too
                with self.fast.autocast():
                    x_fake = self.G(z[i])
            stats = d_step(
                self.G, self.D, self.opt_D, x_real[i], z[i], self.loss, self.fast, self.scaler_D, x_fake,
                joint=self.joint_d_pass, r1=r1,
            )  # fmt: skip
        stats.update(g_step(self.G, self.D, self.opt_G, None, self.loss, self.fast, self.scaler_G, x_fake))
        if self.ema is not None:
            self.ema.update(self.G)
        return stats

    def _r1_weight(self) -> float:
        """R1's weight for this step's D update: ``r1 * r1_every`` on every ``r1_every``-th step,
        0 on the others ("lazy regularisation", Karras et al. 2020): the same pull on average,
        for a fraction of the cost of the second-order gradient."""
        cfg = self.config
        return cfg.r1 * cfg.r1_every if cfg.r1 and self.step % cfg.r1_every == 0 else 0.0

    def _check(self, first_bad: torch.Tensor) -> None:
        bad_step = int(first_bad)  # the one host read-back the guard needs
        if bad_step:
            saved = (
                f"the last good checkpoint is {self.last_checkpoint}"
                if self.last_checkpoint
                else "no checkpoint was written in this run"
            )
            raise DivergenceError(
                f"a loss became NaN or infinite at step {bad_step}: training diverged and was "
                f"stopped; {saved} (left untouched). Lower the learning rates, check the data "
                "range ([-1, 1]) and that losses use logits."
            )

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: models, optimisers, step, history, RNGs."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "z": self.z_generator.get_state()}
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
        torch.set_rng_state(state["rng"]["torch"].cpu())
        z_state = state["rng"]["z"].cpu()
        if z_state.numel() == self.z_generator.get_state().numel():
            self.z_generator.set_state(z_state)
        else:  # written on another kind of device, whose generator differs: new codes from here on
            self.z_generator.manual_seed(self.config.seed + 1 + int(state["step"]))
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.step = state["step"]
        self.history = History(list(state["history"]["step"]), dict(state["history"]["values"]))
        if self._graphs is not None:  # the optimisers hold new state tensors: capture again
            self._graphs = _IterationGraphs(self)

    def _scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {
            n: sc for n, sc in (("scaler_G", self.scaler_G), ("scaler_D", self.scaler_D)) if sc is not None
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint atomically (default ``out_dir/checkpoint.pt``); return its path."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("no path given and the trainer has no out_dir")
            path = self.out_dir / "checkpoint.pt"
        self.last_checkpoint = save_checkpoint(self.state_dict(), path)
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
    ) -> Trainer:
        """A trainer restored from the checkpoint at ``path``, ready to :meth:`run` on."""
        state = load_checkpoint(path)
        config = config_of(state, path)
        out_dir = out_dir if out_dir is not None else Path(path).parent
        trainer = cls(config, x_train, device, out_dir, compile=compile, cuda_graphs=cuda_graphs)
        trainer.load_state_dict(state)
        trainer.last_checkpoint = Path(path)
        return trainer


def config_of(state: dict[str, Any], path: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in a checkpoint, or a :class:`CheckpointError` that
    says why it cannot be rebuilt (an unknown model, fields from another version)."""
    if state.get("model") not in models.MODELS:
        raise CheckpointError(f"{path} holds an unknown model {state.get('model')!r}")
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
