"""Every chapter in a real browser: JupyterLab and headless Chromium (`make test-browser`).

What a reader sees when opening a chapter (figures, MathJax without errors, widgets that
display), chapter 2 run top to bottom with its explorer clicked, and a training cell's progress
bar. Screenshots go to build/browser/. The fixtures and the page helpers are in conftest.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def wait_for(read, until, timeout: float, what: str, every: float = 0.25):
    """Call ``read()`` until ``until(value)`` holds; the last value, or an AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s; last seen: {value!r}")
        time.sleep(every)


def committed_outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def is_image(output: dict) -> bool:
    return any(k.startswith("image/") for k in output.get("data", {}))


def widget_views(notebook) -> int:
    """Outputs in which a widget view is displayed (not the text fallback of an untrusted one)."""
    return notebook.node.locator(".jp-OutputArea-output:has(> .jupyter-widgets)").count()


# -- the checks themselves -------------------------------------------------------------------


def test_the_checks_catch_what_they_look_for(page, lab):
    """A scratch notebook with a TeX error (a double exponent), an undefined macro and a widget
    whose model is gone: the problem finder reports each one (else a passing chapter proves nothing)."""
    path = lab.write_notebook(
        "broken_on_purpose.ipynb",
        [
            {"cell_type": "markdown", "source": "A formula that does not parse: $x^{2}^{3}$."},
            {"cell_type": "markdown", "source": "An undefined macro: $\\notamacro x$."},
            {
                "cell_type": "code",
                "source": "w",
                "execution_count": 1,
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {
                            "text/plain": "a widget",
                            WIDGET_VIEW: {"model_id": "0" * 32, "version_major": 2, "version_minor": 0},
                        },
                    }
                ],
            },
        ],
    )
    nb = page.open(path)
    nb.wait_rendered()
    nb.trust()
    found = wait_for(
        nb.problems,
        lambda p: any("Error displaying widget" in x for x in p),
        20,
        "a widget view with no model shows 'Error displaying widget'",
    )
    assert any(x.startswith("MathJax error") for x in found), found
    assert any("undefined TeX macro" in x and "notamacro" in x for x in found), found
    nb.close()


# -- every chapter, as a reader opens it -----------------------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_opens_and_its_outputs_render(page, chapter):
    nb = page.open(chapter)
    committed = nb.json()
    formulas = nb.wait_rendered()
    outputs = committed_outputs(committed)
    images = sum(map(is_image, outputs))
    nb.screenshot(f"{Path(chapter).stem}.png")
    assert nb.problems() == [], f"{chapter}: what a reader sees is broken"
    assert formulas > 0, f"{chapter}: no formula typeset by MathJax"
    assert images > 0, f"{chapter}: no figure among the committed outputs"
    assert nb.output_images() == images, f"{chapter}: {images} committed images, {nb.output_images()} shown"
    first_figure = nb.node.locator(".jp-OutputArea-output img").first
    nb.screenshot(f"{Path(chapter).stem}_figure.png", at=first_figure)

    # Trusted, as after "Trust Notebook" or a run: widget views render from the saved state.
    views = sum(WIDGET_VIEW in o.get("data", {}) for o in outputs)
    nb.trust()
    wait_for(
        lambda: (widget_views(nb), nb.problems()),
        lambda v: v[0] == views or v[1],
        30,
        f"{chapter}: its {views} widget views render once trusted",
    )
    assert nb.problems() == [], f"{chapter}, trusted: what a reader sees is broken"
    if views:
        shown = nb.node.locator(".jp-OutputArea-output:has(> .jupyter-widgets)").first
        nb.screenshot(f"{Path(chapter).stem}_widgets.png", at=shown)
    nb.close()


def saved_roots(nb: dict) -> dict[str, str]:
    """Top-level widgets of a notebook's saved widget state (views no other widget contains),
    by model id: "VBox", "HBox(...)"."""
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    contained = set(re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(state)))
    return {
        model_id: model["model_name"].removesuffix("Model")
        for model_id, model in state.items()
        if model["state"].get("_view_name") and model_id not in contained
    }


