"""A Sphinx extension for the book's build (loaded through ``_config.yml``'s ``extra_extensions``).

sphinx-thebe adds its configuration script on every ``env-before-read-docs``; sphinxcontrib-bibtex
makes Sphinx read the documents a second time, so pages got the script twice and browsers
reported "Identifier 'THEBE_JS_URL' has already been declared". This drops repeated scripts.
"""

from __future__ import annotations


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


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
