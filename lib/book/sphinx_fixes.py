"""A Sphinx extension for the book's build (loaded through ``_config.yml``'s ``extra_extensions``).

- sphinx-thebe adds its configuration script on every ``env-before-read-docs``; sphinxcontrib-bibtex
  makes Sphinx read the documents a second time, so pages got the script twice and browsers
  reported "Identifier 'THEBE_JS_URL' has already been declared". This drops repeated scripts.
- The book renders executed notebooks (``.ipynb``) while the repository holds their MyST-markdown
  sources (``book/<chapter>.md``). Each chapter's download menu gets its ``.md`` source beside the
  ``.ipynb``, and the Binder button opens the ``.md`` (jupytext opens it as a notebook there), since
  the repository has no ``.ipynb``. Colab opens only ``.ipynb`` files, so its button keeps that path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lib.settings import REPO_ROOT

SOURCES = REPO_ROOT / "book"


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        name = getattr(script, "filename", script) or ""  # strings in older Sphinx; None or "" for inline scripts
        key = (str(name), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def markdown_source(pagename: str) -> Path | None:
    """The repository's MyST-markdown source of a page rendered from an executed notebook, if there is one."""
    source = SOURCES / f"{Path(pagename).name}.md"
    return source if pagename.startswith("book/") and source.is_file() else None


def link_markdown_sources(app, pagename, templatename, context, doctree) -> None:
    """Offer a notebook page's ``.md`` source for download, and open it (not the ``.ipynb``) on Binder."""
    source = markdown_source(pagename)
    if source is None or not context.get("page_source_suffix") == ".ipynb":
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            if group.get("label") == "download-buttons" and button.get("label") == "download-source-button":
                group["buttons"].insert(group["buttons"].index(button) + 1, {
                    "type": "link", "url": f"{context['pathto']('_sources', 1)}/{pagename}.md", "text": ".md",
                    "icon": "fas fa-file-code", "tooltip": "Download the MyST-markdown source (jupytext notebook)",
                    "label": "download-markdown-source-button"})
                break
            if button.get("text") == "Binder":
                button["url"] = button["url"].replace(f"{pagename}.ipynb", f"{pagename}.md")


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("html-page-context", link_markdown_sources, priority=600)  # after the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
