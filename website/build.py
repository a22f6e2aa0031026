"""Build every notebook as a static website in build/site/ (`make site`), from the committed
outputs: nothing is executed and nothing is fetched from the network.

Jupyter Book 1 (Sphinx, MyST-NB and sphinx-book-theme) renders the pages. This script first
lays out its sources in build/site-src/:

- one page per notebook, in the order of `notebooks/*.ipynb`, the table of contents written
  from that list (a notebook added to the folder appears without editing anything here);
- under each page's title, its Colab badge and a link that downloads the notebook as committed;
- a still image, with a note, in place of a widget that needs a running kernel (chapter 2's
  explorer), since the committed notebooks save no widget state;
- the landing page, from the README's introduction and its chapter table.

A file is rewritten only when its content changes, so a second build redoes only what changed.
Sphinx's warnings are printed and kept in build/site-warnings.txt.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "build" / "site-src"  # the sources Sphinx reads (generated)
OUT = ROOT / "build" / "site"  # the website
DOCTREES = ROOT / "build" / "site-doctrees"  # Sphinx's cache between builds
WARNINGS = ROOT / "build" / "site-warnings.txt"
BRANCH = "main"
COLAB = "https://colab.research.google.com/github"
BADGE = "figures/colab-badge.svg"  # drawn for the site (website/colab-badge.svg): no remote image
# A widget shown as a still: (text in the cell's source, the image under figures/, its note).
STILLS = [
    (
        "explorer_widget(",
        "02_explorer.png",
        "*A still of the explorer in JupyterLab. It trains as you watch only with a running kernel: "
        "open this chapter in Colab (the badge at the top) or in JupyterLab, and run it.*",
    ),
]


def repository_url() -> str:
    """pyproject.toml's [project.urls] Repository, the one place the address is written."""
    return re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def notebooks() -> list[Path]:
    """The chapters, in file order: the order of the table of contents."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def write_if_changed(path: Path, content: str | bytes) -> None:
    """Write ``content`` unless the file holds it already (an unchanged file keeps its time,
    so Sphinx does not rebuild its page)."""
    data = content.encode() if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def page_notebook(nb: dict, name: str, repo: str) -> dict:
    """The notebook as its page shows it: the badge and download link under the title, and each
    widget that needs a kernel followed by its still."""
    nb = copy.deepcopy(nb)
    cells = nb["cells"]
    first = next(c for c in cells if c["cell_type"] == "markdown")
    title, _, rest = source(first).partition("\n")
    if not title.startswith("# "):
        raise SystemExit(f"notebooks/{name}: the first markdown cell does not start with a '# ' title")
    colab = f"{COLAB}/{repo.removeprefix('https://github.com/')}/blob/{BRANCH}/notebooks/{name}"
    links = f"[![Open in Colab]({BADGE})]({colab}) [Download {name}](path:notebooks/{name})"
    first["source"] = f"{title}\n\n{links}\n{rest}"
    for i in reversed(range(len(cells))):
        for pattern, image, note in STILLS:
            if cells[i]["cell_type"] == "code" and pattern in source(cells[i]):
                if not (ROOT / "figures" / image).exists():
                    raise SystemExit(f"figures/{image} is missing: the still shown for {pattern!r}")
                still = {
                    "cell_type": "markdown",
                    "metadata": {},
                    "source": f"![A still of the widget this cell displays](figures/{image})\n\n{note}",
                }
                if nb.get("nbformat_minor", 0) >= 5:  # cells have ids from nbformat 4.5 on
                    still["id"] = f"still-{i}"
                cells.insert(i + 1, still)
    return nb


def landing_page(repo: str, names: list[str]) -> str:
    """The README's introduction and its "Chapters" section, with the chapters linked to their
    pages, the Colab badges drawn locally and other repository paths linked on GitHub."""
    readme = (ROOT / "README.md").read_text()
    title = re.search(r"^# (.+)$", readme, re.M)
    chapters = re.search(r"^## Chapters\n(.*?)(?=^## )", readme, re.M | re.S)
    if not (title and chapters):
        raise SystemExit("README.md: no '# title' or no '## Chapters' section for the landing page")
    owner, name = repo.removeprefix("https://github.com/").split("/")
    here = f"https://{owner}.github.io/{name}/"  # the site itself (GitHub Pages): not linked from itself
    intro = "\n\n".join(
        p for p in readme[title.end() : chapters.start()].strip().split("\n\n") if here not in p
    )
    text = f"# {title.group(1)}\n\n{intro}\n\n## Chapters\n\n{chapters.group(1).strip()}\n"

    def image(m: re.Match) -> str:
        if "colab-badge" not in m.group(2):
            raise SystemExit(f"README.md: a remote image the offline site cannot show: {m.group(2)}")
        return f"![{m.group(1)}]({BADGE})"

    text = re.sub(r"!\[([^\]]*)\]\((https?://[^)]+)\)", image, text)
    text = re.sub(r"\]\(notebooks/([^)/]+\.ipynb)\)", r"](\1)", text)
    text = re.sub(
        r"\]\((?!https?:|mailto:|#|[^)/]+\.ipynb\)|figures/colab-badge)([^)]+)\)",
        rf"]({repo}/blob/{BRANCH}/\1)",
        text,
    )
    for name in names:
        if f"]({name})" not in text:
            print(f"note: notebooks/{name} has no row in the README's chapter table", file=sys.stderr)
    footer = (
        "Each page is a notebook as committed, with the outputs of its full run: open it in Colab "
        "with its badge, or download it and run it in JupyterLab "
        f"(the [repository]({repo}) says how to install the package)."
    )
    return f"{text}\n{footer}\n"


def table_of_contents(names: list[str]) -> str:
    chapters = "".join(f"  - file: {Path(n).stem}\n" for n in names)
    return f"# website/build.py, from notebooks/*.ipynb\nformat: jb-book\nroot: index\nchapters:\n{chapters}"


def stage() -> bool:
    """Lay out build/site-src/ (see the module docstring); True if a notebook was removed since
    the last build (its page would stay in build/site/)."""
    repo = repository_url()
    paths = notebooks()
    names = [p.name for p in paths]
    removed = [old for old in [*SRC.glob("*.ipynb"), *SRC.glob("notebooks/*.ipynb")] if old.name not in names]
    for old in removed:
        old.unlink()
    for path in paths:
        raw = path.read_bytes()
        write_if_changed(SRC / "notebooks" / path.name, raw)  # what the download link gives, byte for byte
        page = page_notebook(json.loads(raw), path.name, repo)
        write_if_changed(SRC / path.name, json.dumps(page, indent=1, ensure_ascii=False) + "\n")
    write_if_changed(SRC / BADGE, (HERE / "colab-badge.svg").read_bytes())
    write_if_changed(SRC / "_static" / "site.css", (HERE / "site.css").read_bytes())
    for _, image, _ in STILLS:
        if (ROOT / "figures" / image).exists():
            write_if_changed(SRC / "figures" / image, (ROOT / "figures" / image).read_bytes())
    write_if_changed(SRC / "index.md", landing_page(repo, names))
    write_if_changed(SRC / "_toc.yml", table_of_contents(names))
    config = yaml.safe_load((HERE / "_config.yml").read_text())
    config["repository"]["url"] = repo
    write_if_changed(SRC / "_config.yml", yaml.safe_dump(config, sort_keys=False))
    return bool(removed)


def main() -> int:
    start = time.perf_counter()
    if stage():  # a page gone: build afresh rather than leave it behind
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.rmtree(DOCTREES, ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "jupyter-book", "config", "sphinx", SRC], check=True, stdout=subprocess.DEVNULL)
    sphinx = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", DOCTREES, "-w", WARNINGS, SRC, OUT]
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))  # scripts_once.py
    run = subprocess.run(sphinx, env={**os.environ, "PYTHONPATH": path})
    if run.returncode != 0:
        return run.returncode
    shutil.rmtree(OUT / ".doctrees", ignore_errors=True)
    warnings = [line for line in WARNINGS.read_text().splitlines() if "WARNING" in line]
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file()) / 2**20
    print(
        f"website: {OUT.relative_to(ROOT)}/index.html, {len(notebooks())} notebooks, "
        f"{size:.1f} MiB, {time.perf_counter() - start:.0f} s; "
        f"{len(warnings)} Sphinx warnings from the pages rebuilt (in {WARNINGS.relative_to(ROOT)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
