"""The interactive explorer's logic (gan_tutorial.explorer), run without a display."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from gan_tutorial import updates
from gan_tutorial.explorer import (
    DATASETS,
    Explorer,
    ExplorerConfig,
    decision_surface,
    draw,
    explorer_widget,
    surface_levels,
)
from gan_tutorial.losses import get_loss
from gan_tutorial.metrics import mode_report
from gan_tutorial.models import toy_mlp

SMALL = {"hidden": 16, "depth": 2, "batch_size": 32}


def test_train_is_algorithm_1_with_the_package_steps():
    """Explorer.train equals a hand-written loop of d_step / g_step with the same draws."""
    config = ExplorerConfig(loss="lsgan", k=2, seed=3, **SMALL)
    explorer = Explorer(config)
    explorer.train(5)

    torch.manual_seed(3)
    G, D = toy_mlp(2, 2, 16, 2), toy_mlp(2, 1, 16, 2)
    opt_G = torch.optim.Adam(G.parameters(), lr=config.lr_G, betas=(config.beta1, config.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=config.lr_D, betas=(config.beta1, config.beta2))
    gen = torch.Generator().manual_seed(3)
    mixture = DATASETS["ring"][0]()
    for _ in range(5):
        for _ in range(2):
            x_real = mixture.sample(32, gen)
            z = torch.randn(32, 2, generator=gen)
            updates.d_step(G, D, opt_D, x_real, z, "lsgan")
        updates.g_step(G, D, opt_G, torch.randn(32, 2, generator=gen), "lsgan")
    for p, q in zip(explorer.G.parameters(), G.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    for p, q in zip(explorer.D.parameters(), D.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert explorer.step == 5
    assert set(explorer.stats) >= {"loss_D", "loss_G", "d_real", "d_fake"}


def test_same_seed_same_run_and_reset():
    a, b = Explorer(ExplorerConfig(seed=1, **SMALL)), Explorer(ExplorerConfig(seed=1, **SMALL))
    a.train(3)
    b.train(3)
    torch.testing.assert_close(a.samples(), b.samples())
    a.reset(dataset="grid")
    assert a.step == 0 and a.mixture.means.shape == (25, 2) and a.config.dataset == "grid"
    assert a.samples().shape == (2500, 2)


def test_report_is_the_metric_on_fixed_codes():
    explorer = Explorer(ExplorerConfig(**SMALL))
    before = explorer.samples()
    torch.testing.assert_close(before, explorer.samples())  # fixed z: no new randomness
    report = explorer.report()
    assert report.counts.tolist() == mode_report(before, explorer.mixture).counts.tolist()


def test_set_rates_changes_the_optimisers_not_the_nets():
    explorer = Explorer(ExplorerConfig(**SMALL))
    weights = [p.clone() for p in explorer.G.parameters()]
    explorer.set_rates(lr_G=3e-4, lr_D=2e-3, k=4)
    assert explorer.opt_G.param_groups[0]["lr"] == 3e-4 and explorer.opt_D.param_groups[0]["lr"] == 2e-3
    assert explorer.config.k == 4
    for p, q in zip(weights, explorer.G.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("loss", ["nonsaturating", "lsgan"])
def test_decision_surface_is_d_on_a_grid(loss):
    torch.manual_seed(0)
    D = toy_mlp(2, 1, 8, 1)
    xx, yy, value = decision_surface(D, loss, extent=2.0, resolution=7)
    assert xx.shape == yy.shape == value.shape == (7, 7)
    assert xx[0, 0] == -2.0 and xx[0, -1] == 2.0 and yy[-1, 0] == 2.0
    point = torch.tensor([[xx[2, 5], yy[2, 5]]])
    with torch.no_grad():
        out = D(point)[0, 0]
    expected = torch.sigmoid(out) if get_loss(loss).logits else out
    torch.testing.assert_close(value[2, 5], expected)


def test_draw_and_widget_build_headless():
    explorer = Explorer(ExplorerConfig(**SMALL))
    fig, ax = plt.subplots()
    report = draw(explorer, ax, resolution=10)
    assert "modes" in ax.get_title() and report.n_modes == 8
    plt.close(fig)

    box = explorer_widget(ExplorerConfig(**SMALL), steps_per_frame=2)
    step_button = box.children[2].children[1]
    step_button.click()  # one frame: trains 2 iterations and redraws
    assert box.explorer.step == 2
    box.children[0].children[0].value = "grid"  # changing the dataset starts a new run
    assert box.explorer.step == 0 and box.explorer.config.dataset == "grid"
    plt.close("all")


def _playing(play):
    return play.playing if play.has_trait("playing") else play._playing  # ipywidgets 8 / 7.7.1


def test_reset_stops_a_playing_widget_and_play_trains():
    """Under ipywidgets 7.7.1 (Colab's) and 8.x alike: play ticks train, reset stops the play."""
    box = explorer_widget(ExplorerConfig(**SMALL), steps_per_frame=2)
    play, _, reset = box.children[2].children
    play.set_trait("playing" if play.has_trait("playing") else "_playing", True)
    play.value = 1  # a tick from the browser
    play.value = 2
    assert box.explorer.step == 4
    lr_g = box.children[1].children[0]
    lr_g.value = 1e-2  # the slider takes effect on the running nets
    assert box.explorer.opt_G.param_groups[0]["lr"] == pytest.approx(1e-2)
    assert "step 4" in box.children[3].value and "lr G 1e-02" in box.children[3].value  # shown at once
    play.value = 3  # the next frame runs with the new rate, and the status line says so
    assert "<b>step 6</b>" in box.children[3].value and "lr G 1e-02" in box.children[3].value
    reset.click()
    assert not _playing(play) and play.value == 0 and box.explorer.step == 0
    plt.close("all")


def test_a_diverging_run_says_so_in_the_widget(monkeypatch):
    from gan_tutorial.updates import DivergenceError

    box = explorer_widget(ExplorerConfig(**SMALL), steps_per_frame=2)

    def diverge(steps):
        raise DivergenceError(
            "training diverged: loss_D became NaN or infinite at step 3.", 3, 3, ("loss_D",)
        )

    monkeypatch.setattr(box.explorer, "train", diverge)
    box.children[2].children[1].click()
    texts = [o.get("text", "") for o in box.children[4].outputs]
    assert any("stopped: training diverged" in t and "Press reset" in t for t in texts)
    plt.close("all")


@pytest.mark.parametrize("loss", ["nonsaturating", "lsgan"])
def test_surface_colours_are_centred_on_cannot_tell(loss):
    value = torch.tensor([[-3.0, 0.2], [0.4, 2.0]])
    levels, label = surface_levels(value if loss == "lsgan" else value.sigmoid(), get_loss(loss).logits)
    middle = levels[len(levels) // 2]
    assert middle == pytest.approx(0.5 if loss == "nonsaturating" else 0.0, abs=1e-6)
    assert "real" in label and "fake" in label
    if loss == "lsgan":
        assert levels[0] == -levels[-1] == pytest.approx(-3.0)
    explorer = Explorer(ExplorerConfig(**{**SMALL, "loss": loss}))
    fig, ax = plt.subplots()
    draw(explorer, ax, resolution=8)
    assert len(fig.axes) == 2  # the plot and its colour bar
    plt.close(fig)


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown dataset"):
        ExplorerConfig(dataset="spiral")
    with pytest.raises(ValueError, match="unknown loss"):
        ExplorerConfig(loss="wasserstein-div")
    with pytest.raises(ValueError, match="k"):
        ExplorerConfig(k=0)
    with pytest.raises(ValueError, match="learning rates"):
        ExplorerConfig(lr_D=0.0)
