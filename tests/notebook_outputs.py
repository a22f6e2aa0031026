"""Committed notebooks carry no widget state: ``make book`` runs this after executing them.

A notebook executed by nbconvert saves each widget's state in its metadata and a widget view in
the cell's output. Opened later without a kernel, JupyterLab can show that view only in a trusted
notebook, and shows an error where the state is missing. So the committed notebooks keep neither:
the cell says instead that its widget appears when the notebook runs live.
``python tests/notebook_outputs.py notebooks/*.ipynb`` rewrites the notebooks in place.
"""

import json
import sys
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LIVE_ONLY = "(an interactive widget: it appears here when the notebook runs live, in JupyterLab or Colab)"
PROGRESS = "(a progress bar: it shows while the cell runs live)"


def _is_progress_bar(model_id: str, state: dict) -> bool:
    """Whether a widget view is tqdm's notebook bar: an HBox holding a FloatProgress."""
    model = state.get(model_id, {})
    children = model.get("state", {}).get("children", [])
    ids = [c.removeprefix("IPY_MODEL_") for c in children if isinstance(c, str)]
    return model.get("model_name") == "HBoxModel" and any(
        state.get(i, {}).get("model_name") == "FloatProgressModel" for i in ids
    )


def strip_widget_state(nb: dict) -> bool:
    """Remove saved widget state and widget views from a notebook (a dict); True if anything changed."""
    saved = nb["metadata"].pop("widgets", None)
    changed = saved is not None
    state = (saved or {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                bar = _is_progress_bar(data[WIDGET_VIEW].get("model_id", ""), state)
                data.clear()
                data["text/plain"] = [PROGRESS if bar else LIVE_ONLY]
                changed = True
    return changed


def main(paths: list[str]) -> None:
    for path in map(Path, paths):
        nb = json.loads(path.read_text())
        if strip_widget_state(nb):
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            print(f"{path}: widget state removed")


if __name__ == "__main__":
    main(sys.argv[1:])
