"""One training iteration as the MNIST trainer runs it (chapters 3-7): chapter 1's updates with
the fast path and the stabilisers around them.

:func:`gan_tutorial.updates.d_step` and :func:`~gan_tutorial.updates.g_step` are the updates
chapter 1 teaches. :class:`Iteration` runs the same two updates, built once from a
:class:`~gan_tutorial.config.TrainConfig` and a :class:`~gan_tutorial.accel.FastPath`, with what
the later chapters add:

* chapter 4's fast path: autocast and a ``GradScaler`` (fp16 only), channels-last images, one
  pass of D over the real and fake rows together when D has no batch norm (the same function of
  each row, in larger products), and the last D update's fakes, made once with their graph,
  reused by the G update (as pytorch/examples does), which saves a forward pass of G;
* R1 and R2 (chapters 4 and 6; weighted by the lazy schedule the trainer passes) and WGAN-GP's
  penalty, from one ``autograd.grad`` call, with the formulas of :mod:`gan_tutorial.losses`;
* WGAN's weight clipping, one-sided label smoothing and instance noise (chapter 6);
* labels for a conditional pair (chapter 7), ``k`` D updates per G update, and the moving
  average of G (:class:`gan_tutorial.average.EMA`);
* augmentation of every image D sees, real and fake, in D's update and G's (chapter 8,
  :mod:`gan_tutorial.augment`): DiffAugment, or ADA with its probability steered by D's outputs on
  the real images;
* several processes (:mod:`gan_tutorial.distributed`): G and D run forward through their DDP
  wrappers, except D in G's update (its gradients there are not needed, so they start no
  all-reduce), and the batch norms' statistics are averaged before the moving average moves.

On the fp32 path, with one D pass per batch (``joint=False``), :meth:`Iteration.d_update` and
:meth:`Iteration.g_update` compute exactly what ``d_step`` and ``g_step`` compute (a test checks
it bit for bit for every loss and model the recipes use). :class:`CapturedIteration` replays an
iteration as a CUDA graph (bf16 GPUs, chapter 4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from .accel import FastPath
from .augment import AdaptiveP, Augment
from .average import EMA
from .config import TrainConfig
from .distributed import World
from .losses import d_loss_bce_smoothed, get_loss, input_gradients, interpolates, one_centered, zero_centered
from .models import has_batch_norm
from .updates import frozen, grad_norm, mean_output, score

Stats = dict[str, torch.Tensor]


def backward_step(
    loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> torch.Tensor:
    """backward, gradient norm, optimiser step; returns the norm (a tensor: no host sync).

    With a ``GradScaler`` (fp16 only, chapter 4) the loss is scaled up before ``backward``
    so small gradients survive fp16, and the gradients are scaled back before the norm; a
    step the scaler skips (a gradient overflowed) reports a norm of 0.
    """
    if scaler is None:
        loss.backward()
        grad = grad_norm(module)
        opt.step()
        return grad
    scaler.scale(loss).backward()  # loss * S: small gradients survive fp16
    scaler.unscale_(opt)  # gradients / S, in place, inf check recorded on the device
    grad = grad_norm(module)
    scaler.step(opt)  # skipped if a gradient was inf or NaN
    scaler.update()  # S halves after an overflow, grows after a run of clean steps
    # an overflow here is the scaler's business, not a divergence: the step was skipped, so the
    # update it made had no gradient at all (a NaN loss still trips the guard)
    return torch.nan_to_num(grad, nan=0.0, posinf=0.0)


def build_optimizers(
    G: nn.Module, D: nn.Module, config: TrainConfig, fast: FastPath
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """``(opt_G, opt_D)``: the config's optimiser for each player, at its learning rate. Adam with the
    fast path's implementation (fused where this torch has the kernel: one pass over all the
    weights), or RMSprop (WGAN with weight clipping); with CUDA graphs, step counters on the device."""

    def build(module: nn.Module, lr: float) -> torch.optim.Optimizer:
        if config.optimizer == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=lr, capturable=fast.cuda_graph)
        return fast.adam_optimizer(module.parameters(), lr, (config.beta1, config.beta2))

    return build(G, config.lr_G), build(D, config.lr_D)


class Iteration:
    """``k`` D updates, one G update and the average of G, for one run's models and optimisers.

    ``config`` gives the loss, the penalties' weights, clipping, smoothing, noise and ``k``;
    ``fast`` the precision and layout (default: plain float32 on D's device). ``ema``, if given,
    moves towards G after every iteration. ``joint`` (one D pass over real and fake rows) is on
    when D has no batch norm, whose statistics would mix them; set it to ``False`` to score the
    two batches apart. A D with batch norm is refused with any gradient penalty. ``world`` (one
    process by default) wraps G and D for several processes.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        opt_G: torch.optim.Optimizer,
        opt_D: torch.optim.Optimizer,
        config: TrainConfig,
        fast: FastPath | None = None,
        ema: EMA | None = None,
        world: World | None = None,
    ) -> None:
        self.G, self.D, self.opt_G, self.opt_D, self.config, self.ema = G, D, opt_G, opt_D, config, ema
        self.world = world if world is not None else World()
        self.G_run, self.D_run = self.world.wrap(G), self.world.wrap(D)  # forward passes that all-reduce
        self.fast = fast if fast is not None else FastPath(next(D.parameters()).device)
        self.loss = get_loss(config.loss)
        penalties = {"r1": config.r1, "r2": config.r2, "gp": config.penalty}
        used = [f"{name}={value}" for name, value in penalties.items() if value]
        if used and has_batch_norm(D):
            raise ValueError(
                f"{', '.join(used)} needs a D without batch norm (each score's gradient with respect to "
                f"its own image), and model {config.model!r} has one: use model 'dcgan-bn-g' (batch norm "
                "in G only), or no gradient penalty"
            )
        if used and self.fast.compile and not hasattr(torch.compiler, "set_stance"):
            raise ValueError(
                f"compile=True with {', '.join(used)} needs torch 2.6 or later (torch.compiler.set_stance, "
                "to run D eagerly where a penalty differentiates it twice); this is torch "
                f"{torch.__version__}: drop --compile, or train without a gradient penalty"
            )
        self.scaler_G, self.scaler_D = self.fast.scaler(), self.fast.scaler()  # None unless fp16
        self.joint = not has_batch_norm(D)
        # chapter 8: fresh random transforms on every batch D sees; ADA steers their probability
        self.ada = (
            AdaptiveP(config.ada_target, images_to_one=config.ada_images) if config.augment == "ada" else None
        )
        self.augment = None if config.augment == "none" else Augment(p=0.0 if self.ada else 1.0)
        self.augment_fake = self.augment  # None augments the real images alone: the leak chapter 8 shows

    def _augmented(self, x: torch.Tensor, fake: bool) -> torch.Tensor:
        """``x`` through the run's augmentation (fakes through ``augment_fake``), or ``x``."""
        augment = self.augment_fake if fake else self.augment
        if augment is None:
            return x
        if self.ada is not None:
            augment.p = self.ada.p
        return augment(x)

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus instance noise (Sonderby et al. 2016) of the config's standard deviation, or ``x``."""
        noise = self.config.instance_noise
        return x + noise * torch.randn_like(x) if noise else x

    def _eager(self, penalised: bool) -> contextlib.AbstractContextManager:
        """Compiled code cannot be differentiated twice (torch.compile's backward takes no
        ``create_graph``), and a gradient penalty does exactly that: with ``compile=True`` a D update
        that takes a penalty runs D eagerly; the others, and every G update, run compiled."""
        if penalised and self.fast.compile:
            return torch.compiler.set_stance("force_eager")
        return contextlib.nullcontext()

    def _scores(self, parts: list[torch.Tensor], y: torch.Tensor | None, D: nn.Module) -> list[torch.Tensor]:
        """``D``'s outputs for each batch of ``parts`` (each row with label ``y``), in one pass if joint."""
        if not self.joint:
            return [score(D, x, y) for x in parts]
        ys = None if y is None else torch.cat([y] * len(parts))
        return list(score(D, torch.cat(parts), ys).split([len(x) for x in parts]))

    def _penalties(self, wanted: list[tuple[str, float, torch.Tensor, torch.Tensor]]) -> Stats:
        """The penalties from one ``autograd.grad`` call: ``wanted`` holds (name, weight, scores,
        inputs). Each score depends on its own input row only, so the gradient of the sum of all
        scores is, row by row, each row's own gradient; the call shares D's backward pass."""
        total = sum(out.sum() for _, _, out, _ in wanted)
        grads = input_gradients(total, [x for _, _, _, x in wanted], self.scaler_D)
        return {
            name: one_centered(grad, weight) if name == "gp" else zero_centered(grad, weight, out.numel())
            for (name, weight, out, _), grad in zip(wanted, grads, strict=True)
        }

    def d_update(
        self,
        x_real: torch.Tensor,
        x_fake: torch.Tensor,
        y: torch.Tensor | None = None,
        r1: float = 0.0,
        r2: float = 0.0,
    ) -> Stats:
        """One update of D on real images and fakes (used detached); returns ``d_step``'s statistics
        and each penalty under its name. ``r1`` and ``r2`` are this update's weights (the trainer's
        lazy schedule sets them); the gradient penalty's weight is the config's."""
        cfg, fast, gp = self.config, self.fast, self.config.penalty
        x_real = self._noisy(fast.images(self._augmented(x_real, fake=False)))
        x_fake = self._noisy(fast.images(self._augmented(x_fake.detach(), fake=True)))
        if r1:
            x_real = x_real.detach().requires_grad_(True)  # D's gradient at the real images
        if r2:
            x_fake = x_fake.detach().requires_grad_(True)  # ... and at the fakes
        parts = [x_real, x_fake]
        if gp:
            parts.append(interpolates(x_real, x_fake)[0].requires_grad_(True))  # one point per pair
        self.opt_D.zero_grad(set_to_none=True)
        with fast.autocast(), self._eager(bool(r1 or r2 or gp)):
            outs = [out.float() for out in self._scores(parts, y, self.D_run)]  # losses in float32
        real_out, fake_out = outs[0], outs[1]
        if self.ada is not None:
            self.ada.observe(real_out)
        if cfg.label_smoothing:
            loss_D = d_loss_bce_smoothed(real_out, fake_out, cfg.label_smoothing)
        else:
            loss_D = self.loss.d(real_out, fake_out)
        wanted = [
            (n, w, out, x)
            for n, w, out, x in (("r1", r1, real_out, x_real), ("r2", r2, fake_out, x_fake))
            if w
        ]
        if gp:
            wanted.append(("gp", gp, outs[2], parts[2]))
        penalties = self._penalties(wanted) if wanted else {}
        for penalty in penalties.values():
            loss_D = loss_D + penalty
        grad = backward_step(loss_D, self.D, self.opt_D, self.scaler_D)
        if cfg.clip:  # WGAN: every weight of the critic back into [-clip, clip]
            with torch.no_grad():
                for p in self.D.parameters():
                    p.clamp_(-cfg.clip, cfg.clip)
        d_real, d_fake = mean_output(real_out, self.loss), mean_output(fake_out, self.loss)
        stats = {"loss_D": loss_D.detach(), "d_real": d_real, "d_fake": d_fake, "grad_D": grad}
        if self.augment is not None:  # the overfitting signal r_t = E[sign D(x_real)], and ADA's p
            stats["r_t"] = torch.sign(real_out.detach()).mean()
            stats.update({"p": torch.tensor(self.ada.p)} if self.ada is not None else {})
        return {**stats, **{name: penalty.detach() for name, penalty in penalties.items()}}

    def g_update(self, x_fake: torch.Tensor, x_real: torch.Tensor, y: torch.Tensor | None = None) -> Stats:
        """One update of G through a fixed D, on fakes made with their graph back to G; returns
        ``g_step``'s statistics. ``x_real`` is used by a relativistic loss only (paired with fakes)."""
        if not x_fake.requires_grad:
            raise ValueError("x_fake carries no graph back to G (was it made under no_grad or detached?)")
        fast, loss = self.fast, self.loss
        self.opt_G.zero_grad(set_to_none=True)
        with frozen(self.D):  # gradients flow through D to G, but D's own are not needed
            with fast.autocast():
                fake_in = self._noisy(fast.images(self._augmented(x_fake, fake=True)))
                if loss.relativistic:
                    real = self._noisy(fast.images(self._augmented(x_real, fake=False)).detach())
                    real_out, fake_out = self._scores([real, fake_in], y, self.D)
                    real_out = real_out.float()
                else:
                    real_out, fake_out = None, score(self.D, fake_in, y)
            fake_out = fake_out.float()
            loss_G = loss.generator_loss(fake_out, real_out)
            grad = backward_step(loss_G, self.G, self.opt_G, self.scaler_G)
        return {"loss_G": loss_G.detach(), "d_fake_g": mean_output(fake_out, loss), "grad_G": grad}

    def __call__(
        self,
        x_real: list[torch.Tensor],
        z: list[torch.Tensor],
        y: list[torch.Tensor] | None = None,
        lazy: float = 1.0,
        step: int | None = None,
    ) -> Stats:
        """One iteration: ``k`` D updates on ``x_real[i]`` and G(``z[i]``) (labels ``y[i]``), one G update,
        the average; returns the last updates' statistics (tensors, nothing read back). ``lazy``
        multiplies R1's and R2's weights; ``step`` numbers the average's update (its warm-up)."""
        cfg = self.config
        y = y if y is not None else [None] * cfg.k
        for i in range(cfg.k):
            last = i == cfg.k - 1  # the last D update's fakes keep their graph: the G update reuses them
            with torch.set_grad_enabled(last), self.fast.autocast():
                x_fake = self.G_run(z[i]) if y[i] is None else self.G_run(z[i], y[i])
            stats = self.d_update(x_real[i], x_fake, y[i], r1=cfg.r1 * lazy, r2=cfg.r2 * lazy)
        stats.update(self.g_update(x_fake, x_real[-1], y[-1]))
        self.world.sync_buffers(self.G, self.D)  # every process's batch-norm statistics alike
        if self.ada is not None:  # every 4 iterations, r_t over all processes' real images moves p
            self.ada.update(lambda sums: self.world.mean(sums) * self.world.size)
        if self.ema is not None:
            self.ema.update(self.G, step)
        return stats


