"""Emit each <script> once per page.

With Sphinx 7.4 (the version Jupyter Book 1 requires), sphinx-thebe's inline script, which
declares `const THEBE_JS_URL`, is added to every page twice; the second copy throws
"Identifier 'THEBE_JS_URL' has already been declared" in the browser console. Sphinx fixed
duplicate script registration upstream (Sphinx PR 13402) in a release Jupyter Book 1 cannot use,
so this handler removes exact duplicates from the page's script list just before it is rendered.
Remove this extension when the book moves to a Sphinx that includes that fix.
"""
from __future__ import annotations


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    kept, seen = [], set()
    for script in context.get("script_files", []):
        # An inline script has no file: one copy says None, the re-added copy says "" (Sphinx's
        # prepare_writing re-adds registered scripts as `filename or ''`), so the two never
        # compare equal. Compare what is emitted instead: the file, if any, and the attributes
        # (an inline script's text is its "body" attribute). Keep the first of each.
        key = (str(script.filename or ""), tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    # Late priority: run after the extensions that add scripts in this same event.
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
