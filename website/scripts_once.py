"""A Sphinx extension of the website's build (website/build.py): each script once in a page.

Sphinx 7.4 writes an inline script added after its HTML builder started (sphinx-thebe's
settings, added when the documents are read) twice into every page. sphinx-thebe's declares
constants, so the second copy is a JavaScript error in every page ("Identifier 'THEBE_JS_URL'
has already been declared"). This drops the repeats, keeping the first of each.
"""

from __future__ import annotations


def _once(app, pagename, templatename, context, doctree) -> None:
    seen: set[str] = set()
    scripts = []
    for script in context.get("script_files", []):
        # its file name ('' or None for an inline one) and attributes, an inline script's body among them
        key = f"{getattr(script, 'filename', script) or ''} {getattr(script, 'attributes', '')}"
        if key not in seen:
            seen.add(key)
            scripts.append(script)
    context["script_files"] = scripts


def setup(app) -> dict:
    app.connect("html-page-context", _once)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