@pytest.mark.parametrize(
    "chapter", [c for c in CHAPTERS if saved_roots(json.loads((ROOT / "notebooks" / c).read_text()))]
)
def test_saved_widget_state_is_displayed(page, chapter):
    """A notebook that saves widget state should display it: each saved top-level widget is
    the view of some output, and renders (without a kernel) once the notebook is trusted.
    Saved state that no output displays is reported as an expected failure naming the widgets."""
    nb_json = json.loads((ROOT / "notebooks" / chapter).read_text())
    roots = saved_roots(nb_json)
    shown = {
        o["data"][WIDGET_VIEW]["model_id"]
        for o in committed_outputs(nb_json)
        if WIDGET_VIEW in o.get("data", {})
    }
    nb = page.open(chapter)
    nb.trust()
    wait_for(
        lambda: widget_views(nb),
        lambda n: n == len(shown & set(roots)),
        30,
        f"{chapter}: saved widgets render",
    )
    assert not [p for p in nb.problems() if "widget" in p], nb.problems()
    nb.close()
    hidden = {m: name for m, name in roots.items() if m not in shown}
    if hidden:
        pytest.xfail(
            f"{chapter} saves the state of {len(hidden)} widget(s) that no output displays "
            f"({', '.join(sorted(hidden.values()))}): in the committed notebook they do not render; "
            "the cell that displays them has no output (cleared, or saved before it ran)"
        )


# -- chapter 2, run in the browser, and its explorer -----------------------------------------

STEP = re.compile(r"step (\d+)")
LR_G = re.compile(r"lr G ([0-9.]+e[-+]\d+)")


class ExplorerView:
    """The explorer widget (gan_tutorial.explorer.explorer_widget) as the page shows it."""

    def __init__(self, box, pw) -> None:
        self.box, self.pw = box, pw
        self.status_line = box.locator(".widget-html-content").filter(has_text=re.compile(r"^\s*step \d+"))

    def status(self) -> str:
        return self.status_line.first.inner_text()

    def step(self) -> int:
        return int(STEP.search(self.status()).group(1))

    def picture(self) -> str | None:
        img = self.box.locator(".widget-output img")
        return img.first.get_attribute("src") if img.count() else None

    def button(self, text: str):
        return self.box.locator("button.widget-button", has_text=text)

    def play_control(self, icon: str):
        """Play's button with a Font Awesome icon ("play", "pause"): ipywidgets 8 toggles one
        button between play and pause, 7.x shows both."""
        button = self.box.locator(f".widget-play button:has(.fa-{icon})")
        assert button.count() == 1, (
            f"no {icon} button in the Play widget: {self.box.locator('.widget-play').inner_html()}"
        )
        return button

    def slider(self, label: str):
        return self.box.locator(".widget-slider").filter(has=self.pw.locator(".widget-label", has_text=label))

    def wait_steady(self, quiet: float = 2.0, timeout: float = 30) -> str:
        """The status once it has not changed for ``quiet`` seconds."""
        deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
        while time.monotonic() < deadline:
            now = self.status()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return now
            time.sleep(0.2)
        raise AssertionError(f"the explorer kept changing for {timeout:.0f} s after pause: {last}")


