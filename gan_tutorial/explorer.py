"""An interactive GAN explorer for the 2-D mixtures (chapter 2), a small GAN Lab inside Jupyter.

Choose the dataset, the loss, the two learning rates and the number of D steps per G step;
press play and watch the generator's samples and the discriminator's decision surface move,
with the mode metrics of :mod:`gan_tutorial.metrics.modes` updating live.

The logic is plain code that runs and is tested without a display: :class:`ExplorerConfig`
(the settings: chapter 2's :class:`~gan_tutorial.config.ToyConfig` with a dataset and a seed),
:class:`Explorer` (the nets, the optimisers and ``train(steps)``, built on
:func:`gan_tutorial.updates.d_step` and :func:`~gan_tutorial.updates.g_step`),
:func:`decision_surface` and :func:`draw`. Only :func:`explorer_widget` touches ipywidgets:
it wires controls to an :class:`Explorer` and redraws into an ``ipywidgets.Output``. It
starts nothing by itself: a ``Play`` widget ticks in the browser, and each tick trains
``steps_per_frame`` iterations (a few milliseconds each on a laptop CPU) and redraws once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from . import data, runtime
from .config import ToyConfig
from .losses import get_loss
from .metrics.modes import N_SAMPLES, ModeReport, mode_report
from .models import toy_mlp
from .updates import DivergenceError
from .updates import train as train_gan

if TYPE_CHECKING:  # pragma: no cover
    import matplotlib.axes

#: The 2-D datasets the explorer offers, by name: the mixture and the square it is drawn in.
DATASETS = {"ring": (data.ring8, 1.5), "grid": (data.grid25, 5.5)}


@dataclass(frozen=True)
class ExplorerConfig(ToyConfig):
    """Settings of one explorer run: a :class:`~gan_tutorial.config.ToyConfig` on one of the
    :data:`DATASETS`, from one ``seed``; every field can be changed by keyword, and the dataset,
    the loss, ``lr_G``, ``lr_D`` and ``k`` from the widget.

    The explorer uses the networks (``hidden``, ``depth``, ``latent_dim``), Adam's ``lr_G``,
    ``lr_D``, ``beta1`` and ``beta2``, ``batch_size``, the loss, ``k`` and ``r1``. It does not use
    ``steps``, ``decay_to``, ``label_smoothing`` or ``instance_noise``: it trains for as long as the
    learner presses play, at the rates the sliders set, without those stabilisers. The defaults
    (the toy config's: batch 256, both rates 1e-3, beta1 = 0.5) train the ring in a few hundred
    steps on a laptop CPU.
    """

    dataset: str = "ring"  # "ring" (8 Gaussians) or "grid" (25)
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()  # the toy config's checks: the loss, k >= 1, positive rates, ...
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")


def decision_surface(
    D: torch.nn.Module, loss: str, extent: float, resolution: int = 60
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D's output on a ``resolution`` x ``resolution`` grid over [-extent, extent]^2.

    Returns ``(xx, yy, value)``, each (resolution, resolution): ``value`` is D(x) =
    sigmoid(logit), the probability of "real", for the cross-entropy losses, and the raw
    score for LSGAN (whose D regresses real to b = 1 and fake to a = -1).
    """
    ticks = torch.linspace(-extent, extent, resolution)
    yy, xx = torch.meshgrid(ticks, ticks, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)  # (resolution^2, 2)
    device = next(D.parameters()).device
    with torch.no_grad():
        out = D(points.to(device)).squeeze(1).cpu()
    value = torch.sigmoid(out) if get_loss(loss).logits else out
    return xx, yy, value.view(resolution, resolution)


class Explorer:
    """A generator, a discriminator and their optimisers for one :class:`ExplorerConfig`.

    ``train(steps)`` runs ``steps`` iterations of k D updates and one G update and returns
    the last statistics as floats; ``report()`` scores ``N_SAMPLES`` samples from a fixed set
    of latent codes (so frames differ only because G moved). Same config and seed, same run.
    """

    def __init__(self, config: ExplorerConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.config = config or ExplorerConfig()
        self.device = torch.device(device)
        self.reset()

    def reset(self, **changes: Any) -> None:
        """Start again from fresh nets, with ``changes`` applied to the config (a new run)."""
        c = self.config = replace(self.config, **changes)
        make_mixture, self.extent = DATASETS[c.dataset]
        self.mixture = make_mixture()
        with runtime.isolated(seed=c.seed):  # weights from the seed; the global generator untouched
            self.G = toy_mlp(c.latent_dim, 2, c.hidden, c.depth).to(self.device)  # (B, latent_dim) -> (B, 2)
            self.D = toy_mlp(2, 1, c.hidden, c.depth).to(self.device)  # (B, 2) -> (B, 1) logits or scores
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=c.lr_G, betas=(c.beta1, c.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=c.lr_D, betas=(c.beta1, c.beta2))
        self.generator = torch.Generator().manual_seed(c.seed)
        self.z_eval = torch.randn(
            N_SAMPLES, c.latent_dim, generator=torch.Generator().manual_seed(c.seed + 1)
        )
        self.step = 0
        self.stats: dict[str, float] = {}

    def set_rates(self, lr_G: float | None = None, lr_D: float | None = None, k: int | None = None) -> None:
        """Change learning rates or k mid-run, keeping the nets (what the sliders do)."""
        changes = {key: v for key, v in (("lr_G", lr_G), ("lr_D", lr_D), ("k", k)) if v is not None}
        self.config = replace(self.config, **changes)
        for opt, lr in ((self.opt_G, self.config.lr_G), (self.opt_D, self.config.lr_D)):
            for group in opt.param_groups:
                group["lr"] = lr

    def _real(self) -> torch.Tensor:
        return self.mixture.sample(self.config.batch_size, self.generator).to(self.device)  # (B, 2)

    def _z(self) -> torch.Tensor:
        z = torch.randn(self.config.batch_size, self.config.latent_dim, generator=self.generator)
        return z.to(self.device)  # (B, latent_dim)

    def train(self, steps: int) -> dict[str, float]:
        """``steps`` iterations of Algorithm 1 (k D updates, then one G update), with the config's R1
        penalty on D when ``r1`` > 0."""
        if steps < 0:
            raise ValueError(f"steps must be non-negative, got {steps}")
        if steps:
            history = train_gan(
                self.G,
                self.D,
                self.opt_G,
                self.opt_D,
                self._real,
                self._z,
                steps,
                loss=self.config.loss,
                k=self.config.k,
                log_every=steps,
                r1=self.config.r1,
            )  # one read-back, after the last step (the divergence check included)
            self.step += steps
            self.stats = {key: values[-1] for key, values in history.values.items()}
        return self.stats

    def samples(self) -> torch.Tensor:
        """G applied to the fixed evaluation codes: (N_SAMPLES, 2) on the CPU."""
        with torch.no_grad():
            return self.G(self.z_eval.to(self.device)).cpu()

    def report(self) -> ModeReport:
        """Modes captured, high-quality share and KL from uniform of :meth:`samples`."""
        return mode_report(self.samples(), self.mixture)


def describe_frame(explorer: Explorer, report: ModeReport) -> str:
    """One line under the plot: step, mode metrics and D's mean outputs."""
    line = f"step {explorer.step}: {report}"
    if explorer.stats:
        name = "D(x)" if get_loss(explorer.config.loss).logits else "score(x)"
        line += f"; mean {name} real {explorer.stats['d_real']:.2f}, fake {explorer.stats['d_fake']:.2f}"
    return line


def surface_levels(value: torch.Tensor, logits: bool) -> tuple[list[float], str]:
    """Contour levels and a colour-bar label that put D's verdict "cannot tell" in the middle of
    the colour map: D(x) = 1/2 for the cross-entropy losses (levels 0 .. 1), and for LSGAN's raw
    scores the midpoint 0 between its targets a = -1 (fake) and b = 1 (real), symmetric around it."""
    if logits:
        return torch.linspace(0, 1, 11).tolist(), "D(x): 1 real, 0 fake"
    top = max(1.0, float(value.abs().max()))
    return torch.linspace(-top, top, 21).tolist(), "score: +1 real (b), -1 fake (a)"


def draw(
    explorer: Explorer,
    ax: matplotlib.axes.Axes,
    report: ModeReport | None = None,
    resolution: int = 60,
    colorbar: bool = True,
) -> ModeReport:
    """Draw D's decision surface (red: real, blue: fake, white: cannot tell; with a colour bar), the
    mixture's means and G's samples on ``ax``; return the report."""
    report = report or explorer.report()
    xx, yy, value = decision_surface(explorer.D, explorer.config.loss, explorer.extent, resolution)
    logits = get_loss(explorer.config.loss).logits
    levels, label = surface_levels(value, logits)
    shown = value.clamp(levels[0], levels[-1])
    cs = ax.contourf(xx, yy, shown, levels=levels, cmap="RdBu_r", alpha=0.6)
    x_fake = explorer.samples()
    means = explorer.mixture.means
    ax.scatter(x_fake[:, 0], x_fake[:, 1], s=2, c="k", alpha=0.4, label="G(z)")
    ax.scatter(means[:, 0], means[:, 1], s=40, marker="x", c="tab:green", label="modes")
    ax.set_xlim(-explorer.extent, explorer.extent)
    ax.set_ylim(-explorer.extent, explorer.extent)
    ax.set_aspect("equal")
    ax.set_title(describe_frame(explorer, report).replace("; mean", "\nmean"), fontsize=9)  # two lines fit
    ax.legend(loc="upper right", fontsize=8)
    if colorbar:
        ax.figure.colorbar(
            cs, ax=ax, label=label, fraction=0.046, pad=0.04, ticks=levels[:: len(levels) // 4]
        )
    return report


def _set_playing(play: Any, playing: bool) -> None:
    """Start or stop a ``Play`` widget: ``playing`` since ipywidgets 8, ``_playing`` in 7.x (Colab's)."""
    play.set_trait("playing" if play.has_trait("playing") else "_playing", playing)


def explorer_widget(
    config: ExplorerConfig | None = None,
    steps_per_frame: int = 25,
    interval_ms: int = 300,
    device: str | torch.device = "cpu",
):
    """The explorer's controls and plot, assembled; returns an ``ipywidgets.VBox`` to display.

    Nothing trains until the learner presses play (or "step"): each tick of the ``Play``
    widget trains ``steps_per_frame`` iterations on ``device`` and redraws once. A run that
    diverges stops, and says so in the widget's own output. Works with ipywidgets 7.7.1 (the
    version Colab ships) and 8.x.
    """
    import ipywidgets as w  # here, not at import: only the widget needs them, and they are slow to load
    import matplotlib.pyplot as plt
    from IPython.display import display

    explorer = Explorer(config, device=device)
    c = explorer.config
    dataset = w.Dropdown(options=list(DATASETS), value=c.dataset, description="data")
    loss = w.Dropdown(options=["minimax", "nonsaturating", "lsgan"], value=c.loss, description="loss")
    lr_G = w.FloatLogSlider(value=c.lr_G, base=10, min=-5, max=-1, description="lr G", readout_format=".0e")
    lr_D = w.FloatLogSlider(value=c.lr_D, base=10, min=-5, max=-1, description="lr D", readout_format=".0e")
    k = w.IntSlider(value=c.k, min=1, max=10, description="D steps")
    play = w.Play(value=0, min=0, max=10**9, step=1, interval=interval_ms, description="train")
    step_button = w.Button(description=f"step x{steps_per_frame}")
    reset_button = w.Button(description="reset")
    status = w.HTML()  # the step, the settings in force and the metrics, as text the page can read
    out = w.Output()

    def show_status(report: ModeReport | None = None) -> None:
        cfg = explorer.config
        status.value = (
            f"<b>step {explorer.step}</b> &middot; lr G {cfg.lr_G:.0e}, lr D {cfg.lr_D:.0e}, "
            f"D steps {cfg.k} &middot; {report or explorer.report()}"
        )

    def redraw(message: str | None = None) -> None:
        fig, ax = plt.subplots(figsize=(6.2, 5.2))
        show_status(draw(explorer, ax))
        with out:
            out.clear_output(wait=True)
            display(fig)
        if message:
            out.append_stdout(message + "\n")  # shown under the plot, in the widget itself
        plt.close(fig)

    def on_frame(_: Any = None) -> None:
        try:
            explorer.train(steps_per_frame)
        except DivergenceError as err:
            _set_playing(play, False)
            redraw(f"stopped: {err} Press reset to start again.")
            return
        redraw()

    def on_reset(_: Any = None) -> None:
        _set_playing(play, False)
        play.value = 0
        explorer.reset(dataset=dataset.value, loss=loss.value, lr_G=lr_G.value, lr_D=lr_D.value, k=k.value)
        redraw()

    def on_rates(_: Any = None) -> None:
        explorer.set_rates(lr_G=lr_G.value, lr_D=lr_D.value, k=k.value)
        show_status()  # the settings in force, at once; the next frame trains with them

    play.observe(lambda change: on_frame() if change["new"] > 0 else None, names="value")
    step_button.on_click(on_frame)
    reset_button.on_click(on_reset)
    for control in (dataset, loss):
        control.observe(on_reset, names="value")
    for control in (lr_G, lr_D, k):
        control.observe(on_rates, names="value")
    redraw()
    box = w.VBox(
        [
            w.HBox([dataset, loss, k]),
            w.HBox([lr_G, lr_D]),
            w.HBox([play, step_button, reset_button]),
            status,
            out,
        ]
    )
    box.explorer = explorer  # the logic behind the widget, for inspection
    return box
