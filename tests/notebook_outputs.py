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


def strip_widget_state(nb: dict) -> bool:
    """Remove saved widget state and widget views from a notebook (a dict); True if anything changed."""
    changed = nb["metadata"].pop("widgets", None) is not None
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                data.clear()
                data["text/plain"] = [LIVE_ONLY]
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