def test_chapter_2_runs_and_its_explorer_responds(page, artefacts):
    nb = page.open("02_losses.ipynb")
    run = nb.run_all(timeout=240)
    assert run["errors"] == [], f"chapter 2 raised: {run['errors']}"
    counts = run["counts"]
    assert None not in counts and counts == sorted(counts), f"code cells not all run in order: {counts}"
    if run["stderr"]:
        print("chapter 2 wrote to stderr:", *run["stderr"], sep="\n  ")
    nb.wait_rendered()
    assert nb.problems() == [], "chapter 2, after its run"
    assert nb.output_images() > 0, "chapter 2 drew no figure in quick mode"

    cell = nb.cell(r"^lab_widget\s*=")
    lab = ExplorerView(cell.locator(".jp-OutputArea-output .widget-vbox").first, page.pw)
    lab.box.scroll_into_view_if_needed()
    wait_for(lab.status_line.count, lambda n: n == 1, 30, "the explorer's status line ('step N ...')")
    start = lab.status()
    assert lab.step() == 0 and "lr G 1e-03, lr D 1e-03" in start, start
    first_picture = lab.picture()
    assert first_picture, "the explorer's output shows no picture"
    lab.box.screenshot(path=str(artefacts / "explorer_start.png"))
    seen = artefacts / "explorer.txt"  # the status line after each interaction, for the record

    def note(what: str) -> None:
        with seen.open("a") as f:
            f.write(f"{what:<22} {lab.status()}\n")

    note("after the run")

    # "step x25": one frame of 25 iterations, a new picture
    lab.button("step x25").click()
    wait_for(lab.step, lambda s: s == 25, 60, "'step x25' advances the status line to step 25")
    wait_for(lab.picture, lambda p: p != first_picture, 30, "the picture changes after a step")
    note("step x25")

    # play: the steps advance on their own; pause: they stop
    lab.play_control("play").click()
    wait_for(lab.step, lambda s: s >= 25 + 2 * 25, 90, "play advances the step by itself")
    lab.play_control("pause").click()
    paused = lab.wait_steady()
    picture = lab.picture()
    time.sleep(3)
    assert lab.status() == paused and lab.picture() == picture, "the explorer went on after pause"
    assert lab.step() >= 75
    note("play, then pause")

    # reset: step 0, the same run again
    lab.button("reset").click()
    wait_for(lab.step, lambda s: s == 0, 60, "reset brings the step back to 0")
    wait_for(lab.picture, lambda p: p == first_picture, 30, "after reset the picture is the first one again")
    note("reset")

    # the lr G slider, dragged to 3/4 of its track (10^-5 .. 10^-1): in force from the next frame
    slider = lab.slider("lr G")
    handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-base").bounding_box()
    box = handle.bounding_box()
    page.pw.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.pw.mouse.down()
    page.pw.mouse.move(track["x"] + 0.75 * track["width"], box["y"] + box["height"] / 2, steps=10)
    page.pw.mouse.up()
    exponent = float(
        wait_for(lambda: handle.get_attribute("aria-valuenow"), lambda v: v != "-3.0", 10, "lr G moved")
    )
    new_rate = f"{10**exponent:.0e}"
    assert new_rate != "1e-03", f"the drag left lr G at {new_rate}"
    note(f"lr G dragged to {new_rate}")
    lab.button("step x25").click()
    shown = wait_for(lab.status, lambda s: STEP.search(s).group(1) == "25", 60, "a frame after moving lr G")
    assert LR_G.search(shown).group(1) == new_rate, f"lr G set to {new_rate}; the status line says: {shown}"
    note("step x25")
    lab.box.screenshot(path=str(artefacts / "explorer_after.png"))
    nb.screenshot("02_losses_after_run.png", at=lab.box)
    nb.close()


# -- a progress bar --------------------------------------------------------------------------

PROGRESS_STEPS = 30


def test_a_training_progress_bar_shows_and_completes(page, lab, artefacts):
    """tqdm.auto's widget bar in the browser, from the trainer on fake images; the kernel's
    environment is the one the server was given."""
    path = lab.write_notebook(
        "progress_bar.ipynb",
        [
            {
                "cell_type": "code",
                "source": (
                    "import os\n\n"
                    'assert "TQDM_DISABLE" not in os.environ, "tqdm would hide its bar"\n'
                    'assert os.environ["GAN_TUTORIAL_QUICK"] == "1"\n'
                    'assert os.environ["GAN_TUTORIAL_DEVICE"] == "cpu"\n'
                    'assert os.path.isdir(os.environ["GAN_TUTORIAL_DATA"])'
                ),
            },
            {
                "cell_type": "code",
                "source": (
                    "import torch\n\n"
                    "from gan_tutorial.config import TrainConfig\n"
                    "from gan_tutorial.trainer import Trainer\n\n"
                    "x_train = torch.rand(512, 1, 28, 28) * 2 - 1  # (512, 1, 28, 28) in [-1, 1]: fake\n"
                    'trainer = Trainer(TrainConfig(log_every=20), x_train, "cpu")\n'
                    f"_ = trainer.run(steps={PROGRESS_STEPS}, progress=True)"
                ),
            },
        ],
    )
    nb = page.open(path)
    run = nb.run_all(timeout=120)
    assert run["errors"] == [], run["errors"]
    bar = nb.cell("trainer.run").locator(
        ".jp-OutputArea-output .widget-hbox:has(.widget-hprogress, .widget-progress)"
    )
    wait_for(bar.count, lambda n: n == 1, 30, "tqdm's widget progress bar appears")
    text = wait_for(
        bar.inner_text, lambda t: f"{PROGRESS_STEPS}/{PROGRESS_STEPS}" in t, 30, "the bar reaches its total"
    )
    width = bar.locator(".progress-bar").first.evaluate("e => e.style.width")
    assert width == "100%", f"the bar is {width} full: {text}"
    assert nb.problems() == []
    bar.screenshot(path=str(artefacts / "progress_bar.png"))
    nb.close()
