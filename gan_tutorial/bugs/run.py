"""A bug of the gallery and what its brief run leaves: :class:`Bug`, :class:`BugRun`, and the
healthy run :func:`correct` (chapter 6).

Every run is on the CPU, on one thread (the networks are so small that more threads only
contend), seeded by its ``seed`` and with PyTorch's global random stream put back as it was
afterwards (:func:`runtime.isolated`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import runtime
from ..doctor import Finding, Penalty, diagnose
from ..updates import History
from .setup import Setup, image_setup, mnist_pixels, optimisers, ring_setup
from .step import gan_step, loop


@dataclass(frozen=True)
class BugRun:
    """What a brief run with a bug (or without, :func:`correct`) leaves for the chapter and the doctor.

    ``history`` holds one entry per step (empty when the bug crashes at the first step).
    ``G`` and ``D`` are the players as the loop left them (their modes included), ``data`` a batch
    of the real data as the training step saw it, ``z`` a batch of codes as the step drew them,
    ``loss`` the name of the losses the step meant to compute (``"nonsaturating"`` or
    ``"wgan-gp"``), ``gradient_penalty`` the penalty function of a WGAN-GP run (``None`` otherwise),
    ``error`` the exception that stopped the run (``None`` if it trained), and ``details`` what a
    bug shows besides its monitors (documented with each bug).
    """

    name: str
    history: History
    G: nn.Module
    D: nn.Module
    data: torch.Tensor
    z: torch.Tensor
    loss: str = "nonsaturating"
    gradient_penalty: Penalty | None = None
    error: BaseException | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def diagnose(self) -> list[Finding]:
        """:func:`doctor.diagnose` of this run, given everything the run knows about itself."""
        return diagnose(
            self.history,
            loss=self.loss,
            G=self.G,
            D=self.D,
            data=self.data,
            gradient_penalty=self.gradient_penalty,
            z=self.z,
            error=self.error,
        )


@dataclass(frozen=True)
class Bug:
    """One bug of the gallery: the wrong line, the right one, and a brief run that shows it.

    ``what`` is the buggy line and why it is wrong, ``fix`` the correct line, ``train(steps, seed)``
    the run with the bug, ``code`` the functions that hold the wrong line (the run itself when
    empty), ``steps`` the length of the run :meth:`run` makes by default, and ``images`` whether it
    needs MNIST on disk (:func:`data.ensure_mnist` finds or downloads it).
    """

    name: str
    title: str
    what: str
    fix: str
    train: Callable[[int, int], BugRun] = field(repr=False)
    code: tuple[Callable[..., Any], ...] = field(default=(), repr=False)
    steps: int = 300
    images: bool = False

    @property
    def source(self) -> str:
        """The source of the code with the bug, to read: its wrong line is marked ``# BUG:``, and
        the right one is given beside it, ``# FIX:``."""
        return "\n\n".join(inspect.getsource(f) for f in self.code or (self.train,))

    @property
    def diff(self) -> str:
        """The wrong lines beside their fix, read from :attr:`source`, as a diff: each ``# BUG:``
        comment, then the lines under it marked ``-`` and its ``# FIX:`` marked ``+``."""
        out: list[str] = []
        block: list[str] | None = None
        for line in self.source.splitlines():
            text = line.strip()
            if text.startswith("# BUG:"):
                block = []
                out.append("  # " + text.removeprefix("# BUG:").strip())
            elif block is not None and text.startswith("# FIX:"):
                out.extend("- " + wrong for wrong in block or ["(no line: the call is missing)"])
                out.append("+ " + text.removeprefix("# FIX:").strip())
                block = None
            elif block is not None and text:
                block.append(text)
        return "\n".join(out)

    def run(self, steps: int | None = None, seed: int = 0) -> BugRun:
        """Train with the bug for ``steps`` steps (default :attr:`steps`) from seed ``seed``."""
        steps = self.steps if steps is None else steps
        check_run_args(steps, seed)
        with runtime.isolated(seed=seed, threads=1):
            return self.train(steps, seed)


def check_run_args(steps: object, seed: object) -> None:
    """``ValueError`` unless ``steps`` is a positive int and ``seed`` a non-negative one."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int (training steps of the brief run), got {steps!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def run_with(
    name: str,
    setup: Setup,
    steps: int,
    opts: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None,
    **pieces: Any,
) -> BugRun:
    """Train ``setup``'s players for ``steps`` steps of :func:`~.step.gan_step` with its ``pieces``
    (``d_loss``, ``g_loss``, ``update_D``, ``k``, ``out``) as given, and ``opts = (opt_G, opt_D)``
    (default :func:`~.setup.optimisers`); the record holds a batch and codes drawn after the run."""
    opt_G, opt_D = optimisers(setup.G, setup.D) if opts is None else opts
    history = loop(lambda: gan_step(setup, opt_G, opt_D, **pieces), steps)
    return BugRun(name, history, setup.G, setup.D, setup.real(), setup.codes())


def correct(steps: int = 300, seed: int = 0, images: bool = False) -> BugRun:
    """The healthy baseline: the bugs' set-up and step with no bug, for their monitors' comparison.

    ``images=False`` is the 2-D ring with toy MLPs (the set-up of every bug but two);
    ``images=True`` is the MNIST set-up, images in [-1, 1] (``pixels / 127.5 - 1``, as
    :func:`data.load_mnist` scales them): the healthy twin of ``data_range``.
    """
    check_run_args(steps, seed)
    with runtime.isolated(seed=seed, threads=1):
        setup = image_setup(seed, mnist_pixels().float() / 127.5 - 1) if images else ring_setup(seed)
        return run_with("correct", setup, steps)
