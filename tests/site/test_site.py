"""The website (`make site`, then `make test-site`): every page of build/site/ opened in headless
Chromium with the network refused. A page passes when it loads with no JavaScript or console
error and no request off the site, every formula is typeset by MathJax (none left raw), every
image loads, and every link into the site names a file (and an anchor) that exists. Beside that:
one page per chapter in file order, the landing page from the README's table, each chapter's
Colab badge and download link, chapter 2's explorer as a still, and search. Screenshots go to
build/site-screens/. The fixtures are in conftest.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "site"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHAPTERS = [p.stem for p in NOTEBOOKS]
PAGES = ["index", *CHAPTERS, "search", "genindex"]  # every page Sphinx writes
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)

PROBLEMS_JS = r"""async () => {
  const found = [], short = (s) => s.replace(/\s+/g, ' ').trim().slice(0, 160);
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  // formulas: MathJax loads (deferred) and typesets each one
  if (document.querySelector('.math')) {
    const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
    for (let t = 0; t < 200 && !ready(); t++) await sleep(100);
    if (ready()) await MathJax.startup.promise;
    else found.push('MathJax did not load');
  }
  for (const e of document.querySelectorAll('.math'))
    if (!e.querySelector('mjx-container')) found.push('formula not typeset: ' + short(e.textContent));
  for (const e of document.querySelectorAll('mjx-merror, [data-mjx-error]'))
    found.push('MathJax error: ' + short(e.getAttribute('data-mjx-error') || e.textContent));
  for (const e of document.querySelectorAll('mjx-container *')) {  // an unknown macro is typeset in red
    const red = (n) => n && getComputedStyle(n).color === 'rgb(255, 0, 0)';
    if (red(e) && !red(e.parentElement) && e.textContent.trim())
      found.push('undefined TeX macro (red): ' + short(e.textContent));
  }
  const skip = 'script, style, pre, code, textarea, mjx-container';
  const raw = /\$[^$\s][^$]*\$|\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!n.parentElement.closest(skip) && raw.test(n.textContent))
      found.push('TeX left raw: ' + short(n.textContent));
  }
  // images: every one loaded (lazy ones asked for now), with a width
  const images = Array.from(document.images);
  for (const img of images) img.loading = 'eager';
  await Promise.all(images.map(img => img.complete ? null : new Promise(r => {
    img.addEventListener('load', r, {once: true});
    img.addEventListener('error', r, {once: true});
    setTimeout(r, 15000);
  })));
  for (const img of images)
    if (!(img.complete && img.naturalWidth > 0))
      found.push('image not loaded: ' + img.getAttribute('src').slice(0, 120));
  return {found, images: images.length, formulas: document.querySelectorAll('mjx-container').length,
          hrefs: Array.from(document.querySelectorAll('a[href]'), a => a.href)};
}"""


def check(page) -> dict:
    """What a reader would see as broken on the open page (``found``, a list), and the counts of
    images and typeset formulas. Links into the site are followed to the file they name."""
    result = page.pw.evaluate(PROBLEMS_JS)
    texts: dict[Path, str] = {}
    for href in sorted(set(result["hrefs"])):
        file = page.site_file(href)
        if file is None:
            continue  # another site: not followed offline
        if not file.is_file():
            result["found"].append(f"link to a missing file: {href}")
            continue
        anchor = urlsplit(href).fragment
        if anchor and file.suffix == ".html":
            text = texts.setdefault(file, file.read_text())
            if f'id="{anchor}"' not in text:
                result["found"].append(f"link to a missing anchor: {href}")
    result["found"] = page.errors + result["found"]
    return result


def image_outputs(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    return sum(
        any(k.startswith("image/") for k in out.get("data", {}))
        for c in cells
        for out in c.get("outputs", [])
    )


# -- the checks themselves -------------------------------------------------------------------

BROKEN_ON_PURPOSE = r"""<!DOCTYPE html><html><head><meta charset="utf-8">
<script>window.MathJax = {"options": {"processHtmlClass": "math"}}</script>
<script defer src="_static/mathjax/tex-chtml.js"></script></head><body>
<p class="tex2jax_ignore">Left raw: $x^2$ and \(y\).</p>
<p><span class="math">\(x^{2}^{3}\)</span> <span class="math">\(\notamacro x\)</span></p>
<img src="missing.png" alt="missing"> <img src="https://example.invalid/remote.png" alt="remote">
<a href="nowhere.html">a page that is not there</a>
<a href="index.html#no-such-anchor">an anchor that is not there</a>
</body></html>"""


def test_the_checks_catch_what_they_look_for(new_page, site_url):
    """A page with each fault the checks look for: each is reported (else a passing page proves nothing)."""
    page = new_page()
    page.context.route(
        site_url + "broken_on_purpose.html",
        lambda route: route.fulfill(status=200, content_type="text/html", body=BROKEN_ON_PURPOSE),
    )
    found = check(page.open("broken_on_purpose.html"))["found"]
    expected = {
        "raw TeX": "TeX left raw: Left raw: $x^2$",
        "a TeX error": "MathJax error",
        "an undefined macro": "undefined TeX macro (red): \\notamacro",
        "an image that did not load": "image not loaded: missing.png",
        "a request off the site": "request off the site refused: https://example.invalid/remote.png",
        "a missing file": "HTTP 404: " + site_url + "missing.png",
        "a link to a missing page": "link to a missing file: " + site_url + "nowhere.html",
        "a link to a missing anchor": "link to a missing anchor: " + site_url + "index.html#no-such-anchor",
    }
    missed = [what for what, text in expected.items() if not any(f.startswith(text) for f in found)]
    assert not missed, f"the checks missed {missed}; they found {found}"


# -- the book --------------------------------------------------------------------------------


def test_one_page_per_chapter_in_file_order():
    """A page for each notebook and no other, the navigation in the order of notebooks/*.ipynb,
    and each page's "next" link to the next chapter."""
    assert sorted(p.stem for p in SITE.glob("*.html")) == sorted(PAGES)
    index = (SITE / "index.html").read_text()
    nav = index[index.index('class="bd-links bd-docs-nav"') :]
    nav = nav[: nav.index("</nav>")]
    assert re.findall(r'href="([^"#]+)\.html"', nav) == CHAPTERS
    order = ["index", *CHAPTERS]
    for page, following in zip(order, order[1:], strict=False):
        html = (SITE / f"{page}.html").read_text()
        found = re.search(r'<a class="right-next"\s+href="([^"]+)\.html"', html)
        assert found and found.group(1) == following, f"{page}.html: its next page is not {following}.html"


def test_the_landing_page_is_the_readme_table(new_page, screens):
    """Every chapter the README's table lists, linked to its page, in the README's order, with
    its Colab badge (drawn locally) and the same words."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(
        r"^\| \[!\[Open In Colab\].*?\]\((\S+?)\) \| \[([^\]]+)\]\(notebooks/(\S+?)\.ipynb\) \| (.+?) \|",
        readme,
        re.M,
    )
    assert rows, "no chapter rows found in the README's table"
    page = new_page().open("index.html")
    table = page.pw.locator("article table")
    assert table.count() == 1
    links = table.locator("a.internal").evaluate_all(
        "as => as.map(a => [a.getAttribute('href'), a.textContent])"
    )
    assert links == [[f"{stem}.html", title] for _, title, stem, _ in rows]
    badges = table.locator("a.external:has(img)").evaluate_all("as => as.map(a => a.href)")
    assert badges == [colab for colab, *_ in rows]
    text = " ".join(table.inner_text().split())
    for _, title, _, teaches in rows:
        words = " ".join(re.sub(r"[`*]", "", teaches).split())
        assert words in text, f"the landing page's row for {title} differs from the README's"
    result = check(page)
    assert result["found"] == []
    assert result["images"] >= len(rows)
    page.pw.screenshot(path=str(screens / "index.png"))


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline_with_formulas_images_and_links(new_page, screens, name):
    page = new_page().open(f"{name}.html")
    result = check(page)
    assert result["found"] == [], f"{name}.html: what a reader sees is broken"
    if name in CHAPTERS:
        notebook = ROOT / "notebooks" / f"{name}.ipynb"
        assert result["formulas"] > 0, f"{name}.html: no formula typeset"
        outputs = page.pw.locator(".cell_output img").count()
        assert outputs == image_outputs(notebook), (
            f"{name}.html: {outputs} output images, the notebook has more"
        )
        assert page.pw.locator("article h1").count() == 1
        colab = f"https://colab.research.google.com/github/{REPOSITORY.removeprefix('https://github.com/')}"
        badge = page.pw.locator(f'article a[href="{colab}/blob/main/notebooks/{name}.ipynb"] img')
        assert badge.count() == 1, f"{name}.html: no Colab badge for notebooks/{name}.ipynb"
        download = page.pw.locator("article a.download").first.get_attribute("href")
        assert (SITE / download).read_bytes() == notebook.read_bytes(), (
            "the download is not the committed notebook"
        )
        launch = page.pw.locator(f'a[href^="{colab}"]').count()
        assert launch >= 2, f"{name}.html: the Colab badge and the theme's launch button"


def test_chapter_2_shows_the_explorer_as_a_still(new_page, screens):
    page = new_page().open("02_losses.html")
    still = page.pw.locator('article img[src*="02_explorer"]')
    assert still.count() == 1, "no still of the explorer"
    note = page.pw.locator("article p", has_text="running kernel")
    assert note.count() == 1 and "Colab" in note.inner_text() and "JupyterLab" in note.inner_text()
    assert check(page)["found"] == []
    still.scroll_into_view_if_needed()
    page.pw.screenshot(path=str(screens / "02_losses_explorer.png"))


def test_search_finds_the_chapters(new_page):
    page = new_page().open("search.html?q=discriminator")
    page.pw.wait_for_function(
        "() => document.querySelector('#search-results .search-summary')"
        " && !/Searching|Preparing/.test(document.querySelector('#search-results').textContent)"
    )
    hits = page.pw.locator("#search-results ul.search li a").evaluate_all(
        "as => as.map(a => a.getAttribute('href').split(/[?#]/)[0])"
    )
    assert {"01_minimax.html", "02_losses.html"} <= set(hits), hits
    assert page.errors == []


def test_screenshots_of_chapter_1_math_and_figures(new_page, screens):
    """Chapter 1 scrolled to a typeset display formula, and to its first figure."""
    page = new_page().open("01_minimax.html")
    assert check(page)["found"] == []
    formula = page.pw.locator("div.math mjx-container").first
    formula.scroll_into_view_if_needed()
    assert formula.bounding_box()["width"] > 50
    page.pw.screenshot(path=str(screens / "01_minimax_math.png"))
    figure = page.pw.locator(".cell_output img").first
    figure.scroll_into_view_if_needed()
    assert figure.evaluate("img => img.naturalWidth") > 0
    page.pw.screenshot(path=str(screens / "01_minimax_figure.png"))