class CapturedIteration:
    """An :class:`Iteration` captured as CUDA graphs, one per kind of step, and replayed.

    Each kind of iteration (with and without lazy R1 and R2) first runs eagerly ``WARM_UP`` times
    on a side stream, so that the optimisers' state, library handles and workspaces come into
    being outside any graph. Right after the last of them the same iteration is captured (capture
    records the kernels without running them), and every later step replays it. The graph reads
    fixed buffers, which every step refills before it runs: batch indices copied from the
    sampler's permutation, codes drawn from ``z_generator``, and the step number that ``record``
    (the trainer's window and divergence guard) receives. What the iteration reads as Python
    numbers (learning rates, penalties' weights) is fixed at capture: a changed learning rate
    needs a new trainer (or a resume from a checkpoint).
    """

    WARM_UP = 2  # eager runs of each kind of iteration before its capture

    def __init__(
        self,
        iteration: Iteration,
        sampler,  # data.BatchSampler: .x, .y and .indices()
        z_generator: torch.Generator,
        record: Callable[[Stats, torch.Tensor], None],
    ) -> None:
        cfg, device = iteration.config, iteration.fast.device
        self.iteration, self.sampler, self.z_generator, self.record = iteration, sampler, z_generator, record
        self.idx = torch.zeros(cfg.k, cfg.batch_size, dtype=torch.long, device=device)
        self.z = torch.zeros(cfg.k, cfg.batch_size, cfg.latent_dim, device=device)
        self.step_number = torch.zeros((), dtype=torch.long, device=device)
        self.stream = torch.cuda.Stream(device)
        self.graphs: dict[float, torch.cuda.CUDAGraph] = {}
        self.eager_runs: dict[float, int] = {}

    def _body(self, lazy: float, step: int) -> None:
        k, s = self.iteration.config.k, self.sampler
        x_real = [s.x[self.idx[i]] for i in range(k)]
        y = None if s.y is None else [s.y[self.idx[i]] for i in range(k)]
        stats = self.iteration(x_real, list(self.z.unbind(0)), y, lazy, step)
        self.record(stats, self.step_number)

    def step(self, lazy: float, step: int) -> None:
        """Run one iteration: refill the buffers, then replay (or warm up and capture)."""
        for i in range(self.iteration.config.k):
            self.idx[i].copy_(self.sampler.indices())
            self.z[i].normal_(generator=self.z_generator)
        self.step_number.fill_(step)
        graph = self.graphs.get(lazy)
        if graph is not None:
            graph.replay()
            return
        main = torch.cuda.current_stream(self.iteration.fast.device)
        self.stream.wait_stream(main)
        with torch.cuda.stream(self.stream):
            self._body(lazy, step)
        main.wait_stream(self.stream)
        self.eager_runs[lazy] = self.eager_runs.get(lazy, 0) + 1
        if self.eager_runs[lazy] >= self.WARM_UP:  # capture now; replay from the next step on
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self._body(lazy, step)
            self.graphs[lazy] = graph
